"""The ingest service: its aiohttp application and its lifecycle around one Kafka producer."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from types import TracebackType

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from schemas.envelope import producer_id
from schemas.topics import ALERTS
from services.ingest.handlers import IngestHandlers
from services.ingest.publisher import AlertPublisher
from services.runtime.auth import Authenticator
from services.runtime.health import HealthRegistry
from services.runtime.http import HttpMetrics, make_app, start_site
from services.runtime.kafka import KafkaFactory
from services.runtime.metrics import build_info, metrics_handler
from services.runtime.settings import Settings

__all__ = ["IngestService", "build_app"]

_log = structlog.get_logger("tocsin.ingest")


def _openapi_handler() -> Callable[[web.Request], Awaitable[web.Response]]:
    document = resources.files("schemas").joinpath("openapi.json").read_bytes()

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    return handle


def build_app(
    settings: Settings,
    publisher: AlertPublisher,
    health: HealthRegistry,
    registry: CollectorRegistry,
    extra_routes: Sequence[web.AbstractRouteDef] = (),
) -> web.Application:
    """The ingest HTTP application with every route (plus other services' in `tocsin run`)."""
    auth = Authenticator.from_settings(settings.web.auth)
    handlers = IngestHandlers(publisher, auth, registry, producer_id("ingest"))
    app = make_app(HttpMetrics(registry), settings.ingest.max_body_bytes)
    app.add_routes(
        [
            web.post("/api/v2/alerts", handlers.post_alerts),
            web.post("/api/v1/alertmanager", handlers.post_webhook),
            web.get("/metrics", metrics_handler(registry)),
            web.get("/openapi.json", _openapi_handler()),
            *health.routes(),
            *extra_routes,
        ]
    )
    return app


class IngestService:
    """Owns the producer and the HTTP site: start() begins serving, stop() drains and closes."""

    def __init__(
        self,
        settings: Settings,
        kafka: KafkaFactory,
        registry: CollectorRegistry,
        health: HealthRegistry,
        *,
        version: str,
        sock: socket.socket | None = None,
        extra_routes: Sequence[web.AbstractRouteDef] = (),
    ) -> None:
        self._settings = settings
        self._kafka = kafka
        self._registry = registry
        self._health = health
        self._version = version
        self._sock = sock
        self._extra_routes = extra_routes
        self._producer = kafka.producer("ingest")
        self._runner: web.AppRunner | None = None
        self._producer_started = False
        self._publisher: AlertPublisher | None = None

    async def __aenter__(self) -> IngestService:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Connect the producer, then listen."""
        await self._producer.start()
        self._producer_started = True
        publisher = self._publisher = AlertPublisher(
            self._producer, self._settings.kafka.publish_timeout, self._registry
        )
        self._health.add("kafka", publisher.check)
        build_info(self._registry, self._version, "ingest")
        app = build_app(self._settings, publisher, self._health, self._registry, self._extra_routes)
        host, port = self._settings.web.host_port()
        self._runner = await start_site(
            app, host, port, reuse_port=self._settings.ingest.workers > 1, sock=self._sock
        )
        self._health.ready = True
        _log.info("ingest_listening", address=self._settings.web.listen_address, topic=ALERTS.name)

    async def stop(self) -> None:
        """Stop intake first, finish in-flight requests, flush the producer; idempotent."""
        self._health.ready = False
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if self._publisher is not None:
            await self._publisher.close()
        if self._producer_started:
            self._producer_started = False
            await self._producer.stop()
