"""The notification log and the dedup decision (reference §7.4-7.6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.router.dedup import (
    RETENTION_S,
    NflogEntry,
    needs_update,
    new_entry,
    nflog_key,
    payload_alerts,
)
from tests.router.alertgen import S, at, stored


def test_nflog_key_format() -> None:
    key = nflog_key('{}/{a="1"}:{alertname="X"}', "team.x", "webhook", 1)
    assert key == '{}/{a="1"}:{alertname="X"}:team.x/webhook/1'


def _entry(firing: set[int], resolved: set[int], when: float = 0) -> NflogEntry:
    return new_entry(firing, resolved, at(when), 3600)


# (entry, firing, resolved, send_resolved, seconds since the entry, expected); repeat is 60s.
CASES = [
    pytest.param(None, {1}, set(), True, 0, True, id="first-with-firing"),
    pytest.param(None, set(), {1}, True, 0, False, id="first-resolved-only-is-quiet"),
    pytest.param(None, set(), set(), True, 0, False, id="first-empty"),
    pytest.param(_entry({1}, set()), {1, 2}, set(), False, 1, True, id="new-firing-alert"),
    pytest.param(_entry({1, 2}, set()), {2}, set(), False, 1, False, id="firing-alert-disappears"),
    pytest.param(_entry({1, 2}, set()), set(), {1, 2}, False, 1, True, id="all-resolved-without-send-resolved"),
    pytest.param(_entry({1, 2}, set()), set(), {1, 2}, True, 1, True, id="all-resolved-with-send-resolved"),
    pytest.param(_entry(set(), {1}), set(), {1, 2}, True, 1, False, id="nothing-firing-now-or-before"),
    pytest.param(_entry({1, 2}, set()), {2}, {1}, True, 1, True, id="newly-resolved-send-resolved"),
    pytest.param(_entry({1, 2}, set()), {2}, {1}, False, 1, False, id="newly-resolved-without-send-resolved"),
    pytest.param(_entry({2}, {1}), {2}, {1}, True, 1, False, id="resolved-already-logged"),
    pytest.param(_entry({1}, set()), {1}, set(), True, 60, False, id="repeat-exactly-at-interval-slips"),
    pytest.param(_entry({1}, set()), {1}, set(), True, 60.000000001, True, id="repeat-just-after-interval"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("entry", "firing", "resolved", "send_resolved", "since", "expected"), CASES
)
def test_needs_update(
    entry: NflogEntry | None,
    firing: set[int],
    resolved: set[int],
    send_resolved: bool,
    since: float,
    expected: bool,
) -> None:
    assert needs_update(entry, firing, resolved, send_resolved, 60, at(since)) is expected


@pytest.mark.parametrize(
    ("repeat_s", "retention_s", "lifetime_s"),
    [(4 * 3600, RETENTION_S, 8 * 3600), (100 * 3600, RETENTION_S, RETENTION_S), (10, 5, 5)],
    ids=["twice-repeat", "capped-by-retention", "custom-retention"],
)
def test_entry_expiry(repeat_s: float, retention_s: float, lifetime_s: float) -> None:
    entry = new_entry({1}, {2}, at(0), repeat_s, retention_s)
    assert entry.expires_ns == at(lifetime_s)
    assert not entry.expired(at(lifetime_s) - 1)
    assert entry.expired(at(lifetime_s))


def test_entry_json_round_trip() -> None:
    entry = new_entry({2**64 - 1, 5}, {7}, at(1), 60)
    assert entry.to_json() == {"f": [5, 2**64 - 1], "r": [7], "t": at(1), "x": at(121)}
    assert NflogEntry.from_json(entry.to_json()) == entry


FIRING = stored({"alertname": "F"})
RESOLVED = stored({"alertname": "R"}, ends=at(1))


@pytest.mark.parametrize(
    ("alerts", "send_resolved", "expected"),
    [
        ([FIRING, RESOLVED], True, [FIRING, RESOLVED]),
        ([FIRING, RESOLVED], False, [FIRING]),
        ([RESOLVED], True, [RESOLVED]),
        ([RESOLVED], False, None),
    ],
    ids=[
        "send-resolved-sends-all",
        "firing-only",
        "resolved-only-sent",
        "resolved-only-nothing-sent",
    ],
)
def test_payload_alerts(alerts: list, send_resolved: bool, expected: list | None) -> None:  # type: ignore[type-arg]
    assert payload_alerts(alerts, send_resolved) == expected
    assert payload_alerts(alerts, send_resolved, at(2)) == expected


hashes = st.frozensets(st.integers(min_value=0, max_value=2**64 - 1), max_size=5)


@given(
    firing=hashes,
    resolved=hashes,
    send_resolved=st.booleans(),
    repeat_s=st.integers(min_value=1, max_value=10 * 86400),
    sent_at=st.integers(min_value=0, max_value=10**18),
    checks=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=5),
)
def test_unchanged_group_is_not_notified_twice_within_repeat_interval(
    firing: frozenset[int],
    resolved: frozenset[int],
    send_resolved: bool,
    repeat_s: int,
    sent_at: int,
    checks: list[float],
) -> None:
    resolved = resolved - firing
    if not needs_update(None, firing, resolved, send_resolved, repeat_s, sent_at):
        return  # nothing was sent, so nothing can repeat
    entry = new_entry(firing, resolved, sent_at, repeat_s)
    for fraction in sorted(checks):
        now = sent_at + int(fraction * repeat_s * S)
        assert not needs_update(entry, firing, resolved, send_resolved, repeat_s, now)
