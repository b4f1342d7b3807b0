"""The router: Alertmanager's grouping, inhibition, silencing, time muting and dedup decisions."""

from services.router.aggregation import GroupTimer
from services.router.alerts import StoredAlert, dedup_hash, merge, resolved_at
from services.router.dedup import NflogEntry, needs_update
from services.router.inhibit import Inhibitor
from services.router.silences import Silence, SilenceError, Silencer
from services.router.sim import Notification, Simulator

__all__ = [
    "GroupTimer",
    "Inhibitor",
    "NflogEntry",
    "Notification",
    "Silence",
    "SilenceError",
    "Silencer",
    "Simulator",
    "StoredAlert",
    "dedup_hash",
    "merge",
    "needs_update",
    "resolved_at",
]
