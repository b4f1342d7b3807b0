"""Builders for router tests: alert messages, stored alerts and configs on a fixed clock."""

from __future__ import annotations

from schemas.alert import Alert, fingerprint
from schemas.config import Config, loads
from schemas.timefmt import format_ns, parse_ns
from services.router.alerts import StoredAlert

S = 1_000_000_000
"""One second in nanoseconds."""

T0 = parse_ns("2026-01-05T09:00:00Z")
"""Every test's time origin: a Monday, 09:00 UTC."""


def at(seconds: float) -> int:
    """T0 plus `seconds`, in nanoseconds."""
    return T0 + round(seconds * S)


def message(
    labels: dict[str, str],
    starts: int,
    ends: int | None = None,
    received: int | None = None,
    annotations: dict[str, str] | None = None,
) -> Alert:
    """An `alerts` topic message as ingest publishes it (startsAt already defaulted)."""
    received = starts if received is None else received
    return Alert(
        labels=labels,
        annotations=annotations or {},
        startsAt=format_ns(starts),
        endsAt=None if ends is None else format_ns(ends),
        status="resolved" if ends is not None and ends <= received else "firing",
        fingerprint=fingerprint(labels),
        receivedAt=format_ns(received),
        source="api.v2",
    )


def stored(
    labels: dict[str, str] | None = None,
    starts: int = T0,
    ends: int = 0,
    updated: int = T0,
    timeout: bool = False,
) -> StoredAlert:
    """A stored alert with the given times (labels default to `{alertname="A"}`)."""
    labels = {"alertname": "A"} if labels is None else labels
    return StoredAlert(
        fingerprint=fingerprint(labels),
        labels=labels,
        annotations={},
        starts_ns=starts,
        ends_ns=ends,
        generator_url="",
        updated_ns=updated,
        timeout=timeout,
    )


def config(text: str) -> Config:
    """A loaded routing config."""
    return loads(text)
