"""The alert: Alertmanager's identity (fingerprint), validation and the `alerts` topic payload."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.timefmt import parse_ns

__all__ = [
    "Alert",
    "AlertProblem",
    "PostableAlert",
    "fingerprint",
    "fingerprint_py",
    "invalid_label_name",
    "label_name_ok",
    "validate_alert",
]

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = 0xFFFFFFFFFFFFFFFF
# Label names repeat across alerts; remembering the ones already checked keeps the hot path cheap.
_known_good_names: set[str] = set()


def label_name_ok(name: str) -> bool:
    """Whether `name` is a valid classic Prometheus label name (no colon, not empty)."""
    if name in _known_good_names:
        return True
    if _LABEL_NAME.fullmatch(name) is None:
        return False
    if len(_known_good_names) < 10_000:
        _known_good_names.add(name)
    return True


def invalid_label_name(labels: Mapping[str, str]) -> str | None:
    """The first invalid label name in `labels`, or None when all are valid."""
    for name in labels:
        if not label_name_ok(name):
            return name
    return None


def fingerprint_py(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint: FNV-1a 64 over bytewise-sorted labels, as 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels, key=lambda s: s.encode()):
        for byte in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


_fingerprint_c: Callable[[dict[str, str]], str] | None
try:  # the C build of the same function (schemas/_fnv.c), about 20x faster
    from schemas._fnv import fingerprint as _fingerprint_c
except ImportError:  # pragma: no cover - no compiler at install time
    _fingerprint_c = None


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (the C build when available)."""
    if _fingerprint_c is not None and type(labels) is dict:
        return str(_fingerprint_c(labels))
    return fingerprint_py(labels)


class PostableAlert(BaseModel):
    """One alert as Prometheus posts it to `POST /api/v2/alerts` (Alertmanager's postableAlert)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str | None = None
    endsAt: str | None = None
    generatorURL: str = ""


class Alert(BaseModel):
    """An accepted alert, the payload of one message on the `alerts` topic (keyed by fingerprint).

    `endsAt` is None when the sender gave none: the router then applies `resolve_timeout` from
    the routing config, as Alertmanager does. Timestamps are RFC 3339 strings (nanoseconds kept).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str
    endsAt: str | None = None
    generatorURL: str = ""
    status: Literal["firing", "resolved"]
    fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")
    receivedAt: str
    source: Literal["api.v2", "webhook"]


class AlertProblem(BaseModel):
    """Why one alert of a request was refused: a JSON Pointer into the body and a message."""

    model_config = ConfigDict(frozen=True)

    path: str
    message: str


def _pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def validate_alert(
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    starts_ns: int,
    ends_ns: int | None,
    where: tuple[str | int, ...],
) -> AlertProblem | None:
    """Alertmanager's per-alert checks (types.Alert.Validate), in its order; None when valid."""
    if ends_ns is not None and ends_ns < starts_ns:
        return AlertProblem(
            path=_pointer(*where, "endsAt"), message="start time must be before end time"
        )
    bad = invalid_label_name(labels)
    if bad is not None:
        return AlertProblem(
            path=_pointer(*where, "labels", bad), message=f'invalid label set: invalid name "{bad}"'
        )
    if not labels:
        return AlertProblem(
            path=_pointer(*where, "labels"), message="at least one label pair required"
        )
    bad = invalid_label_name(annotations)
    if bad is not None:
        return AlertProblem(
            path=_pointer(*where, "annotations", bad),
            message=f'invalid annotations: invalid name "{bad}"',
        )
    return None


def parse_time_field(
    value: str | None, where: tuple[str | int, ...], field: str
) -> int | AlertProblem | None:
    """Parse an optional timestamp field, returning nanoseconds, None, or the problem."""
    if value is None or value == "":
        return None
    try:
        return parse_ns(value)
    except ValueError as exc:
        return AlertProblem(path=_pointer(*where, field), message=str(exc))


__all__ += ["parse_time_field"]
