"""The remediation service under test: per-test topics and key prefix, requests, audit read-back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer

from schemas.alert import fingerprint
from schemas.remediation import parse_policy
from schemas.remediation_flow import AuditRecord, RemediationRequest
from schemas.timefmt import format_ns
from services.remediation.service import RemediationService
from services.runtime.kafka import KafkaFactory
from services.runtime.metrics import new_registry
from services.runtime.settings import load_settings
from tests.remediation.conftest import FakeClock

_NS = 1_000_000_000
#: The flow tests' own database (db 14 belongs to the action tests, which flush it per test).
REDIS_URL = "redis://127.0.0.1:6379/11"


@asynccontextmanager
async def flow_redis() -> AsyncIterator[aioredis.Redis]:
    """A client of the flow tests' database, flushed before and after."""
    client = aioredis.Redis.from_url(REDIS_URL)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@dataclass
class Flow:
    """A started service and what a test needs to drive and observe it."""

    service: RemediationService
    clock: FakeClock
    bootstrap: str
    run: str
    requests_topic: str
    audit_topic: str
    alerts_topic: str
    prefix: str

    def request(
        self,
        labels: dict[str, str],
        *,
        status: str = "firing",
        starts_at: float | None = None,
        ends_in: float = 300.0,
    ) -> RemediationRequest:
        """A request for an alert with `labels` (plus this test's `run` label)."""
        labels = {**labels, "run": self.run}
        now = self.clock.now()
        ends = now + ends_in if status == "firing" else now
        return RemediationRequest(
            fingerprint=fingerprint(labels),
            status=status,
            labels=labels,
            annotations={"summary": "test"},
            startsAt=format_ns(int((starts_at if starts_at is not None else now - 60) * _NS)),
            endsAt=format_ns(int(ends * _NS)),
            rules=[],
            receivedAt=format_ns(int(now * _NS)),
        )

    async def audit(
        self, remediation: str | None = None, *, count: int, within: float = 10.0
    ) -> list[AuditRecord]:
        """The audit records on this test's topic (of one remediation), waiting for `count`."""
        values = await read_topic(self.bootstrap, self.audit_topic, count, within=within,
                                  keep=lambda v: remediation is None
                                  or v["data"].get("remediation") == remediation)  # fmt: skip
        return [AuditRecord.model_validate(v["data"]) for v in values]


async def read_topic(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    within: float = 10.0,
    settle: float = 0.3,
    keep: Callable[[dict[str, Any]], bool] = lambda _: True,
) -> list[dict[str, Any]]:
    """The enveloped values on `topic` that `keep` accepts, waiting for `count` (then `settle`)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    settled_at: float | None = None
    try:
        while loop.time() < deadline and (settled_at is None or loop.time() < settled_at):
            for records in (await consumer.getmany(timeout_ms=100)).values():
                found += [v for v in (orjson.loads(r.value) for r in records) if keep(v)]
            if settled_at is None and len(found) >= count:
                settled_at = loop.time() + settle
    finally:
        await consumer.stop()
    return found


@asynccontextmanager
async def start_flow(
    bootstrap: str,
    redis: aioredis.Redis,
    clock: FakeClock,
    policy: dict[str, Any],
    *,
    consume: bool = False,
    settings: dict[str, Any] | None = None,
) -> AsyncIterator[Flow]:
    """A RemediationService on topics and a Redis prefix of its own (no periodic checks)."""
    del redis  # the fixture flushed db 14; the service makes its own clients
    run = uuid.uuid4().hex[:10]
    prefix = f"test:{run}:"
    loaded = load_settings(
        {
            "redis.url": REDIS_URL,
            "router.redis_prefix": prefix,
            "remediation.group_id": f"remediation-{run}",
            "remediation.check_interval": 0.2,
            **(settings or {}),
        }
    )
    factory = KafkaFactory(loaded.kafka, bootstrap, embedded=True)
    topics = (f"remediation.requests.{run}", f"remediation.audit.{run}", f"alerts.{run}")
    state = aioredis.Redis.from_url(REDIS_URL)
    service = RemediationService(
        loaded,
        factory,
        state,
        new_registry(),
        policy=parse_policy(policy),
        clock=clock,
        requests_topic=topics[0],
        audit_topic=topics[1],
        alerts_topic=topics[2],
    )
    await service.start(consume=consume, periodic=False)  # tests call check() themselves
    try:
        yield Flow(service, clock, bootstrap, run, *topics, prefix)
    finally:
        await service.stop()
        await state.aclose()


def redis_target_policy(
    *, mode: str = "auto", limits: dict[str, Any] | None = None, **params: Any
) -> dict[str, Any]:
    """A policy with one Redis target (db 14) and one cache_flush rule on RedisMemoryHigh."""
    return {
        "targets": {"redis": {"cache": {"url": REDIS_URL}}},
        "limits": {"max_per_hour": 20, "max_concurrent": 4},
        "rules": [
            {
                "name": "redis-memory-high",
                "matchers": ['alertname="RedisMemoryHigh"'],
                "action": "redis.cache_flush",
                "target": "cache",
                "mode": mode,
                "params": {"patterns": ["cache:session:*"], "batch_size": 1000, **params},
                "limits": limits or {"timeout": 10, "cooldown": 60, "max_per_hour_per_target": 5},
            }
        ],
    }
