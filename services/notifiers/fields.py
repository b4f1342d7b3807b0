"""What the HTTP integrations share: their template data, rendering a config field, and reading a
secret from its file, each failure classified for the retry stage (never retryable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from schemas.group import Notification
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.template import Data, TemplateError, TemplateSet, template_data

__all__ = ["notification_data", "read_file", "renderer"]


def notification_data(notification: Notification) -> Data:
    """Alertmanager's template data for a notification."""
    return template_data(
        notification.receiver,
        notification.status,
        notification.alerts,
        notification.groupLabels,
        notification.externalURL,
    )


def renderer(templates: TemplateSet, data: Data, context: str = "") -> Callable[[str], str]:
    """A function rendering one field; a template error is NotifyError(TEMPLATE), prefixed by
    `context` when given."""

    def text(value: str) -> str:
        try:
            return templates.render(value, data)
        except TemplateError as exc:
            message = f"{context}: {exc}" if context else str(exc)
            raise NotifyError(Reason.TEMPLATE, message, retryable=False) from None

    return text


def read_file(path: str, what: str) -> str:
    """A secret's file content, trimmed; NotifyError(CONFIG) "failed to read <what>: <why>"."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        message = f"failed to read {what}: {exc.strerror}"
        raise NotifyError(Reason.CONFIG, message, retryable=False) from None
