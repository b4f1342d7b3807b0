"""Slack: one attachment POSTed as JSON to `api_url`, byte for byte as Alertmanager 0.25 sends it
(AM `notify/slack/slack.go`). A bot token in `http_config.authorization` with `api_url`
https://slack.com/api/chat.postMessage posts the same body to the Web API, as 0.25 does.

Sent with HttpSender and gojson, not slack-sdk. slack-sdk 3.48's `AsyncWebhookClient` cannot
send Alertmanager's bytes: `send_dict` takes a dict and `_perform_http_request` encodes it with
`json.dumps(body)` (webhook/async_client.py:152), which writes `", "`/`": "` separators,
`\\u00fc` for every non-ASCII character and leaves `<`, `>`, `&` unescaped where Go writes compact
JSON, raw UTF-8 and `\\u003c`/`\\u003e`/`\\u0026`, with a trailing newline; it also forces
`Content-Type: application/json;charset=utf-8` (:153) and its own User-Agent, and builds a new
session per call unless handed one. `AsyncWebClient.chat_postMessage` has the same `json.dumps`
encoding (through aiohttp's `json=`), reorders the keys (`channel`, `text`, ...,
`attachments`, ..., `username`) and warns when `text` is missing. Neither applies
`http_config` (basic auth, credentials files, TLS settings, proxy). So both endpoints go
through HttpSender, which also classifies transport errors and statuses for the retry stage.

Classification: 2xx is success; 5xx and 429 (with Retry-After) are retryable, other 4xx are not
(a 429 is not retried by Alertmanager 0.25, which retries only 5xx; Slack documents 429 as
"retry after"). A 2xx whose body is Web API JSON with `"ok": false` is an error (Tocsin's
extension, as Alertmanager 0.26+ does): `ratelimited` and Slack's transient server errors are
retryable, the rest (`invalid_auth`, `channel_not_found`, ...) are not.
"""

from __future__ import annotations

import json
from typing import Any

from schemas.config.receivers.slack import SlackConfig
from schemas.group import Notification
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.fields import notification_data, read_file, renderer
from services.notifiers.gojson import dumps
from services.notifiers.http import HttpSender
from services.notifiers.remediation_hints import PendingHints, approval_text
from services.notifiers.template import Data, TemplateSet
from services.notifiers.template.gofmt import go_quote

__all__ = ["MAX_TITLE_RUNES", "SlackNotifier", "slack_payload"]

MAX_TITLE_RUNES = 1024
DEFAULT_MRKDWN_IN = ("fallback", "pretext", "text")

_RETRYABLE_API_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_RATE_LIMITED_API_ERRORS = frozenset({"ratelimited", "rate_limited"})


def _truncate_runes(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] if limit <= 3 else text[: limit - 1] + "…"


def _omit_empty(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for key, value in pairs if value}


def slack_payload(config: SlackConfig, templates: TemplateSet, data: Data) -> bytes:
    """The body Alertmanager 0.25 sends; NotifyError(TEMPLATE) if a field fails to render.

    Key order and omission follow Go's structs: `text`, `fallback`, `callback_id` and `footer`
    are always there, the other strings only when they render non-empty.
    """
    return dumps(_request(config, templates, data), newline=True)


