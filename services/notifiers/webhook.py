"""Webhook: Alertmanager's payload version 4, byte for byte, POSTed to the configured URL."""

from __future__ import annotations

import re
from typing import Any

import orjson

from schemas.config.receivers.webhook import WebhookConfig
from schemas.group import Notification
from services.notifiers.gojson import GoMap, dumps
from services.notifiers.http import HttpSender

__all__ = ["WebhookNotifier", "quote_meta", "webhook_payload"]

_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta, which Alertmanager applies to the receiver name in its payload."""
    return _META.sub(r"\\\1", text)


# What orjson writes that Go's encoding/json writes otherwise, outside of \b and \f: these bytes
# occur only inside strings, so replacing them in the output is exact.
_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def _go_bytes(document: dict[str, Any]) -> bytes | None:
    r"""`document` as Go writes it, by orjson (maps already sorted); None when orjson would differ
    in a way not fixed by replacing bytes (a \b or \f escape: Go writes \u0008, \u000c; or a
    backslash before b or f, which looks the same) or refuses the value."""
    try:
        out = orjson.dumps(document)
    except TypeError:  # orjson.JSONEncodeError: e.g. a lone surrogate, an int over 64 bits
        return None
    if b"\\b" in out or b"\\f" in out:
        return None
    for raw, escaped in _GO_ESCAPES:
        if raw in out:
            out = out.replace(raw, escaped)
    return out + b"\n"


def webhook_payload(notification: Notification) -> bytes:
    """The body Alertmanager 0.25's webhook integration sends for this notification.

    orjson writes it (with Go's escapes patched in; maps sorted as Go sorts map keys, which
    `gojson.dumps` also does); the Go-compatible encoder takes over where that is not exact.
    """
    alerts: list[dict[str, Any]] = [
        {
            "status": a.status,
            "labels": GoMap(sorted(a.labels.items())),
            "annotations": GoMap(sorted(a.annotations.items())),
            "startsAt": a.startsAt,
            "endsAt": a.endsAt,
            "generatorURL": a.generatorURL,
            "fingerprint": a.fingerprint,
        }
        for a in notification.alerts
    ]
    document = {
        "receiver": quote_meta(notification.receiver),
        "status": notification.status,
        "alerts": alerts,
        "groupLabels": GoMap(sorted(notification.groupLabels.items())),
        "commonLabels": GoMap(sorted(notification.commonLabels.items())),
        "commonAnnotations": GoMap(sorted(notification.commonAnnotations.items())),
        "externalURL": notification.externalURL,
        "version": "4",
        "groupKey": notification.groupKey,
        "truncatedAlerts": notification.truncatedAlerts,
    }
    fast = _go_bytes(document)
    return fast if fast is not None else dumps(document, newline=True)


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
