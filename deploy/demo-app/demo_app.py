"""A stand-in for the monitoring guide's SaaS API, to exercise alerts and remediation end to end.

It serves `/health` (the guide's shape), `/metrics` (the metric names the guide's alert rules and
dashboards use), a small cached API, fault switches under `/fault/`, and the Tocsin remediation
agent under `/tocsin-agent/`. See README.md beside this file.

asyncpg pools cannot be resized in place, so the app's pool is a *logical* pool: a real asyncpg
pool sized `--pool-hard-max`, in front of which a resizable limit admits at most the logical
size (`database_connections_max`). Resizing changes the limit at once, with no reconnects;
shrinking lets the connections in use finish.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib
import os
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import redis.asyncio as aioredis
import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.remediation.agent import (
    AgentHooks,
    RedisNonces,
    agent_app,
    default_gpu_empty_cache,
)

VERSION = "1.0.0"
_CHUNK = 64 * 1024
_log = structlog.get_logger("demo-app")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LogicalPool:
    """An asyncpg pool behind a resizable limit; counts active and waiting acquirers."""

    def __init__(self, pool: asyncpg.Pool, size: int, hard_max: int) -> None:
        self._pool = pool
        self._cond = asyncio.Condition()
        self.size = size
        self.hard_max = hard_max
        self.active = 0
        self.waiting = 0

    async def checkout(self, wait: float) -> asyncpg.Connection:
        """Take a connection (TimeoutError after `wait` seconds); give it back with checkin."""
        async with self._cond:
            self.waiting += 1
            try:
                async with asyncio.timeout(wait):
                    await self._cond.wait_for(lambda: self.active < self.size)
            finally:
                self.waiting -= 1
            self.active += 1
        try:
            return await self._pool.acquire(timeout=wait)
        except BaseException:
            await self._free_slot()
            raise

    async def checkin(self, conn: asyncpg.Connection) -> None:
        """Return a connection (a terminated one too: asyncpg replaces it)."""
        try:
            await self._pool.release(conn)
        finally:
            await self._free_slot()

    @contextlib.asynccontextmanager
    async def connection(self, wait: float = 2.0) -> AsyncIterator[asyncpg.Connection]:
        """A connection for the duration of a block."""
        conn = await self.checkout(wait)
        try:
            yield conn
        finally:
            await self.checkin(conn)

    async def _free_slot(self) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify()

    def stats(self) -> dict[str, int]:
        """What the agent's pool_stats hook and /metrics report."""
        return {
            "active": self.active,
            "idle": self._pool.get_idle_size(),
            "available": max(0, self.size - self.active),
            "max": self.size,
            "waiting": self.waiting,
        }

    async def resize(self, size: int) -> dict[str, int]:
        """Set the logical size (ValueError above the hard maximum)."""
        if size > self.hard_max:
            raise ValueError(f"size {size} exceeds the pool's hard maximum {self.hard_max}")
        async with self._cond:
            previous, self.size = self.size, size
            self._cond.notify_all()
        _log.info("pool_resized", previous=previous, size=size)
        return {"previous_size": previous, "size": size, **self.stats()}


class GpuCache:
    """Tensors held on the GPU (a stand-in for a model or embedding cache); needs torch + CUDA."""

    def __init__(self) -> None:
        self._torch: Any = None
        with contextlib.suppress(ImportError):
            torch: Any = importlib.import_module("torch")
            if torch.cuda.is_available():
                self._torch = torch
        self._held: list[Any] = []

    @property
    def present(self) -> bool:
        """Whether torch sees a CUDA device."""
        return self._torch is not None

    def hold(self, mb: int, fraction: float | None) -> int:
        """Allocate `mb` MiB (or until device 0 is `fraction` full); the bytes now held."""
        if self._torch is None:
            raise ValueError("no GPU")
        torch = self._torch
        block = 256 * 1024 * 1024
        if fraction is not None:
            free, total = torch.cuda.mem_get_info(0)
            wanted = int(fraction * total) - (total - free)
        else:
            wanted = mb * 1024 * 1024
        while wanted > 0:
            step = min(block, wanted)
            self._held.append(torch.empty(step, dtype=torch.uint8, device="cuda:0"))
            wanted -= step
        return sum(int(t.numel()) for t in self._held)

    def drop(self) -> None:
        """Let go of the held tensors (the caching allocator still reserves their memory)."""
        self._held.clear()

    def memory(self) -> list[tuple[int, int, int]]:
        """(device, used, total) bytes per device, as the driver sees them (nvidia-smi's view)."""
        if self._torch is None:
            return []
        out = []
        for index in range(int(self._torch.cuda.device_count())):
            free, total = self._torch.cuda.mem_get_info(index)
            out.append((index, int(total - free), int(total)))
        return out

    async def empty_cache(self) -> Mapping[str, Any]:
        """The agent hook: drop the tensor cache, then gc + torch.cuda.empty_cache()."""
        self.drop()
        return await default_gpu_empty_cache()


