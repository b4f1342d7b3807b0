"""Receivers and their integration configs, one module per integration."""

from schemas.config.receivers.email import EmailConfig
from schemas.config.receivers.pagerduty import PagerdutyConfig
from schemas.config.receivers.receiver import UNSUPPORTED_INTEGRATIONS, Receiver
from schemas.config.receivers.slack import SlackConfig
from schemas.config.receivers.webhook import WebhookConfig

__all__ = [
    "UNSUPPORTED_INTEGRATIONS",
    "EmailConfig",
    "PagerdutyConfig",
    "Receiver",
    "SlackConfig",
    "WebhookConfig",
]
