"""Slack: the contract, Alertmanager 0.25's bytes, and the Web API (bot token) answers."""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any, cast

import pytest

from schemas.config.receivers.slack import SlackConfig
from schemas.webhook import WebhookMessage
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.gojson import dumps
from services.notifiers.http import HttpSender
from services.notifiers.job import Notifier
from services.notifiers.slack import SlackNotifier, slack_payload
from services.notifiers.template import Data, TemplateSet, template_data
from tests.notifiers import integrations_capture as rich
from tests.notifiers.alertmanager_capture import CAPTURE_FILE
from tests.notifiers.contract import (
    RETRY_AFTER,
    TIMEOUT,
    HttpStandIn,
    NotifierContract,
    Outcome,
    StandIn,
    notification,
)

TOKEN = "T000/B000/XXXXsecretXXXX"
BOT_TOKEN = "xoxb-bot-token-9d1c"
TEMPLATES = TemplateSet.default()
CAPTURE = json.loads(CAPTURE_FILE.read_text())
RICH = json.loads(rich.CAPTURE_FILE.read_text())

WEBHOOK_ANSWERS = {
    Outcome.OK: (200, "ok", {}),
    Outcome.SERVER_ERROR: (500, "internal_error", {}),
    Outcome.RATE_LIMITED: (429, "rate_limited", {"Retry-After": str(RETRY_AFTER)}),
    Outcome.CLIENT_ERROR: (404, "channel_not_found", {}),
}


def config(**fields: Any) -> SlackConfig:
    return SlackConfig.model_validate({"api_url": "http://127.0.0.1:1/x", **fields})


def data_of(webhook: dict[str, Any], receiver: str) -> Data:
    message = WebhookMessage.model_validate(webhook)
    return template_data(
        receiver, message.status, message.alerts, message.groupLabels, message.externalURL
    )


async def notifier_for(
    stack: AsyncExitStack, url: str, **fields: Any
) -> tuple[SlackNotifier, SlackConfig]:
    http = HttpSender(timeout=TIMEOUT)
    stack.push_async_callback(http.close)
    slack = config(api_url=url, **fields)
    return SlackNotifier(slack, http, TEMPLATES), slack


class TestSlackContract(NotifierContract):
    secrets = (TOKEN,)

    def serve(self) -> AbstractAsyncContextManager[StandIn]:
        return HttpStandIn(WEBHOOK_ANSWERS)

    async def open(self, port: int, stack: AsyncExitStack) -> Notifier:
        url = f"http://127.0.0.1:{port}/services/{TOKEN}"
        return (await notifier_for(stack, url, channel="#ops"))[0]

    def sent_status(self, stand_in: StandIn) -> str:
        body = json.loads(cast(HttpStandIn, stand_in).requests[-1].body)
        color = body["attachments"][0]["color"]
        return {"danger": "firing", "good": "resolved"}[color]


class TestSlackBotTokenContract(TestSlackContract):
    """The same contract for chat.postMessage with a bot token (Web API JSON answers)."""

    secrets = (BOT_TOKEN,)

    def serve(self) -> AbstractAsyncContextManager[StandIn]:
        return HttpStandIn(
            {
                Outcome.OK: (200, '{"ok":true,"channel":"C1","ts":"1.2"}', {}),
                Outcome.SERVER_ERROR: (503, '{"ok":false,"error":"service_unavailable"}', {}),
                Outcome.RATE_LIMITED: (
                    429,
                    '{"ok":false,"error":"ratelimited"}',
                    {"Retry-After": str(RETRY_AFTER)},
                ),
                Outcome.CLIENT_ERROR: (200, '{"ok":false,"error":"invalid_auth"}', {}),
            },
            content_type="application/json",
        )

    async def open(self, port: int, stack: AsyncExitStack) -> Notifier:
        url = f"http://127.0.0.1:{port}/api/chat.postMessage"
        bot = {"authorization": {"credentials": BOT_TOKEN}}
        return (await notifier_for(stack, url, channel="#ops", http_config=bot))[0]


# Byte identity with Alertmanager 0.25 -------------------------------------------------------
RECORDS = CAPTURE["records"]


@pytest.mark.parametrize("record", RECORDS, ids=[r["scenario"] for r in RECORDS])
def test_default_fields_are_alertmanagers_bytes(record: dict[str, Any]) -> None:
    """The 8 captured scenarios (captured JSON re-encoded as Go does: same keys, same order)."""
    body = slack_payload(
        config(**CAPTURE["slack_fields"]), TEMPLATES, data_of(record["webhook"], record["receiver"])
    )
    assert body == dumps(record["slack"], newline=True)


@pytest.mark.parametrize("phase", [0, 1], ids=["firing", "resolved"])
def test_every_field_is_alertmanagers_bytes(phase: int) -> None:
    """Raw bytes from the wire: channel, icons, link_names, a truncated title, fields with and
    without `short`, an empty field value, actions with confirm, images, custom mrkdwn_in."""
    body = slack_payload(config(**rich.SLACK), TEMPLATES, data_of(RICH["webhook"][phase], "rich"))
    assert body.decode() == RICH["slack"][phase]["body"]


@pytest.mark.parametrize(
    ("title", "sent"),
    [
        ("é" * 1024, "é" * 1024),
        ("é" * 1025, "é" * 1023 + "…"),
        ("🔥" * 2000, "🔥" * 1023 + "…"),
    ],
    ids=["at-limit", "one-over", "astral"],
)
def test_title_is_cut_to_1024_runes(title: str, sent: str) -> None:
    body = json.loads(slack_payload(config(title=title), TEMPLATES, data_of_notification()))
    assert body["attachments"][0]["title"] == sent


