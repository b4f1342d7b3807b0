"""`app.pool_resize` and `gpu.empty_cache` through a real agent; reverts kept in real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import redis.asyncio as aioredis

from schemas.remediation import (
    ActionName,
    ActionResult,
    GlobalLimits,
    GpuDeviceMemory,
    GpuEmptyCacheParams,
    GpuEmptyCacheResult,
    PoolResizeParams,
    PoolResizeResult,
    RuleLimits,
)
from services.remediation.actions.app_agent import (
    AppReverts,
    RevertedPool,
    gpu_empty_cache,
    pool_resize,
)
from services.remediation.agent import AgentClient, AgentError, AgentHooks, agent_app
from services.remediation.safety import Done, Envelope
from services.runtime.embedded import free_port
from tests.remediation.conftest import FakeClock
from tests.remediation.test_agent import PREFIX, SECRET, FakePool, serve_agent


@pytest.fixture
async def app(clock: FakeClock) -> AsyncIterator[tuple[FakePool, AgentClient]]:
    """An app with a pool of 10 behind its agent (on the real clock), and a client for it."""
    pool = FakePool(size=10, active=9, waiting=3)
    hooks = AgentHooks(pool_resize=pool.resize, pool_stats=pool.stats)
    runner, base = await serve_agent(agent_app(SECRET, hooks))
    agent = AgentClient(base + PREFIX, SECRET)
    try:
        yield pool, agent
    finally:
        await agent.close()
        await runner.cleanup()


@pytest.fixture
def reverts(redis_db: aioredis.Redis, clock: FakeClock) -> AppReverts:
    return AppReverts(redis_db, clock=clock, prefix="tocsin:test-app-actions:")


@pytest.mark.parametrize(
    ("params", "size", "expected"),
    [
        pytest.param({"grow_by": 10, "max_size": 15}, 10, 15, id="capped-by-max"),
        pytest.param({"grow_by": 1, "min_size": 8, "max_size": 50}, 2, 8, id="raised-to-min"),
        pytest.param({"size": 30, "max_size": 50}, 10, 30, id="absolute-size"),
    ],
)
async def test_pool_resize_is_bounded(
    app: tuple[FakePool, AgentClient],
    reverts: AppReverts,
    params: dict[str, int],
    size: int,
    expected: int,
) -> None:
    pool, agent = app
    pool.size = size
    pool.active = min(pool.active, size)
    result = await pool_resize(
        agent, PoolResizeParams.model_validate(params), target="api", reverts=reverts
    )
    assert pool.size == expected
    assert (result.previous_size, result.new_size, result.changed) == (size, expected, True)
    assert result.revert_at is None
    assert await reverts.pending("api") is None


async def test_pool_resize_measures_utilization(
    app: tuple[FakePool, AgentClient], reverts: AppReverts
) -> None:
    _, agent = app
    params = PoolResizeParams(grow_by=5, max_size=50)
    result = await pool_resize(agent, params, target="api", reverts=reverts)
    assert result == PoolResizeResult(
        target="api",
        previous_size=10,
        new_size=15,
        changed=True,
        active_before=9,
        active_after=9,
        utilization_before=0.9,
        utilization_after=0.6,
        waiting_before=3,
        waiting_after=3,
    )


async def test_pool_at_its_bound_is_left_alone(
    app: tuple[FakePool, AgentClient], reverts: AppReverts
) -> None:
    pool, agent = app
    params = PoolResizeParams(grow_by=5, max_size=10, revert_after=60)
    result = await pool_resize(agent, params, target="api", reverts=reverts)
    assert (result.new_size, result.changed, result.revert_at) == (10, False, None)
    assert pool.size == 10
    assert await reverts.pending("api") is None


async def test_resize_is_reverted_after_its_ttl_even_after_a_restart(
    app: tuple[FakePool, AgentClient],
    reverts: AppReverts,
    redis_db: aioredis.Redis,
    clock: FakeClock,
) -> None:
    pool, agent = app
    params = PoolResizeParams(grow_by=10, max_size=50, revert_after=600)
    result = await pool_resize(agent, params, target="api", reverts=reverts)
    assert (result.new_size, result.revert_at, result.revert_to) == (20, clock.now() + 600, 10)
    clock.advance(60)
    again = await pool_resize(agent, params, target="api", reverts=reverts)
    assert (again.previous_size, again.new_size, again.revert_to) == (20, 30, 10)

    assert await reverts.revert_due({"api": agent}) == []
    clock.advance(600)
    restarted = AppReverts(redis_db, clock=clock, prefix="tocsin:test-app-actions:")
    assert await restarted.revert_due({}) == []  # target left the policy: the record stays
    assert await restarted.revert_due({"api": agent}) == [RevertedPool("api", 10, True)]
    assert pool.size == 10
    assert await restarted.revert_due({"api": agent}) == []
    assert await restarted.pending("api") is None


async def test_resize_changed_meanwhile_is_not_reverted(
    app: tuple[FakePool, AgentClient], reverts: AppReverts, clock: FakeClock
) -> None:
    pool, agent = app
    params = PoolResizeParams(grow_by=10, max_size=50, revert_after=60)
    await pool_resize(agent, params, target="api", reverts=reverts)
    pool.size = 35  # an operator sized it by hand
    clock.advance(61)
    assert await reverts.revert_due({"api": agent}) == [RevertedPool("api", 35, False)]
    assert pool.size == 35
    assert await reverts.pending("api") is None


async def test_an_unreachable_agent_keeps_the_revert_pending(
    app: tuple[FakePool, AgentClient], reverts: AppReverts, clock: FakeClock
) -> None:
    pool, agent = app
    params = PoolResizeParams(grow_by=10, max_size=50, revert_after=60)
    await pool_resize(agent, params, target="api", reverts=reverts)
    clock.advance(61)
    async with AgentClient(f"http://127.0.0.1:{free_port()}/", SECRET, timeout=2) as gone:
        assert await reverts.revert_due({"api": gone}) == []
    assert await reverts.pending("api") == 10
    assert await reverts.revert_due({"api": agent}) == [RevertedPool("api", 10, True)]
    assert pool.size == 10


async def test_a_resize_the_app_does_not_apply_fails(
    reverts: AppReverts,
) -> None:
    pool = FakePool()

    async def ignoring_resize(size: int) -> Mapping[str, Any]:
        return {"previous_size": pool.size, "size": size, **(await pool.stats())}

    hooks = AgentHooks(pool_resize=ignoring_resize, pool_stats=pool.stats)
    runner, base = await serve_agent(agent_app(SECRET, hooks))
    try:
        async with AgentClient(base + PREFIX, SECRET) as agent:
            with pytest.raises(AgentError, match="pool max is 10 after resizing to 15"):
                await pool_resize(
                    agent, PoolResizeParams(grow_by=5, max_size=50), target="api", reverts=reverts
                )
    finally:
        await runner.cleanup()


async def test_pool_resize_inside_the_envelope(
    app: tuple[FakePool, AgentClient],
    reverts: AppReverts,
    redis_db: aioredis.Redis,
    clock: FakeClock,
) -> None:
    _, agent = app
    envelope = Envelope(redis_db, clock=clock, limits=GlobalLimits(), prefix="tocsin:test-env:")
    params = PoolResizeParams(grow_by=5, max_size=50)

    async def act() -> ActionResult:
        return await pool_resize(agent, params, target="api", reverts=reverts)

    async def firing() -> bool:
        return True

    outcome = await envelope.run(
        action=ActionName.APP_POOL_RESIZE,
        target="api",
        limits=RuleLimits(),
        auto=True,
        still_firing=firing,
        act=act,
    )
    assert isinstance(outcome, Done)
    assert isinstance(outcome.result, PoolResizeResult)
    assert outcome.result.new_size == 15


async def test_gpu_empty_cache_without_cuda_is_a_clean_no_gpu_result(
    app: tuple[FakePool, AgentClient],
) -> None:
    _, agent = app  # the default hook: torch is not installed here
    result = await gpu_empty_cache(agent, GpuEmptyCacheParams(), target="trainer")
    assert result == GpuEmptyCacheResult(
        target="trainer", gpu=False, detail="no GPU", devices=[], bytes_freed=0
    )


async def test_gpu_empty_cache_sums_what_the_devices_gave_back() -> None:
    async def emptied() -> Mapping[str, Any]:
        return {
            "gpu": True,
            "detail": "emptied the CUDA cache on 2 device(s)",
            "devices": [
                {
                    "index": i,
                    "allocated_before": 100,
                    "allocated_after": 100,
                    "reserved_before": 1000 * (i + 1),
                    "reserved_after": 200,
                }
                for i in range(2)
            ],
        }

    runner, base = await serve_agent(agent_app(SECRET, AgentHooks(gpu_empty_cache=emptied)))
    try:
        async with AgentClient(base + PREFIX, SECRET) as agent:
            result = await gpu_empty_cache(agent, GpuEmptyCacheParams(), target="trainer")
    finally:
        await runner.cleanup()
    assert result.gpu
    assert result.bytes_freed == 800 + 1800
    assert result.devices[1] == GpuDeviceMemory(
        index=1, allocated_before=100, allocated_after=100, reserved_before=2000, reserved_after=200
    )
