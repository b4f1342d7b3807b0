"""The remediation service on the real Redis (db 14), the embedded broker and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from schemas.envelope import encode
from schemas.remediation_flow import AuditEvent, AuditRecord, Remediation, RemediationState
from schemas.topics import REMEDIATION_REQUESTS
from services.remediation.alarm import ALERTNAME
from tests.remediation.conftest import FILL_VALUE, PG_DSN, FakeClock, fill
from tests.remediation.flow import Flow, flow_redis, read_topic, redis_target_policy, start_flow


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    async with flow_redis() as client:
        yield client


@pytest.fixture
async def maxmemory(redis_db: aioredis.Redis) -> AsyncIterator[int]:
    """maxmemory at 1 GiB (nothing is evicted; the ratio is defined), then put back."""
    value = (await redis_db.config_get("maxmemory"))["maxmemory"]
    original = value.decode() if isinstance(value, bytes) else str(value)
    await redis_db.config_set("maxmemory", str(2**30))
    try:
        yield 2**30
    finally:
        await redis_db.config_set("maxmemory", original)


@pytest.fixture
async def flow(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> AsyncIterator[Flow]:
    async with start_flow(kafka_bootstrap, redis_db, clock, redis_target_policy()) as started:
        yield started


async def _count(client: aioredis.Redis, pattern: str) -> int:
    return len([k async for k in client.scan_iter(match=pattern, count=1000)])


def _events(records: list[AuditRecord]) -> list[str]:
    return [r.event.value for r in records]


async def test_auto_cache_flush_frees_memory_and_audits_every_step(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock, maxmemory: int
) -> None:
    await fill(redis_db, "cache:session:", 12_000)
    await fill(redis_db, "keep:user:", 8_000)
    policy = redis_target_policy()
    async with start_flow(
        kafka_bootstrap, redis_db, clock, policy, settings={"remediation.audit_dsn": PG_DSN}
    ) as flow:
        [created] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
        assert created.state is RemediationState.DONE
        assert created.decidedBy is None
        assert await _count(redis_db, "cache:session:*") == 0  # only the matching keys went
        assert await _count(redis_db, "keep:user:*") == 8_000
        assert await redis_db.get("keep:user:7999") == FILL_VALUE
        assert created.result is not None
        assert created.result["keys_deleted"] == 12_000
        assert created.result["used_memory_after"] < created.result["used_memory_before"]

        trail = await flow.audit(created.id, count=4)
        assert _events(trail) == ["requested", "started", "result", "verified"]
        assert [r.actor for r in trail] == ["tocsin", "policy", "tocsin", "tocsin"]
        assert trail[2].detail["status"] == "done"
        verified = trail[3].detail
        assert verified["improved"] is True
        assert verified["measure"] == "memory_ratio"
        assert verified["after"] < verified["before"]
        assert verified["figures"]["keys_deleted"] == 12_000

        # the same records, in order, in the PostgreSQL table
        await flow.service.audit.flush()
        stored = await flow.service.audit.trail(created.id)
        assert [r.id for r in stored] == [r.id for r in trail]
        assert stored[3].detail == trail[3].detail
        assert (await flow.service.store.get(created.id)) == created


async def test_a_resent_or_redelivered_alert_makes_no_second_remediation(flow: Flow) -> None:
    request = flow.request({"alertname": "RedisMemoryHigh"})
    [first] = await flow.service.handle(request)
    flow.clock.advance(120)  # Alertmanager re-sends a minute later: same startsAt
    resent = request.model_copy(update={"receivedAt": "2027-01-15T08:02:00Z"})
    assert await flow.service.handle(resent) == []
    assert await flow.service.handle(request) == []  # a redelivery of the same message
    assert [r.id for r in await flow.service.store.find()] == [first.id]
    assert _events(await flow.audit(count=4)) == ["requested", "started", "result", "verified"]
    # a new incident (another startsAt) of the same alert is another remediation
    later = flow.request({"alertname": "RedisMemoryHigh"}, starts_at=flow.clock.now())
    [second] = await flow.service.handle(later)
    assert second.id != first.id


async def test_dry_run_records_what_it_would_do_and_does_nothing(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    await fill(redis_db, "cache:session:", 100)
    policy = redis_target_policy(mode="dry-run")
    async with start_flow(kafka_bootstrap, redis_db, clock, policy) as flow:
        [created] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
        assert created.state is RemediationState.DRY_RUN
        assert created.detail == "would run redis.cache_flush on cache"
        assert await _count(redis_db, "cache:session:*") == 100
        trail = await flow.audit(created.id, count=2)
        assert _events(trail) == ["requested", "dry_run"]
        assert trail[1].detail == {
            "rule": "redis-memory-high",
            "action": "redis.cache_flush",
            "target": "cache",
            "params": policy["rules"][0]["params"]
            | {"max_keys": 1_000_000, "allow_flushdb": False, "temporary_policy": None,
               "memory_samples": 64},
        }  # fmt: skip


async def test_a_label_naming_no_configured_target_is_refused(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    policy = redis_target_policy()
    del policy["rules"][0]["target"]
    policy["rules"][0]["target_label"] = "redis"
    async with start_flow(kafka_bootstrap, redis_db, clock, policy) as flow:
        request = flow.request({"alertname": "RedisMemoryHigh", "redis": "prod-db.example:6379"})
        [created] = await flow.service.handle(request)
        assert created.state is RemediationState.REFUSED
        assert created.target == ""
        assert created.detail.startswith("no configured target")
        trail = await flow.audit(created.id, count=2)
        assert _events(trail) == ["requested", "result"]
        assert trail[1].detail["reason"] == "no_target"


async def test_cooldown_and_lock_refusals_are_audited(flow: Flow, redis_db: aioredis.Redis) -> None:
    [done] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
    assert done.state is RemediationState.DONE
    flow.clock.advance(10)
    again = flow.request({"alertname": "RedisMemoryHigh"}, starts_at=flow.clock.now())
    [cooling] = await flow.service.handle(again)
    assert cooling.state is RemediationState.REFUSED
    assert cooling.detail.startswith("cooldown: redis.cache_flush on cache: 50s left")
    [_, result] = await flow.audit(cooling.id, count=2)
    assert result.detail == {"status": "refused", "reason": "cooldown",
                             "detail": "redis.cache_flush on cache: 50s left"}  # fmt: skip

    flow.clock.advance(61)
    await redis_db.set(f"{flow.prefix}remediation:lock:redis.cache_flush:cache", "someone-else")
    third = flow.request({"alertname": "RedisMemoryHigh", "n": "3"})
    [locked] = await flow.service.handle(third)
    assert locked.state is RemediationState.REFUSED
    [_, result] = await flow.audit(locked.id, count=2)
    assert result.detail["reason"] == "locked"


async def test_an_alert_no_longer_firing_is_not_acted_on(flow: Flow) -> None:
    request = flow.request({"alertname": "RedisMemoryHigh"}, ends_in=30)
    await flow.service.store.record_alert(request)
    flow.clock.advance(60)  # its endsAt passed without an update: resolved
    assert not await flow.service.store.still_firing(request.fingerprint)


async def test_the_hourly_limit_opens_the_circuit_and_raises_an_alert(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    policy = redis_target_policy(limits={"timeout": 5, "cooldown": 1, "max_per_hour_per_target": 1})
    async with start_flow(kafka_bootstrap, redis_db, clock, policy) as flow:
        [first] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
        assert first.state is RemediationState.DONE
        clock.advance(5)
        [tripped] = await flow.service.handle(
            flow.request({"alertname": "RedisMemoryHigh", "n": "2"})
        )
        assert tripped.state is RemediationState.REFUSED
        assert tripped.detail == "rate_limited: max 1 runs per hour reached (target cache)"
        trail = await flow.audit(tripped.id, count=4)
        assert _events(trail) == ["requested", "result", "circuit_opened"]
        assert trail[2].detail["scope"] == "target cache"

        [alert] = await read_topic(kafka_bootstrap, flow.alerts_topic, 1)
        data = alert["data"]
        assert alert["schema"] == "tocsin.alert/v1"
        assert data["labels"] == {"alertname": ALERTNAME, "severity": "warning",
                                  "service": "tocsin-remediation", "scope": "target",
                                  "target": "cache"}  # fmt: skip
        assert data["status"] == "firing"
        assert "circuit-reset" in data["annotations"]["description"]
        assert "max 1 runs per hour reached" in data["annotations"]["description"]

        # while open, every auto run is refused, on any target and rule
        clock.advance(5)
        [stopped] = await flow.service.handle(
            flow.request({"alertname": "RedisMemoryHigh", "n": "3"})
        )
        assert stopped.state is RemediationState.REFUSED
        assert stopped.detail.startswith("circuit_open: ")
        await flow.service.check()
        assert flow.service._circuit_open._value.get() == 1

        was = await flow.service.reset_circuit("ops")
        assert was is not None
        assert await flow.service.circuit() is None
        alerts = await read_topic(kafka_bootstrap, flow.alerts_topic, 2)
        assert [a["data"]["status"] for a in alerts] == ["firing", "resolved"]
        assert alerts[0]["data"]["fingerprint"] == alerts[1]["data"]["fingerprint"]
        reset = [r for r in await flow.audit(count=9) if r.event is AuditEvent.CIRCUIT_RESET]
        assert [r.actor for r in reset] == ["ops"]


async def test_requests_are_consumed_from_kafka_with_at_least_once_dedup(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    await fill(redis_db, "cache:session:", 50)
    policy = redis_target_policy()
    async with start_flow(kafka_bootstrap, redis_db, clock, policy, consume=True) as flow:
        request = flow.request({"alertname": "RedisMemoryHigh"})
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            value = encode(REMEDIATION_REQUESTS.schema, "test", request.model_dump(mode="json"))
            for _ in range(2):  # the router's at-least-once: the same request twice
                await producer.send_and_wait(
                    flow.requests_topic, value, key=request.fingerprint.encode()
                )
            await producer.send_and_wait(flow.requests_topic, b"not json", key=b"x")
        finally:
            await producer.stop()
        trail = await flow.audit(count=4, within=20)
        assert _events(trail) == ["requested", "started", "result", "verified"]
        [remediation] = await flow.service.store.find()
        assert remediation.state is RemediationState.DONE
        assert await _count(redis_db, "cache:session:*") == 0
        for _ in range(50):
            if flow.service._bad_messages._value.get() == 1:
                break
            await asyncio.sleep(0.1)
        assert flow.service._bad_messages._value.get() == 1


async def test_the_check_reverts_a_temporary_eviction_policy_and_audits_it(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    value = (await redis_db.config_get("maxmemory-policy"))["maxmemory-policy"]
    original = value.decode() if isinstance(value, bytes) else str(value)
    await redis_db.config_set("maxmemory-policy", "noeviction")
    policy = redis_target_policy(temporary_policy={"policy": "allkeys-lru", "revert_after": 60})
    try:
        async with start_flow(kafka_bootstrap, redis_db, clock, policy) as flow:
            [done] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
            assert done.result is not None
            assert done.result["policy_set"] == "allkeys-lru"
            clock.advance(61)
            await flow.service.check()
            assert (await redis_db.config_get("maxmemory-policy"))["maxmemory-policy"] in (
                b"noeviction",
                "noeviction",
            )
            [reverted] = [r for r in await flow.audit(count=5) if r.event is AuditEvent.REVERTED]
            assert reverted.target == "cache"
            assert reverted.detail == {"kind": "Reverted", "target": "cache",
                                       "policy": "noeviction", "reverted": True}  # fmt: skip
    finally:
        await redis_db.config_set("maxmemory-policy", original)


async def test_a_run_whose_process_died_is_failed_by_the_check(
    flow: Flow, redis_db: aioredis.Redis
) -> None:
    request = flow.request({"alertname": "RedisMemoryHigh"})
    [done] = await flow.service.handle(request)
    stuck = done.model_copy(
        update={"id": "f" * 24, "state": RemediationState.RUNNING, "result": None}
    )
    assert await flow.service.store.create(stuck)
    flow.clock.advance(100)
    await flow.service.check()
    still = await flow.service.store.get(stuck.id)
    assert still is not None
    assert still.state is RemediationState.RUNNING  # within timeout + grace
    flow.clock.advance(40)
    await redis_db.delete(f"{flow.prefix}remediation:check-lock")  # one pass per interval
    await flow.service.check()
    failed = await flow.service.store.get(stuck.id)
    assert failed is not None
    assert failed.state is RemediationState.FAILED
    assert failed.detail.startswith("interrupted")


def _lock_key(flow: Flow) -> str:
    """The envelope's (action, target) lock, as another run in flight holds it."""
    return f"{flow.prefix}remediation:lock:redis.cache_flush:cache"


