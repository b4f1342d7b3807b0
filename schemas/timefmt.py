"""RFC 3339 timestamps with nanosecond precision, as Go's time package reads and writes them.

Python's datetime stops at microseconds; Alertmanager keeps nanoseconds and the zone offset.
Timestamps therefore travel as strings and are compared as integer nanoseconds since the epoch.
"""

from __future__ import annotations

import functools
import re
import time
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["GO_ZERO_TIME", "format_ns", "now_ns", "parse_ns"]

#: Go's zero time.Time as Alertmanager prints it for a firing alert's endsAt.
GO_ZERO_TIME = "0001-01-01T00:00:00Z"

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.lru_cache(maxsize=4096)  # a batch's alerts often share their timestamps
def parse_ns(value: str) -> int:
    """Parse an RFC 3339 timestamp into nanoseconds since the Unix epoch; ValueError if invalid."""
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise ValueError(f"invalid RFC 3339 timestamp {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    frac = m.group(7) or ""
    if m.group(8):
        offset = 0
    else:
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        if m.group(9) == "-":
            offset = -offset
    try:
        dt = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"invalid RFC 3339 timestamp {value!r}: {exc}") from None
    seconds = (dt - _EPOCH) // timedelta(seconds=1) - offset
    return seconds * 1_000_000_000 + int(frac.ljust(9, "0") or 0)


@functools.lru_cache(maxsize=64)  # consecutive calls mostly fall in the same second
def _seconds_text(seconds: int, offset_seconds: int) -> str:
    tz = UTC if offset_seconds == 0 else timezone(timedelta(seconds=offset_seconds))
    return datetime.fromtimestamp(seconds, tz=tz).strftime("%Y-%m-%dT%H:%M:%S")


def format_ns(ns: int, offset_seconds: int = 0) -> str:
    """Format nanoseconds since the epoch as Go's RFC3339Nano (trailing fraction zeros dropped)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    text = _seconds_text(seconds, offset_seconds)
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    if offset_seconds == 0:
        return text + "Z"
    sign = "+" if offset_seconds > 0 else "-"
    hh, mm = divmod(abs(offset_seconds) // 60, 60)
    return f"{text}{sign}{hh:02d}:{mm:02d}"


def now_ns() -> int:
    """Wall-clock time in nanoseconds since the epoch."""
    return time.time_ns()
