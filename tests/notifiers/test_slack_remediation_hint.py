"""A Slack message for an alert with a remediation waiting for approval says how to approve it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from schemas.config.receivers.slack import SlackConfig
from schemas.envelope import encode
from schemas.remediation_flow import PendingHint, pending_index_key
from schemas.topics import notifications_topic
from services.notifiers.gojson import dumps
from services.notifiers.http import HttpSender
from services.notifiers.remediation_hints import PendingHints
from services.notifiers.service import NotifierService
from services.notifiers.slack import SlackNotifier, slack_payload
from services.notifiers.template import TemplateSet, template_data
from services.runtime.kafka import KafkaFactory
from services.runtime.metrics import new_registry
from services.runtime.settings import load_settings
from tests.notifiers.contract import TIMEOUT, HttpStandIn, Outcome, notification

ANSWERS: dict[Outcome, tuple[int, str, dict[str, str]]] = {Outcome.OK: (200, "ok", {})}
TEMPLATES = TemplateSet.default()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    try:
        yield client, prefix
    finally:
        async for key in client.scan_iter(match=f"{prefix}*"):
            await client.delete(key)
        await client.aclose()


async def send(hints: PendingHints, status: str = "firing") -> dict[str, object]:
    http = HttpSender(timeout=TIMEOUT)
    try:
        async with HttpStandIn(ANSWERS) as stand_in:
            slack = SlackConfig.model_validate({"api_url": stand_in.url("/hook"), "channel": "#o"})
            await SlackNotifier(slack, http, TEMPLATES, hints).notify(notification(status))
            body: dict[str, object] = json.loads(stand_in.requests[-1].body)
            return body
    finally:
        await http.close()


async def test_pending_approval_adds_an_attachment_with_the_commands(
    redis_prefix: tuple[aioredis.Redis, str],
) -> None:
    redis, prefix = redis_prefix
    fp = notification().alerts[1].fingerprint
    hint = PendingHint(
        id="rem-1234", rule="redis-memory-high", action="redis.cache_flush", target="cache",
        expiresAt="2099-01-01T00:00:00Z",
    )  # fmt: skip
    await redis.hset(pending_index_key(prefix, fp), hint.id, hint.model_dump_json())
    body = await send(PendingHints(redis, prefix=prefix))
    attachments = body["attachments"]
    assert isinstance(attachments, list)
    assert len(attachments) == 2
    extra = attachments[1]
    assert extra["title"] == "Remediation waiting for approval"
    assert "`redis.cache_flush` on `cache` (rule `redis-memory-high`)" in extra["text"]
    assert "tocsin remediation approve rem-1234" in extra["text"]
    assert "POST http://am.example:9093/api/v1/remediations/rem-1234/approve" in extra["text"]
    assert "tocsin remediation reject rem-1234" in extra["text"]


async def test_without_pending_approvals_the_body_is_alertmanagers(
    redis_prefix: tuple[aioredis.Redis, str],
) -> None:
    redis, prefix = redis_prefix
    body = await send(PendingHints(redis, prefix=prefix))
    note = notification()
    data = template_data(
        note.receiver, note.status, note.alerts, note.groupLabels, note.externalURL
    )
    slack = SlackConfig.model_validate({"api_url": "http://x/hook", "channel": "#o"})
    assert dumps(body, newline=True) == slack_payload(slack, TEMPLATES, data)


async def test_resolved_groups_get_no_hint(redis_prefix: tuple[aioredis.Redis, str]) -> None:
    redis, prefix = redis_prefix
    fp = notification("resolved").alerts[0].fingerprint
    hint = PendingHint(id="r", rule="r", action="a", target="t", expiresAt="2099-01-01T00:00:00Z")
    await redis.hset(pending_index_key(prefix, fp), hint.id, hint.model_dump_json())
    body = await send(PendingHints(redis, prefix=prefix), "resolved")
    assert len(body["attachments"]) == 1  # type: ignore[arg-type]


async def test_redis_away_costs_only_the_hint() -> None:
    unreachable = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        body = await send(PendingHints(unreachable))
    finally:
        await unreachable.aclose()
    assert len(body["attachments"]) == 1  # type: ignore[arg-type]


async def test_the_notifier_service_adds_the_hint_from_the_shared_redis(
    kafka_bootstrap: str, redis_prefix: tuple[aioredis.Redis, str], tmp_path: Path
) -> None:
    redis, prefix = redis_prefix
    receiver = f"r{uuid.uuid4().hex[:8]}"
    note = notification()
    hint = PendingHint(
        id="rem-svc", rule="db", action="postgres.terminate_idle", target="main",
        expiresAt="2099-01-01T00:00:00Z",
    )  # fmt: skip
    await redis.hset(
        pending_index_key(prefix, note.alerts[0].fingerprint), hint.id, hint.model_dump_json()
    )
    async with HttpStandIn(ANSWERS) as stand_in:
        config = tmp_path / "alertmanager.yml"
        config.write_text(
            f"route: {{receiver: {receiver}}}\nreceivers:\n  - name: {receiver}\n"
            f'    slack_configs: [{{api_url: "{stand_in.url("/slack")}", channel: "#ops"}}]\n'
        )
        settings = load_settings(
            {
                "config.file": str(config),
                "notifiers.group_id": f"notifiers-{receiver}",
                "router.redis_prefix": prefix,
            }
        )
        factory = KafkaFactory(settings.kafka, kafka_bootstrap, embedded=True)
        topic = notifications_topic(receiver)
        await factory.ensure_topics([topic])
        service = NotifierService(settings, factory, redis, new_registry())
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        await service.start()
        try:
            data = note.model_dump() | {"receiver": receiver, "integration": "slack[0]"}
            await producer.send_and_wait(
                topic, encode("tocsin.notification/v1", "test", data), key=b"g"
            )
            for _ in range(400):  # 20 s
                if stand_in.requests:
                    break
                await asyncio.sleep(0.05)
        finally:
            await service.stop()
            await producer.stop()
    body = json.loads(stand_in.requests[0].body)
    assert "tocsin remediation approve rem-svc" in body["attachments"][1]["text"]


async def test_an_expired_approval_is_not_offered(redis_prefix: tuple[aioredis.Redis, str]) -> None:
    redis, prefix = redis_prefix
    fp = notification().alerts[0].fingerprint
    for hint in (
        PendingHint(id="old", rule="r", action="a", target="t", expiresAt="2026-11-27T03:00:00Z"),
        PendingHint(id="new", rule="r", action="a", target="t", expiresAt="2026-11-27T05:00:00Z"),
    ):
        await redis.hset(pending_index_key(prefix, fp), hint.id, hint.model_dump_json())
    at_4am = 1_795_752_000 * 1_000_000_000  # 2026-11-27T04:00:00Z
    hints = PendingHints(redis, prefix=prefix, clock=lambda: at_4am)
    assert [h.id for h in await hints.for_notification(notification())] == ["new"]
