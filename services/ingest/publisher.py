"""Publishes accepted alerts to the `alerts` topic and waits for the broker's acknowledgement."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Histogram

from schemas.topics import ALERTS
from services.runtime.kafka import PublishError

__all__ = ["AlertPublisher"]


class AlertPublisher:
    """Sends (key, value) pairs; returns only when every one is acknowledged, else PublishError."""

    def __init__(
        self, producer: AIOKafkaProducer, timeout: float, registry: CollectorRegistry
    ) -> None:
        self._producer = producer
        self._timeout = timeout
        self.latency = Histogram(
            "tocsin_ingest_publish_seconds",
            "Time from the first send of a request's alerts to the broker's last ack.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.failures = Counter(
            "tocsin_ingest_publish_failures_total",
            "Requests answered 503 because the broker did not acknowledge in time.",
            ["reason"],
            registry=registry,
        )

    async def publish(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Send every message and wait for all acks within the timeout."""
        if not messages:
            return
        started = time.perf_counter()
        send = self._producer.send
        try:
            async with asyncio.timeout(self._timeout):
                futures = [await send(ALERTS.name, value, key=key) for key, value in messages]
                await asyncio.gather(*futures)
        except TimeoutError:
            self.failures.labels("timeout").inc()
            raise PublishError("broker did not acknowledge in time") from None
        except KafkaError as exc:
            self.failures.labels("broker_error").inc()
            raise PublishError(f"broker error: {type(exc).__name__}") from None
        self.latency.observe(time.perf_counter() - started)

    async def check(self) -> None:
        """Health: the cluster answers a metadata request."""
        await self._producer.client.fetch_all_metadata()
