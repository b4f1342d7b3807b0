"""`pagerduty_configs`: a PagerDuty event (Events API v2, or v1 with a service key)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr, field_validator, model_validator

from schemas.config._base import ConfigModel, FieldProblem, Issue
from schemas.config._fields import URL
from schemas.config.http import HTTPConfig

if TYPE_CHECKING:
    from schemas.config.config import GlobalConfig

__all__ = ["DEFAULT_DETAILS", "PagerdutyConfig", "PagerdutyImage", "PagerdutyLink"]

DEFAULT_DETAILS = {
    "firing": '{{ template "pagerduty.default.instances" .Alerts.Firing }}',
    "resolved": '{{ template "pagerduty.default.instances" .Alerts.Resolved }}',
    "num_firing": "{{ .Alerts.Firing | len }}",
    "num_resolved": "{{ .Alerts.Resolved | len }}",
}
"""Details every event carries unless the config sets the same key."""

_CLIENT = '{{ template "pagerduty.default.client" . }}'


class PagerdutyImage(ConfigModel):
    """An image attached to the event (dropped at send time when `src` renders empty)."""

    src: str = ""
    alt: str = ""
    href: str = ""


class PagerdutyLink(ConfigModel):
    """A link attached to the event (dropped at send time when `href` renders empty)."""

    href: str = ""
    text: str = ""


class PagerdutyConfig(ConfigModel):
    """One PagerDuty target; a service key selects Events API v1 even with a routing key."""

    send_resolved: bool = True
    http_config: HTTPConfig = HTTPConfig()
    service_key: SecretStr = SecretStr("")
    service_key_file: str = ""
    routing_key: SecretStr = SecretStr("")
    routing_key_file: str = ""
    url: URL = ""
    client: str = _CLIENT
    client_url: str = '{{ template "pagerduty.default.clientURL" . }}'
    description: str = '{{ template "pagerduty.default.description" .}}'
    details: dict[str, str] = DEFAULT_DETAILS
    images: list[PagerdutyImage] = []
    links: list[PagerdutyLink] = []
    source: str = ""
    severity: str = ""
    class_: str = Field(default="", alias="class")
    component: str = ""
    group: str = ""

    @field_validator("details")
    @classmethod
    def _default_details(cls, details: dict[str, str]) -> dict[str, str]:
        return DEFAULT_DETAILS | details

    @model_validator(mode="before")
    @classmethod
    def _source_defaults_to_client(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("source"):
            client = data.get("client")
            return data | {"source": _CLIENT if client is None else client}
        return data

    @model_validator(mode="after")
    def _keys(self) -> PagerdutyConfig:
        routing, service = self.routing_key.get_secret_value(), self.service_key.get_secret_value()
        if not (routing or service or self.routing_key_file or self.service_key_file):
            raise FieldProblem("missing service or routing key in PagerDuty config", "routing_key")
        if routing and self.routing_key_file:
            raise FieldProblem(
                "at most one of routing_key & routing_key_file must be configured",
                "routing_key_file",
            )
        if service and self.service_key_file:
            raise FieldProblem(
                "at most one of service_key & service_key_file must be configured",
                "service_key_file",
            )
        return self

    def with_globals(self, defaults: GlobalConfig) -> tuple[PagerdutyConfig, list[Issue]]:
        """The global http_config and pagerduty_url where this config has none."""
        update: dict[str, Any] = {}
        if "http_config" not in self.model_fields_set:
            update["http_config"] = defaults.http_config
        if not self.url:
            update["url"] = defaults.pagerduty_url
        return self.model_copy(update=update), []
