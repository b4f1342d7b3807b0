"""`slack_configs`: a Slack incoming-webhook message, Alertmanager 0.25's fields and defaults."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, model_validator

from schemas.config._base import ConfigModel, FieldProblem, Issue
from schemas.config._fields import SecretURL
from schemas.config.http import HTTPConfig

if TYPE_CHECKING:
    from schemas.config.config import GlobalConfig

__all__ = ["SlackAction", "SlackConfig", "SlackConfirmationField", "SlackField"]


def _template(name: str) -> str:
    return '{{ template "slack.default.' + name + '" . }}'


class SlackConfirmationField(ConfigModel):
    """The confirmation dialog of a Slack action button."""

    text: str = ""
    title: str = ""
    ok_text: str = ""
    dismiss_text: str = ""

    @model_validator(mode="after")
    def _has_text(self) -> SlackConfirmationField:
        if not self.text:
            raise FieldProblem("missing text in Slack confirmation configuration", "text")
        return self


class SlackField(ConfigModel):
    """One attachment field; `short` unset means the config's `short_fields`."""

    title: str = ""
    value: str = ""
    short: bool | None = None

    @model_validator(mode="after")
    def _complete(self) -> SlackField:
        if not self.title:
            raise FieldProblem("missing title in Slack field configuration", "title")
        if not self.value:
            raise FieldProblem("missing value in Slack field configuration", "value")
        return self


class SlackAction(ConfigModel):
    """An attachment action; with a `url` it is a link button (name, value, confirm dropped)."""

    type: str = ""
    text: str = ""
    url: str = ""
    style: str = ""
    name: str = ""
    value: str = ""
    confirm: SlackConfirmationField | None = None

    @model_validator(mode="before")
    @classmethod
    def _link_drops_the_rest(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("url"):
            return {k: v for k, v in data.items() if k not in ("name", "value", "confirm")}
        return data

    @model_validator(mode="after")
    def _complete(self) -> SlackAction:
        if not self.type:
            raise FieldProblem("missing type in Slack action configuration", "type")
        if not self.text:
            raise FieldProblem("missing text in Slack action configuration", "text")
        if not self.url and not self.name:
            raise FieldProblem("missing name or url in Slack action configuration", "name")
        return self


class SlackConfig(ConfigModel):
    """One Slack target; the loader takes `global.slack_api_url(_file)` when both are unset."""

    send_resolved: bool = False
    http_config: HTTPConfig = HTTPConfig()
    api_url: SecretURL = SecretStr("")
    api_url_file: str = ""
    channel: str = ""
    username: str = _template("username")
    color: str = '{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}'
    title: str = _template("title")
    title_link: str = _template("titlelink")
    pretext: str = _template("pretext")
    text: str = _template("text")
    fields: list[SlackField] = []
    short_fields: bool = False
    footer: str = _template("footer")
    fallback: str = _template("fallback")
    callback_id: str = _template("callbackid")
    icon_emoji: str = _template("iconemoji")
    icon_url: str = _template("iconurl")
    image_url: str = ""
    thumb_url: str = ""
    link_names: bool = False
    mrkdwn_in: list[str] = []
    actions: list[SlackAction] = []

    @model_validator(mode="after")
    def _one_url(self) -> SlackConfig:
        if self.api_url.get_secret_value() and self.api_url_file:
            raise FieldProblem(
                "at most one of api_url & api_url_file must be configured", "api_url_file"
            )
        return self

    def with_globals(self, defaults: GlobalConfig) -> tuple[SlackConfig, list[Issue]]:
        """The global http_config and API URL (inline or file) where this config has none."""
        update: dict[str, Any] = {}
        if "http_config" not in self.model_fields_set:
            update["http_config"] = defaults.http_config
        if not self.api_url.get_secret_value() and not self.api_url_file:
            if not defaults.slack_api_url.get_secret_value() and not defaults.slack_api_url_file:
                message = "no global Slack API URL set either inline or in a file"
                return self.model_copy(update=update), [(("api_url",), message)]
            update["api_url"] = defaults.slack_api_url
            update["api_url_file"] = defaults.slack_api_url_file
        return self.model_copy(update=update), []
