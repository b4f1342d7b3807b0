"""How an integration reports a failed send: a bounded reason and whether a retry can help."""

from __future__ import annotations

import enum

__all__ = ["NotifyError", "Reason"]


class Reason(enum.StrEnum):
    """Why a send failed: the only error-derived metric label."""

    CONNECTION = "connection"
    TIMEOUT = "timeout"
    SERVER_ERROR = "server_error"
    RATE_LIMITED = "rate_limited"
    CLIENT_ERROR = "client_error"
    TEMPLATE = "template"
    CONFIG = "config"


class NotifyError(Exception):
    """A failed send. Integrations raise it and never sleep or loop; one retry stage retries.

    The message must not contain secrets (URLs with tokens, keys, passwords): integrations build
    it from the status code and the response body only.
    """

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status
