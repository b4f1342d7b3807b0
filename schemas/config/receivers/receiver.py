"""A named receiver: the integrations one notification fans out to."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from schemas.config._base import ConfigModel, FieldProblem
from schemas.config.receivers.email import EmailConfig
from schemas.config.receivers.pagerduty import PagerdutyConfig
from schemas.config.receivers.slack import SlackConfig
from schemas.config.receivers.webhook import WebhookConfig

__all__ = ["UNSUPPORTED_INTEGRATIONS", "Receiver"]

UNSUPPORTED_INTEGRATIONS = (
    "opsgenie_configs",
    "wechat_configs",
    "pushover_configs",
    "victorops_configs",
    "sns_configs",
    "telegram_configs",
    "discord_configs",
    "webex_configs",
)
"""Alertmanager 0.25 integrations that Tocsin refuses to load rather than silently ignore."""

_HIDDEN: Any = Field(default=None, exclude=True, repr=False)


class Receiver(ConfigModel):
    """A receiver; one with no integrations is valid and drops what it gets."""

    name: str = ""
    email_configs: list[EmailConfig] = []
    slack_configs: list[SlackConfig] = []
    pagerduty_configs: list[PagerdutyConfig] = []
    webhook_configs: list[WebhookConfig] = []

    opsgenie_configs: Any = _HIDDEN
    wechat_configs: Any = _HIDDEN
    pushover_configs: Any = _HIDDEN
    victorops_configs: Any = _HIDDEN
    sns_configs: Any = _HIDDEN
    telegram_configs: Any = _HIDDEN
    discord_configs: Any = _HIDDEN
    webex_configs: Any = _HIDDEN

    @field_validator(*UNSUPPORTED_INTEGRATIONS, mode="before")
    @classmethod
    def _not_yet(cls, value: Any, info: ValidationInfo) -> Any:
        raise ValueError(f"{info.field_name} is not supported yet by Tocsin")

    @model_validator(mode="after")
    def _named(self) -> Receiver:
        if not self.name:
            raise FieldProblem("missing name in receiver", "name")
        return self

    @property
    def integrations(self) -> list[EmailConfig | SlackConfig | PagerdutyConfig | WebhookConfig]:
        """Every integration config, in the order Alertmanager builds its notifiers."""
        return [
            *self.webhook_configs,
            *self.email_configs,
            *self.pagerduty_configs,
            *self.slack_configs,
        ]
