"""PagerDuty: the contract (v2 and v1), Alertmanager 0.25's bytes, keys, limits and errors."""

from __future__ import annotations

import hashlib
import json
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import Any, ClassVar, cast

import pytest

from schemas.config.receivers.pagerduty import PagerdutyConfig
from schemas.webhook import WebhookMessage
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.gojson import dumps
from services.notifiers.http import HttpSender
from services.notifiers.job import Notifier
from services.notifiers.pagerduty import (
    PagerdutyNotifier,
    group_key_hash,
    pagerduty_v1_payload,
    pagerduty_v2_payload,
)
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

ROUTING_KEY = "R0UT1NGKEYsecret0123456789abcdef"
SERVICE_KEY = "serv1cekeysecret0123456789abcdef"
TEMPLATES = TemplateSet.default()
CAPTURE = json.loads(CAPTURE_FILE.read_text())
RICH = json.loads(rich.CAPTURE_FILE.read_text())

ANSWERS = {
    Outcome.OK: (202, '{"status":"success","message":"Event processed","dedup_key":"x"}', {}),
    Outcome.SERVER_ERROR: (500, '{"status":"error","message":"internal"}', {}),
    Outcome.RATE_LIMITED: (429, "", {"Retry-After": str(RETRY_AFTER)}),
    Outcome.CLIENT_ERROR: (
        400,
        '{"status":"invalid event","message":"Event object is invalid",'
        '"errors":["Length of \'routing_key\' is incorrect"]}',
        {},
    ),
}


def data_of(webhook: dict[str, Any], receiver: str) -> Data:
    message = WebhookMessage.model_validate(webhook)
    return template_data(
        receiver, message.status, message.alerts, message.groupLabels, message.externalURL
    )


def notification_data(status: str = "firing") -> Data:
    n = notification(status)
    return template_data(n.receiver, n.status, n.alerts, n.groupLabels, n.externalURL)


async def notifier_for(
    stack: AsyncExitStack, url: str, **fields: Any
) -> tuple[PagerdutyNotifier, PagerdutyConfig]:
    http = HttpSender(timeout=TIMEOUT)
    stack.push_async_callback(http.close)
    pagerduty = PagerdutyConfig.model_validate({"url": url, **fields})
    return PagerdutyNotifier(pagerduty, http, TEMPLATES, v1_url=url), pagerduty


class TestPagerdutyContract(NotifierContract):
    secrets: ClassVar[tuple[str, ...]] = (ROUTING_KEY,)
    success_code = 202

    def serve(self) -> AbstractAsyncContextManager[StandIn]:
        return HttpStandIn(ANSWERS, content_type="application/json")

    async def open(self, port: int, stack: AsyncExitStack) -> Notifier:
        url = f"http://127.0.0.1:{port}/v2/enqueue"
        return (await notifier_for(stack, url, routing_key=ROUTING_KEY))[0]

    def sent_status(self, stand_in: StandIn) -> str:
        body = json.loads(cast(HttpStandIn, stand_in).requests[-1].body)
        return {"trigger": "firing", "resolve": "resolved"}[body["event_action"]]


class TestPagerdutyV1Contract(TestPagerdutyContract):
    secrets = (SERVICE_KEY, ROUTING_KEY)

    async def open(self, port: int, stack: AsyncExitStack) -> Notifier:
        url = f"http://127.0.0.1:{port}/generic/2010-04-15/create_event.json"
        keys = {"service_key": SERVICE_KEY, "routing_key": ROUTING_KEY}
        return (await notifier_for(stack, url, **keys))[0]

    def sent_status(self, stand_in: StandIn) -> str:
        body = json.loads(cast(HttpStandIn, stand_in).requests[-1].body)
        return {"trigger": "firing", "resolve": "resolved"}[body["event_type"]]


# Byte identity with Alertmanager 0.25 -------------------------------------------------------
RECORDS = CAPTURE["records"]


