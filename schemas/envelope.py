"""The versioned envelope around every Kafka message Tocsin produces."""

from __future__ import annotations

import itertools
import os
import socket
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.timefmt import format_ns, now_ns

__all__ = ["ENVELOPE_VERSION", "Envelope", "encode", "message_id", "producer_id"]

#: Bumped on an incompatible change of the envelope itself; payload schemas version separately.
ENVELOPE_VERSION = 1

T = TypeVar("T")
# Random per process (so ids never collide across processes and restarts) plus a counter:
# unique like a UUID4 at a fraction of its cost on the ingest hot path.
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count()


class Envelope(BaseModel, Generic[T]):
    """What every message value is: who produced what, when, under which schema, and the data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ENVELOPE_VERSION, description="envelope format version")
    schema_: str = Field(alias="schema", description="payload schema name, e.g. tocsin.alert/v1")
    id: str = Field(description="unique message id (32 hex digits); consumers dedup on it")
    producedAt: str = Field(description="RFC 3339 time the message was produced")
    producer: str = Field(description="service/host/pid of the producer")
    data: T


def producer_id(service: str) -> str:
    """A stable name for this producing process: service/host/pid."""
    return f"{service}/{socket.gethostname()}/{os.getpid()}"


def message_id() -> str:
    """A unique message id: 32 hex digits, a random per-process prefix and a counter."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def encode(
    schema: str, producer: str, data: dict[str, Any], produced_at: str | None = None
) -> bytes:
    """Serialize one enveloped message; the hot path builds dicts and skips model overhead."""
    return orjson.dumps(
        {
            "version": ENVELOPE_VERSION,
            "schema": schema,
            "id": message_id(),
            "producedAt": produced_at or format_ns(now_ns()),
            "producer": producer,
            "data": data,
        }
    )
