"""Every Kafka topic Tocsin uses: its name, its key, and the schema of its messages."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pydantic import BaseModel

from schemas.alert import Alert
from schemas.group import DeadLetter, Decision, Notification, Receipt
from schemas.remediation_flow import AuditRecord, RemediationRequest

__all__ = [
    "ALERTS",
    "DECISIONS",
    "DLQ",
    "FIXED_TOPICS",
    "NOTIFICATIONS",
    "RECEIPTS",
    "REMEDIATION_AUDIT",
    "REMEDIATION_REQUESTS",
    "TOPICS",
    "Topic",
    "notifications_topic",
]


@dataclass(frozen=True)
class Topic:
    """A topic: name, what its message key is, which schema its envelope carries."""

    name: str
    slug: str  # file stem of its JSON Schema in schemas/json/
    key: str
    schema: str
    model: type[BaseModel]
    description: str


ALERTS = Topic(
    name="alerts",
    slug="alerts",
    key="alert fingerprint (16 hex digits)",
    schema="tocsin.alert/v1",
    model=Alert,
    description="Every alert accepted by ingest, one message per alert, in arrival order per key.",
)

NOTIFICATIONS = Topic(
    name="notifications.<receiver>",
    slug="notifications",
    key="group key",
    schema="tocsin.notification/v1",
    model=Notification,
    description="One message per flushed aggregation group and integration of the receiver; "
    "teams subscribe to their receiver's topic. See notifications_topic() for the name.",
)

DECISIONS = Topic(
    name="alerts.decisions",
    slug="alerts.decisions",
    key="alert fingerprint",
    schema="tocsin.decision/v1",
    model=Decision,
    description="Every routing decision that dropped an alert for a receiver (inhibited, "
    "silenced, muted by a time interval).",
)

RECEIPTS = Topic(
    name="notifications.receipts",
    slug="notifications.receipts",
    key="idempotency key of the notification",
    schema="tocsin.receipt/v1",
    model=Receipt,
    description="Every delivery attempt's outcome: the delivery history of each notification.",
)

DLQ = Topic(
    name="notifications.dlq",
    slug="notifications.dlq",
    key="idempotency key of the notification",
    schema="tocsin.dead-letter/v1",
    model=DeadLetter,
    description="Notifications that could not be delivered (permanent failure or deadline), "
    "with the reason and the original message; `tocsin dlq redrive` puts them back.",
)

REMEDIATION_REQUESTS = Topic(
    name="remediation.requests",
    slug="remediation.requests",
    key="alert fingerprint",
    schema="tocsin.remediation-request/v1",
    model=RemediationRequest,
    description="Every alert update (firing or resolved) matching a remediation rule, as the "
    "router received it; the remediation service consumes it.",
)

REMEDIATION_AUDIT = Topic(
    name="remediation.audit",
    slug="remediation.audit",
    key="remediation id (or the rule name for records about no single remediation)",
    schema="tocsin.remediation-audit/v1",
    model=AuditRecord,
    description="The append-only audit trail of remediation: every decision and action "
    "(requested, approved by whom, rejected, started, result, verified, reverted, circuit opened).",
)

#: Every topic, for documentation and JSON Schema generation.
TOPICS: tuple[Topic, ...] = (
    ALERTS, NOTIFICATIONS, DECISIONS, RECEIPTS, DLQ, REMEDIATION_REQUESTS, REMEDIATION_AUDIT,
)  # fmt: skip
#: The topics with a fixed name, created at start-up.
FIXED_TOPICS: tuple[Topic, ...] = (
    ALERTS, DECISIONS, RECEIPTS, DLQ, REMEDIATION_REQUESTS, REMEDIATION_AUDIT,
)  # fmt: skip


_TOPIC_SAFE = re.compile(r"[A-Za-z0-9._-]+")
# Receivers with these names get a hashed topic name: the plain one belongs to Tocsin.
_RESERVED = frozenset({"dlq", "receipts"})


def notifications_topic(receiver: str) -> str:
    """`notifications.<receiver>`; a name with characters Kafka refuses is made safe and unique.

    Valid names ([A-Za-z0-9._-]) are used as they are. Otherwise each run of other characters
    becomes `_` and 8 hex digits of the name's SHA-256 are appended, so two receivers never share
    a topic.
    """
    if _TOPIC_SAFE.fullmatch(receiver) and len(receiver) <= 200 and receiver not in _RESERVED:
        return f"notifications.{receiver}"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", receiver)[:180]
    digest = hashlib.sha256(receiver.encode()).hexdigest()[:8]
    return f"notifications.{safe}-{digest}"
