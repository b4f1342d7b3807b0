"""Tocsin's data contracts: pure pydantic models, no I/O."""

from schemas.alert import Alert, PostableAlert, fingerprint
from schemas.envelope import Envelope
from schemas.webhook import WebhookMessage

__all__ = ["Alert", "Envelope", "PostableAlert", "WebhookMessage", "fingerprint"]
