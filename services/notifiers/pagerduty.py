"""PagerDuty: Events API v2 (routing key), or v1 whenever a service key is set, byte for byte as
Alertmanager 0.25 sends them (AM `notify/pagerduty/pagerduty.go`).

Both versions render `details` first, key the incident by the SHA-256 of the group key, cut the
summary (v2) or description (v1) to 1024 runes ending in "…", and replace the details with an
error note when the encoded event exceeds 512000 bytes. v2 retries 5xx and 429; v1 also 403,
which is how Events API v1 says "rate limited".
"""

from __future__ import annotations

import hashlib
from typing import Any

from schemas.config.receivers.pagerduty import PagerdutyConfig
from schemas.group import Notification
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.fields import notification_data, read_file, renderer
from services.notifiers.gojson import GoMap, dumps
from services.notifiers.http import HttpSender
from services.notifiers.template import Data, TemplateError, TemplateSet

__all__ = [
    "V1_URL",
    "V2_URL",
    "PagerdutyNotifier",
    "group_key_hash",
    "pagerduty_v1_payload",
    "pagerduty_v2_payload",
    "truncate_runes",
]

V1_URL = "https://events.pagerduty.com/generic/2010-04-15/create_event.json"
"""Events API v1: fixed in Alertmanager 0.25 (`url` applies to v2 only)."""
V2_URL = "https://events.pagerduty.com/v2/enqueue"
"""The default `pagerduty_url`."""

MAX_EVENT_SIZE = 512000
MAX_SUMMARY_RUNES = 1024
_TOO_BIG = (
    "Custom details have been removed because the original event exceeds the maximum size of 512KB"
)


def group_key_hash(group_key: str) -> str:
    """Alertmanager's `Key.Hash()`: the lowercase hex SHA-256 of the group key (dedup/incident)."""
    return hashlib.sha256(group_key.encode()).hexdigest()


def truncate_runes(text: str, limit: int) -> str:
    """Go's notify.TruncateInRunes: at most `limit` runes, the last kept one replaced by "…"."""
    if len(text) <= limit:
        return text
    if limit <= 3:
        return text[:limit]
    return text[: limit - 1] + "…"


def _event_type(data: Data) -> str:
    return "trigger" if data.Status == "firing" else "resolve"


def _details(config: PagerdutyConfig, templates: TemplateSet, data: Data) -> dict[str, str]:
    details: dict[str, str] = {}
    for key, text in config.details.items():
        try:
            details[key] = templates.render(text, data)
        except TemplateError as exc:
            message = f"{key!r}: failed to template {text!r}: {exc}"
            raise NotifyError(Reason.TEMPLATE, message, retryable=False) from None
    return details


def _render_key(templates: TemplateSet, key: str, data: Data, name: str) -> str:
    """The key is a template too (as in Alertmanager); errors never quote it."""
    try:
        rendered = templates.render(key, data)
    except TemplateError:
        message = f"failed to template the {name}"
        raise NotifyError(Reason.TEMPLATE, message, retryable=False) from None
    if not rendered:
        raise NotifyError(Reason.CONFIG, f"{name} cannot be empty", retryable=False)
    return rendered


def _encode(message: dict[str, Any], holder: dict[str, Any], key: str) -> bytes:
    """Encode; over 512000 bytes, `holder[key]` (the details) becomes an error note."""
    body = dumps(message, newline=True)
    if len(body) > MAX_EVENT_SIZE:
        holder[key] = GoMap({"error": _TOO_BIG})
        body = dumps(message, newline=True)
    return body


