"""The remediation agent over real HTTP: signed requests only, no replays, hooks answered."""

from __future__ import annotations

import asyncio
import io
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from services.remediation.agent import (
    NONCE,
    SIGNATURE,
    TIMESTAMP,
    AgentClient,
    AgentError,
    AgentHooks,
    MemoryNonces,
    NonceStore,
    RedisNonces,
    agent_app,
    default_gpu_empty_cache,
    sign,
)
from services.runtime.embedded import free_port
from services.runtime.http import start_site
from tests.remediation.conftest import FakeClock

SECRET = b"agent-test-secret-0123456789"
PREFIX = "/tocsin-agent/"


class FakePool:
    """The app side of the pool hooks: a maximum and counters the test sets."""

    def __init__(self, size: int = 10, active: int = 0, waiting: int = 0) -> None:
        self.size, self.active, self.waiting = size, active, waiting

    async def stats(self) -> Mapping[str, Any]:
        return {
            "active": self.active,
            "idle": self.size - self.active,
            "max": self.size,
            "waiting": self.waiting,
        }

    async def resize(self, size: int) -> Mapping[str, Any]:
        if size > 1000:
            raise ValueError("size over the hard limit 1000")
        previous, self.size = self.size, size
        return {"previous_size": previous, "size": size, **(await self.stats())}


async def serve_agent(app: web.Application) -> tuple[web.AppRunner, str]:
    """The agent mounted under PREFIX of a parent app, as a monitored app mounts it."""
    parent = web.Application()
    parent.add_subapp(PREFIX, app)
    port = free_port()
    runner = await start_site(parent, "127.0.0.1", port)
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture
async def served(clock: FakeClock) -> AsyncIterator[tuple[str, FakePool]]:
    clock.t = time.time()  # AgentClient stamps requests with the real time
    pool = FakePool()
    hooks = AgentHooks(pool_resize=pool.resize, pool_stats=pool.stats)
    runner, base = await serve_agent(agent_app(SECRET, hooks, replay_window=30, clock=clock))
    try:
        yield base, pool
    finally:
        await runner.cleanup()


async def _send(
    base: str,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, base + path, data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


def _headers(
    method: str,
    path: str,
    timestamp: float,
    body: bytes = b"",
    *,
    secret: bytes = SECRET,
    nonce: str | None = None,
) -> dict[str, str]:
    nonce = nonce or secrets.token_hex(16)
    stamp = f"{timestamp:.3f}"
    return {
        TIMESTAMP: stamp,
        NONCE: nonce,
        SIGNATURE: sign(secret, method, path, stamp, nonce, body),
    }


async def test_the_client_is_accepted(served: tuple[str, FakePool]) -> None:
    base, pool = served
    pool.active = 4
    async with AgentClient(base + PREFIX, SECRET) as agent:
        assert await agent.healthz() == {"status": "ok"}
        assert await agent.pool_stats() == {"active": 4, "idle": 6, "max": 10, "waiting": 0}
        answer = await agent.pool_resize(15)
    assert answer["previous_size"] == 10
    assert answer["size"] == answer["max"] == 15
    assert pool.size == 15


_PATH = PREFIX + "pool/resize"
_BODY = b'{"size": 12}'


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param(lambda now: {}, "missing signature headers", id="unsigned"),
        pytest.param(
            lambda now: {**_headers("POST", _PATH, now, _BODY), SIGNATURE: ""},
            "missing signature headers",
            id="empty-signature",
        ),
        pytest.param(
            lambda now: _headers("POST", _PATH, now, _BODY, secret=b"not-the-secret"),
            "bad signature",
            id="wrong-secret",
        ),
        pytest.param(
            lambda now: _headers("POST", _PATH, now, b'{"size": 999}'),
            "bad signature",
            id="body-tampered",
        ),
        pytest.param(
            lambda now: _headers("POST", PREFIX + "gpu/empty-cache", now, _BODY),
            "bad signature",
            id="other-path",
        ),
        pytest.param(
            lambda now: _headers("GET", _PATH, now, _BODY), "bad signature", id="other-method"
        ),
        pytest.param(
            lambda now: _headers("POST", _PATH, now - 31, _BODY), "stale timestamp", id="stale"
        ),
        pytest.param(
            lambda now: _headers("POST", _PATH, now + 31, _BODY), "stale timestamp", id="future"
        ),
        pytest.param(
            lambda now: {**_headers("POST", _PATH, now, _BODY), TIMESTAMP: "nan"},
            "stale timestamp",
            id="nan-timestamp",
        ),
        pytest.param(
            lambda now: {**_headers("POST", _PATH, now, _BODY), TIMESTAMP: "yesterday"},
            "bad timestamp",
            id="garbage-timestamp",
        ),
    ],
)
async def test_bad_requests_are_rejected(
    served: tuple[str, FakePool], clock: FakeClock, headers: Any, message: str
) -> None:
    base, pool = served
    status, answer = await _send(base, "POST", _PATH, body=_BODY, headers=headers(clock.now()))
    assert (status, answer) == (401, {"error": message})
    assert pool.size == 10


