"""The HTTP client config of Prometheus's common library (`http_config`), its common subset."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from schemas.config._base import ConfigModel, FieldProblem
from schemas.config._urls import check_url_syntax

__all__ = ["Authorization", "BasicAuth", "HTTPConfig", "TLSConfig"]

_NOT_YET = ("oauth2",)


def _join(base: Path, path: str) -> str:
    return str(base / path) if path and not Path(path).is_absolute() else path


class BasicAuth(ConfigModel):
    """HTTP basic authentication."""

    username: str = ""
    password: SecretStr = SecretStr("")
    password_file: str = ""


class Authorization(ConfigModel):
    """An `Authorization: <type> <credentials>` header (type defaults to Bearer)."""

    type: str = "Bearer"
    credentials: SecretStr = SecretStr("")
    credentials_file: str = ""

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        value = value.strip() or "Bearer"
        if value.lower() == "basic":
            raise ValueError(
                'authorization type cannot be set to "basic", use "basic_auth" instead'
            )
        return value


class TLSConfig(ConfigModel):
    """TLS client settings."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""
    insecure_skip_verify: bool = False
    min_version: Literal["", "TLS10", "TLS11", "TLS12", "TLS13"] = ""
    max_version: Literal["", "TLS10", "TLS11", "TLS12", "TLS13"] = ""

    def with_directory(self, base: Path) -> TLSConfig:
        """The same settings with relative file paths joined to `base`."""
        return self.model_copy(
            update={
                "ca_file": _join(base, self.ca_file),
                "cert_file": _join(base, self.cert_file),
                "key_file": _join(base, self.key_file),
            }
        )


class HTTPConfig(ConfigModel):
    """How an integration's HTTP client authenticates, proxies and verifies TLS."""

    basic_auth: BasicAuth | None = None
    authorization: Authorization | None = None
    bearer_token: SecretStr = SecretStr("")
    bearer_token_file: str = ""
    proxy_url: SecretStr = Field(default=SecretStr(""), description="may carry credentials")
    tls_config: TLSConfig = TLSConfig()
    follow_redirects: bool = True
    enable_http2: bool = True
    oauth2: Any = Field(default=None, exclude=True, repr=False)

    @field_validator(*_NOT_YET, mode="before")
    @classmethod
    def _not_yet(cls, value: Any, info: ValidationInfo) -> Any:
        raise ValueError(f"{info.field_name} is not supported yet by Tocsin")

    @field_validator("proxy_url")
    @classmethod
    def _proxy_url(cls, value: SecretStr) -> SecretStr:
        check_url_syntax(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> HTTPConfig:
        bearer = bool(self.bearer_token.get_secret_value()) or bool(self.bearer_token_file)
        if self.bearer_token.get_secret_value() and self.bearer_token_file:
            raise FieldProblem(
                "at most one of bearer_token & bearer_token_file must be configured",
                "bearer_token_file",
            )
        if self.basic_auth is not None and bearer:
            raise FieldProblem(
                "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be "
                "configured",
                "basic_auth",
            )
        basic = self.basic_auth
        if basic is not None and basic.password.get_secret_value() and basic.password_file:
            raise FieldProblem(
                "at most one of basic_auth password & password_file must be configured",
                "basic_auth",
                "password_file",
            )
        auth = self.authorization
        if auth is not None:
            if bearer:
                raise FieldProblem(
                    "authorization is not compatible with bearer_token & bearer_token_file",
                    "authorization",
                )
            if auth.credentials.get_secret_value() and auth.credentials_file:
                raise FieldProblem(
                    "at most one of authorization credentials & credentials_file must be "
                    "configured",
                    "authorization",
                    "credentials_file",
                )
            if basic is not None:
                raise FieldProblem(
                    "at most one of basic_auth, oauth2 & authorization must be configured",
                    "authorization",
                )
        return self

    def with_directory(self, base: Path) -> HTTPConfig:
        """The same settings with relative file paths joined to `base` (as Alertmanager does)."""
        update: dict[str, Any] = {
            "bearer_token_file": _join(base, self.bearer_token_file),
            "tls_config": self.tls_config.with_directory(base),
        }
        if self.basic_auth is not None:
            update["basic_auth"] = self.basic_auth.model_copy(
                update={"password_file": _join(base, self.basic_auth.password_file)}
            )
        if self.authorization is not None:
            update["authorization"] = self.authorization.model_copy(
                update={"credentials_file": _join(base, self.authorization.credentials_file)}
            )
        return self.model_copy(update=update)

    @property
    def authorization_header(self) -> tuple[str, SecretStr, str] | None:
        """(type, credentials, credentials_file) to send, the legacy bearer_token included."""
        if self.authorization is not None:
            auth = self.authorization
            return auth.type, auth.credentials, auth.credentials_file
        if self.bearer_token.get_secret_value() or self.bearer_token_file:
            return "Bearer", self.bearer_token, self.bearer_token_file
        return None
