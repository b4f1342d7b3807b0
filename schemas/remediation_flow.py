"""Messages of the remediation flow: requests from the router, the audit trail, remediations.

The router publishes a `RemediationRequest` on `remediation.requests` for every alert update
(firing or resolved) that matches a remediation rule; the remediation service turns an incident
(rule, alert fingerprint, start time) into one `Remediation`, and records each decision and action
as an append-only `AuditRecord` on `remediation.audit` and in PostgreSQL.

A remediation waiting for a person is findable by the fingerprint of its alert, so that a
notifier can say how to approve it: `pending_index_key` names that Redis hash (field: remediation
id, value: the `PendingHint` as JSON).
"""

from __future__ import annotations

import enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AuditEvent",
    "AuditRecord",
    "PendingHint",
    "Remediation",
    "RemediationRequest",
    "RemediationState",
    "pending_index_key",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RemediationRequest(_Model):
    """An alert update matching at least one remediation rule, as the router received it."""

    fingerprint: str = Field(description="the alert's fingerprint (16 hex digits)")
    status: Literal["firing", "resolved"] = Field(description="at the time the router saw it")
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = Field(description="RFC 3339")
    endsAt: str = Field(description="RFC 3339; in the future while firing")
    generatorURL: str = ""
    rules: list[str] = Field(description="names of the matching rules, in policy order")
    receivedAt: str = Field(description="RFC 3339 time the router processed the alert")


class RemediationState(enum.StrEnum):
    """Where a remediation stands. Terminal: every state except pending and running."""

    PENDING = "pending"  # waiting for an approval
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    REFUSED = "refused"  # the safety envelope declined (cooldown, lock, circuit, not firing...)
    REJECTED = "rejected"
    EXPIRED = "expired"  # no decision before the approval's expiry
    CANCELLED = "cancelled"  # the alert resolved while waiting
    DRY_RUN = "dry_run"  # recorded what it would do, did nothing


class Remediation(_Model):
    """One incident's remediation: which rule, action and target, and where it stands."""

    id: str = Field(description="stable id: derived from rule, fingerprint and startsAt")
    rule: str
    action: str
    target: str
    mode: Literal["auto", "approval", "dry-run"]
    fingerprint: str
    alertname: str = ""
    labels: dict[str, str]
    startsAt: str
    state: RemediationState
    createdAt: str
    updatedAt: str
    expiresAt: str | None = Field(None, description="approval deadline while pending")
    decidedBy: str | None = None
    detail: str = ""
    result: dict[str, Any] | None = Field(None, description="the action's result, when it ran")
    refusal: str | None = Field(
        None, description="why the safety envelope refused the last run (its reason), if it did"
    )
    attempts: int = Field(
        1,
        ge=1,
        description="runs tried: an auto run refused for a passing "
        "reason (busy, locked, cooldown) is tried again on a re-send",
    )


class AuditEvent(enum.StrEnum):
    """What an audit record says happened."""

    REQUESTED = "requested"
    RETRIED = "retried"  # a refused auto run tried again: detail.previous_reason, detail.attempt
    APPROVAL_REQUESTED = "approval_requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    DRY_RUN = "dry_run"
    STARTED = "started"
    RESULT = "result"  # detail.status: done / failed / timed_out / refused
    VERIFIED = "verified"  # detail.improved: whether the re-measured condition got better
    REVERTED = "reverted"
    CIRCUIT_OPENED = "circuit_opened"
    CIRCUIT_RESET = "circuit_reset"


class AuditRecord(_Model):
    """One append-only entry of the audit trail."""

    id: str = Field(description="unique id of this record (UUID)")
    at: str = Field(description="RFC 3339")
    event: AuditEvent
    remediation: str | None = Field(None, description="the remediation's id, if any")
    rule: str | None = None
    action: str | None = None
    target: str | None = None
    fingerprint: str | None = None
    actor: str = Field(description='who: "policy", "tocsin", or the approving user')
    detail: dict[str, Any] = Field(default_factory=dict)


class PendingHint(_Model):
    """What a notifier needs to tell on-call how to approve a pending remediation."""

    id: str
    rule: str
    action: str
    target: str
    expiresAt: str


def pending_index_key(prefix: str, fingerprint: str) -> str:
    """The Redis hash of the pending remediations of an alert (prefix: the Redis key prefix)."""
    return f"{prefix}remediation:pending:{fingerprint}"
