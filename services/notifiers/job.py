"""One notification to deliver, as it moves through the stages, and the integration seam."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from schemas.group import Notification

__all__ = ["Job", "Notifier"]


class Notifier(Protocol):
    """An integration: one async send that raises NotifyError to classify a failure."""

    async def notify(self, notification: Notification) -> int:
        """Deliver; the provider's status code on success."""
        ...


@dataclass
class Job:
    """A notification, where it came from, and what happened to it so far."""

    notification: Notification
    topic: str
    envelope: dict[str, Any]
    notifier: Notifier
    started_ns: int
    attempts: int = 0
    last_error: str = ""
    last_reason: str = ""
    outcome: str = ""  # delivered | duplicate | deduplicated | dead-lettered
    extra: dict[str, Any] = field(default_factory=dict)
    # Receipts handed to the producer, not yet acknowledged: (topic, value, key, ack future).
    receipts: list[tuple[str, bytes, bytes, Any]] = field(default_factory=list)
    raw: bytes = b""  # the message as consumed, when `envelope` was left empty

    def original(self) -> dict[str, Any]:
        """The enveloped message as consumed (what a dead letter carries)."""
        if not self.envelope and self.raw:
            self.envelope = orjson.loads(self.raw)
        return self.envelope