class Snapshot(Collector):
    """Gauges read at scrape time: the pool, Redis INFO (redis_exporter's names), the GPU."""

    def __init__(self, pool: LogicalPool, gpu: GpuCache, leaked: Callable[[], int]) -> None:
        self._pool = pool
        self._gpu = gpu
        self._leaked = leaked
        self.redis: dict[str, Any] = {}
        self.redis_max = 0

    def collect(self) -> Iterator[Metric]:
        stats = self._pool.stats()
        for name, key, doc in (
            ("database_connections_active", "active", "Connections checked out of the pool."),
            ("database_connections_idle", "idle", "Open connections not checked out."),
            ("database_connections_max", "max", "The pool's maximum size."),
            ("database_connections_waiting", "waiting", "Requests waiting for a connection."),
        ):
            yield GaugeMetricFamily(name, doc, value=stats[key])
        yield GaugeMetricFamily(
            "demo_leaked_connections", "Connections held by the leak fault.", value=self._leaked()
        )
        info = self.redis
        if info:
            yield GaugeMetricFamily(
                "redis_memory_used_bytes", "Redis used_memory.", value=info["used_memory"]
            )
            yield GaugeMetricFamily(
                "redis_memory_max_bytes", "Redis maxmemory (or the budget).", value=self.redis_max
            )
            yield GaugeMetricFamily(
                "redis_connected_clients", "Redis clients.", value=info["connected_clients"]
            )
            for name, key in (
                ("redis_keyspace_hits", "keyspace_hits"),
                ("redis_keyspace_misses", "keyspace_misses"),
                ("redis_commands_processed", "total_commands_processed"),
            ):
                yield CounterMetricFamily(name, f"Redis {key}.", value=info[key])
            keys = GaugeMetricFamily("redis_db_keys", "Keys per Redis database.", labels=["db"])
            for db, value in info.items():
                if db.startswith("db") and isinstance(value, dict):
                    keys.add_metric([db[2:]], value.get("keys", 0))
            yield keys
        used = GaugeMetricFamily("nvidia_gpu_memory_used_bytes", "GPU memory used.", labels=["gpu"])
        total = GaugeMetricFamily(
            "nvidia_gpu_memory_total_bytes", "GPU memory size.", labels=["gpu"]
        )
        for index, in_use, size in self._gpu.memory():
            used.add_metric([str(index)], in_use)
            total.add_metric([str(index)], size)
        if self._gpu.present:
            yield used
            yield total


