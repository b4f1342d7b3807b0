"""The simulator end to end: reference §6.6 timelines and the flush, dedup and mute consequences."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.alert import fingerprint as _fp
from schemas.timefmt import format_ns
from services.router.alerts import dedup_hash
from services.router.silences import SilenceError
from services.router.sim import Notification, Simulator
from tests.router.alertgen import T0, S, at, config, message

HOOK = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: {gw}
  group_interval: {gi}
  repeat_interval: {ri}
receivers:
  - name: hook
    webhook_configs: [{{url: "http://hook.example/"}}]
"""

Summary = tuple[float, str, str, list[tuple[str, str]]]


class Run:
    """A simulator on the test clock, driven in seconds from T0."""

    def __init__(self, yaml: str) -> None:
        self.sim = Simulator(config(yaml), T0)

    def post(
        self,
        t: float,
        labels: dict[str, str],
        starts: float | None = None,
        ends: float | None = None,
    ) -> None:
        begin = at(t if starts is None else starts)
        self.sim.receive(message(labels, begin, None if ends is None else at(ends), at(t)), at(t))

    def until(self, t: float) -> list[Summary]:
        return [_summary(n) for n in self.sim.advance(at(t))]

    def silence(self, t: float, name: str, value: str, **extra: Any) -> str:
        body = {
            "matchers": [{"name": name, "value": value, "isRegex": False}],
            "startsAt": format_ns(at(t)),
            "endsAt": format_ns(at(t + 3600)),
            "createdBy": "test",
            "comment": "",
            **extra,
        }
        return self.sim.add_silence(body, at(t))


def _name(labels: dict[str, str]) -> str:
    return labels.get("i") or labels.get("alertname", "?")


def _summary(n: Notification) -> Summary:
    alerts = [(_name(a.labels), "resolved" if a.ends_ns else "firing") for a in n.alerts]
    return ((n.at_ns - T0) / S, n.integration, n.status, alerts)


A1 = {"alertname": "T1", "i": "1"}
A2 = {"alertname": "T1", "i": "2"}


def test_worked_timeline_3s_8s_20s() -> None:
    run = Run(HOOK.format(gw="3s", gi="8s", ri="20s"))
    run.post(0, A1)
    run.post(5, A2)
    run.post(40, A1, starts=0, ends=40)
    before_last = run.until(44)
    assert run.sim.groups() == {'{}:{alertname="T1"}': [_fp(A2)]}
    run.post(55, A2, starts=5, ends=55)
    sent = before_last + run.until(100)
    assert sent == [
        (3, "webhook[0]", "firing", [("1", "firing")]),
        (11, "webhook[0]", "firing", [("1", "firing"), ("2", "firing")]),
        (35, "webhook[0]", "firing", [("1", "firing"), ("2", "firing")]),  # repeat: 35 - 11 > 20
        (43, "webhook[0]", "firing", [("1", "resolved"), ("2", "firing")]),
        (59, "webhook[0]", "resolved", [("2", "resolved")]),
    ]


def test_worked_timeline_repeat_slips_to_every_15s() -> None:
    run = Run(HOOK.format(gw="1s", gi="5s", ri="10s"))
    run.post(0, A1)
    assert [s[0] for s in run.until(50)] == [1, 16, 31, 46]


def test_firing_alerts_have_ends_zeroed_and_resolved_keep_theirs() -> None:
    run = Run(HOOK.format(gw="3s", gi="8s", ri="1h"))
    run.post(0, A1, ends=300)
    run.post(0, A2, ends=2)
    (note,) = run.sim.advance(at(3))
    assert [(a.labels["i"], a.ends_ns) for a in note.alerts] == [("1", 0), ("2", at(2))]


def test_early_flush_of_an_old_alert() -> None:
    run = Run(HOOK.format(gw="30s", gi="5m", ri="4h"))
    run.post(0, A1, starts=-3600)
    assert run.until(0) == [(0, "webhook[0]", "firing", [("1", "firing")])]


def test_an_alert_joining_after_the_first_flush_waits_for_the_next_tick() -> None:
    run = Run(HOOK.format(gw="3s", gi="8s", ri="1h"))
    run.post(0, A1)
    assert len(run.until(3)) == 1
    run.post(5, A2, starts=-3600)  # old, but the group already flushed: no early flush
    assert run.until(10.9) == []
    assert run.until(11) == [(11, "webhook[0]", "firing", [("1", "firing"), ("2", "firing")])]