async def test_a_locked_run_is_retried_on_a_resend_once_the_lock_is_free(
    flow: Flow, redis_db: aioredis.Redis
) -> None:
    await fill(redis_db, "cache:session:", 10)
    await redis_db.set(_lock_key(flow), "another-run")
    request = flow.request({"alertname": "RedisMemoryHigh"})
    [locked] = await flow.service.handle(request)
    assert locked.state is RemediationState.REFUSED
    assert (locked.refusal, locked.attempts) == ("locked", 1)
    assert locked.detail.startswith("locked: ")
    assert await _count(redis_db, "cache:session:*") == 10

    await redis_db.delete(_lock_key(flow))  # the other run finished
    flow.clock.advance(60)  # Alertmanager re-sends it, still firing
    resent = request.model_copy(update={"receivedAt": "2027-01-15T08:02:00Z"})
    [retried] = await flow.service.handle(resent)
    assert retried.id == locked.id
    assert retried.state is RemediationState.DONE
    assert (retried.refusal, retried.attempts) == (None, 2)
    assert await flow.service.store.get(locked.id) == retried
    assert await _count(redis_db, "cache:session:*") == 0
    trail = await flow.audit(locked.id, count=6)
    assert _events(trail) == ["requested", "result", "retried", "started", "result", "verified"]
    assert trail[2].detail == {"previous_reason": "locked", "attempt": 2}
    assert trail[1].id != trail[4].id  # one result per attempt, both kept
    assert await flow.service.handle(request) == []  # done: a later re-send does nothing


