"""Prometheus durations (`30s`, `1h30m`, `2w`) as Alertmanager parses them, in float seconds."""

from __future__ import annotations

import re

from schemas.config._gostr import go_quote

__all__ = ["format_duration", "parse_duration"]

# Seconds as a float throughout Tocsin's config, because asyncio's timers take seconds; the
# syntax itself has millisecond resolution.

# Units in this order only; Python's `$` would also match before a final newline, so fullmatch.
_DURATION = re.compile(
    r"(?:([0-9]+)y)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?"
    r"(?:([0-9]+)ms)?"
)
_UNIT_MS = (
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)
_MAX_MS = (2**63 - 1) // 1_000_000  # Go's time.Duration is int64 nanoseconds


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration; ValueError with Prometheus's message when invalid."""
    if text == "0":
        return 0.0
    if text == "":
        raise ValueError("empty duration string")
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"not a valid duration string: {go_quote(text)}")
    total_ms = 0
    for digits, (_, unit_ms) in zip(match.groups(), _UNIT_MS, strict=True):
        if digits:
            total_ms += int(digits) * unit_ms
    if total_ms > _MAX_MS:
        raise ValueError("duration out of range")
    return total_ms / 1000


def format_duration(seconds: float) -> str:
    """Prometheus's string form: `4h`, `1m30s`, `0s`; years and weeks only when exact."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out: list[str] = []
    for unit, unit_ms in _UNIT_MS:
        if unit in ("y", "w") and ms % unit_ms:
            continue
        count, ms = divmod(ms, unit_ms)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
