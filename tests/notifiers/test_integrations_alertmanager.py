"""Against the real binary: what Alertmanager 0.25 sends to Slack, PagerDuty (v2, v1) and SMTP
for a receiver that sets every field, and what Tocsin builds from the same notification."""

from __future__ import annotations

import re
from typing import Any

import pytest

from schemas.config.receivers.email import EmailConfig
from schemas.config.receivers.pagerduty import PagerdutyConfig
from schemas.config.receivers.slack import SlackConfig
from schemas.webhook import WebhookMessage
from services.notifiers.email import email_message
from services.notifiers.pagerduty import pagerduty_v1_payload, pagerduty_v2_payload
from services.notifiers.slack import slack_payload
from services.notifiers.template import Data, TemplateSet, template_data
from tests.conftest import binary
from tests.notifiers import integrations_capture as rich

pytestmark = pytest.mark.binaries

TEMPLATES = TemplateSet.default()


def _data(webhook: dict[str, Any]) -> Data:
    message = WebhookMessage.model_validate(webhook)
    return template_data(
        "rich", message.status, message.alerts, message.groupLabels, message.externalURL
    )


def _without_volatile_headers(raw: str) -> tuple[list[str], str]:
    head, _, body = raw.partition("\r\n\r\n")
    lines = [line for line in head.split("\r\n") if not line.startswith(("Message-Id:", "Date:"))]
    return sorted(lines), body


async def test_a_fresh_capture_is_what_tocsin_builds() -> None:
    fresh = await rich.capture(binary("prometheus-alertmanager"))
    assert [len(fresh[k]) for k in ("webhook", "slack", "pagerduty", "pagerduty_v1", "email")] == [2] * 5  # fmt: skip
    slack = SlackConfig.model_validate({"api_url": "http://x/", **rich.SLACK})
    v2 = PagerdutyConfig.model_validate({"url": "http://x/", **rich.PAGERDUTY})
    v1 = PagerdutyConfig.model_validate(rich.PAGERDUTY_V1)
    mail = EmailConfig.model_validate({"smarthost": "127.0.0.1:25", **rich.EMAIL})
    for phase, webhook in enumerate(fresh["webhook"]):
        data, key = _data(webhook), webhook["groupKey"]
        assert slack_payload(slack, TEMPLATES, data).decode() == fresh["slack"][phase]["body"]
        body = pagerduty_v2_payload(v2, TEMPLATES, data, key, v2.routing_key.get_secret_value())
        assert body.decode() == fresh["pagerduty"][phase]["body"]
        body = pagerduty_v1_payload(v1, TEMPLATES, data, key, v1.service_key.get_secret_value())
        assert body.decode() == fresh["pagerduty_v1"][phase]["body"]
        raw = fresh["email"][phase]
        boundary = re.search(r"boundary=(\w+)", raw)
        assert boundary
        built = email_message(mail, TEMPLATES, data, now_ns=0, hostname="h", boundary=boundary[1])
        assert _without_volatile_headers(built.content.decode()) == _without_volatile_headers(raw)
    assert {p["content_type"] for k in ("slack", "pagerduty", "pagerduty_v1") for p in fresh[k]} == {"application/json"}  # fmt: skip
