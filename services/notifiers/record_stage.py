"""Record stage: every attempt's receipt, metrics, and the dead-letter topic for give-ups.

Receipts are queued for a few milliseconds and handed to the producer in bursts (few produce
requests for many receipts); the service awaits a notification's receipts (`settle`) before
committing it. Dead letters are awaited at once: the claim is released only after the DLQ has
the message.
"""

from __future__ import annotations

import asyncio
import functools
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


class _Burst:
    """Messages queued for `delay`, then handed to the producer together, so that they fill its
    per-partition batches at once and go out in few produce requests (its own linger is the
    ingest path's few milliseconds; each request costs a wake-up of the broker)."""

    def __init__(self, producer: Any, delay: float) -> None:
        self._producer = producer
        self._delay = delay
        self._queue: list[tuple[str, bytes, bytes, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        """Queue one message; the future is done when the broker acknowledged it (or failed)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((topic, value, key, done))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="receipts-burst")
        return done

    async def _drain(self) -> None:
        try:
            while self._queue:
                await asyncio.sleep(self._delay)
                queue, self._queue = self._queue, []
                for topic, value, key, done in queue:
                    try:
                        ack = await self._producer.send(topic, value, key=key)
                    except Exception as exc:  # noqa: BLE001 - its waiter queues it again
                        if not done.done():
                            done.set_exception(exc)
                        continue
                    ack.add_done_callback(functools.partial(_chain, done))
        finally:
            self._task = None


def _chain(done: asyncio.Future[None], ack: asyncio.Future[Any]) -> None:
    if done.done():
        return
    if ack.cancelled():
        done.cancel()
    elif (error := ack.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(None)


class RecordStage:
    """Publishes receipts and dead letters (our Publisher seam: `send(topic, value, key)`)."""

    def __init__(
        self,
        producer: Any,
        registry: CollectorRegistry,
        producer_name: str,
        *,
        burst_delay: float = 0.01,
    ) -> None:
        self._producer = producer
        self._name = producer_name
        self._burst = _Burst(producer, burst_delay)
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

    async def _publish(
        self, topic: str, schema: str, key: str, data: dict[str, Any], job: Job | None = None
    ) -> None:
        """With a `job`: queue the message (a burst hands it to the producer; `settle` awaits
        the ack). Without: publish it and wait for the ack here."""
        value, raw_key = encode(schema, self._name, data), key.encode()
        if job is None:
            await (await self._producer.send(topic, value, key=raw_key))
        else:
            job.receipts.append((topic, value, raw_key, self._burst.add(topic, value, raw_key)))

    async def settle(self, job: Job) -> None:
        """Wait until the broker acknowledged every receipt of `job`. One that failed is queued
        again and the error raised: call again (after a pause) until it returns."""
        while job.receipts:
            topic, value, key, ack = job.receipts[0]
            try:
                if ack is None:
                    ack = self._burst.add(topic, value, key)
                    job.receipts[0] = (topic, value, key, ack)
                await ack
            except Exception:
                job.receipts[0] = (topic, value, key, None)
                raise
            job.receipts.pop(0)

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
        """Publish a receipt on notifications.receipts (acknowledged once `settle` returns)."""
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
        await self._publish(RECEIPTS.name, RECEIPTS.schema, n.idempotencyKey, data, job)

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
            "original": job.original(),
        }
        await self._publish(DLQ.name, DLQ.schema, n.idempotencyKey, data)
        _log.error(
            "notification_dead_lettered", receiver=n.receiver, integration=n.integration,
            group_key=n.groupKey, reason=reason, attempts=job.attempts,
        )  # fmt: skip