async def test_a_run_refused_by_the_open_circuit_is_not_retried(flow: Flow) -> None:
    await flow.service.envelope.open_circuit("test")
    request = flow.request({"alertname": "RedisMemoryHigh"})
    [refused] = await flow.service.handle(request)
    assert (refused.state, refused.refusal) == (RemediationState.REFUSED, "circuit_open")
    await flow.service.reset_circuit("ops")  # a person closes it; the incident stays refused
    flow.clock.advance(60)
    assert await flow.service.handle(request) == []
    assert await flow.service.store.get(refused.id) == refused
    assert AuditEvent.RETRIED not in [r.event for r in await flow.audit(refused.id, count=2)]


async def test_concurrent_resends_retry_a_refused_run_once(
    flow: Flow, redis_db: aioredis.Redis
) -> None:
    await redis_db.set(_lock_key(flow), "another-run")
    request = flow.request({"alertname": "RedisMemoryHigh"})
    [locked] = await flow.service.handle(request)
    await redis_db.delete(_lock_key(flow))
    flow.clock.advance(60)
    answers = await asyncio.gather(*(flow.service.handle(request) for _ in range(4)))
    assert sorted(len(a) for a in answers) == [0, 0, 0, 1]
    done = await flow.service.store.get(locked.id)
    assert done is not None
    assert (done.state, done.attempts) == (RemediationState.DONE, 2)
    trail = await flow.audit(locked.id, count=6)
    assert _events(trail).count("retried") == 1
    assert _events(trail).count("started") == 1