async def test_a_replayed_request_is_rejected_until_stale(
    served: tuple[str, FakePool], clock: FakeClock
) -> None:
    base, pool = served
    headers = _headers("POST", _PATH, clock.now(), _BODY)
    assert (await _send(base, "POST", _PATH, body=_BODY, headers=headers))[0] == 200
    pool.size = 10
    clock.advance(29)
    replay = await _send(base, "POST", _PATH, body=_BODY, headers=headers)
    assert replay == (401, {"error": "replayed nonce"})
    clock.advance(2)
    replay = await _send(base, "POST", _PATH, body=_BODY, headers=headers)
    assert replay == (401, {"error": "stale timestamp"})
    assert pool.size == 10


async def _replay_across_two_workers(
    clock: FakeClock, first: NonceStore, second: NonceStore
) -> tuple[int, dict[str, Any]]:
    """Send a signed request to one agent instance, replay it to another: the replay's answer.

    The two instances stand for two worker processes of one app (same secret, same hooks'
    state), each with the nonce store it was given."""
    pool = FakePool()
    hooks = AgentHooks(pool_resize=pool.resize, pool_stats=pool.stats)
    runners = []
    try:
        for store in (first, second):
            app = agent_app(SECRET, hooks, replay_window=30, clock=clock, nonces=store)
            runners.append(await serve_agent(app))
        (_, worker_1), (_, worker_2) = runners
        headers = _headers("POST", _PATH, clock.now(), _BODY)
        assert (await _send(worker_1, "POST", _PATH, body=_BODY, headers=headers))[0] == 200
        clock.advance(5)
        return await _send(worker_2, "POST", _PATH, body=_BODY, headers=headers)
    finally:
        for runner, _ in runners:
            await runner.cleanup()


async def test_a_replay_to_another_worker_is_rejected_with_a_shared_redis_store(
    clock: FakeClock, redis_db: aioredis.Redis
) -> None:
    first = RedisNonces(redis_db, prefix="test:nonce:", clock=clock)
    second = RedisNonces(redis_db, prefix="test:nonce:", clock=clock)
    replay = await _replay_across_two_workers(clock, first, second)
    assert replay == (401, {"error": "replayed nonce"})


async def test_separate_memory_stores_accept_a_replay_to_another_worker(clock: FakeClock) -> None:
    """Why multi-process apps need RedisNonces: each process's memory knows only its nonces."""
    first, second = MemoryNonces(clock=clock), MemoryNonces(clock=clock)
    status, _ = await _replay_across_two_workers(clock, first, second)
    assert status == 200


async def test_the_redis_nonce_key_expires_with_the_replay_window(
    clock: FakeClock, redis_db: aioredis.Redis
) -> None:
    nonces = RedisNonces(redis_db, prefix="test:nonce:", clock=clock)
    hooks = AgentHooks(pool_stats=FakePool().stats)
    runner, base = await serve_agent(
        agent_app(SECRET, hooks, replay_window=3.0, clock=clock, nonces=nonces)
    )
    path = PREFIX + "pool"
    try:
        headers = _headers("GET", path, clock.now(), nonce="n-expires")
        assert (await _send(base, "GET", path, headers=headers))[0] == 200
        assert await redis_db.get("test:nonce:n-expires") == b"1"
        assert 0 < await redis_db.pttl("test:nonce:n-expires") <= 3000
        replay = await _send(base, "GET", path, headers=headers)
        assert replay == (401, {"error": "replayed nonce"})
        await asyncio.sleep(3.3)
        assert await redis_db.exists("test:nonce:n-expires") == 0
    finally:
        await runner.cleanup()


