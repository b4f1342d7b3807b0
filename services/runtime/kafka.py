"""Kafka clients made one way: acks=all producers, manual-commit consumers, topics ensured."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import IllegalStateError, KafkaError, TopicAlreadyExistsError

from services.runtime.partition import KafkaPartitioner
from services.runtime.settings import KafkaSettings

__all__ = ["KafkaFactory", "PublishError"]

_log = structlog.get_logger("tocsin.kafka")


class PublishError(RuntimeError):
    """The broker did not acknowledge a message in time; the caller answers 503."""


class KafkaFactory:
    """Builds configured clients for one bootstrap address (real Kafka or the embedded broker)."""

    def __init__(self, settings: KafkaSettings, bootstrap_servers: str, *, embedded: bool) -> None:
        self.settings = settings
        self.bootstrap_servers = bootstrap_servers
        self.embedded = embedded

    def _common(self) -> dict[str, Any]:
        s = self.settings
        common: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": s.security_protocol,
        }
        if s.sasl_mechanism:
            common["sasl_mechanism"] = s.sasl_mechanism
            common["sasl_plain_username"] = s.sasl_username
            if s.sasl_password is not None:
                common["sasl_plain_password"] = s.sasl_password.get_secret_value()
        return common

    def producer(self, name: str, *, linger_ms: int | None = None) -> AIOKafkaProducer:
        """A producer waiting for all in-sync replicas; idempotent on real Kafka.

        `linger_ms` overrides the configured batching delay for this producer."""
        idempotent = self.settings.idempotence
        if idempotent is None:
            idempotent = not self.embedded  # Tansu lacks InitProducerId
        return AIOKafkaProducer(
            **self._common(),
            client_id=f"{self.settings.client_id}-{name}",
            acks="all",
            enable_idempotence=idempotent,
            linger_ms=self.settings.linger_ms if linger_ms is None else linger_ms,
            max_batch_size=256 * 1024,
            partitioner=KafkaPartitioner(),
            request_timeout_ms=max(int(self.settings.publish_timeout * 1000), 1000),
        )

    def consumer(
        self, name: str, group_id: str, topics: Sequence[str], **options: Any
    ) -> AIOKafkaConsumer:
        """A group consumer that commits only when told to (after the work is done)."""
        return AIOKafkaConsumer(
            *topics,
            **self._common(),
            client_id=f"{self.settings.client_id}-{name}",
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **options,
        )

    async def ensure_topics(self, names: Iterable[str]) -> None:
        """Create the topics that are missing, with the configured partitions and replication."""
        admin = AIOKafkaAdminClient(**self._common(), client_id=f"{self.settings.client_id}-admin")
        await admin.start()
        try:
            existing = set(await admin.list_topics())
            wanted = [
                NewTopic(n, self.settings.partitions, self.settings.replication_factor)
                for n in names
                if n not in existing
            ]
            if wanted:
                with contextlib.suppress(TopicAlreadyExistsError):  # another process was first
                    await admin.create_topics(wanted)
                _log.info("topics_created", topics=[t.name for t in wanted])
        finally:
            await admin.close()

    async def wait_ready(self, within: float = 30.0) -> None:
        """Wait until the cluster answers a metadata request."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            admin = AIOKafkaAdminClient(**self._common(), request_timeout_ms=2000)
            try:
                await admin.start()
                await admin.list_topics()
                return
            except KafkaError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)
            finally:
                await admin.close()


async def consume_batches(
    consumer: AIOKafkaConsumer,
    handle: Callable[[list[ConsumerRecord[bytes, bytes]]], Awaitable[None]],
    stopping: asyncio.Event,
    *,
    max_records: int,
    name: str,
) -> None:
    """At-least-once consumption: poll a batch, `handle` it, then commit; until `stopping`.

    When `handle` raises (Redis or the broker away), the batch's partitions are sought back to
    its first offsets and it is handled again after a second; a partition a rebalance gave to
    another member is re-read by it from the committed offset, so nothing is skipped. A failed
    poll is logged and polled again: the loop never ends on its own."""
    log = _log.bind(loop=name)
    while not stopping.is_set():
        try:
            batch = await consumer.getmany(timeout_ms=200, max_records=max_records)
        except KafkaError:  # the client retries what it can; log and poll again
            log.exception("poll_failed")
            await _pause(stopping)
            continue
        if not batch:
            continue
        try:
            await handle([record for records in batch.values() for record in records])
            await consumer.commit()  # only after the batch was handled
        except Exception:
            log.exception("batch_failed", records=sum(len(r) for r in batch.values()))
            for tp, records in batch.items():
                with contextlib.suppress(IllegalStateError):
                    consumer.seek(tp, records[0].offset)
            await _pause(stopping)


async def _pause(stopping: asyncio.Event, seconds: float = 1.0) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
