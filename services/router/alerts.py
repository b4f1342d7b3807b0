"""The router's stored alert: Alertmanager's ingestion defaults, merge rule and dedup hash."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import xxhash

from schemas.alert import Alert, fingerprint
from schemas.timefmt import parse_ns

__all__ = ["StoredAlert", "dedup_hash", "from_json", "merge", "resolved_at", "to_json"]

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """One alert as the router keeps it: times in int nanoseconds, `ends_ns == 0` for unset."""

    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_ns: int
    ends_ns: int
    generator_url: str
    updated_ns: int
    timeout: bool

    @classmethod
    def from_message(cls, alert: Alert, now_ns: int, resolve_timeout_s: float) -> StoredAlert:
        """Apply Alertmanager's ingestion defaults (updatedAt, endsAt from resolve_timeout)."""
        # Ingest already defaulted startsAt (to endsAt, else to its receive time).
        if alert.endsAt is None:
            ends, timeout = now_ns + round(resolve_timeout_s * _NS), True
        else:
            ends, timeout = parse_ns(alert.endsAt), False
        return cls(
            fingerprint=alert.fingerprint,
            labels=alert.labels,
            annotations=alert.annotations,
            starts_ns=parse_ns(alert.startsAt),
            ends_ns=ends,
            generator_url=alert.generatorURL,
            updated_ns=now_ns,
            timeout=timeout,
        )


def resolved_at(alert: StoredAlert, now_ns: int) -> bool:
    """Whether the alert is resolved at `now_ns` (endsAt set and not after it)."""
    return alert.ends_ns != 0 and alert.ends_ns <= now_ns


def _overlaps(old: StoredAlert, new: StoredAlert) -> bool:
    # Both ends exclusive, exactly as the in-memory alert provider checks it.
    return (old.starts_ns < new.ends_ns < old.ends_ns) or (
        old.starts_ns < new.starts_ns < old.ends_ns
    )


def merge(old: StoredAlert | None, new: StoredAlert, now_ns: int | None = None) -> StoredAlert:
    """The alert to store when `new` arrives over `old` (same fingerprint).

    Without an overlap of the activity ranges the new alert replaces the old one. Otherwise the
    younger alert (by updatedAt) is the base, the earliest startsAt wins, and endsAt follows
    Alertmanager's rules. `now_ns` (default: the new alert's updatedAt) decides which is resolved.
    """
    if old is None or not _overlaps(old, new):
        return new
    now = new.updated_ns if now_ns is None else now_ns
    older, younger = (new, old) if new.updated_ns < old.updated_ns else (old, new)
    starts = min(older.starts_ns, younger.starts_ns)
    ends = younger.ends_ns
    if resolved_at(younger, now):
        # The latest explicit resolve time wins when both are resolved.
        if resolved_at(older, now) and older.ends_ns > younger.ends_ns:
            ends = older.ends_ns
    elif older.ends_ns > younger.ends_ns and not older.timeout:
        ends = older.ends_ns  # a later endsAt that the sender set (not a timeout) rules
    if starts == younger.starts_ns and ends == younger.ends_ns:
        return younger
    return StoredAlert(
        fingerprint=younger.fingerprint,
        labels=younger.labels,
        annotations=younger.annotations,
        starts_ns=starts,
        ends_ns=ends,
        generator_url=younger.generator_url,
        updated_ns=younger.updated_ns,
        timeout=younger.timeout,
    )


def to_json(alert: StoredAlert) -> dict[str, Any]:
    """A compact JSON-ready dict (short keys, int times, empty fields left out)."""
    out: dict[str, Any] = {
        "l": alert.labels,
        "s": alert.starts_ns,
        "e": alert.ends_ns,
        "u": alert.updated_ns,
    }
    if alert.annotations:
        out["a"] = alert.annotations
    if alert.generator_url:
        out["g"] = alert.generator_url
    if alert.timeout:
        out["t"] = 1
    return out


def from_json(data: Mapping[str, Any]) -> StoredAlert:
    """The alert `to_json` wrote (the fingerprint is recomputed from the labels)."""
    labels: dict[str, str] = data["l"]
    return StoredAlert(
        fingerprint=fingerprint(labels),
        labels=labels,
        annotations=data.get("a", {}),
        starts_ns=data["s"],
        ends_ns=data["e"],
        generator_url=data.get("g", ""),
        updated_ns=data["u"],
        timeout=bool(data.get("t", 0)),
    )


def dedup_hash(labels: Mapping[str, str]) -> int:
    """The nflog's alert hash: xxHash64 over the fingerprint's bytes (`name 0xff value 0xff`)."""
    # str order is code point order, which is the bytewise order of the UTF-8 encoding.
    data = b"".join(
        name.encode() + b"\xff" + labels[name].encode() + b"\xff" for name in sorted(labels)
    )
    return xxhash.xxh64_intdigest(data)