def _request(config: SlackConfig, templates: TemplateSet, data: Data) -> dict[str, Any]:
    text = renderer(templates, data)
    attachment: dict[str, Any] = _omit_empty(
        [
            ("title", _truncate_runes(text(config.title), MAX_TITLE_RUNES)),
            ("title_link", text(config.title_link)),
            ("pretext", text(config.pretext)),
        ]
    )
    attachment["text"] = text(config.text)
    attachment["fallback"] = text(config.fallback)
    attachment["callback_id"] = text(config.callback_id)
    if config.fields:
        attachment["fields"] = [
            {
                **_omit_empty([("title", text(field.title)), ("value", text(field.value))]),
                "short": config.short_fields if field.short is None else field.short,
            }
            for field in config.fields
        ]
    if config.actions:
        actions = []
        for action in config.actions:
            rendered = _omit_empty(
                [
                    ("type", text(action.type)),
                    ("text", text(action.text)),
                    ("url", text(action.url)),
                    ("style", text(action.style)),
                    ("name", text(action.name)),
                    ("value", text(action.value)),
                ]
            )
            if action.confirm is not None:
                confirm = action.confirm
                rendered["confirm"] = _omit_empty(
                    [
                        ("text", text(confirm.text)),
                        ("title", text(confirm.title)),
                        ("ok_text", text(confirm.ok_text)),
                        ("dismiss_text", text(confirm.dismiss_text)),
                    ]
                )
            actions.append(rendered)
        attachment["actions"] = actions
    attachment |= _omit_empty(
        [("image_url", text(config.image_url)), ("thumb_url", text(config.thumb_url))]
    )
    attachment["footer"] = text(config.footer)
    if color := text(config.color):
        attachment["color"] = color
    attachment["mrkdwn_in"] = list(config.mrkdwn_in or DEFAULT_MRKDWN_IN)
    request = _omit_empty(
        [
            ("channel", text(config.channel)),
            ("username", text(config.username)),
            ("icon_emoji", text(config.icon_emoji)),
            ("icon_url", text(config.icon_url)),
            ("link_names", config.link_names),
        ]
    )
    request["attachments"] = [attachment]
    return request


def _api_error(body: str) -> str | None:
    """The Web API's `error` when a 2xx body is `{"ok": false, ...}`, else None."""
    if not body.lstrip().startswith("{"):
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("ok") is not False:
        return None
    return str(answer.get("error") or "unknown_error")


class SlackNotifier:
    """One `slack_configs` entry."""

    def __init__(
        self,
        config: SlackConfig,
        http: HttpSender,
        templates: TemplateSet,
        hints: PendingHints | None = None,
    ) -> None:
        self._config = config
        self._http = http
        self._templates = templates
        self._hints = hints

    def __repr__(self) -> str:
        return "SlackNotifier()"

    async def notify(self, notification: Notification) -> int:
        """Send; the HTTP status on success, NotifyError otherwise."""
        config = self._config
        data = notification_data(notification)
        request = _request(config, self._templates, data)
        if self._hints is not None:
            await self._add_approval_hint(request, notification)
        body = dumps(request, newline=True)
        # The channel names the target in errors, as Alertmanager's `channel "#x": ...`.
        where = f"channel {go_quote(request.get('channel', ''))}"
        url = config.api_url.get_secret_value() or read_file(config.api_url_file, "api_url_file")
        try:
            status, answer = await self._http.post(url, body, config.http_config)
        except NotifyError as exc:
            raise NotifyError(
                exc.reason,
                f"{where}: {exc}",
                retryable=exc.retryable,
                retry_after=exc.retry_after,
                status=exc.status,
            ) from None
        error = _api_error(answer)
        if error is None:
            return status
        message = f"{where}: error response from Slack: {error}"
        if error in _RATE_LIMITED_API_ERRORS:
            raise NotifyError(Reason.RATE_LIMITED, message, retryable=True, status=status)
        if error in _RETRYABLE_API_ERRORS:
            raise NotifyError(Reason.SERVER_ERROR, message, retryable=True, status=status)
        raise NotifyError(Reason.CLIENT_ERROR, message, retryable=False, status=status)

    async def _add_approval_hint(self, request: dict[str, Any], notification: Notification) -> None:
        """Append an attachment naming the remediations waiting for approval, if any.

        Without pending remediations the body stays Alertmanager's byte for byte. A Redis error
        only costs the hint: the page itself matters more."""
        assert self._hints is not None
        try:
            hints = await self._hints.for_notification(notification)
        except Exception:  # noqa: BLE001 - the hint is an extra; never fail a page for it
            return
        if not hints:
            return
        text = approval_text(hints, notification.externalURL)
        request["attachments"].append(
            {
                "title": "Remediation waiting for approval",
                "text": text,
                "fallback": f"{len(hints)} remediation(s) waiting for approval",
                "color": "#439FE0",
                "mrkdwn_in": ["text"],
            }
        )
