"""The coalescing publisher on the real broker: every ack is real, partitions are Kafka's."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client import CollectorRegistry

from services.ingest.publisher import AlertPublisher
from services.runtime.embedded import EmbeddedKafka, free_port
from services.runtime.kafka import KafkaFactory, PublishError
from services.runtime.partition import KafkaPartitioner, murmur2, murmur2_py
from services.runtime.settings import load_settings


def test_c_murmur2_equals_kafkas() -> None:
    for n in range(2000):
        key = os.urandom(n % 37)
        assert murmur2(key) == murmur2_py(key)


def test_producers_partition_keys_as_aiokafkas_default_partitioner() -> None:
    ours, theirs = KafkaPartitioner(), DefaultPartitioner()
    for n in range(2000):
        key = os.urandom(n % 41)
        partitions = list(range(1 + n % 13))
        assert ours(key, partitions, partitions) == theirs(key, partitions, partitions)
    assert ours(None, [0, 1, 2], [2]) == 2  # no key: one of the available partitions


async def test_the_factory_gives_producers_the_c_partitioner() -> None:
    factory = KafkaFactory(load_settings({}).kafka, "127.0.0.1:1", embedded=True)
    producer = factory.producer("t", linger_ms=25)
    try:
        assert isinstance(producer._partitioner, KafkaPartitioner)
        assert producer._message_accumulator._linger_time == 25 / 1000
    finally:
        await producer.stop()


async def test_concurrent_requests_are_all_acked_on_kafkas_partitions(kafka_bootstrap: str) -> None:
    topic = f"publisher-{uuid.uuid4().hex[:8]}"
    factory = KafkaFactory(
        load_settings({"kafka.partitions": 5}).kafka, kafka_bootstrap, embedded=True
    )
    await factory.ensure_topics([topic])
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    registry = CollectorRegistry()
    publisher = AlertPublisher(producer, 10.0, registry, topic=topic)
    try:
        requests = [
            [(f"k{r}-{i}".encode(), f"v{r}-{i}".encode()) for i in range(r % 7 + 1)]
            for r in range(200)
        ]
        await asyncio.gather(*(publisher.publish(m) for m in requests))
    finally:
        await publisher.close()
        await producer.stop()
    sent = {k: v for m in requests for k, v in m}
    # Fewer round trips than requests: concurrent requests were coalesced.
    assert 0 < registry.get_sample_value("tocsin_ingest_batch_alerts_count") < len(requests)  # type: ignore[operator]

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: dict[bytes, tuple[bytes, int]] = {}
    try:
        async with asyncio.timeout(15):
            while len(got) < len(sent):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for rec in records:
                        got[rec.key] = (rec.value, rec.partition)
    finally:
        await consumer.stop()
    assert {k: v for k, (v, _) in got.items()} == sent
    partitions = list(range(5))
    for key, (_, partition) in got.items():
        assert partition == DefaultPartitioner()(key, partitions, partitions)


async def test_a_request_that_never_left_is_withdrawn_on_timeout(run_id: str) -> None:
    """Broker gone: A is in flight (waiting for metadata), B queued behind it; both get 503.

    B never left Tocsin's queue, so it is withdrawn and never written. A was handed to the Kafka
    client and may still be written once the broker is back: the documented at-least-once case.
    """
    broker = EmbeddedKafka(port=free_port())
    await broker.start()
    factory = KafkaFactory(load_settings().kafka, broker.bootstrap_servers, embedded=True)
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, acks="all", request_timeout_ms=1000
    )
    await producer.start()
    registry = CollectorRegistry()
    topic = f"withdraw-{run_id}"  # a topic the client has no metadata for yet
    publisher = AlertPublisher(producer, 1.0, registry, topic=topic)
    try:
        await broker.stop()
        a = asyncio.create_task(publisher.publish([(b"A", run_id.encode())]))
        await asyncio.sleep(0.05)
        b = asyncio.create_task(publisher.publish([(b"B", run_id.encode())]))
        for task in (a, b):
            with pytest.raises(PublishError, match="did not acknowledge"):
                await task
        assert publisher._pending is None  # B was withdrawn, not left queued
        await broker.start()
        await factory.ensure_topics([topic])
        await asyncio.sleep(3)  # time for anything still queued to be (wrongly) sent
        await publisher.close()
        consumer = AIOKafkaConsumer(
            "alerts", bootstrap_servers=broker.bootstrap_servers, auto_offset_reset="earliest"
        )
        await consumer.start()
        keys: set[bytes] = set()
        try:
            for _ in range(5):
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    keys.update(r.key for r in records if r.value == run_id.encode())
        finally:
            await consumer.stop()
        assert b"B" not in keys
        assert (
            registry.get_sample_value("tocsin_ingest_publish_failures_total", {"reason": "timeout"})
            == 2
        )
    finally:
        await producer.stop()
        await broker.stop()