def test_a_first_flush_with_only_resolved_alerts_sends_nothing() -> None:
    run = Run(HOOK.format(gw="3s", gi="8s", ri="1h"))
    run.post(0, A1, starts=-10, ends=-5)
    assert run.until(3) == []
    assert run.sim.groups() == {'{}:{alertname="T1"}': []}  # the flush "succeeded": A1 is gone
    assert run.sim.nflog == {}
    run.until(30)  # the dispatcher's 30s cleanup removes the empty group
    assert run.sim.groups() == {}


TWO_HOOKS = """
route: {receiver: hook, group_by: [alertname], group_wait: 3s, group_interval: 8s, repeat_interval: 1h}
receivers:
  - name: hook
    webhook_configs:
      - url: http://a.example/
      - {url: http://b.example/, send_resolved: false}
"""


def test_send_resolved_true_and_false_and_the_all_resolved_branch() -> None:
    run = Run(TWO_HOOKS)
    run.post(0, A1)
    run.post(0, A2)
    assert [s[1] for s in run.until(3)] == ["webhook[0]", "webhook[1]"]
    run.post(5, A1, starts=0, ends=5)
    assert run.until(11) == [(11, "webhook[0]", "firing", [("1", "resolved"), ("2", "firing")])]
    run.post(12, A2, starts=0, ends=12)
    assert run.until(19) == [(19, "webhook[0]", "resolved", [("2", "resolved")])]
    # "All resolved" cleared webhook[1]'s log even though it sent nothing.
    assert run.sim.nflog['{}:{alertname="T1"}:hook/webhook/1'].firing == frozenset()
    run.post(20, A1)  # re-fires before the 30s cleanup: joins the old group, next tick
    assert run.until(27) == [
        (27, "webhook[0]", "firing", [("1", "firing")]),
        (27, "webhook[1]", "firing", [("1", "firing")]),
    ]


def test_send_resolved_false_sends_only_firing_alerts() -> None:
    run = Run(TWO_HOOKS)
    run.post(0, A1, ends=1)
    run.post(0, A2)
    assert run.until(3) == [
        (3, "webhook[0]", "firing", [("1", "resolved"), ("2", "firing")]),
        (3, "webhook[1]", "firing", [("2", "firing")]),
    ]


def test_a_silenced_alert_disappears_without_a_resolve() -> None:
    run = Run(HOOK.format(gw="3s", gi="8s", ri="20s"))
    run.post(0, A1)
    run.post(0, A2)
    assert len(run.until(3)) == 1
    run.silence(5, "i", "1")
    assert run.until(19) == []
    assert run.until(27) == [(27, "webhook[0]", "firing", [("2", "firing")])]  # the repeat lacks A1


def test_a_failed_flush_keeps_resolved_alerts_and_retries_next_tick() -> None:
    run = Run(HOOK.format(gw="3s", gi="8s", ri="1h"))
    run.post(0, A1)
    assert len(run.until(3)) == 1
    run.post(5, A1, starts=0, ends=5)
    run.sim.failing.add("webhook[0]")
    assert run.until(11) == []
    assert run.sim.groups() == {'{}:{alertname="T1"}': [_fp(A1)]}
    assert run.sim.nflog['{}:{alertname="T1"}:hook/webhook/0'].timestamp_ns == at(3)
    run.sim.failing.clear()
    assert run.until(19) == [(19, "webhook[0]", "resolved", [("1", "resolved")])]
    assert run.sim.groups() == {'{}:{alertname="T1"}': []}


def test_integrations_that_succeeded_keep_their_log_when_another_fails() -> None:
    run = Run(TWO_HOOKS.replace("send_resolved: false", "send_resolved: true"))
    run.post(0, A1)
    run.until(3)
    run.post(5, A1, starts=0, ends=5)
    run.sim.failing.add("webhook[0]")
    assert run.until(11) == [(11, "webhook[1]", "resolved", [("1", "resolved")])]
    run.sim.failing.clear()
    assert run.until(19) == [(19, "webhook[0]", "resolved", [("1", "resolved")])]


def test_webhook_max_alerts_truncates_after_sorting() -> None:
    run = Run(
        HOOK.format(gw="3s", gi="8s", ri="1h").replace(
            'url: "http://hook.example/"', 'url: "http://hook.example/", max_alerts: 2'
        )
    )
    for i in ("3", "1", "2"):
        run.post(0, {"alertname": "T1", "i": i}, ends=2 if i == "3" else None)
    (note,) = run.sim.advance(at(3))
    assert ([a.labels["i"] for a in note.alerts], note.truncated_alerts, note.status) == (
        ["1", "2"],
        1,
        "firing",
    )
    entry = run.sim.nflog['{}:{alertname="T1"}:hook/webhook/0']
    assert entry.resolved == {dedup_hash({"alertname": "T1", "i": "3"})}  # the log saw them all


