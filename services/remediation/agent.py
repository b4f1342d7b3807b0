"""The remediation agent: a signed HTTP endpoint a monitored app mounts, and its client.

The app registers hooks (`AgentHooks`) and mounts `agent_app(secret, hooks)`, e.g. with
`app.add_subapp("/tocsin-agent/", agent_app(...))`; Tocsin's actions call it through
`AgentClient`. Every request is signed: HMAC-SHA256 with the shared secret over the method, the
path (with query), a timestamp, a nonce and the SHA-256 of the body. The agent answers 401 to a
request that is unsigned, badly signed, outside ±`replay_window` of its clock, or whose nonce it
has seen within the window; a nonce is remembered until its request's timestamp falls out of the
window (a replay is then stale anyway).

Where the nonces are remembered is the `nonces` store (`NonceStore`: `seen(nonce, expires_at)`):

* `MemoryNonces` (the default) keeps them in the process, bounded (`max_nonces`). Use it only when
  one process serves the agent: with several worker processes (gunicorn-style, or replicas
  behind a load balancer) each has its own memory, so a captured request replayed to another
  worker within the window is accepted.
* `RedisNonces(redis, prefix=...)` records each nonce with `SET prefix+nonce 1 NX PX <ms>`: atomic
  across processes and hosts sharing the Redis, and the key expires with the window. Use it
  whenever more than one process serves the agent. If Redis cannot be reached the agent answers
  503 (it never accepts a request it cannot check).

Endpoints, relative to the mount point: `GET healthz`, `GET pool`, `POST pool/resize`
(`{"size": n}`), `POST gpu/empty-cache`. Answers are JSON; errors are `{"error": message}`.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import heapq
import hmac
import importlib
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson
import redis.asyncio as aioredis
import structlog
from aiohttp import web
from yarl import URL

from schemas.remediation import AppTarget
from services.remediation.clock import Clock, SystemClock
from services.runtime.http import json_error

__all__ = [
    "AgentClient",
    "AgentError",
    "AgentHooks",
    "MemoryNonces",
    "NonceRefused",
    "NonceStore",
    "RedisNonces",
    "agent_app",
    "default_gpu_empty_cache",
    "sign",
]

_log = structlog.get_logger("tocsin.remediation.agent")

TIMESTAMP = "X-Tocsin-Timestamp"
NONCE = "X-Tocsin-Nonce"
SIGNATURE = "X-Tocsin-Signature"
_MAX_NONCE_LEN = 64

PoolResizeHook = Callable[[int], Awaitable[Mapping[str, Any]]]
StatsHook = Callable[[], Awaitable[Mapping[str, Any]]]


def sign(secret: bytes, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The hex HMAC-SHA256 signature of one request (`path` as sent, query included)."""
    message = "\n".join(
        (method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest())
    ).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


# --- the default GPU hook ------------------------------------------------------------------


async def default_gpu_empty_cache() -> Mapping[str, Any]:
    """gc.collect(), then torch.cuda.empty_cache() when torch and a CUDA device are present."""
    return await asyncio.to_thread(_empty_cache_blocking)


def _empty_cache_blocking() -> dict[str, Any]:
    collected = gc.collect()
    try:
        torch: Any = importlib.import_module("torch")  # optional, and heavy: import on use
    except ImportError:
        return {"gpu": False, "detail": "no GPU", "gc_collected": collected, "devices": []}
    if not torch.cuda.is_available():
        return {"gpu": False, "detail": "no GPU", "gc_collected": collected, "devices": []}
    count = int(torch.cuda.device_count())
    before = [_cuda_memory(torch, i) for i in range(count)]
    torch.cuda.empty_cache()
    after = [_cuda_memory(torch, i) for i in range(count)]
    devices = [
        {
            "index": i,
            "allocated_before": b[0],
            "reserved_before": b[1],
            "allocated_after": a[0],
            "reserved_after": a[1],
        }
        for i, (b, a) in enumerate(zip(before, after, strict=True))
    ]
    return {
        "gpu": True,
        "detail": f"emptied the CUDA cache on {count} device(s)",
        "gc_collected": collected,
        "devices": devices,
    }


def _cuda_memory(torch: Any, index: int) -> tuple[int, int]:
    return int(torch.cuda.memory_allocated(index)), int(torch.cuda.memory_reserved(index))


# --- server --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentHooks:
    """What the app lets the agent do; a hook left None answers 501.

    `pool_resize(size)` returns `previous_size`, `size` and the stats; `pool_stats()` returns
    `active`, `idle`, `max`, `waiting` (and may add `available`); `gpu_empty_cache()` returns
    `gpu`, `detail` and per-device `devices`.
    """

    pool_resize: PoolResizeHook | None = None
    pool_stats: StatsHook | None = None
    gpu_empty_cache: StatsHook | None = default_gpu_empty_cache