def pagerduty_v2_payload(
    config: PagerdutyConfig, templates: TemplateSet, data: Data, group_key: str, routing_key: str
) -> bytes:
    """The Events API v2 body Alertmanager 0.25 sends; NotifyError(TEMPLATE) if a field fails.

    `routing_key` is the key before templating (inline, or the trimmed file content).
    """
    details = _details(config, templates, data)
    text = renderer(templates, data, "failed to template PagerDuty v2 message")
    payload: dict[str, Any] = {
        "summary": truncate_runes(text(config.description), MAX_SUMMARY_RUNES),
        "source": text(config.source),
        "severity": text(config.severity or "error"),
    }
    for name, value in (
        ("class", config.class_),
        ("component", config.component),
        ("group", config.group),
    ):
        if rendered := text(value):
            payload[name] = rendered
    if details:
        payload["custom_details"] = GoMap(details)
    images = [
        {"src": text(image.src), "alt": text(image.alt), "href": text(image.href)}
        for image in config.images
    ]
    links = [{"href": text(link.href), "text": text(link.text)} for link in config.links]
    message: dict[str, Any] = {
        "routing_key": _render_key(templates, routing_key, data, "routing key"),
        "dedup_key": group_key_hash(group_key),
        "event_action": _event_type(data),
        "payload": payload,
    }
    if client := text(config.client):
        message["client"] = client
    if client_url := text(config.client_url):
        message["client_url"] = client_url
    # Alertmanager drops an image whose src, or a link whose href, renders empty.
    if images := [image for image in images if image["src"]]:
        message["images"] = images
    if links := [link for link in links if link["href"]]:
        message["links"] = links
    return _encode(message, payload, "custom_details")


def pagerduty_v1_payload(
    config: PagerdutyConfig, templates: TemplateSet, data: Data, group_key: str, service_key: str
) -> bytes:
    """The Events API v1 body Alertmanager 0.25 sends (its shared struct gives the empty
    `"event_action":""` and `"payload":null`); client fields are sent on trigger only."""
    details = _details(config, templates, data)
    text = renderer(templates, data, "failed to template PagerDuty v1 message")
    description = truncate_runes(text(config.description), MAX_SUMMARY_RUNES)
    event_type = _event_type(data)
    message: dict[str, Any] = {
        "service_key": _render_key(templates, service_key, data, "service key"),
        "incident_key": group_key_hash(group_key),
        "event_type": event_type,
    }
    if description:
        message["description"] = description
    message["event_action"] = ""
    message["payload"] = None
    if event_type == "trigger":
        if client := text(config.client):
            message["client"] = client
        if client_url := text(config.client_url):
            message["client_url"] = client_url
    if details:
        message["details"] = GoMap(details)
    return _encode(message, message, "details")


class PagerdutyNotifier:
    """One `pagerduty_configs` entry: v1 when a service key (or file) is set, else v2."""

    def __init__(
        self,
        config: PagerdutyConfig,
        http: HttpSender,
        templates: TemplateSet,
        *,
        v1_url: str = V1_URL,
    ) -> None:
        self._config = config
        self._http = http
        self._templates = templates
        self._v1_url = v1_url
        self.v1 = bool(config.service_key.get_secret_value() or config.service_key_file)

    def __repr__(self) -> str:
        return f"PagerdutyNotifier(v1={self.v1})"

    async def notify(self, notification: Notification) -> int:
        """Send; the HTTP status on success, NotifyError otherwise."""
        config = self._config
        data = notification_data(notification)
        if self.v1:
            key = config.service_key.get_secret_value() or read_file(
                config.service_key_file, "service key from file"
            )
            body = pagerduty_v1_payload(config, self._templates, data, notification.groupKey, key)
            url = self._v1_url
        else:
            key = config.routing_key.get_secret_value() or read_file(
                config.routing_key_file, "routing key from file"
            )
            body = pagerduty_v2_payload(config, self._templates, data, notification.groupKey, key)
            url = config.url or V2_URL
        try:
            status, _ = await self._http.post(url, body, config.http_config)
        except NotifyError as exc:
            if self.v1 and exc.status == 403:  # v1's rate limit (AM retries it)
                raise NotifyError(
                    Reason.RATE_LIMITED, str(exc), retryable=True, status=exc.status
                ) from None
            raise
        return status
