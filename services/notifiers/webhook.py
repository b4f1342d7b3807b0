"""Webhook: Alertmanager's payload version 4, byte for byte, POSTed to the configured URL."""

from __future__ import annotations

import re
from typing import Any

from schemas.config.receivers.webhook import WebhookConfig
from schemas.group import Notification
from services.notifiers.gojson import GoMap, dumps
from services.notifiers.http import HttpSender

__all__ = ["WebhookNotifier", "quote_meta", "webhook_payload"]

_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta, which Alertmanager applies to the receiver name in its payload."""
    return _META.sub(r"\\\1", text)


def webhook_payload(notification: Notification) -> bytes:
    """The body Alertmanager 0.25's webhook integration sends for this notification."""
    alerts: list[dict[str, Any]] = [
        {
            "status": a.status,
            "labels": GoMap(a.labels),
            "annotations": GoMap(a.annotations),
            "startsAt": a.startsAt,
            "endsAt": a.endsAt,
            "generatorURL": a.generatorURL,
            "fingerprint": a.fingerprint,
        }
        for a in notification.alerts
    ]
    return dumps(
        {
            "receiver": quote_meta(notification.receiver),
            "status": notification.status,
            "alerts": alerts,
            "groupLabels": GoMap(notification.groupLabels),
            "commonLabels": GoMap(notification.commonLabels),
            "commonAnnotations": GoMap(notification.commonAnnotations),
            "externalURL": notification.externalURL,
            "version": "4",
            "groupKey": notification.groupKey,
            "truncatedAlerts": notification.truncatedAlerts,
        },
        newline=True,
    )


class WebhookNotifier:
    """One `webhook_configs` entry."""

    def __init__(self, config: WebhookConfig, http: HttpSender) -> None:
        self._config = config
        self._http = http

    async def notify(self, notification: Notification) -> int:
        """Send; the HTTP status on success, NotifyError otherwise."""
        status, _ = await self._http.post(
            self._config.url.get_secret_value(),
            webhook_payload(notification),
            self._config.http_config,
            # The same for every copy of this notification: a receiver that honours it sees the
            # notification once even when a crashed notifier's send is repeated.
            headers={"Idempotency-Key": notification.idempotencyKey},
        )
        return status