async def test_an_unreachable_nonce_store_fails_closed(clock: FakeClock) -> None:
    broken = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    hooks = AgentHooks(pool_stats=FakePool().stats)
    runner, base = await serve_agent(
        agent_app(SECRET, hooks, clock=clock, nonces=RedisNonces(broken))
    )
    path = PREFIX + "pool"
    try:
        answer = await _send(base, "GET", path, headers=_headers("GET", path, clock.now()))
        assert answer == (503, {"error": "nonce store unavailable"})
    finally:
        await runner.cleanup()
        await broken.aclose()


async def test_nonce_memory_is_bounded_and_pruned(clock: FakeClock) -> None:
    hooks = AgentHooks(pool_stats=FakePool().stats)
    runner, base = await serve_agent(
        agent_app(SECRET, hooks, replay_window=5, clock=clock, max_nonces=2)
    )
    path = PREFIX + "pool"
    try:
        for _ in range(2):
            assert (await _send(base, "GET", path, headers=_headers("GET", path, clock.now())))[
                0
            ] == 200
        full = await _send(base, "GET", path, headers=_headers("GET", path, clock.now()))
        assert full == (401, {"error": "too many requests within the replay window"})
        clock.advance(6)  # the remembered nonces' requests are stale now: forgotten
        assert (await _send(base, "GET", path, headers=_headers("GET", path, clock.now())))[
            0
        ] == 200
    finally:
        await runner.cleanup()


async def test_errors_name_the_status_and_never_the_secret(served: tuple[str, FakePool]) -> None:
    base, _ = served
    async with AgentClient(base + PREFIX, b"wrong-" + SECRET) as agent:
        with pytest.raises(AgentError) as raised:
            await agent.pool_stats()
    assert raised.value.status == 401
    assert str(raised.value) == "agent answered 401: bad signature"
    assert not raised.value.retryable
    assert SECRET.decode() not in str(raised.value) + repr(agent)


async def test_hook_refusals_and_missing_hooks(served: tuple[str, FakePool]) -> None:
    base, _ = served
    async with AgentClient(base + PREFIX, SECRET) as agent:
        with pytest.raises(AgentError, match="size over the hard limit 1000") as too_big:
            await agent.pool_resize(5000)
        assert too_big.value.status == 400
        with pytest.raises(AgentError, match="size must be a positive integer"):
            await agent.pool_resize(0)
    bare = AgentHooks(gpu_empty_cache=None)
    runner, bare_base = await serve_agent(agent_app(SECRET, bare))
    try:
        async with AgentClient(bare_base + PREFIX, SECRET) as agent:
            with pytest.raises(AgentError, match="no pool_stats hook") as missing:
                await agent.pool_stats()
            assert missing.value.status == 501
            with pytest.raises(AgentError, match="no gpu_empty_cache hook"):
                await agent.gpu_empty_cache()
    finally:
        await runner.cleanup()


async def test_an_unreachable_agent_is_a_retryable_error() -> None:
    async with AgentClient(f"http://127.0.0.1:{free_port()}/tocsin-agent", SECRET) as agent:
        with pytest.raises(AgentError, match="cannot reach") as raised:
            await agent.healthz()
    assert raised.value.status is None
    assert raised.value.retryable


async def test_default_gpu_hook_without_torch_reports_no_gpu() -> None:
    answer = await default_gpu_empty_cache()
    assert answer["gpu"] is False
    assert answer["detail"] == "no GPU"
    assert answer["devices"] == []


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        agent_app(b"", AgentHooks())
    with pytest.raises(ValueError, match="must not be empty"):
        AgentClient("http://127.0.0.1:1/", b"")


async def test_http_errors_are_json_naming_the_problem(served: tuple[str, FakePool]) -> None:
    base, _ = served
    now = time.time()
    missing = PREFIX + "nope"
    status, answer = await _send(base, "GET", missing, headers=_headers("GET", missing, now))
    assert status == 404
    assert "Not Found" in answer["error"]
    path = PREFIX + "pool"
    status, answer = await _send(base, "DELETE", path, headers=_headers("DELETE", path, now))
    assert status == 405
    assert "Method Not Allowed" in answer["error"]
    big = b"x" * (1024 * 1024 + 1)  # over the default client_max_size
    resize = PREFIX + "pool/resize"
    headers = _headers("POST", resize, now, big)
    async with (
        aiohttp.ClientSession() as session,
        session.post(base + resize, data=io.BytesIO(big), headers=headers) as resp,
    ):
        assert resp.status == 413
        assert "Too Large" in (await resp.json())["error"]