def data_of_notification() -> Data:
    n = notification()
    return template_data(n.receiver, n.status, n.alerts, n.groupLabels, n.externalURL)


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        ({}, lambda b: "channel" not in b and "link_names" not in b and "icon_url" not in b),
        ({"title": "", "title_link": "", "pretext": ""}, lambda b: list(b["attachments"][0])[:2] == ["text", "fallback"]),
        ({"color": ""}, lambda b: "color" not in b["attachments"][0]),
        ({}, lambda b: b["attachments"][0]["mrkdwn_in"] == ["fallback", "pretext", "text"]),
        ({"short_fields": True, "fields": [{"title": "a", "value": "b"}]}, lambda b: b["attachments"][0]["fields"] == [{"title": "a", "value": "b", "short": True}]),
        ({"fields": [{"title": "a", "value": "b"}]}, lambda b: b["attachments"][0]["fields"][0]["short"] is False),
        ({"actions": [{"type": "button", "text": "t", "url": "http://u", "name": "n"}]}, lambda b: b["attachments"][0]["actions"] == [{"type": "button", "text": "t", "url": "http://u"}]),
    ],
    ids=["empty-top-level-omitted", "empty-title-omitted", "empty-color-omitted", "mrkdwn-default", "short-fields", "short-default-false", "link-action-drops-name"],
)  # fmt: skip
def test_go_struct_omission_rules(fields: dict[str, Any], check: Any) -> None:
    assert check(json.loads(slack_payload(config(**fields), TEMPLATES, data_of_notification())))


# The wire ------------------------------------------------------------------------------------
async def test_sends_the_body_with_alertmanagers_headers() -> None:
    async with HttpStandIn(WEBHOOK_ANSWERS) as stand_in, AsyncExitStack() as stack:
        notifier, slack = await notifier_for(stack, stand_in.url("/services/x"), channel="#a")
        assert await notifier.notify(notification()) == 200
    sent = stand_in.requests[0]
    assert sent.body == slack_payload(slack, TEMPLATES, data_of_notification())
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"] == "Alertmanager/0.25.0"


async def test_api_url_file_is_read_on_every_send_and_trimmed(tmp_path: Path) -> None:
    url_file = tmp_path / "slack-url"
    async with HttpStandIn(WEBHOOK_ANSWERS) as stand_in, AsyncExitStack() as stack:
        http = HttpSender(timeout=TIMEOUT)
        stack.push_async_callback(http.close)
        slack = SlackConfig.model_validate({"api_url_file": str(url_file)})
        notifier = SlackNotifier(slack, http, TEMPLATES)
        for path in ("/one", "/two"):
            url_file.write_text(f"  {stand_in.url(path)}\n")
            await notifier.notify(notification())
        url_file.unlink()
        with pytest.raises(NotifyError) as caught:
            await notifier.notify(notification())
    assert [r.path for r in stand_in.requests] == ["/one", "/two"]
    assert (caught.value.reason, caught.value.retryable) == (Reason.CONFIG, False)


@pytest.mark.parametrize(
    ("status", "body", "reason", "retryable"),
    [
        (400, "invalid_payload", Reason.CLIENT_ERROR, False),
        (403, "action_prohibited", Reason.CLIENT_ERROR, False),
        (410, "channel_is_archived", Reason.CLIENT_ERROR, False),
        (200, '{"ok":false,"error":"channel_not_found"}', Reason.CLIENT_ERROR, False),
        (200, '{"ok":false,"error":"ratelimited"}', Reason.RATE_LIMITED, True),
        (200, '{"ok":false,"error":"internal_error"}', Reason.SERVER_ERROR, True),
    ],
    ids=["400", "403", "410", "ok-false-channel", "ok-false-ratelimited", "ok-false-internal"],
)
async def test_error_answers_are_classified(
    status: int, body: str, reason: Reason, retryable: bool
) -> None:
    answers = dict(WEBHOOK_ANSWERS)
    answers[Outcome.CLIENT_ERROR] = (status, body, {})
    async with HttpStandIn(answers) as stand_in, AsyncExitStack() as stack:
        stand_in.script(Outcome.CLIENT_ERROR)
        notifier, _ = await notifier_for(stack, stand_in.url(), channel="#ops")
        with pytest.raises(NotifyError) as caught:
            await notifier.notify(notification())
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert str(caught.value).startswith('channel "#ops": ')


async def test_bot_token_is_sent_as_a_bearer_header() -> None:
    async with HttpStandIn(WEBHOOK_ANSWERS) as stand_in, AsyncExitStack() as stack:
        bot = {"authorization": {"credentials": BOT_TOKEN}}
        notifier, _ = await notifier_for(
            stack, stand_in.url("/api/chat.postMessage"), http_config=bot
        )
        await notifier.notify(notification())
    assert stand_in.requests[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"


async def test_template_error_is_not_retryable_and_sends_nothing() -> None:
    async with HttpStandIn(WEBHOOK_ANSWERS) as stand_in, AsyncExitStack() as stack:
        notifier, _ = await notifier_for(stack, stand_in.url(), text="{{ humanize 1 }}")
        with pytest.raises(NotifyError) as caught:
            await notifier.notify(notification())
    assert (caught.value.reason, caught.value.retryable) == (Reason.TEMPLATE, False)
    assert 'function "humanize" not defined' in str(caught.value)
    assert stand_in.count == 0
