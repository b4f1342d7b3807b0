"""Remediation: policy-selected actions against configured targets, inside a safety envelope."""

from services.remediation.approvals import Conflict, NotFound, RemediationStore, remediation_id
from services.remediation.clock import Clock, SystemClock
from services.remediation.executor import Executor
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
from services.remediation.service import RemediationService
from services.remediation.verify import Verification, verify

__all__ = [
    "ActionRefused",
    "CircuitState",
    "Clock",
    "Conflict",
    "Done",
    "Envelope",
    "Executor",
    "Failed",
    "NotFound",
    "Outcome",
    "RefusalReason",
    "Refused",
    "RemediationService",
    "RemediationStore",
    "SystemClock",
    "TimedOut",
    "Verification",
    "remediation_id",
    "verify",
]
