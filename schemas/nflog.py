"""The notification log's entry and Alertmanager's dedup rule (pure; storage is runtime/nflog).

One log per integration of a group: what was last notified (alert hashes), when, and until when
the entry lives. The router decides with it whether a flush publishes; the notifiers whether a
notification was already delivered.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

__all__ = ["RETENTION_S", "NflogEntry", "needs_update", "new_entry", "nflog_key"]

_NS = 1_000_000_000
RETENTION_S = 120 * 3600.0
"""Alertmanager's default `--data.retention` (120h), the longest an entry lives."""


@dataclass(frozen=True, slots=True)
class NflogEntry:
    """One integration's last successful notification of one group (alert hashes, not labels)."""

    firing: frozenset[int]
    resolved: frozenset[int]
    timestamp_ns: int
    expires_ns: int

    def to_json(self) -> dict[str, Any]:
        """A compact JSON-ready dict (sorted hash lists, int times)."""
        return {
            "f": sorted(self.firing),
            "r": sorted(self.resolved),
            "t": self.timestamp_ns,
            "x": self.expires_ns,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NflogEntry:
        """The entry `to_json` wrote."""
        return cls(
            firing=frozenset(data["f"]),
            resolved=frozenset(data["r"]),
            timestamp_ns=data["t"],
            expires_ns=data["x"],
        )

    def expired(self, now_ns: int) -> bool:
        """Whether the entry is past its expiry and should be treated as absent."""
        return self.expires_ns <= now_ns


def nflog_key(group_key: str, receiver: str, integration: str, index: int) -> str:
    """The entry's key: `group_key:receiver/integration/index` (the raw receiver name)."""
    return group_key + ":" + receiver + "/" + integration + "/" + str(index)


def needs_update(
    entry: NflogEntry | None,
    firing: Set[int],
    resolved: Set[int],
    send_resolved: bool,
    repeat_interval_s: float,
    now_ns: int,
) -> bool:
    """Alertmanager's dedup decision for one integration at one flush."""
    if entry is None:
        return bool(firing)  # a group seen for the first time with only resolved alerts is quiet
    if not firing <= entry.firing:
        return True
    if not firing:
        # "All resolved" clears the log whatever send_resolved says.
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.timestamp_ns < now_ns - round(repeat_interval_s * _NS)


def new_entry(
    firing: Set[int],
    resolved: Set[int],
    now_ns: int,
    repeat_interval_s: float,
    retention_s: float = RETENTION_S,
) -> NflogEntry:
    """The entry written after a successful send: it lives min(retention, 2 x repeat_interval)."""
    lifetime = min(retention_s, 2 * repeat_interval_s) if repeat_interval_s > 0 else retention_s
    return NflogEntry(
        firing=frozenset(firing),
        resolved=frozenset(resolved),
        timestamp_ns=now_ns,
        expires_ns=now_ns + round(lifetime * _NS),
    )
