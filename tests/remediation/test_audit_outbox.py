"""A complete audit trail under failures: the outbox, its repair by redelivery and by the check.

Real Redis, the embedded broker and PostgreSQL; the failure is injected at our own interface
(`AuditLog.record` for a lost Kafka ack, `RemediationService._deliver` for a crash between the
state change and the record).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.remediation_flow import AuditEvent, AuditRecord, RemediationState
from services.remediation.audit import AuditLog
from services.remediation.service import RemediationService
from tests.remediation.conftest import PG_DSN, FakeClock
from tests.remediation.flow import Flow, flow_redis, redis_target_policy, start_flow

_PG = {"remediation.audit_dsn": PG_DSN, "remediation.approval_ttl": 600}


class AuditDown(Exception):
    """The stand-in for a Kafka ack that never came."""


class Breaker:
    """Makes `AuditLog.record` fail for some events while `down` holds them."""

    def __init__(self, audit: AuditLog, *events: AuditEvent) -> None:
        self.down = set(events)
        self._record = audit.record
        audit.record = self  # type: ignore[method-assign]

    async def __call__(self, event: AuditEvent, **kwargs: Any) -> AuditRecord:
        if event in self.down:
            raise AuditDown(event.value)
        return await self._record(event, **kwargs)


class Crash(Exception):
    """The process stopped right after the state change."""


def crash_after_transition(service: RemediationService) -> None:
    async def crash(*_: Any, **__: Any) -> set[str]:
        raise Crash

    service._deliver = crash  # type: ignore[method-assign]


def heal(service: RemediationService) -> None:
    del service._deliver  # back to the class's method


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    async with flow_redis() as client:
        yield client


async def _check(flow: Flow, redis: aioredis.Redis) -> None:
    """One check pass, past the outbox grace, holding the check lock."""
    flow.clock.advance(60)
    await redis.delete(f"{flow.prefix}remediation:check-lock")
    await flow.service.check()
    await flow.service.wait_runs()


async def _stored(flow: Flow, remediation: str) -> list[str]:
    """The events of one remediation in PostgreSQL, each id once."""
    await flow.service.audit.flush()
    trail = await flow.service.audit.trail(remediation)
    assert len({r.id for r in trail}) == len(trail)
    return [r.event.value for r in trail]


async def _on_topic(flow: Flow, remediation: str, count: int) -> list[str]:
    """The distinct events of one remediation on Kafka (duplicates share their id)."""
    records = await flow.audit(remediation, count=count)
    by_id = {r.id: r.event.value for r in records}
    assert Counter(by_id.values()) == Counter(set(by_id.values()))  # one id per event
    return sorted(set(by_id.values()))


async def test_a_failed_requested_record_is_written_on_redelivery_and_the_run_starts(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    await redis_db.set("cache:session:1", b"x")
    async with start_flow(kafka_bootstrap, redis_db, clock, redis_target_policy(),
                          settings=_PG) as flow:  # fmt: skip
        breaker = Breaker(flow.service.audit, AuditEvent.REQUESTED)
        request = flow.request({"alertname": "RedisMemoryHigh"})
        with pytest.raises(AuditDown):  # the consumer does not commit: the request comes again
            await flow.service.handle(request)
        [created] = await flow.service.store.find()
        assert created.state is RemediationState.RUNNING
        assert await redis_db.exists("cache:session:1") == 1  # not started without its record
        with pytest.raises(AuditDown):  # still down: handled again, still nothing lost
            await flow.service.handle(request)

        breaker.down.clear()
        [done] = await flow.service.handle(request)  # the redelivery repairs and runs it
        assert done.id == created.id
        assert done.state is RemediationState.DONE
        assert await redis_db.exists("cache:session:1") == 0
        assert await flow.service.handle(request) == []  # a further re-send: nothing again
        expected = ["requested", "started", "result", "verified"]
        assert await _stored(flow, done.id) == expected
        assert await _on_topic(flow, done.id, 4) == sorted(expected)
        assert await flow.service.store.outbox() == []


async def test_approve_with_the_audit_down_runs_and_its_record_follows(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    await redis_db.set("cache:session:1", b"x")
    policy = redis_target_policy(mode="approval")
    async with start_flow(kafka_bootstrap, redis_db, clock, policy, settings=_PG) as flow:
        [pending] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
        breaker = Breaker(flow.service.audit, AuditEvent.APPROVED)
        approved = await flow.service.approve(pending.id, "alice", "go")  # no error
        assert approved.state is RemediationState.RUNNING
        flow.clock.advance(1)  # the run (created, not started yet) happens a second later
        await flow.service.wait_runs()
        done = await flow.service.store.get(pending.id)
        assert done is not None
        assert done.state is RemediationState.DONE
        assert await redis_db.exists("cache:session:1") == 0

        await _check(flow, redis_db)  # still down: it waits
        assert [p.event for p in await flow.service.store.outbox()] == [AuditEvent.APPROVED]
        breaker.down.clear()
        await _check(flow, redis_db)
        assert await flow.service.store.outbox() == []
        # in the table in decision order: the record keeps the time of the approval
        assert await _stored(flow, pending.id) == [
            "requested", "approval_requested", "approved", "started", "result", "verified"
        ]  # fmt: skip
        trail = await flow.service.audit.trail(pending.id)
        assert trail[2].actor == "alice"
        assert trail[2].detail == {"comment": "go"}


async def test_a_crash_after_each_transition_leaves_no_remediation_without_its_records(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    policy = redis_target_policy(mode="approval")
    async with start_flow(kafka_bootstrap, redis_db, clock, policy, settings=_PG) as flow:
        service = flow.service
        firing = flow.request({"alertname": "RedisMemoryHigh"})
        crash_after_transition(service)
        with pytest.raises(Crash):
            await service.handle(firing)
        heal(service)
        flow.clock.advance(60)  # a crashed writer set no failure mark: repaired past the grace
        assert await service.handle(firing) == []  # Alertmanager's re-send repairs the trail
        [pending] = await service.store.find()
        assert await _stored(flow, pending.id) == ["requested", "approval_requested"]

        crash_after_transition(service)
        with pytest.raises(Crash):
            await service.reject(pending.id, "bob", "no")
        heal(service)
        rejected = await service.store.get(pending.id)
        assert rejected is not None
        assert rejected.state is RemediationState.REJECTED
        await _check(flow, redis_db)  # no re-send needed: the check writes it
        assert await _stored(flow, pending.id) == ["requested", "approval_requested", "rejected"]

        # expiry and cancel: another incident each
        for event, act in (("expired", "expire"), ("cancelled", "resolve")):
            request = flow.request({"alertname": "RedisMemoryHigh"}, starts_at=flow.clock.now())
            [other] = await service.handle(request)
            crash_after_transition(service)
            if act == "expire":
                flow.clock.advance(700)
                with pytest.raises(Crash):
                    await service.check()
            else:
                resolved = request.model_copy(update={"status": "resolved"})
                with pytest.raises(Crash):
                    await service.handle(resolved)
            heal(service)
            await _check(flow, redis_db)
            assert await _stored(flow, other.id) == ["requested", "approval_requested", event]

        assert await service.store.outbox() == []


async def test_an_auto_run_whose_process_crashed_before_its_record_is_started_by_the_check(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    await redis_db.set("cache:session:1", b"x")
    async with start_flow(kafka_bootstrap, redis_db, clock, redis_target_policy(),
                          settings=_PG) as flow:  # fmt: skip
        crash_after_transition(flow.service)
        with pytest.raises(Crash):
            await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}, ends_in=3600))
        heal(flow.service)
        flow.clock.advance(600)  # long past its timeout: not failed as interrupted, but started
        await _check(flow, redis_db)
        [done] = await flow.service.store.find()
        assert done.state is RemediationState.DONE
        assert await redis_db.exists("cache:session:1") == 0
        assert await _stored(flow, done.id) == ["requested", "started", "result", "verified"]
        assert await flow.service.store.outbox() == []
