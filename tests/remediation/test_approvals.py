"""Approvals: pending, approve, reject, expire, cancel on resolve, the pending index, races."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from schemas.remediation_flow import PendingHint, RemediationState, pending_index_key
from services.remediation.approvals import Conflict, NotFound, remediation_id
from tests.remediation.conftest import FakeClock
from tests.remediation.flow import Flow, flow_redis, redis_target_policy, start_flow


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    async with flow_redis() as client:
        yield client


@pytest.fixture
async def flow(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> AsyncIterator[Flow]:
    policy = redis_target_policy(mode="approval")
    async with start_flow(
        kafka_bootstrap, redis_db, clock, policy, settings={"remediation.approval_ttl": 600}
    ) as started:
        yield started


async def _hints(flow: Flow, redis: aioredis.Redis, fingerprint: str) -> dict[str, PendingHint]:
    raw = await redis.hgetall(pending_index_key(flow.prefix, fingerprint))
    return {_text(k): PendingHint.model_validate_json(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def test_pending_then_approved_runs_and_leaves_the_index(
    flow: Flow, redis_db: aioredis.Redis
) -> None:
    await redis_db.set("cache:session:1", b"x")
    request = flow.request({"alertname": "RedisMemoryHigh"})
    [pending] = await flow.service.handle(request)
    assert pending.state is RemediationState.PENDING
    assert pending.id == remediation_id("redis-memory-high", request.fingerprint, request.startsAt)
    assert pending.expiresAt is not None
    assert await redis_db.exists("cache:session:1") == 1  # nothing ran yet
    hints = await _hints(flow, redis_db, request.fingerprint)
    assert hints == {
        pending.id: PendingHint(id=pending.id, rule="redis-memory-high",
                                action="redis.cache_flush", target="cache",
                                expiresAt=pending.expiresAt)
    }  # fmt: skip
    assert [r.id for r in await flow.service.store.find(RemediationState.PENDING)] == [pending.id]

    approved = await flow.service.approve(pending.id, "alice", "go")
    assert approved.state is RemediationState.RUNNING
    assert approved.decidedBy == "alice"
    assert await _hints(flow, redis_db, request.fingerprint) == {}
    await flow.service.wait_runs()
    done = await flow.service.store.get(pending.id)
    assert done is not None
    assert done.state is RemediationState.DONE
    assert await redis_db.exists("cache:session:1") == 0
    trail = await flow.audit(pending.id, count=6)
    assert [r.event.value for r in trail] == [
        "requested", "approval_requested", "approved", "started", "result", "verified",
    ]  # fmt: skip
    assert trail[2].actor == "alice"
    assert trail[2].detail == {"comment": "go"}
    assert trail[3].actor == "alice"
    assert trail[3].detail["auto"] is False

    with pytest.raises(Conflict, match=f"remediation {pending.id} is done, not pending"):
        await flow.service.approve(pending.id, "bob")


async def test_reject_and_unknown_ids(flow: Flow, redis_db: aioredis.Redis) -> None:
    [pending] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
    rejected = await flow.service.reject(pending.id, "carol", "not now")
    assert rejected.state is RemediationState.REJECTED
    assert rejected.detail == "not now"
    assert await _hints(flow, redis_db, pending.fingerprint) == {}
    with pytest.raises(Conflict) as conflict:
        await flow.service.approve(pending.id, "dave")
    assert conflict.value.state is RemediationState.REJECTED
    with pytest.raises(NotFound):
        await flow.service.approve("0" * 24, "dave")
    trail = await flow.audit(pending.id, count=3)
    assert [(r.event.value, r.actor) for r in trail] == [
        ("requested", "tocsin"), ("approval_requested", "policy"), ("rejected", "carol"),
    ]  # fmt: skip


async def test_two_concurrent_approvals_one_wins(flow: Flow) -> None:
    [pending] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
    results = await asyncio.gather(
        flow.service.approve(pending.id, "a"),
        flow.service.approve(pending.id, "b"),
        return_exceptions=True,
    )
    await flow.service.wait_runs()
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(conflicts) == 1
    assert len([r for r in results if not isinstance(r, BaseException)]) == 1


async def test_expiry_with_the_clock(flow: Flow, redis_db: aioredis.Redis) -> None:
    [pending] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
    flow.clock.advance(599)
    await flow.service.check()
    still = await flow.service.store.get(pending.id)
    assert still is not None
    assert still.state is RemediationState.PENDING
    assert flow.service._pending_gauge._value.get() == 1

    flow.clock.advance(2)
    await flow.service.check()
    expired = await flow.service.store.get(pending.id)
    assert expired is not None
    assert expired.state is RemediationState.EXPIRED
    assert expired.expiresAt is None
    assert await _hints(flow, redis_db, pending.fingerprint) == {}
    assert flow.service._pending_gauge._value.get() == 0
    trail = await flow.audit(pending.id, count=3)
    assert trail[-1].event.value == "expired"
    with pytest.raises(Conflict, match="expired, not pending"):
        await flow.service.approve(pending.id, "late")


async def test_approving_past_the_deadline_before_the_check_expires_it(flow: Flow) -> None:
    [pending] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
    flow.clock.advance(601)
    with pytest.raises(Conflict, match="expired at"):
        await flow.service.approve(pending.id, "late")
    expired = await flow.service.store.get(pending.id)
    assert expired is not None
    assert expired.state is RemediationState.EXPIRED


async def test_a_resolved_alert_cancels_its_pending_approval(
    flow: Flow, redis_db: aioredis.Redis
) -> None:
    firing = flow.request({"alertname": "RedisMemoryHigh"})
    [pending] = await flow.service.handle(firing)
    resolved = firing.model_copy(update={"status": "resolved", "endsAt": firing.receivedAt})
    assert await flow.service.handle(resolved) == []
    cancelled = await flow.service.store.get(pending.id)
    assert cancelled is not None
    assert cancelled.state is RemediationState.CANCELLED
    assert await _hints(flow, redis_db, firing.fingerprint) == {}
    trail = await flow.audit(pending.id, count=3)
    assert trail[-1].event.value == "cancelled"
    # the alert firing again (a re-send of the same incident) does not reopen it
    assert await flow.service.handle(firing) == []


async def test_a_refused_approved_run_is_not_retried_by_a_resend(
    flow: Flow, redis_db: aioredis.Redis
) -> None:
    lock = f"{flow.prefix}remediation:lock:redis.cache_flush:cache"
    await redis_db.set(lock, "another-run")
    request = flow.request({"alertname": "RedisMemoryHigh"})
    [pending] = await flow.service.handle(request)
    await flow.service.approve(pending.id, "alice")
    await flow.service.wait_runs()
    refused = await flow.service.store.get(pending.id)
    assert refused is not None
    assert (refused.state, refused.refusal) == (RemediationState.REFUSED, "locked")
    await redis_db.delete(lock)
    flow.clock.advance(60)
    assert await flow.service.handle(request) == []  # approvals need a person: no retry
    assert await flow.service.store.get(pending.id) == refused


async def test_a_retry_applies_once_from_the_attempt_it_read(flow: Flow) -> None:
    [pending] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
    store = flow.service.store
    refused = await store.change(pending, RemediationState.REFUSED, refusal="busy")
    assert await store._redis.ttl(store._record(refused.id)) > 0  # terminal: kept a while
    results = await asyncio.gather(
        *(store.retry(refused) for _ in range(3)), return_exceptions=True
    )
    [running] = [r for r in results if not isinstance(r, BaseException)]
    assert sum(isinstance(r, Conflict) for r in results) == 2
    assert (running.state, running.attempts, running.refusal) == (
        RemediationState.RUNNING, 2, None,
    )  # fmt: skip
    assert await store._redis.ttl(store._record(refused.id)) == -1  # running: no expiry
    again = await store.change(running, RemediationState.REFUSED, refusal="busy")
    # a reader that saw the first refusal (attempt 1) does not retry the second one
    with pytest.raises(Conflict, match="retried meanwhile"):
        await store.retry(refused)
    assert (await store.retry(again)).attempts == 3


async def test_a_vanished_record_leaves_the_expiry_set(
    flow: Flow, redis_db: aioredis.Redis
) -> None:
    [pending] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
    expiry = f"{flow.service.store.prefix}remediation:expiry"
    assert await redis_db.zscore(expiry, pending.id) is not None
    # as when its record's TTL ran out
    await redis_db.delete(f"{flow.service.store.prefix}remediation:r:{pending.id}")
    assert await flow.service.store.get(pending.id) is None
    flow.clock.advance(601)
    await flow.service.check()
    assert await redis_db.zscore(expiry, pending.id) is None
