"""deploy/demo-app: run as a process against the real PostgreSQL and Redis; its faults make the
guide's alert expressions true, and Tocsin's actions (and its agent) put things right."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from schemas.remediation import (
    CacheFlushParams,
    GpuEmptyCacheParams,
    PoolResizeParams,
    TerminateIdleParams,
)
from services.remediation.actions.app_agent import AppReverts, gpu_empty_cache, pool_resize
from services.remediation.actions.postgres_idle import terminate_idle
from services.remediation.actions.redis_flush import PolicyReverts, cache_flush
from services.remediation.agent import AgentClient
from services.remediation.clock import SystemClock
from services.runtime.embedded import free_port
from tests.remediation.conftest import ensure_login_role

_ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = _ROOT / "deploy" / "demo-app" / "demo_app.py"
_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
_PG_ROLE = "tocsin_demo_app_test"
_REDIS_DB = 13  # shared with other tests: each demo app gets its own key prefix instead
_REDIS_URL = f"redis://127.0.0.1:6379/{_REDIS_DB}"
_SECRET = b"demo-app-test-secret"
_POOL = 5


@dataclass
class Demo:
    """A running demo app."""

    url: str
    application_name: str
    cache_prefix: str
    log: Path

    def agent(self) -> AgentClient:
        return AgentClient(self.url + "/tocsin-agent/", _SECRET)


@pytest.fixture
async def pg_admin() -> AsyncIterator[asyncpg.Connection]:
    """A superuser session; ensures the demo app's (non-superuser) role exists."""
    conn = await asyncpg.connect(_PG_ADMIN)
    try:
        await ensure_login_role(conn, _PG_ROLE)
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def name() -> str:
    """This test's PostgreSQL application_name, and the root of its Redis key prefix."""
    return f"tocsin-demo-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis_13(name: str) -> AsyncIterator[aioredis.Redis]:
    """Redis db 13; this test's keys (prefix `name:`) are deleted afterwards."""
    client = aioredis.Redis.from_url(_REDIS_URL)
    try:
        yield client
    finally:
        stale = [key async for key in client.scan_iter(f"{name}:*", count=1000)]
        if stale:
            await client.unlink(*stale)
        await client.aclose()


@pytest.fixture
async def redis_budget(redis_13: aioredis.Redis) -> int:
    """A Redis memory budget of what the server uses now plus 8 MiB (Redis has no maxmemory)."""
    info = await redis_13.info("memory")
    return int(info["used_memory"]) + 8 * 1024 * 1024