@pytest.mark.parametrize("record", RECORDS, ids=[r["scenario"] for r in RECORDS])
def test_default_fields_are_alertmanagers_bytes(record: dict[str, Any]) -> None:
    """The 8 captured scenarios (captured JSON re-encoded as Go does: same keys, same order)."""
    pagerduty = PagerdutyConfig.model_validate({"routing_key": "rk", "url": "http://x/"})
    body = pagerduty_v2_payload(
        pagerduty,
        TEMPLATES,
        data_of(record["webhook"], record["receiver"]),
        record["webhook"]["groupKey"],
        "rk",
    )
    assert body == dumps(record["pagerduty"], newline=True)


@pytest.mark.parametrize("phase", [0, 1], ids=["trigger", "resolve"])
def test_v2_with_every_field_is_alertmanagers_bytes(phase: int) -> None:
    """Raw bytes from the wire: templated routing key and severity, class/component/group,
    a truncated summary, custom details (one empty), images and links with empty ones dropped."""
    webhook = RICH["webhook"][phase]
    pagerduty = PagerdutyConfig.model_validate({"url": "http://x/", **rich.PAGERDUTY})
    key = pagerduty.routing_key.get_secret_value()
    body = pagerduty_v2_payload(
        pagerduty, TEMPLATES, data_of(webhook, "rich"), webhook["groupKey"], key
    )
    assert body.decode() == RICH["pagerduty"][phase]["body"]


@pytest.mark.parametrize("phase", [0, 1], ids=["trigger", "resolve"])
def test_v1_is_alertmanagers_bytes(phase: int) -> None:
    """Raw bytes from the wire (through a CONNECT proxy): `"event_action":""`,
    `"payload":null`, and client fields on trigger only."""
    webhook = RICH["webhook"][phase]
    pagerduty = PagerdutyConfig.model_validate(rich.PAGERDUTY_V1)
    key = pagerduty.service_key.get_secret_value()
    body = pagerduty_v1_payload(
        pagerduty, TEMPLATES, data_of(webhook, "rich"), webhook["groupKey"], key
    )
    assert body.decode() == RICH["pagerduty_v1"][phase]["body"]


def test_dedup_key_is_the_sha256_of_the_group_key() -> None:
    key = '{}/{scenario="single"}:{alertname="HighCPU"}'
    assert group_key_hash(key) == hashlib.sha256(key.encode()).hexdigest()
    assert group_key_hash(key) == RECORDS[0]["pagerduty"]["dedup_key"]


@pytest.mark.parametrize(
    ("description", "summary"),
    [("x" * 1024, "x" * 1024), ("x" * 1025, "x" * 1023 + "…"), ("ü" * 3000, "ü" * 1023 + "…")],
    ids=["at-limit", "one-over", "multibyte"],
)
def test_summary_is_cut_to_1024_runes(description: str, summary: str) -> None:
    pagerduty = PagerdutyConfig.model_validate({"routing_key": "rk", "description": description})
    body = json.loads(pagerduty_v2_payload(pagerduty, TEMPLATES, notification_data(), "g", "rk"))
    assert body["payload"]["summary"] == summary


@pytest.mark.parametrize("version", ["v2", "v1"])
def test_details_over_512kb_are_replaced_by_a_note(version: str) -> None:
    key = {"v2": "routing_key", "v1": "service_key"}[version]
    pagerduty = PagerdutyConfig.model_validate({key: "k", "details": {"big": "x" * 600_000}})
    encode = pagerduty_v2_payload if version == "v2" else pagerduty_v1_payload
    body = json.loads(encode(pagerduty, TEMPLATES, notification_data(), "g", "k"))
    details = body["payload"]["custom_details"] if version == "v2" else body["details"]
    assert details == {
        "error": "Custom details have been removed because the original event exceeds the "
        "maximum size of 512KB"
    }


