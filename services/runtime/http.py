"""aiohttp plumbing shared by every HTTP service: JSON errors, request metrics, serving."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["HttpMetrics", "json_error", "make_app", "start_site"]

_log = structlog.get_logger("tocsin.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> web.Response:
    """A JSON error answer: {"error": message, ...extra}."""
    return web.Response(
        status=status,
        body=orjson.dumps({"error": message, **extra}),
        content_type="application/json",
        headers=headers,
    )


class HttpMetrics:
    """Requests by path and status, and request sizes. Paths are route templates: bounded."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._counted: dict[tuple[str, str, int], Any] = {}
        self._sized: dict[str, Any] = {}
        self.requests = Counter(
            "tocsin_http_requests_total",
            "HTTP requests by route and status.",
            ["path", "method", "status"],
            registry=registry,
        )
        self.request_size = Histogram(
            "tocsin_http_request_size_bytes",
            "Size of HTTP request bodies.",
            ["path"],
            buckets=(256, 1024, 4096, 16384, 65536, 262144, 1048576, 5242880),
            registry=registry,
        )

    def observe(self, path: str, method: str, status: int, size: int | None) -> None:
        """Count one request (label children cached: `labels()` is slow on the hot path)."""
        key = (path, method, status)
        child = self._counted.get(key)
        if child is None:
            child = self._counted[key] = self.requests.labels(path, method, str(status))
        child.inc()
        if size is not None:
            sized = self._sized.get(path)
            if sized is None:
                sized = self._sized[path] = self.request_size.labels(path)
            sized.observe(size)


def _route_label(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.route is not None else None
    canonical = resource.canonical if resource is not None else None
    return canonical if canonical and info.http_exception is None else "other"


def make_app(metrics: HttpMetrics, client_max_size: int) -> web.Application:
    """An application whose errors are JSON and whose requests are counted."""

    @web.middleware
    async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = _route_label(request)
        status = 500
        try:
            response = await handler(request)
            status = response.status
        except web.HTTPException as exc:
            status = exc.status
            if exc.status == 405:
                allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ())))
                return json_error(405, f"method {request.method} not allowed", {"Allow": allowed})
            if exc.status == 404:
                return json_error(404, f"no such path {request.path}")
            if exc.status == 413:
                return json_error(413, "request body too large", max_bytes=client_max_size)
            if exc.status >= 400 and exc.content_type != "application/json":
                return json_error(exc.status, exc.reason)
            raise
        except Exception:  # noqa: BLE001 - the last line of defence: log it, answer 500, keep serving
            _log.exception("unhandled_error", path=path)
            return json_error(500, "internal error")
        finally:
            metrics.observe(path, request.method, status, request.content_length)
        return response

    return web.Application(middlewares=[errors_and_metrics], client_max_size=client_max_size)


async def start_site(
    app: web.Application,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    sock: socket.socket | None = None,
) -> web.AppRunner:
    """Start serving `app`; returns the runner (cleanup() stops it)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site: web.BaseSite
    if sock is not None:
        site = web.SockSite(runner, sock)
    else:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port, backlog=1024)
    await site.start()
    return runner
