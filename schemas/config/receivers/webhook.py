"""`webhook_configs`: a POST of Alertmanager's webhook payload (version 4) to a URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, NonNegativeInt, SecretStr, model_validator

from schemas.config._base import ConfigModel, FieldProblem, Issue
from schemas.config._fields import SecretURL
from schemas.config.http import HTTPConfig

if TYPE_CHECKING:
    from schemas.config.config import GlobalConfig

__all__ = ["WebhookConfig"]


class WebhookConfig(ConfigModel):
    """One webhook target; the URL is kept secret because it often embeds a token."""

    send_resolved: bool = True
    url: SecretURL = SecretStr("")
    max_alerts: NonNegativeInt = Field(default=0, description="0 sends every alert")
    http_config: HTTPConfig = HTTPConfig()

    @model_validator(mode="after")
    def _has_url(self) -> WebhookConfig:
        if not self.url.get_secret_value():
            raise FieldProblem("missing URL in webhook config", "url")
        return self

    def with_globals(self, defaults: GlobalConfig) -> tuple[WebhookConfig, list[Issue]]:
        """The global `http_config` when this config has none."""
        if "http_config" in self.model_fields_set:
            return self, []
        return self.model_copy(update={"http_config": defaults.http_config}), []
