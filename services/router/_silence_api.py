"""The HTTP side of silences: the postableSilence body as go-openapi decodes it, and error bodies.

Alertmanager's API first unmarshals the JSON (type errors: 400), then validates it against its
OpenAPI schema (first problem only: 422); the messages here are the ones it sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from schemas.config._gostr import go_quote
from schemas.timefmt import parse_ns

__all__ = ["Posted", "SilenceError", "decode_postable"]


class SilenceError(Exception):
    """A refused silence request: the HTTP status and Alertmanager's message.

    `code` is set for errors that Alertmanager's OpenAPI layer reports (`{"code", "message"}`
    bodies); the others are bare JSON strings. `expired_id` names a silence that Alertmanager
    0.25 expires even though the request fails (an invalid update of it).
    """

    def __init__(
        self, status: int, message: str, code: int | None = None, expired_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.expired_id = expired_id

    def body(self) -> bytes:
        """The response body Alertmanager sends for this error, byte for byte."""
        if self.code is None:
            return _go_json(self.message) + b"\n"
        return _go_json({"code": self.code, "message": self.message})


def _go_json(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


_GO_ZERO_NS = -62_135_596_800 * 1_000_000_000  # Go's zero time.Time, what "" decodes to
_GO_TYPES = {
    "id": ".id",
    "comment": "Silence.comment",
    "createdBy": "Silence.createdBy",
    "endsAt": "Silence.endsAt",
    "startsAt": "Silence.startsAt",
    "matchers": "Silence.matchers",
}
_MATCHER_KEYS = {"name": "string", "value": "string", "isRegex": "bool", "isEqual": "bool"}


@dataclass(slots=True)
class Posted:
    """A decoded body: matchers as (name, value, isRegex, isEqual), times in nanoseconds."""

    id: str
    matchers: list[tuple[str, str, bool, bool]]
    starts_ns: int
    ends_ns: int
    created_by: str
    comment: str


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _parse_failed(reason: str) -> SilenceError:
    return SilenceError(400, f'parsing silence body from "" failed, because {reason}', 400)


def _wrong_type(value: Any, field: str, go_type: str) -> str:
    return f"json: cannot unmarshal {_kind(value)} into Go struct field {field} of type {go_type}"


def _canonical(data: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    # Go's encoding/json matches keys case-insensitively and ignores unknown ones.
    by_fold = {name.casefold(): name for name in names}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = by_fold.get(key.casefold())
        if name is not None and value is not None:  # null leaves a Go field unset
            out[name] = value
    return out


def _parse_time(text: str) -> int:
    if text == "":
        return _GO_ZERO_NS
    for candidate in (text, text + "Z"):  # go-openapi also takes a time without zone, as UTC
        try:
            return parse_ns(candidate)
        except ValueError:
            continue
    raise _parse_failed(f"parsing time {go_quote(text)}: not an RFC 3339 time")


def _decode_matchers(value: Any) -> tuple[list[dict[str, Any]], str | None]:
    if not isinstance(value, list):
        return [], _wrong_type(value, "Silence.matchers", "models.Matchers")
    items: list[dict[str, Any]] = []
    problem = None
    for item in value:
        if item is not None and not isinstance(item, dict):
            problem = problem or _wrong_type(item, "Silence.matchers", "models.Matcher")
            continue
        fields = _canonical(item or {}, _MATCHER_KEYS)
        for key, go_type in _MATCHER_KEYS.items():
            want = bool if go_type == "bool" else str
            if key in fields and not isinstance(fields[key], want):
                problem = problem or _wrong_type(fields[key], f"Matcher.matchers.{key}", go_type)
        items.append(fields)
    return items, problem


def decode_postable(body: Any) -> Posted:
    """Decode and schema-check a POST body; SilenceError as Alertmanager's API layer answers."""
    if not isinstance(body, dict):
        raise _parse_failed(
            f"json: cannot unmarshal {_kind(body)} into Go value of type "
            'struct { ID string "json:\\"id,omitempty\\"" }'
        )
    fields = _canonical(body, _GO_TYPES)
    if "id" in fields and not isinstance(fields["id"], str):
        raise _parse_failed(_wrong_type(fields["id"], ".id", "string"))
    problem: str | None = None  # Go keeps decoding after a type error and reports the first
    matchers: list[dict[str, Any]] | None = None
    for key, value in fields.items():
        if key == "matchers":
            matchers, found = _decode_matchers(value)
            problem = problem or found
        elif not isinstance(value, str):
            problem = problem or _wrong_type(value, _GO_TYPES[key], "string")
        elif key in ("startsAt", "endsAt"):
            fields[key] = _parse_time(value)  # a bad time stops decoding at once
    if problem is not None:
        raise _parse_failed(problem)
    # Then the OpenAPI validation, which reports the first problem in its (alphabetical) order.
    for key in ("comment", "createdBy", "endsAt"):
        if key not in fields:
            raise SilenceError(422, f"{key} in body is required", 602)
    if matchers is None:
        raise SilenceError(422, "matchers in body is required", 602)
    if not matchers:
        raise SilenceError(422, "matchers in body should have at least 1 items", 612)
    for index, item in enumerate(matchers):
        for key in ("isRegex", "name", "value"):
            if key not in item:
                raise SilenceError(422, f"matchers.{index}.{key} in body is required", 602)
    if "startsAt" not in fields:
        raise SilenceError(422, "startsAt in body is required", 602)
    return Posted(
        id=fields.get("id", ""),
        matchers=[(m["name"], m["value"], m["isRegex"], m.get("isEqual", True)) for m in matchers],
        starts_ns=fields["startsAt"],
        ends_ns=fields["endsAt"],
        created_by=fields["createdBy"],
        comment=fields["comment"],
    )
