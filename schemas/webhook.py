"""Alertmanager's webhook payload, version 4: what a `webhook_config` POSTs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["WebhookAlert", "WebhookMessage"]


class WebhookAlert(BaseModel):
    """One alert inside a webhook notification."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class WebhookMessage(BaseModel):
    """The webhook body: the template data of one aggregation group plus version and group key."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    receiver: str
    status: Literal["firing", "resolved"]
    alerts: list[WebhookAlert]
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    version: Literal["4"]
    groupKey: str
    truncatedAlerts: int = Field(default=0, ge=0)
