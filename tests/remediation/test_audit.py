"""The audit trail: Kafka and the append-only PostgreSQL table, and PostgreSQL being away."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest
from aiokafka import AIOKafkaProducer

from schemas.remediation_flow import AuditEvent, Remediation, RemediationState
from services.remediation.audit import AuditLog
from services.runtime.embedded import free_port
from services.runtime.kafka import KafkaFactory
from services.runtime.metrics import new_registry
from services.runtime.settings import KafkaSettings
from tests.remediation.conftest import PG_DSN, FakeClock
from tests.remediation.flow import read_topic


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[tuple[AIOKafkaProducer, str]]:
    topic = f"remediation.audit.{uuid.uuid4().hex[:10]}"
    await KafkaFactory(KafkaSettings(), kafka_bootstrap, embedded=True).ensure_topics([topic])
    client = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await client.start()
    try:
        yield client, topic
    finally:
        await client.stop()


def _remediation() -> Remediation:
    return Remediation(
        id=uuid.uuid4().hex[:24], rule="r", action="redis.cache_flush", target="cache",
        mode="auto", fingerprint="0123456789abcdef", labels={"alertname": "A"},
        startsAt="2027-01-15T08:00:00Z", state=RemediationState.RUNNING,
        createdAt="2027-01-15T08:00:00Z", updatedAt="2027-01-15T08:00:00Z",
    )  # fmt: skip


async def test_records_reach_kafka_and_the_append_only_table(
    kafka_bootstrap: str, producer: tuple[AIOKafkaProducer, str], clock: FakeClock
) -> None:
    client, topic = producer
    log = AuditLog(
        client, producer_name="test", clock=clock, registry=new_registry(), dsn=PG_DSN,
        topic=topic,
    )  # fmt: skip
    await log.start()
    remediation = _remediation()
    try:
        first = await log.record(
            AuditEvent.REQUESTED, remediation=remediation, actor="tocsin", detail={"a": [1, 2]}
        )
        again = await log.record(AuditEvent.REQUESTED, remediation=remediation, actor="tocsin")
        assert again.id == first.id  # once-per-remediation events have a derived id
        clock.advance(1)
        await log.record(AuditEvent.STARTED, remediation=remediation, actor="alice")
        await log.flush()
        trail = await log.trail(remediation.id)
    finally:
        await log.stop()
    assert [(r.event, r.actor) for r in trail] == [
        (AuditEvent.REQUESTED, "tocsin"), (AuditEvent.STARTED, "alice"),
    ]  # fmt: skip
    assert trail[0] == first  # the table holds what Kafka got (the second copy was skipped)
    on_kafka = await read_topic(kafka_bootstrap, topic, 3)
    assert [v["data"]["event"] for v in on_kafka] == ["requested", "requested", "started"]
    assert all(v["schema"] == "tocsin.remediation-audit/v1" for v in on_kafka)

    conn = await asyncpg.connect(PG_DSN)
    try:
        for statement in [
            "UPDATE tocsin_remediation_audit SET actor = 'mallory' WHERE remediation = $1",
            "DELETE FROM tocsin_remediation_audit WHERE remediation = $1",
        ]:
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(statement, remediation.id)
        with pytest.raises(asyncpg.RaiseError, match="append-only: TRUNCATE refused"):
            await conn.execute("TRUNCATE tocsin_remediation_audit")
        actors = await conn.fetch(
            "SELECT actor FROM tocsin_remediation_audit WHERE remediation = $1", remediation.id
        )
        assert sorted(r["actor"] for r in actors) == ["alice", "tocsin"]
    finally:
        await conn.close()


async def test_postgres_away_loses_nothing_on_kafka_and_keeps_retrying(
    kafka_bootstrap: str, producer: tuple[AIOKafkaProducer, str], clock: FakeClock
) -> None:
    client, topic = producer
    registry = new_registry()
    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    log = AuditLog(
        client, producer_name="test", clock=clock, registry=registry, dsn=dead, topic=topic,
        max_backoff=0.1,
    )  # fmt: skip
    await log.start()
    try:
        record = await log.record(AuditEvent.REVERTED, actor="tocsin", target="cache")
        with pytest.raises(TimeoutError):
            await log.flush(within=1.0)
        assert registry.get_sample_value("tocsin_remediation_audit_pg_backlog") == 1
        failures = registry.get_sample_value("tocsin_remediation_audit_pg_failures_total")
        assert failures is not None
        assert failures >= 2  # retried
    finally:
        await log.stop(drain=0.1)
    [on_kafka] = await read_topic(kafka_bootstrap, topic, 1)
    assert on_kafka["data"]["id"] == record.id
