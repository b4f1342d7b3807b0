"""The loaded configuration: `global` with Alertmanager 0.25's defaults, and the whole document."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, InstanceOf, PlainSerializer, SecretStr, model_validator

from schemas.config._base import ConfigModel, FieldProblem
from schemas.config._fields import URL, Duration, HostPort, SecretURL
from schemas.config.http import HTTPConfig
from schemas.config.inhibit import InhibitRule
from schemas.config.receivers import Receiver
from schemas.config.route import Route, RouteSpec
from schemas.config.timeinterval import TimeIntervalSet

__all__ = ["Config", "GlobalConfig"]

_EMPTY = SecretStr("")


class GlobalConfig(ConfigModel):
    """`global:`, every field defaulted as in Alertmanager 0.25 (an empty block too)."""

    resolve_timeout: Duration = Field(default=300.0, description="seconds")
    http_config: HTTPConfig = HTTPConfig()
    smtp_from: str = ""
    smtp_hello: str = "localhost"
    smtp_smarthost: HostPort = ""
    smtp_auth_username: str = ""
    smtp_auth_password: SecretStr = _EMPTY
    smtp_auth_password_file: str = ""
    smtp_auth_secret: SecretStr = _EMPTY
    smtp_auth_identity: str = ""
    smtp_require_tls: bool = True
    slack_api_url: SecretURL = _EMPTY
    slack_api_url_file: str = ""
    pagerduty_url: URL = "https://events.pagerduty.com/v2/enqueue"
    opsgenie_api_url: URL = "https://api.opsgenie.com/"
    opsgenie_api_key: SecretStr = _EMPTY
    opsgenie_api_key_file: str = ""
    wechat_api_url: URL = "https://qyapi.weixin.qq.com/cgi-bin/"
    wechat_api_secret: SecretStr = _EMPTY
    wechat_api_corp_id: str = ""
    victorops_api_url: URL = "https://alert.victorops.com/integrations/generic/20131114/alert/"
    victorops_api_key: SecretStr = _EMPTY
    victorops_api_key_file: str = ""
    telegram_api_url: URL = "https://api.telegram.org"
    webex_api_url: URL = "https://webexapis.com/v1/messages"

    @model_validator(mode="after")
    def _at_most_one(self) -> GlobalConfig:
        pairs = (
            ("slack_api_url", self.slack_api_url, self.slack_api_url_file),
            ("opsgenie_api_key", self.opsgenie_api_key, self.opsgenie_api_key_file),
            ("victorops_api_key", self.victorops_api_key, self.victorops_api_key_file),
            ("smtp_auth_password", self.smtp_auth_password, self.smtp_auth_password_file),
        )
        for name, inline, file in pairs:
            if inline.get_secret_value() and file:
                raise FieldProblem(
                    f"at most one of {name} & {name}_file must be configured", f"{name}_file"
                )
        return self


class Config(ConfigModel):
    """A loaded alertmanager.yml: validated, global defaults copied down, the route tree built."""

    global_: GlobalConfig = Field(alias="global")
    route: Annotated[
        InstanceOf[Route], PlainSerializer(lambda route: route.spec, return_type=RouteSpec)
    ] = Field(description="the built tree; dumped as written")
    inhibit_rules: list[InhibitRule] = []
    receivers: list[Receiver] = []
    time_intervals: dict[str, TimeIntervalSet] = Field(
        default={}, description="time_intervals and mute_time_intervals, by name"
    )
    templates: list[Path] = Field(
        default=[], description="template files found by the globs, in glob order"
    )
    source: str = Field(default="<string>", description="the file the config was read from")

    def receiver(self, name: str) -> Receiver:
        """The receiver called `name` (KeyError when there is none)."""
        for receiver in self.receivers:
            if receiver.name == name:
                return receiver
        raise KeyError(name)
