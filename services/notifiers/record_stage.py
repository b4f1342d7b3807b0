"""Record stage: every attempt's receipt, metrics, and the dead-letter topic for give-ups."""

from __future__ import annotations

from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from schemas.envelope import encode
from schemas.timefmt import format_ns, now_ns
from schemas.topics import DLQ, RECEIPTS
from services.notifiers.errors import NotifyError
from services.notifiers.job import Job

__all__ = ["RecordStage"]

_log = structlog.get_logger("tocsin.notifiers")


class RecordStage:
    """Publishes receipts and dead letters (our Publisher seam: `send(topic, value, key)`)."""

    def __init__(self, producer: Any, registry: CollectorRegistry, producer_name: str) -> None:
        self._producer = producer
        self._name = producer_name
        self.sent = Counter(
            "tocsin_notifications_total",
            "Notification outcomes by receiver and integration.",
            ["receiver", "integration", "status"],
            registry=registry,
        )
        self.failures = Counter(
            "tocsin_notifications_failed_attempts_total",
            "Failed delivery attempts by reason.",
            ["receiver", "integration", "reason"],
            registry=registry,
        )
        self.latency = Histogram(
            "tocsin_notifications_attempt_seconds",
            "Duration of one delivery attempt.",
            ["integration"],
            registry=registry,
        )
        self.dead = Counter(
            "tocsin_notifications_dead_lettered_total",
            "Notifications sent to the dead-letter topic.",
            ["receiver", "reason"],
            registry=registry,
        )

    async def _publish(self, topic: str, schema: str, key: str, data: dict[str, Any]) -> None:
        ack = await self._producer.send(topic, encode(schema, self._name, data), key=key.encode())
        await ack

    async def attempt(
        self, job: Job, attempt: int, seconds: float, error: NotifyError | None, code: int | None
    ) -> None:
        """One attempt's receipt."""
        n = job.notification
        kind = n.integration.partition("[")[0]
        self.latency.labels(kind).observe(seconds)
        if error is not None:
            self.failures.labels(n.receiver, kind, error.reason.value).inc()
            status = "retrying" if error.retryable else "failed"
            _log.warning(
                "notify_failed", receiver=n.receiver, integration=n.integration,
                group_key=n.groupKey, attempt=attempt, reason=error.reason.value, error=str(error),
            )  # fmt: skip
        else:
            status = "delivered"
        await self.receipt(
            job, status, attempt, seconds, code, error.reason.value if error else None
        )

    async def receipt(
        self,
        job: Job,
        status: str,
        attempt: int,
        seconds: float = 0.0,
        code: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Publish a receipt on notifications.receipts."""
        n = job.notification
        if status in ("delivered", "duplicate", "deduplicated"):
            self.sent.labels(n.receiver, n.integration.partition("[")[0], status).inc()
        data = {
            "receiver": n.receiver,
            "integration": n.integration,
            "groupKey": n.groupKey,
            "idempotencyKey": n.idempotencyKey,
            "status": status,
            "attempt": attempt,
            "latencyMs": round(seconds * 1000, 3),
            "code": code,
            "reason": reason,
            "at": format_ns(now_ns()),
        }
        await self._publish(RECEIPTS.name, RECEIPTS.schema, n.idempotencyKey, data)

    async def dead_letter(self, job: Job) -> None:
        """Give up: the notification and why go to notifications.dlq."""
        n = job.notification
        reason = "deadline" if job.extra.get("deadline") else (job.last_reason or "failed")
        self.dead.labels(n.receiver, reason).inc()
        self.sent.labels(n.receiver, n.integration.partition("[")[0], "dead_lettered").inc()
        data = {
            "reason": reason,
            "error": job.last_error[:1000],
            "attempts": job.attempts,
            "topic": job.topic,
            "failedAt": format_ns(now_ns()),
            "original": job.envelope,
        }
        await self._publish(DLQ.name, DLQ.schema, n.idempotencyKey, data)
        _log.error(
            "notification_dead_lettered", receiver=n.receiver, integration=n.integration,
            group_key=n.groupKey, reason=reason, attempts=job.attempts,
        )  # fmt: skip
