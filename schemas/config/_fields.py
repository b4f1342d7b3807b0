"""Field types shared by the config models, each validated with Alertmanager's message."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    InstanceOf,
    PlainSerializer,
    PlainValidator,
    SecretStr,
)

from schemas.config._base import FieldProblem, yaml_kind
from schemas.config._gostr import go_quote
from schemas.config._urls import check_host_port, check_url
from schemas.config.duration import parse_duration
from schemas.config.matchers import Matcher, MatcherError, compile_anchored, parse_matchers

__all__ = [
    "URL",
    "CompiledMatcher",
    "Duration",
    "EqualLabel",
    "HostPort",
    "LabelNameKey",
    "MatcherLine",
    "Regex",
    "SecretURL",
    "Text",
    "is_label_name",
    "reject_null_regex",
]

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def is_label_name(name: str) -> bool:
    """Whether `name` is a classic label name (no colon, not empty)."""
    return _LABEL_NAME.fullmatch(name) is not None


def reject_null_regex(value: Any) -> Any:
    """A `match_re` map with a null value fails as in Alertmanager (`invalid regexp value`)."""
    if isinstance(value, dict):
        for name, regex in value.items():
            if regex is None:
                raise FieldProblem(f"invalid regexp value for {go_quote(name)}", name)
    return value


def _match_key(name: str) -> str:
    if not is_label_name(name):
        raise ValueError(f"invalid label name {go_quote(name)}")
    return name


def _equal_label(value: Any) -> str:
    if value is None:
        return ""  # yaml.v2 skips LabelName's own check for a null
    name = _text(value)
    if not is_label_name(name):
        raise ValueError(f"{go_quote(name)} is not a valid label name")
    return name


def _regex(pattern: str) -> str:
    try:
        compile_anchored(pattern)
    except MatcherError as exc:
        raise ValueError(str(exc)) from None
    return pattern


def _text(value: Any) -> str:
    if value is None:
        return ""  # yaml.v2 reads null as the zero value
    if not isinstance(value, str):
        # pydantic turns only ValueError into a validation error
        raise ValueError(f"cannot unmarshal {yaml_kind(value)} into string")
    return value


def _matcher_line(value: Any) -> tuple[Matcher, ...]:
    try:
        return tuple(parse_matchers(_text(value)))
    except MatcherError as exc:
        raise ValueError(str(exc)) from None


def _duration(value: Any) -> float:
    return parse_duration(_text(value))


def _secret_url(value: SecretStr) -> SecretStr:
    check_url(value.get_secret_value(), secret=True)
    return value


_NULL_IS_EMPTY = BeforeValidator(lambda value: "" if value is None else value)

Text = Annotated[str, _NULL_IS_EMPTY]
"""A string where YAML null reads as "" (`match: {a: }`, `group_by: [~]`), as in yaml.v2."""

LabelNameKey = Annotated[str, AfterValidator(_match_key)]
"""A key of `match`/`match_re`/`source_match`...: `invalid label name "a-b"` otherwise."""

EqualLabel = Annotated[str, PlainValidator(_equal_label)]
"""An `equal` entry of an inhibit rule: `"a-b" is not a valid label name` otherwise."""

Regex = Annotated[str, AfterValidator(_regex)]
"""A `match_re` value: a Go RE2 pattern that compiles once anchored as `^(?:...)$`."""

MatcherLine = Annotated[
    tuple[Matcher, ...],
    PlainValidator(_matcher_line),
    PlainSerializer(lambda matchers: ",".join(str(m) for m in matchers), return_type=str),
]
"""One `matchers:` entry: a comma-separated matcher list, parsed (dumped back as text)."""

CompiledMatcher = Annotated[InstanceOf[Matcher], PlainSerializer(str, return_type=str)]
"""A parsed matcher, dumped as its text `name="value"`."""

Duration = Annotated[float, PlainValidator(_duration)]
"""A Prometheus duration, in seconds."""

URL = Annotated[str, AfterValidator(check_url)]
"""An http(s) URL with a host."""

SecretURL = Annotated[SecretStr, AfterValidator(_secret_url)]
"""An http(s) URL that may carry a token: hidden from repr, str and error messages."""

HostPort = Annotated[str, AfterValidator(check_host_port)]
"""`host:port`, or empty."""
