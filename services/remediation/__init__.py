"""Remediation: policy-selected actions against configured targets, inside a safety envelope."""

from services.remediation.clock import Clock, SystemClock
from services.remediation.safety import (
    ActionRefused,
    CircuitState,
    Done,
    Envelope,
    Failed,
    Outcome,
    RefusalReason,
    Refused,
    TimedOut,
)

__all__ = [
    "ActionRefused",
    "CircuitState",
    "Clock",
    "Done",
    "Envelope",
    "Failed",
    "Outcome",
    "RefusalReason",
    "Refused",
    "SystemClock",
    "TimedOut",
]