# Keys, versions, errors ----------------------------------------------------------------------
async def test_a_service_key_selects_v1_even_with_a_routing_key() -> None:
    async with HttpStandIn(ANSWERS) as stand_in, AsyncExitStack() as stack:
        notifier, _ = await notifier_for(
            stack, stand_in.url("/v1"), service_key=SERVICE_KEY, routing_key=ROUTING_KEY
        )
        await notifier.notify(notification())
    body = json.loads(stand_in.requests[0].body)
    assert (body["service_key"], body["event_type"]) == (SERVICE_KEY, "trigger")
    assert "routing_key" not in body


async def test_v1_retries_403_as_pagerduty_v1s_rate_limit() -> None:
    answers = dict(ANSWERS)
    answers[Outcome.RATE_LIMITED] = (403, "", {})
    async with HttpStandIn(answers) as stand_in, AsyncExitStack() as stack:
        stand_in.script(Outcome.RATE_LIMITED)
        v1, _ = await notifier_for(stack, stand_in.url(), service_key=SERVICE_KEY)
        with pytest.raises(NotifyError) as caught:
            await v1.notify(notification())
        assert (caught.value.reason, caught.value.retryable) == (Reason.RATE_LIMITED, True)
        stand_in.script(Outcome.RATE_LIMITED)
        v2, _ = await notifier_for(stack, stand_in.url(), routing_key=ROUTING_KEY)
        with pytest.raises(NotifyError) as caught:
            await v2.notify(notification())
        assert (caught.value.reason, caught.value.retryable) == (Reason.CLIENT_ERROR, False)


async def test_key_files_are_read_and_trimmed(tmp_path: Path) -> None:
    key_file = tmp_path / "routing-key"
    key_file.write_text(f"\n{ROUTING_KEY}  \n")
    async with HttpStandIn(ANSWERS) as stand_in, AsyncExitStack() as stack:
        notifier, _ = await notifier_for(stack, stand_in.url(), routing_key_file=str(key_file))
        await notifier.notify(notification())
        key_file.unlink()
        with pytest.raises(NotifyError) as caught:
            await notifier.notify(notification())
    assert json.loads(stand_in.requests[0].body)["routing_key"] == ROUTING_KEY
    assert (caught.value.reason, caught.value.retryable) == (Reason.CONFIG, False)


@pytest.mark.parametrize(
    ("fields", "reason", "text"),
    [
        ({"routing_key": "{{ .CommonLabels.nope }}"}, Reason.CONFIG, "routing key cannot be empty"),
        ({"routing_key": ROUTING_KEY, "details": {"x": "{{ humanize 1 }}"}}, Reason.TEMPLATE, "'x': failed to template"),
        ({"routing_key": ROUTING_KEY, "severity": "{{ .Nope }}"}, Reason.TEMPLATE, "failed to template PagerDuty v2 message"),
        ({"routing_key": "{{ " + ROUTING_KEY}, Reason.TEMPLATE, "failed to template the routing key"),
    ],
    ids=["empty-key", "details", "severity", "broken-key-template"],
)  # fmt: skip
async def test_bad_templates_are_not_retryable_and_send_nothing(
    fields: dict[str, Any], reason: Reason, text: str
) -> None:
    async with HttpStandIn(ANSWERS) as stand_in, AsyncExitStack() as stack:
        notifier, _ = await notifier_for(stack, stand_in.url(), **fields)
        with pytest.raises(NotifyError) as caught:
            await notifier.notify(notification())
    assert (caught.value.reason, caught.value.retryable) == (reason, False)
    assert text in str(caught.value)
    assert ROUTING_KEY not in str(caught.value)
    assert stand_in.count == 0


async def test_a_400_names_pagerdutys_complaint() -> None:
    async with HttpStandIn(ANSWERS) as stand_in, AsyncExitStack() as stack:
        stand_in.script(Outcome.CLIENT_ERROR)
        notifier, _ = await notifier_for(stack, stand_in.url(), routing_key=ROUTING_KEY)
        with pytest.raises(NotifyError) as caught:
            await notifier.notify(notification())
    assert "unexpected status code 400" in str(caught.value)
    assert "Event object is invalid" in str(caught.value)
