"""Prometheus metrics: one registry per process, served on /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["Counter", "Gauge", "Histogram", "build_info", "metrics_handler", "new_registry"]


def new_registry() -> CollectorRegistry:
    """A fresh registry; services register their metrics on the one they are given."""
    return CollectorRegistry(auto_describe=True)


def build_info(registry: CollectorRegistry, version: str, service: str) -> None:
    """tocsin_build_info{version, service} 1."""
    Gauge(
        "tocsin_build_info", "Tocsin build information.", ["version", "service"], registry=registry
    ).labels(version, service).set(1)


def metrics_handler(
    registry: CollectorRegistry,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler exposing `registry` in the text format."""

    async def handle(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle
