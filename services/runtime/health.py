"""Health: named checks reported in the operations guide's /health format."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

__all__ = ["HealthRegistry"]

Check = Callable[[], Awaitable[None]]


class HealthRegistry:
    """Checks by service name; each raises when its dependency is unhealthy."""

    def __init__(self, version: str, timeout: float = 2.0) -> None:
        self.version = version
        self.timeout = timeout
        self._checks: dict[str, Check] = {}
        self.ready = False

    def add(self, name: str, check: Check) -> None:
        """Register a check reported under `services.<name>`."""
        self._checks[name] = check

    async def report(self) -> tuple[int, dict[str, Any]]:
        """Run every check: (HTTP status, body) with `connected`/`error` per service."""
        body: dict[str, Any] = {
            "status": "healthy",
            "timestamp": datetime.now(UTC).isoformat(),
            "version": self.version,
            "services": {},
        }

        async def run(name: str, check: Check) -> None:
            try:
                async with asyncio.timeout(self.timeout):
                    await check()
            except Exception as exc:  # noqa: BLE001 - any failure of a check means unhealthy
                body["status"] = "unhealthy"
                body["services"][name] = "error"
                body.setdefault("error", f"{name}: {type(exc).__name__}: {exc}"[:500])
            else:
                body["services"][name] = "connected"

        await asyncio.gather(*(run(n, c) for n, c in self._checks.items()))
        body["services"] = dict(sorted(body["services"].items()))
        return (200 if body["status"] == "healthy" else 503), body

    def routes(self) -> list[web.RouteDef]:
        """/health, /-/healthy (liveness) and /-/ready (readiness)."""

        async def health(_: web.Request) -> web.Response:
            status, body = await self.report()
            return web.json_response(body, status=status)

        async def healthy(_: web.Request) -> web.Response:
            return web.Response(text="OK")

        async def ready(_: web.Request) -> web.Response:
            if not self.ready:
                return web.Response(status=503, text="not ready")
            status, _body = await self.report()
            return web.Response(status=status, text="OK" if status == 200 else "not ready")

        return [
            web.get("/health", health),
            web.get("/-/healthy", healthy),
            web.get("/-/ready", ready),
        ]