@pytest.fixture
def demo(
    pg_admin: asyncpg.Connection, redis_budget: int, name: str, tmp_path: Path
) -> Iterator[Demo]:
    """The demo app on a free port: pool of 5, agent mounted, the Redis budget above."""
    del pg_admin  # the role exists
    secret = tmp_path / "agent-secret"
    secret.write_bytes(_SECRET + b"\n")
    port = free_port()
    log = tmp_path / "demo.log"
    argv = [
        sys.executable,
        str(_SCRIPT),
        f"--listen=127.0.0.1:{port}",
        f"--pg-dsn=postgresql://{_PG_ROLE}@127.0.0.1:5432/test",
        f"--redis-url={_REDIS_URL}",
        f"--agent-secret-file={secret}",
        f"--application-name={name}",
        f"--pool-size={_POOL}",
        "--pool-hard-max=20",
        f"--redis-memory-budget={redis_budget}",
        f"--cache-prefix={name}:cache:",
        f"--agent-nonce-prefix={name}:agent-nonce:",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield Demo(url, name, f"{name}:cache:", log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"demo app exited {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:  # noqa: S310 - loopback
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    pytest.fail(f"demo app not healthy within 20s:\n{log.read_text()}")


async def _get(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


async def _post(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.post(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _metrics(demo: Demo) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = await _get(demo.url + "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return metrics[(name, ())]


async def _sessions(admin: asyncpg.Connection, name: str, state: str) -> int:
    count = await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = $2",
        name,
        state,
    )
    return int(count)


async def test_health_and_metrics(demo: Demo) -> None:
    status, health = await _get(demo.url + "/health")
    assert status == 200
    assert health["status"] == "healthy"
    assert health["services"] == {"database": "connected", "redis": "connected"}
    assert health["version"] == "1.0.0"
    assert "T" in health["timestamp"]

    first = await _get(demo.url + "/api/items/7")
    second = await _get(demo.url + "/api/items/7")
    assert first[1]["cached"] is False
    assert second[1] == {**first[1], "cached": True}

    metrics = await _metrics(demo)
    assert _value(metrics, "database_connections_max") == _POOL
    assert _value(metrics, "database_connections_active") == 0
    labels = (("endpoint", "/api/items/{id}"), ("method", "GET"), ("status", "200"))
    assert metrics[("http_requests_total", labels)] == 2
    assert ("http_request_duration_seconds_count", labels[:2]) in metrics
    assert _value(metrics, "redis_memory_used_bytes") > 0
    assert _value(metrics, "redis_keyspace_hits_total") >= 1
    assert metrics[("redis_db_keys", (("db", str(_REDIS_DB)),))] >= 1
    assert not any(name.startswith("nvidia_gpu") for name, _ in metrics)  # no GPU here


async def test_leaked_connections_exhaust_the_pool_until_terminated(
    demo: Demo, pg_admin: asyncpg.Connection
) -> None:
    leaked = await _post(demo.url + f"/fault/leak-connections?count={_POOL + 2}")
    assert leaked["leaked"] == _POOL  # the pool has no more to give
    metrics = await _metrics(demo)
    active = _value(metrics, "database_connections_active")
    assert active / _value(metrics, "database_connections_max") > 0.9  # the alert's expression
    assert await _sessions(pg_admin, demo.application_name, "idle in transaction") == _POOL
    status, health = await _get(demo.url + "/health")
    assert (status, health["error"]) == (503, "database connection pool exhausted")
    assert (await _get(demo.url + "/api/items/1"))[0] == 503

    await asyncio.sleep(0.2)  # past idle_seconds
    params = TerminateIdleParams(idle_seconds=0.1, application_names=[demo.application_name])
    result = await terminate_idle(pg_admin, params, target="demo")
    assert len(result.terminated) == _POOL
    assert result.remaining == 0

    deadline = time.monotonic() + 5
    while _value(await _metrics(demo), "database_connections_active") > 0:
        assert time.monotonic() < deadline, "the app did not get its connections back"
        await asyncio.sleep(0.1)
    assert (await _get(demo.url + "/health"))[0] == 200
    assert (await _get(demo.url + "/api/items/1"))[0] == 200


async def test_fill_cache_raises_redis_memory_and_cache_flush_frees_it(
    demo: Demo, redis_13: aioredis.Redis
) -> None:
    before = await _metrics(demo)
    filled = await _post(demo.url + "/fault/fill-cache?mb=16")
    assert filled["keys"] == 256
    keys = [k async for k in redis_13.scan_iter(demo.cache_prefix + "fill:*", count=1000)]
    assert len(keys) == 256
    after = await _metrics(demo)
    # the server is shared: assert what others' traffic cannot plausibly undo
    assert _value(after, "redis_memory_used_bytes") > _value(before, "redis_memory_used_bytes")
    used, budget = _value(after, "redis_memory_used_bytes"), _value(after, "redis_memory_max_bytes")
    assert used / budget > 0.9  # the alert's expression, against the configured budget

    reverts = PolicyReverts(redis_13, clock=SystemClock(), prefix=f"{demo.application_name}:")
    params = CacheFlushParams(patterns=[demo.cache_prefix + "*"], memory_samples=8)
    flushed = await cache_flush(redis_13, params, target="demo", reverts=reverts)
    assert flushed.keys_deleted == 256
    assert flushed.sampled_bytes_per_key is not None
    assert flushed.sampled_bytes_per_key >= 64 * 1024
    assert [k async for k in redis_13.scan_iter(demo.cache_prefix + "*", count=1000)] == []


async def test_the_agent_resizes_the_pool(demo: Demo, redis_13: aioredis.Redis) -> None:
    status, answer = await _get(demo.url + "/tocsin-agent/pool")
    assert (status, answer) == (401, {"error": "missing signature headers"})

    reverts = AppReverts(redis_13, clock=SystemClock(), prefix=f"{demo.application_name}:")
    params = PoolResizeParams(grow_by=3, max_size=10)
    async with demo.agent() as agent:
        await _post(demo.url + "/fault/leak-connections?count=5")
        result = await pool_resize(agent, params, target="demo", reverts=reverts)
        assert (result.previous_size, result.new_size) == (_POOL, 8)
        assert (result.utilization_before, result.utilization_after) == (1.0, 5 / 8)
        metrics = await _metrics(demo)
        assert _value(metrics, "database_connections_max") == 8
        assert (await _get(demo.url + "/api/items/2"))[0] == 200  # room again

        gpu = await gpu_empty_cache(agent, GpuEmptyCacheParams(), target="demo")
        assert (gpu.gpu, gpu.detail) == (False, "no GPU")
    # the agent's nonces are in Redis (shared by all workers of an app), expiring with the window
    nonces = [k async for k in redis_13.scan_iter(f"{demo.application_name}:agent-nonce:*")]
    assert nonces
    for key in nonces:
        assert 0 < await redis_13.pttl(key) <= 30_000
    cleared = await _post(demo.url + "/fault/clear")
    assert cleared["released"] == 5


async def test_failed_logins_are_counted_for_the_security_rules(demo: Demo) -> None:
    async with aiohttp.ClientSession() as session:
        for password in ("wrong", "wrong", "demo"):
            body = {"username": "demo", "password": password}
            async with session.post(demo.url + "/auth/login", json=body) as resp:
                assert resp.status == (200 if password == "demo" else 401)
        async with session.post(demo.url + "/auth/login", data=b"not json") as resp:
            assert resp.status == 400
    metrics = await _metrics(demo)
    login = (("endpoint", "/auth/login"), ("method", "POST"))
    assert metrics[("http_requests_total", (*login, ("status", "401")))] == 2
    assert metrics[("http_requests_total", (*login, ("status", "200")))] == 1
