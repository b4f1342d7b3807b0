"""Inhibition, one test per consequence listed in reference §8 (routing ones are in test_sim)."""

from __future__ import annotations

from schemas.config.inhibit import InhibitRule
from services.router.alerts import StoredAlert
from services.router.inhibit import Inhibitor
from tests.router.alertgen import at, config, stored

_BASE = """
route: {receiver: r}
receivers: [{name: r}]
inhibit_rules:
"""


def _rules(text: str) -> list[InhibitRule]:
    return config(_BASE + text).inhibit_rules


def _inhibitor(rules: str, *sources: StoredAlert) -> Inhibitor:
    inhibitor = Inhibitor(_rules(rules))
    for source in sources:
        inhibitor.observe(source)
    return inhibitor


CRITICAL_BY_CLUSTER = """
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [cluster]
"""


def test_equal_reads_missing_labels_as_empty() -> None:
    source = stored({"severity": "critical"})
    inhibitor = _inhibitor(CRITICAL_BY_CLUSTER, source)
    assert inhibitor.mutes({"severity": "warning"}, at(1)) == source.fingerprint
    assert inhibitor.mutes({"severity": "warning", "cluster": ""}, at(1)) == source.fingerprint
    assert inhibitor.mutes({"severity": "warning", "cluster": "a"}, at(1)) is None


def test_equal_labels_must_agree() -> None:
    source = stored({"severity": "critical", "cluster": "a"})
    inhibitor = _inhibitor(CRITICAL_BY_CLUSTER, source)
    assert inhibitor.mutes({"severity": "warning", "cluster": "a"}, at(1)) == source.fingerprint
    assert inhibitor.mutes({"severity": "warning", "cluster": "b"}, at(1)) is None
    assert inhibitor.mutes({"severity": "info", "cluster": "a"}, at(1)) is None  # not a target


def test_without_equal_any_firing_source_inhibits_every_target() -> None:
    source = stored({"severity": "critical", "cluster": "a"})
    inhibitor = _inhibitor(
        '  - {source_matchers: [severity="critical"], target_matchers: [severity="warning"]}',
        source,
    )
    for cluster in ("a", "b", ""):
        assert (
            inhibitor.mutes({"severity": "warning", "cluster": cluster}, at(1))
            == source.fingerprint
        )


def test_a_rule_without_matchers_matches_everything_on_that_side() -> None:
    source = stored({"alertname": "Any"})
    inhibitor = _inhibitor('  - {target_matchers: [severity="warning"]}', source)
    assert inhibitor.mutes({"severity": "warning"}, at(1)) == source.fingerprint


TWO_SIDED = """
  - source_matchers: [kind="x"]
    target_matchers: [group="g"]
"""


def test_an_alert_matching_both_sides_never_inhibits_itself() -> None:
    s1 = stored({"kind": "x", "group": "g"})
    inhibitor = _inhibitor(TWO_SIDED, s1)
    assert inhibitor.mutes(s1.labels, at(1)) is None


def test_a_two_sided_target_is_inhibited_only_by_one_sided_sources() -> None:
    s1 = stored({"kind": "x", "group": "g"})
    s2 = stored({"kind": "x"})
    other_two_sided = stored({"kind": "x", "group": "g", "n": "2"})
    inhibitor = _inhibitor(TWO_SIDED, s1, other_two_sided)
    assert inhibitor.mutes(s1.labels, at(1)) is None  # another two-sided source does not count
    inhibitor.observe(s2)
    assert inhibitor.mutes(s1.labels, at(1)) == s2.fingerprint


def test_a_plain_target_is_inhibited_by_a_two_sided_source() -> None:
    s1 = stored({"kind": "x", "group": "g"})
    assert _inhibitor(TWO_SIDED, s1).mutes({"group": "g"}, at(1)) == s1.fingerprint


CHAIN = """
  - {source_matchers: [level="0"], target_matchers: [level="1"]}
  - {source_matchers: [level="1"], target_matchers: [level="2"]}
"""


def test_inhibited_sources_still_inhibit() -> None:
    s0, s1 = stored({"level": "0"}), stored({"level": "1"})
    inhibitor = _inhibitor(CHAIN, s0, s1)
    assert inhibitor.mutes(s1.labels, at(1)) == s0.fingerprint
    assert inhibitor.mutes({"level": "2"}, at(1)) == s1.fingerprint


def test_the_source_must_be_firing_at_the_check() -> None:
    source = stored({"severity": "critical"}, ends=at(10))
    inhibitor = _inhibitor(CRITICAL_BY_CLUSTER, source)
    assert inhibitor.mutes({"severity": "warning"}, at(9)) == source.fingerprint
    assert inhibitor.mutes({"severity": "warning"}, at(10)) is None  # endsAt == now is resolved


def test_a_resolved_update_of_a_source_stops_inhibiting() -> None:
    inhibitor = _inhibitor(CRITICAL_BY_CLUSTER, stored({"severity": "critical"}))
    inhibitor.observe(stored({"severity": "critical"}, ends=at(5), updated=at(5)))
    assert inhibitor.mutes({"severity": "warning"}, at(5)) is None


def test_a_resolved_source_does_not_hide_a_firing_one() -> None:
    old = stored({"severity": "critical", "n": "1"}, ends=at(1))
    firing = stored({"severity": "critical", "n": "2"})
    inhibitor = _inhibitor(CRITICAL_BY_CLUSTER, old, firing)
    assert inhibitor.mutes({"severity": "warning"}, at(2)) == firing.fingerprint


def test_rule_order_fixes_inhibited_by_but_not_the_outcome() -> None:
    a, b = stored({"src": "a"}), stored({"src": "b"})
    rule_a = '  - {source_matchers: [src="a"], target_matchers: [t="1"]}\n'
    rule_b = '  - {source_matchers: [src="b"], target_matchers: [t="1"]}\n'
    assert _inhibitor(rule_a + rule_b, a, b).mutes({"t": "1"}, at(1)) == a.fingerprint
    assert _inhibitor(rule_b + rule_a, a, b).mutes({"t": "1"}, at(1)) == b.fingerprint


def test_forget_and_purge_drop_sources() -> None:
    firing, done = (
        stored({"severity": "critical"}),
        stored({"severity": "critical", "x": "1"}, ends=at(1)),
    )
    inhibitor = _inhibitor(CRITICAL_BY_CLUSTER, firing, done, stored({"severity": "warning"}))
    assert len(inhibitor) == 2  # the warning alert is no source
    assert inhibitor.purge_resolved(at(2)) == [done.fingerprint]
    inhibitor.forget(firing.fingerprint)
    assert len(inhibitor) == 0
    assert inhibitor.mutes({"severity": "warning"}, at(2)) is None


def test_many_sources_are_looked_up_by_their_equal_labels() -> None:
    sources = [stored({"severity": "critical", "cluster": f"c{i}"}) for i in range(5000)]
    inhibitor = _inhibitor(CRITICAL_BY_CLUSTER, *sources)
    hits = [
        inhibitor.mutes({"severity": "warning", "cluster": f"c{i}"}, at(1))
        for i in range(0, 5000, 7)
    ]
    assert hits == [sources[i].fingerprint for i in range(0, 5000, 7)]
    assert inhibitor.mutes({"severity": "warning", "cluster": "c5000"}, at(1)) is None
