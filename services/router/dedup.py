"""Dedup at a flush: the nflog rule (schemas/nflog.py) and what an integration sends."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.nflog import RETENTION_S, NflogEntry, needs_update, new_entry, nflog_key
from services.router.alerts import StoredAlert, resolved_at

__all__ = ["RETENTION_S", "NflogEntry", "needs_update", "new_entry", "nflog_key", "payload_alerts"]


def payload_alerts(
    alerts: Sequence[StoredAlert], send_resolved: bool, now_ns: int | None = None
) -> list[StoredAlert] | None:
    """What the integration sends: all alerts, or only the firing ones; None sends nothing.

    None means success without a send (send_resolved off and nothing firing). The alerts are
    flush copies, so a firing alert has endsAt 0; `now_ns` matters only for other inputs.
    """
    if send_resolved:
        return list(alerts)
    if now_ns is None:
        firing = [a for a in alerts if a.ends_ns == 0]
    else:
        firing = [a for a in alerts if not resolved_at(a, now_ns)]
    return firing or None
