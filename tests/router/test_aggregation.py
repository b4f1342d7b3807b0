"""Group timing (reference §6.1-6.4, §7.5), the flush sort order (§6.3 step 3) and flush copies."""

from __future__ import annotations

import pytest

from services.router.aggregation import (
    GroupTimer,
    after_flush,
    due,
    flush_order,
    on_insert,
    on_tick,
    snapshot_for_flush,
)
from tests.router.alertgen import S, at, stored


def test_new_group_waits_group_wait() -> None:
    timer = GroupTimer.new(at(0), 30, 300, "{}:{}")
    assert (timer.next_tick_ns, timer.flushed_once, timer.created_ns) == (at(30), False, at(0))
    assert not due(timer, at(30) - 1)
    assert due(timer, at(30))


@pytest.mark.parametrize(
    ("starts", "now", "next_tick"),
    [(-3600, 0, 0), (-30.5, 0, 0), (-30, 0, 30), (0, 0, 30), (-31, 10, 10)],
    ids=["an-hour-old", "just-older-than-group-wait", "exactly-group-wait-is-not-early", "fresh", "later-insert-of-old-alert"],
)  # fmt: skip
def test_early_flush_when_starts_plus_group_wait_is_past(
    starts: float, now: float, next_tick: float
) -> None:
    timer = GroupTimer.new(at(0), 30, 300)
    on_insert(timer, stored(starts=at(starts)), at(now))
    assert timer.next_tick_ns == at(next_tick)


def test_no_early_flush_after_the_first_flush() -> None:
    timer = GroupTimer.new(at(0), 30, 300)
    on_tick(timer, at(30))
    on_insert(timer, stored(starts=at(-3600)), at(40))
    assert (timer.next_tick_ns, timer.flushed_once) == (at(330), True)


def test_ticks_stay_aligned_to_the_first_one() -> None:
    timer = GroupTimer.new(at(0), 3, 8)
    ticks = []
    for _ in range(4):
        ticks.append(timer.next_tick_ns)
        on_tick(timer, timer.next_tick_ns)
    assert ticks == [at(3), at(11), at(19), at(27)]


def test_after_an_early_flush_ticks_align_to_it() -> None:
    timer = GroupTimer.new(at(0), 30, 10)
    on_insert(timer, stored(starts=at(-100)), at(2))
    on_tick(timer, timer.next_tick_ns)
    assert timer.next_tick_ns == at(12)


@pytest.mark.parametrize(
    ("now", "next_tick"),
    [(None, 18), (17.9, 18), (18, 28), (45, 48)],
    ids=["no-now", "on-time", "late-by-a-tick", "down-for-three-ticks"],
)
def test_missed_ticks_skip_ahead_keeping_alignment(now: float | None, next_tick: float) -> None:
    timer = GroupTimer.new(at(0), 8, 10)
    on_tick(timer, at(8), None if now is None else at(now))
    assert timer.next_tick_ns == at(next_tick)


def test_timer_json_round_trip() -> None:
    timer = GroupTimer.new(at(0), 0.5, 300, '{}:{a="1"}')
    on_tick(timer, timer.next_tick_ns)
    assert GroupTimer.from_json(timer.to_json()) == timer


# Each case: label sets in input order, and the expected order as input indices.
ORDERS = [
    pytest.param([{"a": "1"}, {"job": "z"}], [1, 0], id="job-present-first"),
    pytest.param([{"job": "b"}, {"job": "a", "x": "1", "y": "2"}], [1, 0], id="job-value-before-label-count"),
    pytest.param([{"job": "a", "instance": "2"}, {"job": "a", "instance": "1"}], [1, 0], id="instance-breaks-job-tie"),
    pytest.param([{"job": "a"}, {"job": "a", "instance": "9"}], [1, 0], id="instance-present-first"),
    pytest.param([{"b": "1"}, {"instance": "x", "z": "1"}], [1, 0], id="instance-without-job"),
    pytest.param([{"a": "1", "b": "2"}, {"c": "1"}], [1, 0], id="fewer-labels-first"),
    pytest.param([{"x": "1", "y": "1"}, {"x": "1", "z": "1"}], [1, 0], id="set-lacking-first-differing-name-first"),
    pytest.param([{"a": "2"}, {"a": "1"}], [1, 0], id="value-order"),
    pytest.param([{"a": "a"}, {"a": "B"}], [1, 0], id="bytewise-uppercase-first"),
    pytest.param([{"a": "9"}, {"a": "10"}], [1, 0], id="no-natural-number-order"),
    pytest.param([{"a": "é"}, {"a": "z"}], [1, 0], id="utf8-after-ascii"),
    pytest.param([{"A": "1"}, {"a": "1"}], [1, 0], id="names-bytewise-lacking-A-first"),
    pytest.param([{"job": "j", "a": "1"}, {"job": "j", "a": "1"}, {"job": "i"}], [2, 0, 1], id="stable-for-equal-labels"),
]  # fmt: skip


@pytest.mark.parametrize(("labels", "expected"), ORDERS)
def test_flush_order(labels: list[dict[str, str]], expected: list[int]) -> None:
    alerts = [stored(lbl, updated=at(i)) for i, lbl in enumerate(labels)]
    assert [a.updated_ns for a in flush_order(alerts)] == [at(i) for i in expected]


def test_snapshot_zeroes_firing_ends_and_lists_resolved() -> None:
    firing = stored({"alertname": "F"}, ends=at(100), updated=at(1))
    resolved = stored({"alertname": "R"}, ends=at(10), updated=at(2))
    exact = stored({"alertname": "E"}, ends=at(20), updated=at(3))
    snap = snapshot_for_flush([resolved, firing, exact], at(20))
    assert [(a.labels["alertname"], a.ends_ns) for a in snap.alerts] == [
        ("E", at(20)),
        ("F", 0),
        ("R", at(10)),
    ]
    assert snap.resolved == {resolved.fingerprint: at(2), exact.fingerprint: at(3)}


def test_after_flush_deletes_only_resolved_alerts_not_updated_since() -> None:
    gone = stored({"alertname": "gone"}, ends=at(5), updated=at(1))
    refired = stored({"alertname": "refired"}, ends=at(5), updated=at(1))
    snapshot = {gone.fingerprint: at(1), refired.fingerprint: at(1), "0000000000000000": at(1)}
    current = {
        gone.fingerprint: gone,
        refired.fingerprint: stored({"alertname": "refired"}, updated=at(1) + S),
    }
    assert after_flush(snapshot, current) == [gone.fingerprint]