class NonceRefused(Exception):
    """A store's refusal of a nonce it has not seen (e.g. memory full); the message says why."""


class NonceStore(Protocol):
    """Where the agent remembers the nonces of the requests it accepted."""

    async def seen(self, nonce: str, expires_at: float) -> bool:
        """True if `nonce` was already used; otherwise record it until `expires_at` (epoch seconds).

        May raise `NonceRefused` (answered 401 with its message); any other error is answered 503.
        """
        ...


class MemoryNonces:
    """Nonces in this process's memory, each kept until its request leaves the replay window.

    Only for an agent served by a single process: other processes do not see these nonces.
    """

    def __init__(self, max_nonces: int = 100_000, *, clock: Clock | None = None) -> None:
        self._limit = max_nonces
        self._now = (clock or SystemClock()).now
        self._seen: set[str] = set()
        self._expiry: list[tuple[float, str]] = []

    async def seen(self, nonce: str, expires_at: float) -> bool:
        """True if seen; NonceRefused when `max_nonces` are remembered within the window."""
        now = self._now()
        while self._expiry and self._expiry[0][0] < now:
            self._seen.discard(heapq.heappop(self._expiry)[1])
        if nonce in self._seen:
            return True
        if len(self._seen) >= self._limit:
            raise NonceRefused("too many requests within the replay window")
        self._seen.add(nonce)
        heapq.heappush(self._expiry, (expires_at, nonce))
        return False


class RedisNonces:
    """Nonces in Redis (`SET prefix+nonce 1 NX PX ms`), shared by every process using that Redis.

    The key expires when the request leaves the replay window (at least 1 ms from now).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str = "tocsin:agent:nonce:",
        clock: Clock | None = None,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._now = (clock or SystemClock()).now

    def key(self, nonce: str) -> str:
        """The Redis key that records `nonce`."""
        return self._prefix + nonce

    async def seen(self, nonce: str, expires_at: float) -> bool:
        """True if another request (in any process) already used `nonce` within the window."""
        ttl_ms = max(1, math.ceil((expires_at - self._now()) * 1000))
        created = await self._redis.set(self.key(nonce), b"1", nx=True, px=ttl_ms)
        return not created


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def agent_app(
    secret: bytes,
    hooks: AgentHooks,
    *,
    replay_window: float = 30.0,
    clock: Clock | None = None,
    max_nonces: int = 100_000,
    nonces: NonceStore | None = None,
) -> web.Application:
    """The agent as an aiohttp application (mount it as a sub-application, or serve it alone).

    `nonces` defaults to `MemoryNonces(max_nonces)`, right for one process only; an app served by
    several processes passes a shared store, `RedisNonces` (see the module docstring).
    """
    if not secret:
        raise ValueError("the agent secret must not be empty")
    clock = clock or SystemClock()
    now = clock.now
    store: NonceStore = nonces if nonces is not None else MemoryNonces(max_nonces, clock=clock)

    @web.middleware
    async def authenticate(request: web.Request, handler: _Handler) -> web.StreamResponse:
        try:
            return await _authenticated(request, handler)
        except web.HTTPException as exc:  # unknown path, wrong method, body too large: JSON too
            if exc.status < 400:
                raise
            return json_error(exc.status, f"{exc.reason}: {request.method} {request.path}")

    async def _authenticated(request: web.Request, handler: _Handler) -> web.StreamResponse:
        timestamp = request.headers.get(TIMESTAMP)
        nonce = request.headers.get(NONCE)
        signature = request.headers.get(SIGNATURE)
        if not (timestamp and nonce and signature):
            return _unauthorized(request, "missing signature headers")
        try:
            sent = float(timestamp)
        except ValueError:
            return _unauthorized(request, "bad timestamp")
        if not math.isfinite(sent) or abs(now() - sent) > replay_window:
            return _unauthorized(request, "stale timestamp")
        if len(nonce) > _MAX_NONCE_LEN:
            return _unauthorized(request, "bad nonce")
        body = await request.read()
        expected = sign(secret, request.method, request.raw_path, timestamp, nonce, body)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            return _unauthorized(request, "bad signature")
        try:
            replayed = await store.seen(nonce, sent + replay_window)
        except NonceRefused as exc:
            return _unauthorized(request, str(exc))
        except Exception:  # noqa: BLE001 - fail closed: a nonce not checked is not accepted
            _log.exception("agent_nonce_store_failed", method=request.method, path=request.path)
            return json_error(503, "nonce store unavailable")
        if replayed:
            return _unauthorized(request, "replayed nonce")
        return await handler(request)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def pool(_: web.Request) -> web.Response:
        if hooks.pool_stats is None:
            return json_error(501, "this app registered no pool_stats hook")
        return await _call(hooks.pool_stats())

    async def pool_resize(request: web.Request) -> web.Response:
        if hooks.pool_resize is None:
            return json_error(501, "this app registered no pool_resize hook")
        try:
            payload = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return json_error(400, "body must be JSON")
        size = payload.get("size") if isinstance(payload, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            return json_error(400, "size must be a positive integer")
        return await _call(hooks.pool_resize(size))

    async def gpu_empty_cache(_: web.Request) -> web.Response:
        if hooks.gpu_empty_cache is None:
            return json_error(501, "this app registered no gpu_empty_cache hook")
        return await _call(hooks.gpu_empty_cache())

    app = web.Application(middlewares=[authenticate])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/pool", pool)
    app.router.add_post("/pool/resize", pool_resize)
    app.router.add_post("/gpu/empty-cache", gpu_empty_cache)
    return app


def _unauthorized(request: web.Request, message: str) -> web.Response:
    _log.warning("agent_request_rejected", reason=message, method=request.method, path=request.path)
    return json_error(401, message)


async def _call(hook: Awaitable[Mapping[str, Any]]) -> web.Response:
    try:
        result = await hook
    except ValueError as exc:  # the hook's way to say "not with these arguments"
        return json_error(400, str(exc))
    except Exception as exc:  # noqa: BLE001 - a hook failure is an answer, not a crash
        _log.exception("agent_hook_failed")
        return json_error(500, f"hook failed: {type(exc).__name__}")
    return web.Response(body=orjson.dumps(dict(result)), content_type="application/json")


# --- client --------------------------------------------------------------------------------


class AgentError(Exception):
    """A call to an agent failed: `status` is the HTTP status, None when no answer came."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message if status is None else f"agent answered {status}: {message}")
        self.status = status
        self.message = message
        self.retryable = status is None or status >= 500 or status == 429


