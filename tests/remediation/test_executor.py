"""The executor: each action on its target's client inside the envelope, and verification."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from schemas.remediation import (
    CacheFlushResult,
    GpuDeviceMemory,
    GpuEmptyCacheResult,
    Policy,
    TerminateIdleResult,
    parse_policy,
)
from services.remediation.agent import AgentHooks, agent_app
from services.remediation.executor import Executor
from services.remediation.safety import Done, Envelope, Failed
from services.remediation.verify import verify
from tests.remediation.conftest import PG_DSN, PG_ROLE, FakeClock
from tests.remediation.flow import flow_redis

_USER_DSN = f"postgresql://{PG_ROLE}@127.0.0.1:5432/test"
_SECRET = "agent-test-secret"


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    async with flow_redis() as client:
        yield client


async def _firing() -> bool:
    return True


def _executor(policy: Policy, redis: aioredis.Redis, clock: FakeClock) -> Executor:
    envelope = Envelope(redis, clock=clock, limits=policy.limits, prefix="test:x:")
    return Executor(policy, envelope, state=redis, clock=clock, prefix="test:x:")


def _rule(name: str, action: str, target: str, params: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "matchers": ['alertname="A"'], "action": action, "target": target,
            "mode": "auto", "params": dict(params)}  # fmt: skip


async def test_terminate_idle_through_the_executor_on_real_sessions(
    pg_admin: asyncpg.Connection, redis_db: aioredis.Redis, clock: FakeClock, app_name: str
) -> None:
    policy = parse_policy(
        {
            "targets": {"postgres": {"main": {"dsn": PG_DSN}}},
            "rules": [_rule("db", "postgres.terminate_idle", "main",
                            {"idle_seconds": 0.2, "application_names": [app_name]})],
        }
    )  # fmt: skip
    opened: list[asyncpg.Connection] = []
    try:
        for _ in range(2):
            conn = await asyncpg.connect(_USER_DSN, server_settings={"application_name": app_name})
            opened.append(conn)
            await conn.execute("BEGIN")
            await conn.fetchval("SELECT 1")
        active = await asyncpg.connect(_USER_DSN, server_settings={"application_name": app_name})
        opened.append(active)
        sleeping = asyncio.create_task(active.execute("SELECT pg_sleep(2)"))
        await asyncio.sleep(0.6)
        executor = _executor(policy, redis_db, clock)
        try:
            outcome = await executor.run(policy.rules[0], "main", auto=True, still_firing=_firing)
        finally:
            await executor.close()
        await sleeping
    finally:
        for conn in opened:
            conn.terminate()
    assert isinstance(outcome, Done)
    result = outcome.result
    assert isinstance(result, TerminateIdleResult)
    assert len(result.terminated) == 2
    assert result.remaining == 0
    assert {s.application for s in result.terminated} == {app_name}
    verification = verify(result)
    assert verification.improved
    assert (verification.before, verification.after) == (2, 0)


async def test_a_target_that_cannot_be_reached_fails_cleanly(
    redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    policy = parse_policy(
        {
            "targets": {"postgres": {"gone": {"dsn": "postgresql://x:pw@127.0.0.1:1/none"}}},
            "rules": [_rule("db", "postgres.terminate_idle", "gone",
                            {"idle_seconds": 1, "users": ["x"]})],
        }
    )  # fmt: skip
    executor = _executor(policy, redis_db, clock)
    try:
        outcome = await executor.run(policy.rules[0], "gone", auto=True, still_firing=_firing)
    finally:
        await executor.close()
    assert isinstance(outcome, Failed)
    assert outcome.error.startswith("ConnectionRefusedError")
    assert "pw" not in outcome.error


class _Pool:
    """An app's connection pool as the agent's hooks see it."""

    def __init__(self) -> None:
        self.max = 10
        self.active = 10

    async def stats(self) -> Mapping[str, Any]:
        return {"active": self.active, "idle": 0, "max": self.max, "waiting": 4}

    async def resize(self, size: int) -> Mapping[str, Any]:
        previous, self.max = self.max, size
        return {"previous_size": previous, "size": size, **(await self.stats())}


@pytest.fixture
async def agent() -> AsyncIterator[tuple[str, _Pool]]:
    pool = _Pool()
    hooks = AgentHooks(pool_resize=pool.resize, pool_stats=pool.stats)
    server = TestServer(agent_app(_SECRET.encode(), hooks))
    await server.start_server()
    try:
        yield str(server.make_url("/")), pool
    finally:
        await server.close()


async def test_app_actions_go_through_the_agent_and_pool_resize_reverts(
    agent: tuple[str, _Pool], redis_db: aioredis.Redis, clock: FakeClock
) -> None:
    url, pool = agent
    policy = parse_policy(
        {
            "targets": {"apps": {"api": {"url": url, "secret": _SECRET}}},
            "rules": [
                _rule("grow", "app.pool_resize", "api",
                      {"grow_by": 10, "max_size": 30, "revert_after": 60}),
                _rule("gpu", "gpu.empty_cache", "api", {}),
            ],
        }
    )  # fmt: skip
    executor = _executor(policy, redis_db, clock)
    try:
        grown = await executor.run(policy.rules[0], "api", auto=True, still_firing=_firing)
        assert isinstance(grown, Done)
        assert pool.max == 20
        verification = verify(grown.result)
        assert verification.improved  # 10/10 busy before, 10/20 after
        assert verification.measure == "pool_utilization"

        gpu = await executor.run(policy.rules[1], "api", auto=True, still_firing=_firing)
        assert isinstance(gpu, Done)
        assert isinstance(gpu.result, GpuEmptyCacheResult)
        assert (gpu.result.gpu, gpu.result.detail) == (False, "no GPU")  # no CUDA here
        assert verify(gpu.result).figures == {"gpu": False}

        clock.advance(61)
        reverted = await executor.revert_due()
        assert [(r.target, r.reverted) for r in reverted] == [("api", True)]
        assert pool.max == 10
    finally:
        await executor.close()


def test_verification_reads_the_before_and_after_figures() -> None:
    flush = CacheFlushResult(
        target="c", keys_deleted=5, bytes_freed=0, used_memory_before=100, used_memory_after=100,
        maxmemory=0,
    )  # fmt: skip
    assert not verify(flush).improved
    assert verify(flush).measure == "used_memory"
    gpu = GpuEmptyCacheResult(
        target="a", gpu=True, detail="", bytes_freed=512,
        devices=[GpuDeviceMemory(index=0, allocated_before=1, allocated_after=1,
                                 reserved_before=1024, reserved_after=512)],
    )  # fmt: skip
    checked = verify(gpu)
    assert checked.improved
    assert (checked.before, checked.after) == (1024, 512)
