"""`redis.cache_flush` against the real Redis (db 14)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from schemas.remediation import CacheFlushParams, TemporaryEvictionPolicy
from services.remediation.actions.redis_flush import PolicyReverts, cache_flush
from services.remediation.safety import ActionRefused, RefusalReason
from tests.remediation.conftest import FILL_VALUE, FakeClock, fill


@pytest.fixture
async def filled(redis_db: aioredis.Redis) -> aioredis.Redis:
    await fill(redis_db, "cache:session:", 12_000)
    await fill(redis_db, "keep:user:", 8_000)
    return redis_db


@pytest.fixture
async def original_policy(redis_db: aioredis.Redis) -> AsyncIterator[str]:
    """The server's maxmemory-policy, put back after the test whatever happens."""
    value = (await redis_db.config_get("maxmemory-policy"))["maxmemory-policy"]
    policy = value.decode() if isinstance(value, bytes) else str(value)
    try:
        yield policy
    finally:
        await redis_db.config_set("maxmemory-policy", policy)


@pytest.fixture
async def maxmemory_1gb(redis_db: aioredis.Redis) -> AsyncIterator[int]:
    """maxmemory at 1 GiB (far above what tests use, so nothing is evicted), then put back."""
    value = (await redis_db.config_get("maxmemory"))["maxmemory"]
    original = value.decode() if isinstance(value, bytes) else str(value)
    await redis_db.config_set("maxmemory", str(2**30))
    try:
        yield 2**30
    finally:
        await redis_db.config_set("maxmemory", original)


async def test_only_matching_keys_are_unlinked(
    filled: aioredis.Redis, clock: FakeClock, maxmemory_1gb: int
) -> None:
    params = CacheFlushParams(patterns=["cache:session:*"], batch_size=1000)
    result = await cache_flush(
        filled, params, target="cache", reverts=PolicyReverts(filled, clock=clock)
    )
    assert result.keys_deleted == 12_000
    assert [k async for k in filled.scan_iter(match="cache:*", count=1000)] == []
    assert await filled.dbsize() == 8_000
    assert await filled.get("keep:user:7999") == FILL_VALUE
    assert result.bytes_freed > 0
    assert result.used_memory_after < result.used_memory_before
    assert result.sampled_bytes_per_key is not None
    assert result.sampled_bytes_per_key > 1024
    assert result.flushdb is False
    assert result.maxmemory == maxmemory_1gb
    assert result.memory_ratio_before == result.used_memory_before / maxmemory_1gb
    assert result.memory_ratio_after is not None
    assert result.memory_ratio_after < result.memory_ratio_before


async def test_max_keys_bounds_the_deletion(filled: aioredis.Redis, clock: FakeClock) -> None:
    params = CacheFlushParams(patterns=["cache:session:*"], batch_size=500, max_keys=1500)
    result = await cache_flush(
        filled, params, target="cache", reverts=PolicyReverts(filled, clock=clock)
    )
    assert result.keys_deleted == 1500
    assert await filled.dbsize() == 20_000 - 1500


async def test_flushdb_refused_unless_allowed(redis_db: aioredis.Redis, clock: FakeClock) -> None:
    await fill(redis_db, "cache:", 100)
    reverts = PolicyReverts(redis_db, clock=clock)
    with pytest.raises(ActionRefused) as refused:
        await cache_flush(
            redis_db,
            CacheFlushParams(patterns=["cache:*"]),
            target="c",
            reverts=reverts,
            flushdb=True,
        )
    assert refused.value.reason is RefusalReason.NOT_ALLOWED
    assert await redis_db.dbsize() == 100

    allowed = CacheFlushParams(patterns=["cache:*"], allow_flushdb=True)
    result = await cache_flush(redis_db, allowed, target="c", reverts=reverts, flushdb=True)
    assert result.flushdb is True
    assert result.keys_deleted == 100
    assert await redis_db.dbsize() == 0


async def test_temporary_policy_is_reverted_after_its_ttl(
    redis_db: aioredis.Redis, clock: FakeClock, original_policy: str
) -> None:
    await redis_db.config_set("maxmemory-policy", "noeviction")
    await fill(redis_db, "cache:", 100)
    reverts = PolicyReverts(redis_db, clock=clock, prefix="test:")
    params = CacheFlushParams(
        patterns=["cache:*"], temporary_policy=TemporaryEvictionPolicy(revert_after=60)
    )
    result = await cache_flush(redis_db, params, target="cache", reverts=reverts)
    assert result.policy_set == "allkeys-lru"
    assert result.policy_previous == "noeviction"
    assert result.policy_revert_at == clock.now() + 60
    assert await _policy(redis_db) == "allkeys-lru"

    # a second run inside the window keeps the original value to revert to
    again = await cache_flush(redis_db, params, target="cache", reverts=reverts)
    assert again.policy_previous == "noeviction"

    clock.advance(30)
    assert await reverts.revert_due({"cache": redis_db}) == []
    assert await _policy(redis_db) == "allkeys-lru"

    clock.advance(31)
    reverted = await reverts.revert_due({"cache": redis_db})
    assert [(r.target, r.policy, r.reverted) for r in reverted] == [("cache", "noeviction", True)]
    assert await _policy(redis_db) == "noeviction"
    assert await reverts.revert_due({"cache": redis_db}) == []


async def test_revert_leaves_a_policy_changed_meanwhile(
    redis_db: aioredis.Redis, clock: FakeClock, original_policy: str
) -> None:
    await redis_db.config_set("maxmemory-policy", "noeviction")
    reverts = PolicyReverts(redis_db, clock=clock, prefix="test:")
    params = CacheFlushParams(
        patterns=["cache:*"], temporary_policy=TemporaryEvictionPolicy(revert_after=5)
    )
    await cache_flush(redis_db, params, target="cache", reverts=reverts)
    await redis_db.config_set("maxmemory-policy", "volatile-lru")  # an operator stepped in
    clock.advance(10)
    reverted = await reverts.revert_due({"cache": redis_db})
    assert [(r.policy, r.reverted) for r in reverted] == [("volatile-lru", False)]
    assert await _policy(redis_db) == "volatile-lru"


async def _policy(client: aioredis.Redis) -> str:
    value = (await client.config_get("maxmemory-policy"))["maxmemory-policy"]
    return value.decode() if isinstance(value, bytes) else str(value)


async def test_revert_to_an_unreachable_target_is_kept_and_the_others_go_on(
    redis_db: aioredis.Redis, clock: FakeClock, original_policy: str
) -> None:
    await redis_db.config_set("maxmemory-policy", "noeviction")
    reverts = PolicyReverts(redis_db, clock=clock, prefix="test:")
    params = CacheFlushParams(
        patterns=["cache:*"], temporary_policy=TemporaryEvictionPolicy(revert_after=5)
    )
    await cache_flush(redis_db, params, target="cache", reverts=reverts)
    await reverts.record("away", "noeviction", "allkeys-lru", 1)  # due first
    away = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    clock.advance(10)
    try:
        reverted = await reverts.revert_due({"away": away, "cache": redis_db})
    finally:
        await away.aclose()
    assert [(r.target, r.reverted) for r in reverted] == [("cache", True)]
    assert await _policy(redis_db) == "noeviction"
    assert await reverts.pending("away") == "noeviction"  # tried again on a later call
