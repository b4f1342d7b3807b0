"""A Slack message for an alert with a remediation waiting for approval says how to approve it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from schemas.config.receivers.slack import SlackConfig
from schemas.remediation_flow import PendingHint, pending_index_key
from services.notifiers.gojson import dumps
from services.notifiers.http import HttpSender
from services.notifiers.remediation_hints import PendingHints
from services.notifiers.slack import SlackNotifier, slack_payload
from services.notifiers.template import TemplateSet, template_data
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
        expiresAt="2026-11-27T03:00:00Z",
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
    hint = PendingHint(id="r", rule="r", action="a", target="t", expiresAt="2026-11-27T03:00:00Z")
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