def test_empty_groups_are_dropped_by_the_30s_cleanup_and_start_afresh() -> None:
    run = Run(HOOK.format(gw="3s", gi="8s", ri="1h"))
    run.post(0, A1, starts=0, ends=1)
    run.until(31)
    assert run.sim.groups() == {}
    run.post(32, A1)
    assert run.until(34.9) == []
    assert run.until(35) == [(35, "webhook[0]", "firing", [("1", "firing")])]


INHIBIT = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 3s
  group_interval: 8s
  repeat_interval: 1h
  routes:
    - {matchers: [severity="critical"], receiver: blackhole}
receivers:
  - name: hook
    webhook_configs: [{url: "http://hook.example/"}]
  - name: blackhole
inhibit_rules:
  - {source_matchers: [severity="critical"], target_matchers: [severity="warning"], equal: [cluster]}
"""
SOURCE = {"alertname": "Down", "severity": "critical", "cluster": "c"}
TARGET = {"alertname": "Slow", "severity": "warning", "cluster": "c"}


def test_a_source_routed_nowhere_inhibits_until_it_resolves() -> None:
    run = Run(INHIBIT)
    run.post(0, SOURCE)
    run.post(0, TARGET)
    assert run.until(11) == []
    run.post(12, SOURCE, starts=0, ends=12)
    # The target was never notified, so it is "new firing" for dedup: a delayed notification.
    assert run.until(19) == [(19, "webhook[0]", "firing", [("Slow", "firing")])]


def test_a_silenced_source_still_inhibits() -> None:
    run = Run(INHIBIT)
    run.silence(0, "severity", "critical")
    run.post(0, SOURCE)
    run.post(0, TARGET)
    assert run.until(30) == []


def test_a_target_flushed_before_its_source_arrives_is_notified() -> None:
    run = Run(INHIBIT)
    run.post(0, TARGET)
    assert len(run.until(3)) == 1
    run.post(4, SOURCE)
    assert run.until(60) == []  # inhibited from then on; no resolve is sent for it either


MUTED = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 3s
  group_interval: 8s
  repeat_interval: 1h
  routes:
    - {matchers: [alertname=~".+"], mute_time_intervals: [morning]}
receivers:
  - name: hook
    webhook_configs: [{url: "http://hook.example/"}]
time_intervals:
  - name: morning
    time_intervals: [{times: [{start_time: "09:00", end_time: "09:01"}]}]
"""


def test_a_time_mute_writes_no_log_and_the_next_tick_decides_afterwards() -> None:
    run = Run(MUTED)  # T0 is 09:00 UTC: muted for the first minute
    run.post(0, A1)
    run.post(0, {"alertname": "Brief"}, ends=20)
    assert run.until(59) == []
    assert run.sim.nflog == {}
    assert run.until(67) == [(67, "webhook[0]", "firing", [("1", "firing")])]  # Brief never shows


def test_continue_puts_an_alert_in_one_group_per_matched_route() -> None:
    run = Run("""
route:
  receiver: a
  group_wait: 1s
  routes:
    - {matchers: [x="1"], receiver: a, continue: true}
    - {matchers: [x="1"], receiver: b}
receivers:
  - {name: a, webhook_configs: [{url: "http://a.example/"}]}
  - {name: b, email_configs: [{to: x@example.org, from: am@example.org, smarthost: "mx:25"}]}
""")
    run.post(0, {"x": "1"})
    notes = run.sim.advance(at(1))
    assert [(n.receiver, n.integration, n.group_key) for n in notes] == [
        ("a", "webhook[0]", '{}/{x="1"}:{}'),
        ("b", "email[0]", '{}/{x="1"}:{}'),
    ]


def test_silence_updates_through_the_simulator() -> None:
    run = Run(HOOK.format(gw="3s", gi="8s", ri="1h"))
    first = run.silence(0, "i", "1")
    second = run.silence(1, "i", "2", id=first)  # new matchers: the first is expired
    assert second != first
    old = run.sim.silencer.get(first)
    assert old is not None
    assert old.ends_ns == at(1)
    with pytest.raises(SilenceError) as caught:
        run.silence(2, "bad-name", "x", id=second)
    assert caught.value.status == 400
    expired = run.sim.silencer.get(second)
    assert expired is not None
    assert expired.ends_ns == at(2)


def test_time_cannot_go_backwards() -> None:
    run = Run(HOOK.format(gw="3s", gi="8s", ri="1h"))
    run.until(5)
    with pytest.raises(ValueError, match="backwards"):
        run.until(4)
