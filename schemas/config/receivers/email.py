"""`email_configs`: an SMTP notification, Alertmanager 0.25's fields and defaults."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator, model_validator

from schemas.config._base import ConfigModel, FieldProblem, Issue
from schemas.config._fields import HostPort
from schemas.config._gostr import go_quote
from schemas.config.http import TLSConfig

if TYPE_CHECKING:
    from schemas.config.config import GlobalConfig

__all__ = ["DEFAULT_SUBJECT", "EmailConfig", "canonical_header"]

DEFAULT_SUBJECT = '{{ template "email.default.subject" . }}'
"""The Subject header added when the config sets none."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def canonical_header(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: `x-foo` -> `X-Foo`; invalid names are left alone."""
    if _TOKEN.fullmatch(name) is None:
        return name
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class EmailConfig(ConfigModel):
    """One email notification target; the loader fills unset SMTP fields from `global`."""

    send_resolved: bool = False
    to: str = ""
    from_: str = Field(default="", alias="from")
    hello: str = ""
    smarthost: HostPort = ""
    auth_username: str = ""
    auth_password: SecretStr = SecretStr("")
    auth_password_file: str = ""
    auth_secret: SecretStr = SecretStr("")
    auth_identity: str = ""
    headers: dict[str, str] = {}
    html: str = '{{ template "email.default.html" . }}'
    text: str = ""
    require_tls: bool = Field(default=True, description="global smtp_require_tls when unset")
    tls_config: TLSConfig = TLSConfig()

    @field_validator("headers")
    @classmethod
    def _canonical_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in headers.items():
            canonical = canonical_header(name)
            if canonical in out:
                raise FieldProblem(f"duplicate header {go_quote(canonical)} in email config", name)
            out[canonical] = value
        return out

    @model_validator(mode="after")
    def _has_to(self) -> EmailConfig:
        if not self.to:
            raise FieldProblem("missing to address in email config", "to")
        return self

    def with_globals(self, defaults: GlobalConfig) -> tuple[EmailConfig, list[Issue]]:
        """Unset SMTP fields taken from `global`, and what is still missing."""
        issues: list[Issue] = []
        smarthost = self.smarthost or defaults.smtp_smarthost
        if not smarthost:
            issues.append((("smarthost",), "no global SMTP smarthost set"))
        sender = self.from_ or defaults.smtp_from
        if not sender:
            issues.append((("from",), "no global SMTP from set"))
        own_password = self.auth_password.get_secret_value() or self.auth_password_file
        update = {
            "smarthost": smarthost,
            "from_": sender,
            "hello": self.hello or defaults.smtp_hello,
            "auth_username": self.auth_username or defaults.smtp_auth_username,
            "auth_password": self.auth_password if own_password else defaults.smtp_auth_password,
            "auth_password_file": (
                self.auth_password_file if own_password else defaults.smtp_auth_password_file
            ),
            "auth_secret": self.auth_secret
            if self.auth_secret.get_secret_value()
            else defaults.smtp_auth_secret,
            "auth_identity": self.auth_identity or defaults.smtp_auth_identity,
            "require_tls": (
                self.require_tls
                if "require_tls" in self.model_fields_set
                else defaults.smtp_require_tls
            ),
        }
        return self.model_copy(update=update), issues
