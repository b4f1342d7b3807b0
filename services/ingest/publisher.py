"""Publishes accepted alerts to the `alerts` topic and waits for the broker's acknowledgement.

Concurrent requests are coalesced: while one produce round trip is in flight, the messages of
every request that arrives meanwhile wait in one pending group; when the broker acknowledges,
that group goes out as one record batch per partition. Batch size adapts to load, and the cost
per alert is a C hash and one append instead of aiokafka's per-message bookkeeping. A request
that times out while its messages are still pending withdraws them, so a 503 then means "not
written" for sure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Counter, Histogram

from schemas.topics import ALERTS
from services.runtime.kafka import PublishError
from services.runtime.partition import partition_for

__all__ = ["AlertPublisher"]

_log = structlog.get_logger("tocsin.ingest")


class _Group:
    """The requests waiting for the next round trip: their messages and their futures."""

    __slots__ = ("requests", "size", "timer", "waiters")

    def __init__(self) -> None:
        self.requests: list[Sequence[tuple[bytes, bytes]]] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.size = 0
        self.timer: asyncio.TimerHandle | None = None

    def settle(self, error: PublishError | None) -> None:
        """Answer every request of the group (once)."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for waiter in self.waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)
        self.waiters = []


class _Timeout(PublishError):
    pass


class AlertPublisher:
    """Sends (key, value) pairs; returns only when every one is acknowledged, else PublishError."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        timeout: float,
        registry: CollectorRegistry,
        *,
        topic: str = ALERTS.name,
        max_pending_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._producer = producer
        self._timeout = timeout
        self._topic = topic
        self._max_pending = max_pending_bytes
        self._pending: _Group | None = None
        self._sender: asyncio.Task[None] | None = None
        self.latency = Histogram(
            "tocsin_ingest_publish_seconds",
            "Time from a request's alerts being queued to the broker's ack of all of them.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.batch_size = Histogram(
            "tocsin_ingest_batch_alerts",
            "Alerts per produce round trip (requests coalesced while one is in flight).",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=registry,
        )
        failures = Counter(
            "tocsin_ingest_publish_failures_total",
            "Requests answered 503 because the broker did not acknowledge in time.",
            ["reason"],
            registry=registry,
        )
        self._timeouts = failures.labels("timeout")
        self._broker_errors = failures.labels("broker_error")
        self._overloaded = failures.labels("overloaded")

    async def publish(self, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Queue every message for the next round trip and wait for the broker's ack.

        A group shares one deadline, set by its first request: every request waits at most the
        publish timeout, the later ones of a group a few milliseconds less.
        """
        if not messages:
            return
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        group = self._pending
        if group is None:
            group = self._pending = _Group()
            group.timer = loop.call_later(self._timeout, self._expire, group)
        elif group.size > self._max_pending:
            self._overloaded.inc()
            raise PublishError("too many alerts waiting for the broker")
        waiter: asyncio.Future[None] = loop.create_future()
        group.requests.append(messages)
        group.waiters.append(waiter)
        group.size += sum(len(v) for _, v in messages)
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_loop())
        try:
            await waiter
        except _Timeout:
            self._timeouts.inc()
            raise
        except PublishError:
            self._broker_errors.inc()
            raise
        self.latency.observe(time.perf_counter() - started)

    def _expire(self, group: _Group) -> None:
        if self._pending is group:  # never left: withdrawn, so nothing of it is written
            self._pending = None
        group.timer = None
        group.settle(_Timeout("broker did not acknowledge in time"))

    async def _send_loop(self) -> None:
        try:
            while self._pending is not None:
                group, self._pending = self._pending, None
                try:
                    await self._send(group)
                except Exception as exc:  # noqa: BLE001 - handed to every request of the group
                    _log.warning("publish_failed", error=f"{type(exc).__name__}: {exc}")
                    group.settle(PublishError(f"broker error: {type(exc).__name__}"))
                else:
                    group.settle(None)
        finally:
            self._sender = None

    async def _send(self, group: _Group) -> None:
        producer = self._producer
        partitions = producer.client.cluster.partitions_for_topic(self._topic)
        if not partitions:
            partitions = await producer.partitions_for(self._topic)
        ids = sorted(partitions)
        count = len(ids)
        builders: dict[int, list[Any]] = {}
        total = 0
        for messages in group.requests:
            total += len(messages)
            for key, value in messages:
                index = partition_for(key, count)
                chain = builders.get(index)
                if chain is None:
                    chain = builders[index] = [producer.create_batch()]
                if chain[-1].append(timestamp=None, key=key, value=value) is None:  # batch full
                    chain.append(producer.create_batch())
                    chain[-1].append(timestamp=None, key=key, value=value)
        self.batch_size.observe(total)
        acks = []
        for index, chain in builders.items():
            for batch in chain:
                batch.close()  # complete: no linger, the sender takes it at once
                acks.append(await producer.send_batch(batch, self._topic, partition=ids[index]))
        await asyncio.gather(*acks)

    async def close(self) -> None:
        """Wait (bounded by the publish timeout) for the round trip in flight."""
        sender = self._sender
        if sender is not None:
            with contextlib.suppress(TimeoutError, KafkaError):
                async with asyncio.timeout(self._timeout):
                    await asyncio.shield(sender)

    async def check(self) -> None:
        """Health: the cluster answers a metadata request."""
        await self._producer.client.fetch_all_metadata()
