"""Every Kafka topic Tocsin uses: its name, its key, and the schema of its messages."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from schemas.alert import Alert

__all__ = ["ALERTS", "TOPICS", "Topic"]


@dataclass(frozen=True)
class Topic:
    """A topic: name, what its message key is, which schema its envelope carries."""

    name: str
    key: str
    schema: str
    model: type[BaseModel]
    description: str


ALERTS = Topic(
    name="alerts",
    key="alert fingerprint (16 hex digits)",
    schema="tocsin.alert/v1",
    model=Alert,
    description="Every alert accepted by ingest, one message per alert, in arrival order per key.",
)

#: Every topic, for documentation and JSON Schema generation.
TOPICS: tuple[Topic, ...] = (ALERTS,)
