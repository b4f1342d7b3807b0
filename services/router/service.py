"""The router service: consume `alerts`, keep groups in Redis, flush due groups to Kafka.

Two loops per replica: the consumer merges each batch into Redis and commits the offsets only
after the state is written; the flusher claims due groups (lease) and publishes their
notifications. Config reload (SIGHUP, POST /-/reload) swaps the config atomically, keeping the
old one when the new one is invalid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from schemas.alert import Alert
from schemas.config import Config, ConfigError, load
from schemas.envelope import Envelope, producer_id
from schemas.remediation import Policy, load_policy
from schemas.topics import ALERTS, FIXED_TOPICS, notifications_topic
from services.router.api import RouterAPI
from services.router.dispatcher import Dispatcher
from services.router.remediation_tap import RemediationTap
from services.router.silence_store import SilenceStore
from services.router.store import RouterStore
from services.runtime.auth import Authenticator
from services.runtime.kafka import KafkaFactory, consume_batches
from services.runtime.nflog import RedisNflog
from services.runtime.redis import RedisClient
from services.runtime.settings import Settings

__all__ = ["RouterService"]

_log = structlog.get_logger("tocsin.router")
_ENVELOPE = Envelope[Alert]


class RouterService:
    """One router replica."""

    def __init__(
        self,
        settings: Settings,
        kafka: KafkaFactory,
        redis: RedisClient,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], int] = time.time_ns,
        external_url: str | None = None,
    ) -> None:
        if settings.config.file is None:
            raise ValueError("the router needs a routing config: --config.file")
        self._settings = settings
        self._config_path = Path(settings.config.file)
        self._kafka = kafka
        self._redis = redis
        self._registry = registry
        prefix = settings.router.redis_prefix
        self.silences = SilenceStore(redis, prefix=prefix)
        self.store = RouterStore(redis, prefix=f"{prefix}router:")
        self._clock = clock
        _, port = settings.web.host_port()
        self.external_url = (
            external_url or settings.web.external_url or f"http://{socket.gethostname()}:{port}"
        ).rstrip("/")
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.dispatcher: Dispatcher | None = None
        self.remediation: RemediationTap | None = None
        self._reloads = Counter(
            "tocsin_router_config_reloads_total", "Config reloads by outcome.", ["outcome"],
            registry=registry,
        )  # fmt: skip
        self._reload_ok = Gauge(
            "tocsin_router_config_last_reload_successful",
            "Whether the last config reload succeeded (1) or failed (0).",
            registry=registry,
        )
        self._bad_messages = Counter(
            "tocsin_router_bad_messages_total", "Messages on alerts that did not parse (skipped).",
            registry=registry,
        )  # fmt: skip

    @property
    def config(self) -> Config:
        """The config in force."""
        if self.dispatcher is None:
            raise RuntimeError("the router is not started")
        return self.dispatcher.config

    async def start(self) -> None:
        """Load the config, connect, create the receivers' topics, start both loops."""
        config = load(self._config_path)
        policy = self._load_policy()
        await self._ensure_topics(config)
        self._producer = self._kafka.producer("router")
        await self._producer.start()
        owner = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        prefix = self._settings.router.redis_prefix
        await self.silences.refresh()
        self.dispatcher = dispatcher = Dispatcher(
            config,
            self.store,
            RedisNflog(self._redis, "published", prefix=f"{prefix}nflog:"),
            self._producer,
            self.silences,
            self._registry,
            clock=self._clock,
            owner=owner,
            external_url=self.external_url,
            producer_name=producer_id("router"),
        )
        self._use_policy(policy)
        self._reload_ok.set(1)
        group = self._settings.router.group_id
        self._consumer = consumer = self._kafka.consumer("router", group, [ALERTS.name])
        await consumer.start()
        self._tasks = [
            asyncio.create_task(self._consume(consumer, dispatcher), name="router-consume"),
            asyncio.create_task(self._flush(dispatcher), name="router-flush"),
        ]
        _log.info("router_started", config=str(self._config_path), receivers=len(config.receivers))

    def _use_policy(self, policy: Policy | None) -> None:
        if policy is None or self._producer is None:
            self.remediation = None
        elif self.remediation is None:
            self.remediation = RemediationTap(
                policy,
                self._producer,
                self.silences,
                producer_name=producer_id("router"),
                clock=self._clock,
            )
        else:
            self.remediation.policy = policy

    def _load_policy(self) -> Policy | None:
        path = self._settings.remediation.policy_file
        return None if path is None else load_policy(path)

    async def _ensure_topics(self, config: Config) -> None:
        names = [t.name for t in FIXED_TOPICS]
        names += [notifications_topic(r.name) for r in config.receivers]
        await self._kafka.ensure_topics(names)

    async def reload(self) -> str | None:
        """Load the config file again; on success switch to it, else keep the old one.

        Returns the error text, or None on success."""
        try:
            config = load(self._config_path)
            policy = self._load_policy()
            await self._ensure_topics(config)
        except ConfigError as exc:
            self._reloads.labels("failure").inc()
            self._reload_ok.set(0)
            _log.error("config_reload_failed", error=str(exc))
            return str(exc)
        if self.dispatcher is None:
            return "the router is not started"
        self.dispatcher.use_config(config)
        self._use_policy(policy)
        self._reloads.labels("success").inc()
        self._reload_ok.set(1)
        _log.info("config_reloaded", config=str(self._config_path))
        return None

    async def _consume(self, consumer: AIOKafkaConsumer, dispatcher: Dispatcher) -> None:
        async def handle(records: list[ConsumerRecord[bytes, bytes]]) -> None:
            alerts: list[Alert] = []
            for record in records:
                try:
                    alerts.append(_ENVELOPE.model_validate_json(record.value).data)
                except (ValueError, ValidationError) as exc:
                    self._bad_messages.inc()
                    _log.warning("bad_alert_message", offset=record.offset, error=str(exc)[:200])
            await dispatcher.receive(alerts)  # the state is written before the commit
            if self.remediation is not None:
                await self.remediation.publish(alerts, dispatcher.config.global_.resolve_timeout)

        await consume_batches(consumer, handle, self._stopping, max_records=2000, name="router")

    async def _flush(self, dispatcher: Dispatcher) -> None:
        lease_ms = int(self._settings.router.flush_lease * 1000)
        poll = self._settings.router.poll_interval
        while not self._stopping.is_set():
            try:
                await self.silences.refresh()  # a silence made on another replica mutes here too
                flushed = await dispatcher.flush_due(lease_ms)
            except Exception:  # noqa: BLE001 - log, back off, keep the loop alive
                _log.exception("flush_failed")
                flushed = 0
                await asyncio.sleep(1)
            if not flushed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), poll)

    def api(self, auth: Authenticator) -> RouterAPI:
        """Alertmanager's v2 API over this router's state, to mount on an HTTP server."""
        return RouterAPI(self, self.store, self.silences, auth, clock=self._clock)

    async def stop(self) -> None:
        """Finish the batch and flush in progress, commit, close clients; idempotent."""
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            try:
                async with asyncio.timeout(10):
                    await task
            except TimeoutError:
                task.cancel()
            except Exception:  # noqa: BLE001 - a loop that died is reported, teardown goes on
                _log.exception("router_loop_failed", loop=task.get_name())
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
