"""The versioned envelope around every Kafka message Tocsin produces."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.timefmt import format_ns, now_ns

__all__ = ["ENVELOPE_VERSION", "Envelope", "encode", "producer_id"]

#: Bumped on an incompatible change of the envelope itself; payload schemas version separately.
ENVELOPE_VERSION = 1

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """What every message value is: who produced what, when, under which schema, and the data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ENVELOPE_VERSION, description="envelope format version")
    schema_: str = Field(alias="schema", description="payload schema name, e.g. tocsin.alert/v1")
    id: str = Field(description="unique message id (UUID4 hex); consumers dedup on it")
    producedAt: str = Field(description="RFC 3339 time the message was produced")
    producer: str = Field(description="service/host/pid of the producer")
    data: T


def producer_id(service: str) -> str:
    """A stable name for this producing process: service/host/pid."""
    return f"{service}/{socket.gethostname()}/{os.getpid()}"


def encode(schema: str, producer: str, data: dict[str, Any], at_ns: int | None = None) -> bytes:
    """Serialize one enveloped message; the hot path builds dicts and skips model overhead."""
    return orjson.dumps(
        {
            "version": ENVELOPE_VERSION,
            "schema": schema,
            "id": uuid.uuid4().hex,
            "producedAt": format_ns(now_ns() if at_ns is None else at_ns),
            "producer": producer,
            "data": data,
        }
    )
