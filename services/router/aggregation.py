"""Aggregation groups: when a group flushes, what a flush sends, and what it deletes afterwards."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.router.alerts import StoredAlert, resolved_at

__all__ = [
    "FlushSnapshot",
    "GroupTimer",
    "after_flush",
    "due",
    "flush_order",
    "on_insert",
    "on_tick",
    "snapshot_for_flush",
]

_NS = 1_000_000_000


@dataclass(slots=True)
class GroupTimer:
    """The timing state of one aggregation group (one route, one set of group labels)."""

    group_key: str
    created_ns: int
    flushed_once: bool
    next_tick_ns: int
    group_wait_ns: int
    group_interval_ns: int

    @classmethod
    def new(
        cls, now_ns: int, group_wait_s: float, group_interval_s: float, group_key: str = ""
    ) -> GroupTimer:
        """A group created at `now_ns`: its first tick is one group_wait away."""
        wait = round(group_wait_s * _NS)
        return cls(
            group_key=group_key,
            created_ns=now_ns,
            flushed_once=False,
            next_tick_ns=now_ns + wait,
            group_wait_ns=wait,
            group_interval_ns=round(group_interval_s * _NS),
        )

    def to_json(self) -> dict[str, Any]:
        """A compact JSON-ready dict."""
        return {
            "k": self.group_key,
            "c": self.created_ns,
            "f": int(self.flushed_once),
            "n": self.next_tick_ns,
            "w": self.group_wait_ns,
            "i": self.group_interval_ns,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroupTimer:
        """The timer `to_json` wrote."""
        return cls(
            group_key=data["k"],
            created_ns=data["c"],
            flushed_once=bool(data["f"]),
            next_tick_ns=data["n"],
            group_wait_ns=data["w"],
            group_interval_ns=data["i"],
        )


def on_insert(timer: GroupTimer, alert: StoredAlert, now_ns: int) -> None:
    """Flush at once when an alert older than group_wait joins a group that never flushed."""
    if not timer.flushed_once and alert.starts_ns + timer.group_wait_ns < now_ns:
        timer.next_tick_ns = now_ns


def due(timer: GroupTimer, now_ns: int) -> bool:
    """Whether the group's next tick has come."""
    return now_ns >= timer.next_tick_ns


def on_tick(timer: GroupTimer, tick_ns: int, now_ns: int | None = None) -> None:
    """Schedule the next tick one group_interval after this one; call it before flushing.

    Ticks stay aligned to the first one. When `now_ns` is given and ticks were missed (the
    service was down), the next tick is the first aligned one after `now_ns`.
    """
    interval = timer.group_interval_ns
    timer.next_tick_ns = tick_ns + interval
    if now_ns is not None and timer.next_tick_ns <= now_ns:
        timer.next_tick_ns += ((now_ns - timer.next_tick_ns) // interval + 1) * interval
    timer.flushed_once = True


def _less(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    for name in ("job", "instance"):
        av, bv = a.get(name), b.get(name)
        if av is None and bv is None:
            continue
        if av is None:
            return False  # alerts that have the label come first
        if bv is None:
            return True
        if av != bv:
            return av < bv
    return _label_set_before(a, b)


def _label_set_before(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    # prometheus/common LabelSet.Before: fewer labels first; then, over the merged sorted names,
    # the first difference decides, and the set that lacks the name sorts first.
    if len(a) != len(b):
        return len(a) < len(b)
    for name in sorted({*a, *b}):
        if name not in a:
            return True
        if name not in b:
            return False
        if a[name] != b[name]:
            return a[name] < b[name]
    return False


def _compare(a: StoredAlert, b: StoredAlert) -> int:
    if _less(a.labels, b.labels):
        return -1
    return 1 if _less(b.labels, a.labels) else 0


def flush_order(alerts: Iterable[StoredAlert]) -> list[StoredAlert]:
    """Alertmanager's notification order: by job, then instance, then LabelSet.Before (stable)."""
    return sorted(alerts, key=functools.cmp_to_key(_compare))


@dataclass(slots=True)
class FlushSnapshot:
    """What one flush sends (in flush order) and the resolved alerts it may delete afterwards."""

    alerts: list[StoredAlert]
    resolved: dict[str, int] = field(default_factory=dict)
    """Fingerprint to updatedAt of every alert that was resolved at the flush."""


def snapshot_for_flush(alerts: Iterable[StoredAlert], now_ns: int) -> FlushSnapshot:
    """Copy the group's alerts for a flush at `now_ns`, zeroing endsAt of the firing ones."""
    copies: list[StoredAlert] = []
    resolved: dict[str, int] = {}
    for alert in alerts:
        if resolved_at(alert, now_ns):
            resolved[alert.fingerprint] = alert.updated_ns
            copies.append(alert)
        else:  # so that a firing alert cannot resolve while the pipeline runs
            copies.append(
                StoredAlert(
                    fingerprint=alert.fingerprint,
                    labels=alert.labels,
                    annotations=alert.annotations,
                    starts_ns=alert.starts_ns,
                    ends_ns=0,
                    generator_url=alert.generator_url,
                    updated_ns=alert.updated_ns,
                    timeout=alert.timeout,
                )
            )
    return FlushSnapshot(alerts=flush_order(copies), resolved=resolved)


def after_flush(
    resolved_snapshot: Mapping[str, int], current: Mapping[str, StoredAlert]
) -> list[str]:
    """After a successful flush: the resolved alerts to delete (those not updated since)."""
    return [
        fp
        for fp, updated in resolved_snapshot.items()
        if (alert := current.get(fp)) is not None and alert.updated_ns == updated
    ]
