"""Optional API authentication: Bearer token and/or basic auth, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

from services.runtime.http import json_error
from services.runtime.settings import AuthSettings, read_secret

__all__ = ["Authenticator"]


class Authenticator:
    """Accepts a request that presents any configured credential; no credential configured: all."""

    def __init__(
        self, bearer_token: str | None, basic_user: str | None, basic_password: str | None
    ) -> None:
        self._bearer = bearer_token.encode() if bearer_token else None
        self._basic = (
            f"{basic_user}:{basic_password or ''}".encode() if basic_user is not None else None
        )
        schemes = []
        if self._bearer is not None:
            schemes.append('Bearer realm="tocsin"')
        if self._basic is not None:
            schemes.append('Basic realm="tocsin"')
        self._challenge = ", ".join(schemes)

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Authenticator:
        """The authenticator the `web.auth` settings describe (secrets read from their files)."""
        return cls(
            read_secret(settings.bearer_token, settings.bearer_token_file),
            settings.basic_username,
            read_secret(settings.basic_password, settings.basic_password_file),
        )

    @property
    def enabled(self) -> bool:
        """Whether any credential is required."""
        return bool(self._challenge)

    def check(self, request: web.Request) -> web.Response | None:
        """None when the request may proceed, else the 401 answer to give."""
        if not self.enabled:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if self._bearer is not None and scheme == "bearer":
            if hmac.compare_digest(value.strip().encode(), self._bearer):
                return None
        elif self._basic is not None and scheme == "basic":
            try:
                presented = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                presented = b""
            if hmac.compare_digest(presented, self._basic):
                return None
        message = "authentication required" if not header else "invalid credentials"
        return json_error(401, message, {"WWW-Authenticate": self._challenge})