async def test_retries_stop_after_the_attempt_bound(flow: Flow, redis_db: aioredis.Redis) -> None:
    await redis_db.set(_lock_key(flow), "a-stuck-run")  # never released
    request = flow.request({"alertname": "RedisMemoryHigh"}, ends_in=3600)
    [locked] = await flow.service.handle(request)
    for _ in range(11):  # every minute, past the bound (10 attempts)
        flow.clock.advance(60)
        await flow.service.handle(request)
    last = await flow.service.store.get(locked.id)
    assert last is not None
    assert (last.state, last.refusal, last.attempts) == (RemediationState.REFUSED, "locked", 10)
    trail = await flow.audit(locked.id, count=29)
    assert _events(trail).count("retried") == 9
    assert [r.detail["attempt"] for r in trail if r.event is AuditEvent.RETRIED] == list(
        range(2, 11)
    )


async def test_a_refused_run_is_not_retried_once_its_alert_stopped_firing(
    flow: Flow, redis_db: aioredis.Redis
) -> None:
    await redis_db.set(_lock_key(flow), "another-run")
    request = flow.request({"alertname": "RedisMemoryHigh"}, ends_in=30)
    [locked] = await flow.service.handle(request)
    await redis_db.delete(_lock_key(flow))
    flow.clock.advance(60)  # its endsAt passed: a late redelivery finds it no longer firing
    assert await flow.service.handle(request) == []
    assert await flow.service.store.get(locked.id) == locked


async def test_stop_waits_for_runs_in_flight_only_within_its_drain(flow: Flow) -> None:
    flow.service._drain = 0.5  # the process gives it half of Lifecycle.drain_timeout

    async def hung() -> Remediation:
        await asyncio.sleep(60)
        raise AssertionError("not cancelled")

    stuck = asyncio.create_task(hung())
    flow.service._runs.add(stuck)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await flow.service.stop()
    assert loop.time() - started < 5  # 0.5 s for the run, then the clients close
    await asyncio.sleep(0)
    assert stuck.cancelled()
