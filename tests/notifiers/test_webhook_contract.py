"""The notifier contract, run against the webhook integration."""

from __future__ import annotations

import json
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import cast

from schemas.config.receivers.webhook import WebhookConfig
from services.notifiers.http import HttpSender
from services.notifiers.job import Notifier
from services.notifiers.webhook import WebhookNotifier
from tests.notifiers.contract import (
    RETRY_AFTER,
    TIMEOUT,
    HttpStandIn,
    NotifierContract,
    Outcome,
    StandIn,
)

TOKEN = "hook-token-5f3a"

ANSWERS = {
    Outcome.OK: (200, "", {}),
    Outcome.SERVER_ERROR: (503, "unavailable", {"Retry-After": "1"}),
    Outcome.RATE_LIMITED: (429, "slow down", {"Retry-After": str(RETRY_AFTER)}),
    Outcome.CLIENT_ERROR: (400, "bad request", {}),
}


class TestWebhookContract(NotifierContract):
    secrets = (TOKEN,)

    def serve(self) -> AbstractAsyncContextManager[StandIn]:
        return HttpStandIn(ANSWERS)

    async def open(self, port: int, stack: AsyncExitStack) -> Notifier:
        http = HttpSender(timeout=TIMEOUT)
        stack.push_async_callback(http.close)
        url = f"http://127.0.0.1:{port}/hooks/{TOKEN}"
        return WebhookNotifier(WebhookConfig.model_validate({"url": url}), http)

    def sent_status(self, stand_in: StandIn) -> str:
        body = json.loads(cast(HttpStandIn, stand_in).requests[-1].body)
        return str(body["status"])
