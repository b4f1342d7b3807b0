"""What the router emits: a flushed group for one integration, and why an alert was dropped."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DeadLetter", "Decision", "Notification", "NotificationAlert", "Receipt"]


class NotificationAlert(BaseModel):
    """One alert of a notification, as Alertmanager's template data and webhook carry it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str
    endsAt: str = Field(description='"0001-01-01T00:00:00Z" while firing, as Alertmanager')
    generatorURL: str = ""
    fingerprint: str


class Notification(BaseModel):
    """A flushed aggregation group for one integration: the full template data plus dedup state.

    Published on `notifications.<receiver>` keyed by group key. `firingHashes`/`resolvedHashes`
    are the dedup hashes the notifier records in the notification log after a successful send;
    `tick` (the scheduled flush time) makes the message id deterministic across router replicas.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    receiver: str
    integration: str = Field(description='"<type>[<index>]", e.g. "webhook[0]"')
    status: Literal["firing", "resolved"]
    alerts: list[NotificationAlert]
    truncatedAlerts: int = Field(0, ge=0, description="alerts cut by the webhook's max_alerts")
    groupLabels: dict[str, str]
    commonLabels: dict[str, str]
    commonAnnotations: dict[str, str]
    externalURL: str
    groupKey: str
    routeKey: str
    repeatInterval: float = Field(description="seconds")
    sendResolved: bool
    tick: str = Field(description="RFC 3339 time of the flush tick")
    firingHashes: list[str] = Field(description="dedup hashes (decimal xxh64) of firing alerts")
    resolvedHashes: list[str] = Field(description="dedup hashes of resolved alerts")
    idempotencyKey: str = Field(description="same for every replica flushing the same tick")


class Decision(BaseModel):
    """An alert the router did not pass on for a receiver, and why: answers "why no page?"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: str
    labels: dict[str, str]
    receiver: str
    groupKey: str
    decision: Literal["inhibited", "silenced", "muted"]
    by: list[str] = Field(
        description="inhibiting alert fingerprints, silence ids, or time interval names"
    )
    at: str = Field(description="RFC 3339 time of the flush that dropped it")


class Receipt(BaseModel):
    """The outcome of one delivery attempt (or why none was needed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    receiver: str
    integration: str
    groupKey: str
    idempotencyKey: str
    status: Literal["delivered", "retrying", "failed", "duplicate", "deduplicated"]
    attempt: int = Field(ge=0, description="1 for the first try; 0 when nothing was sent")
    latencyMs: float = Field(ge=0)
    code: int | None = Field(None, description="provider HTTP status or SMTP code")
    reason: str | None = Field(None, description="bounded failure reason")
    at: str


class DeadLetter(BaseModel):
    """A notification given up on, with why, ready to be redriven."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str
    error: str = Field(description="last error, secrets removed")
    attempts: int
    topic: str = Field(description="the topic the notification came from")
    failedAt: str
    original: dict[str, object] = Field(description="the original envelope, as received")