class AgentClient:
    """Signed calls to one app's agent; `close()` (or `async with`) releases the HTTP session."""

    def __init__(self, url: str, secret: bytes, *, timeout: float = 10.0) -> None:
        if not secret:
            raise ValueError("the agent secret must not be empty")
        self._base = URL(url if url.endswith("/") else url + "/")
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_target(cls, target: AppTarget) -> AgentClient:
        """A client for a policy's app target (reads the secret file now)."""
        return cls(target.url, target.secret_bytes(), timeout=target.timeout)

    def __repr__(self) -> str:
        return f"AgentClient({str(self._base)!r})"

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def healthz(self) -> dict[str, Any]:
        """The agent's liveness answer (also proves that the secret matches)."""
        return await self._request("GET", "healthz")

    async def pool_stats(self) -> dict[str, Any]:
        """The app's pool: active, idle, max, waiting."""
        return await self._request("GET", "pool")

    async def pool_resize(self, size: int) -> dict[str, Any]:
        """Set the app's pool maximum to `size`; the previous size and the stats after."""
        return await self._request("POST", "pool/resize", {"size": size})

    async def gpu_empty_cache(self) -> dict[str, Any]:
        """Ask the app to free its GPU cache; what it freed per device (gpu false: none)."""
        return await self._request("POST", "gpu/empty-cache")

    async def _request(
        self, method: str, path: str, payload: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        url = self._base.join(URL(path))
        body = b"" if payload is None else orjson.dumps(payload)
        timestamp = f"{time.time():.3f}"
        nonce = secrets.token_hex(16)
        headers = {
            TIMESTAMP: timestamp,
            NONCE: nonce,
            SIGNATURE: sign(self._secret, method, url.raw_path_qs, timestamp, nonce, body),
            "Content-Type": "application/json",
        }
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.request(method, url, data=body, headers=headers) as resp:
                raw = await resp.read()
                status = resp.status
        except TimeoutError:
            raise AgentError(f"no answer from {self._base} within {self._timeout.total}s") from None
        except aiohttp.ClientError as exc:
            raise AgentError(f"cannot reach {self._base}: {type(exc).__name__}") from None
        try:
            answer = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            answer = None
        if status >= 400:
            message = answer.get("error") if isinstance(answer, dict) else None
            raise AgentError(str(message or f"HTTP {status}"), status=status)
        if not isinstance(answer, dict):
            raise AgentError("answer is not a JSON object", status=status)
        return answer