class Leak:
    """A connection the leak fault holds idle in transaction; `ended` once the server ends it."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.ended = False
        conn.add_termination_listener(self.end)

    def end(self, _: object) -> None:
        """Termination listener: asyncpg has already handed the connection back to its pool."""
        self.ended = True


class DemoApp:
    """The app's state: pool, cache, GPU cache, faults, metrics."""

    def __init__(self, args: argparse.Namespace, pool: LogicalPool, redis: aioredis.Redis) -> None:
        self.args = args
        self.pool = pool
        self.redis = redis
        self.gpu = GpuCache()
        self.leaked: list[Leak] = []
        self.error_rate = 0.0
        self.latency = 0.0
        self.registry = CollectorRegistry()
        self.snapshot = Snapshot(pool, self.gpu, lambda: len(self.leaked))
        self.registry.register(self.snapshot)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests.",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "endpoint"],
            registry=self.registry,
        )
        self.queries = Counter(
            "database_queries_total", "Queries run.", ["query_type"], registry=self.registry
        )

    # --- plumbing ------------------------------------------------------------------------

    @web.middleware
    async def measure(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count and time every request by route template (bounded labels)."""
        resource = request.match_info.route.resource
        endpoint = (resource.canonical if resource is not None else None) or "other"
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.duration.labels(request.method, endpoint).observe(time.perf_counter() - started)
            self.requests.labels(request.method, endpoint, str(status)).inc()

    async def reap(self) -> None:
        """Give back leaked connections that the server ended (as a pool's pre-ping would)."""
        while True:
            ended = [leak for leak in self.leaked if leak.ended]
            self.leaked = [leak for leak in self.leaked if not leak.ended]
            for leak in ended:
                await self.pool.checkin(leak.conn)  # asyncpg's side is done: frees our slot
                _log.info("leaked_connection_reaped")
            await asyncio.sleep(0.2)

    # --- the guide's endpoints -----------------------------------------------------------

    async def health(self, _: web.Request) -> web.Response:
        body: dict[str, Any] = {
            "status": "healthy",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "version": VERSION,
            "services": {},
        }
        try:
            async with self.pool.connection(wait=1.0) as conn:
                await conn.fetchval("SELECT 1")
            body["services"]["database"] = "connected"
        except TimeoutError:
            body.update(status="unhealthy", error="database connection pool exhausted")
            body["services"]["database"] = "error"
        except (OSError, asyncpg.PostgresError) as exc:
            body.update(status="unhealthy", error=f"database: {type(exc).__name__}")
            body["services"]["database"] = "error"
        try:
            await self.redis.ping()
            body["services"]["redis"] = "connected"
        except (OSError, aioredis.RedisError) as exc:
            body["status"] = "unhealthy"
            body["services"]["redis"] = "error"
            body.setdefault("error", f"redis: {type(exc).__name__}")
        return web.json_response(body, status=200 if body["status"] == "healthy" else 503)

    async def metrics(self, _: web.Request) -> web.Response:
        info = await self.redis.info()
        self.snapshot.redis = info
        self.snapshot.redis_max = int(info.get("maxmemory", 0)) or self.args.redis_memory_budget
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def item(self, request: web.Request) -> web.Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.error_rate and random.random() < self.error_rate:  # noqa: S311 - fault injection
            return web.json_response({"error": "injected fault"}, status=500)
        item_id = int(request.match_info["id"])
        key = f"{self.args.cache_prefix}item:{item_id}"
        cached = await self.redis.get(key)
        if cached is not None:
            digest = cached.decode() if isinstance(cached, bytes) else cached
            return web.json_response({"id": item_id, "digest": digest, "cached": True})
        try:
            async with self.pool.connection(wait=2.0) as conn:
                digest = await conn.fetchval("SELECT md5($1::text)", str(item_id))
        except TimeoutError:
            return web.json_response({"error": "database connection pool exhausted"}, status=503)
        self.queries.labels("select").inc()
        await self.redis.set(key, digest, ex=60)
        return web.json_response({"id": item_id, "digest": digest, "cached": False})

    async def login(self, request: web.Request) -> web.Response:
        """The guide's login endpoint, as far as its metrics go: 401 unless demo/demo.

        Failed logins counted here (`http_requests_total{endpoint="/auth/login",status="401"}`)
        are what the guide's HighFailedLoginRate and CriticalFailedLoginRate rules watch."""
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        if body.get("username") == "demo" and body.get("password") == "demo":
            return web.json_response({"token": "demo-token"})
        return web.json_response({"error": "invalid credentials"}, status=401)

    # --- faults --------------------------------------------------------------------------

    async def leak_connections(self, request: web.Request) -> web.Response:
        count = _int_query(request, "count", 1)
        for _ in range(count):
            try:
                conn = await self.pool.checkout(wait=0.5)
            except TimeoutError:
                break
            await conn.execute("BEGIN")
            await conn.fetchval("SELECT 1")  # the session is now 'idle in transaction'
            self.leaked.append(Leak(conn))
        return web.json_response({"leaked": len(self.leaked), **self.pool.stats()})

    async def fill_cache(self, request: web.Request) -> web.Response:
        chunks = _int_query(request, "mb", 1) * (1024 * 1024 // _CHUNK)
        blob = os.urandom(_CHUNK)
        run = uuid.uuid4().hex[:8]
        for start in range(0, chunks, 64):
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in range(start, min(chunks, start + 64)):
                    pipe.set(f"{self.args.cache_prefix}fill:{run}:{i}", blob)
                await pipe.execute()
        return web.json_response({"keys": chunks, "bytes": chunks * _CHUNK})

    async def hold_gpu(self, request: web.Request) -> web.Response:
        fraction = request.query.get("fraction")
        try:
            held = await asyncio.to_thread(
                self.gpu.hold,
                _int_query(request, "mb", 0),
                None if fraction is None else float(fraction),
            )
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response({"held_bytes": held})

    async def errors(self, request: web.Request) -> web.Response:
        self.error_rate = min(1.0, max(0.0, float(request.query.get("rate", "0.5"))))
        return web.json_response({"error_rate": self.error_rate})

    async def slow(self, request: web.Request) -> web.Response:
        self.latency = max(0.0, float(request.query.get("seconds", "1.0")))
        return web.json_response({"latency": self.latency})

    async def clear(self, _: web.Request) -> web.Response:
        leaks, self.leaked = self.leaked, []
        for leak in leaks:
            if not leak.ended:
                leak.conn.remove_termination_listener(leak.end)
                with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    await leak.conn.execute("ROLLBACK")
            await self.pool.checkin(leak.conn)
        deleted = 0
        async for key in self.redis.scan_iter(f"{self.args.cache_prefix}fill:*", count=500):
            deleted += int(await self.redis.unlink(key))
        self.gpu.drop()
        self.error_rate = self.latency = 0.0
        return web.json_response({"released": len(leaks), "keys_deleted": deleted})

    async def traffic(self, base: str, rps: float) -> None:
        """Synthetic load: `rps` requests a second to the item API, mostly cacheable ids."""
        async with aiohttp.ClientSession() as session:
            while True:
                item = random.randint(1, 200)  # noqa: S311 - load generation
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/api/items/{item}") as resp:
                        await resp.read()
                await asyncio.sleep(1 / rps)

    def build(self, agent_secret: bytes | None) -> web.Application:
        app = web.Application(middlewares=[self.measure])
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/items/{id}", self.item)
        app.router.add_post("/auth/login", self.login)
        app.router.add_post("/fault/leak-connections", self.leak_connections)
        app.router.add_post("/fault/fill-cache", self.fill_cache)
        app.router.add_post("/fault/hold-gpu", self.hold_gpu)
        app.router.add_post("/fault/errors", self.errors)
        app.router.add_post("/fault/latency", self.slow)
        app.router.add_post("/fault/clear", self.clear)
        if agent_secret is not None:
            hooks = AgentHooks(
                pool_resize=self.pool.resize,
                pool_stats=self._pool_stats,
                gpu_empty_cache=self.gpu.empty_cache,
            )
            # nonces in Redis: every worker process of the app (were it run under several)
            # refuses a request another one accepted, not only its own replays
            nonces = RedisNonces(self.redis, prefix=self.args.agent_nonce_prefix)
            app.add_subapp("/tocsin-agent/", agent_app(agent_secret, hooks, nonces=nonces))
        return app

    async def _pool_stats(self) -> Mapping[str, Any]:
        return self.pool.stats()


def _int_query(request: web.Request, name: str, default: int) -> int:
    try:
        value = int(request.query.get(name, default))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None
    if not 0 <= value <= 100_000:
        raise web.HTTPBadRequest(text=f"{name} must lie in 0..100000")
    return value


async def serve(args: argparse.Namespace, secret: bytes | None) -> None:
    """Run until SIGINT/SIGTERM; mount the agent when given its secret."""
    host, _, port = args.listen.rpartition(":")
    raw_pool = await asyncpg.create_pool(
        args.pg_dsn,
        min_size=0,
        max_size=args.pool_hard_max,
        server_settings={"application_name": args.application_name},
    )
    redis = aioredis.Redis.from_url(args.redis_url)
    demo = DemoApp(args, LogicalPool(raw_pool, args.pool_size, args.pool_hard_max), redis)
    runner = web.AppRunner(demo.build(secret), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host.strip("[]") or "0.0.0.0", int(port)).start()  # noqa: S104
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _log.info("listening", listen=args.listen, agent=secret is not None, gpu=demo.gpu.present)
    async with asyncio.TaskGroup() as tasks:
        background = [tasks.create_task(demo.reap())]
        if args.traffic_rps > 0:
            base = f"http://{host or '127.0.0.1'}:{port}"
            background.append(tasks.create_task(demo.traffic(base, args.traffic_rps)))
        await stop.wait()
        for task in background:
            task.cancel()
    await runner.cleanup()
    for leak in demo.leaked:
        if not leak.ended:
            leak.conn.terminate()
    raw_pool.terminate()
    await redis.aclose()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see README.md)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--listen", default="127.0.0.1:8000", help="host:port")
    parser.add_argument("--pg-dsn", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--agent-secret-file", help="mount the Tocsin agent with this secret")
    parser.add_argument("--application-name", default="demo-app", help="PG application_name")
    parser.add_argument("--pool-size", type=int, default=10, help="logical pool size")
    parser.add_argument("--pool-hard-max", type=int, default=100, help="asyncpg pool size")
    parser.add_argument("--cache-prefix", default="cache:")
    parser.add_argument(
        "--agent-nonce-prefix",
        default="tocsin-agent:nonce:",
        help="Redis key prefix of the agent's nonces (keep it out of --cache-prefix)",
    )
    parser.add_argument(
        "--redis-memory-budget",
        type=int,
        default=0,
        help="bytes reported as redis_memory_max_bytes when Redis has no maxmemory",
    )
    parser.add_argument("--traffic-rps", type=float, default=0.0, help="synthetic load")
    args = parser.parse_args(argv)
    if not 1 <= args.pool_size <= args.pool_hard_max:
        parser.error("--pool-size must lie between 1 and --pool-hard-max")
    return args


def main() -> None:
    """Entry point."""
    args = parse_args()
    secret = None
    if args.agent_secret_file is not None:
        secret = Path(args.agent_secret_file).read_bytes().rstrip(b"\r\n")
        if not secret:
            raise SystemExit(f"{args.agent_secret_file} is empty")
    asyncio.run(serve(args, secret))


if __name__ == "__main__":
    main()
