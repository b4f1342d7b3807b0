"""Label matchers with Alertmanager 0.25's classic syntax and Go RE2 regex semantics.

Regexes are compiled with google-re2 as `^(?:value)$`, exactly as Alertmanager anchors them;
Python's `re` accepts and matches differently (backreferences, `$` before a newline, ...).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import re2

__all__ = [
    "MatchType",
    "Matcher",
    "MatcherError",
    "compile_anchored",
    "format_matchers",
    "matches_all",
    "parse_matcher",
    "parse_matchers",
    "sort_matchers",
]


class MatcherError(ValueError):
    """A matcher that does not parse; the message is Alertmanager's."""


class MatchType(enum.IntEnum):
    """The four operators, ordered as Alertmanager orders them when sorting."""

    EQUAL = 0
    NOT_EQUAL = 1
    REGEXP = 2
    NOT_REGEXP = 3

    @property
    def op(self) -> str:
        """The operator as written: `=`, `!=`, `=~`, `!~`."""
        return _OPS[self]

    @classmethod
    def from_op(cls, op: str) -> MatchType:
        """The type of an operator string."""
        return _BY_OP[op]


_OPS = {
    MatchType.EQUAL: "=",
    MatchType.NOT_EQUAL: "!=",
    MatchType.REGEXP: "=~",
    MatchType.NOT_REGEXP: "!~",
}
_BY_OP = {v: k for k, v in _OPS.items()}

# RE2 (C++) error codes worded as Go's regexp/syntax words them, which Alertmanager prints.
_GO_WORDING = {
    "missing ]": "missing closing ]",
    "missing )": "missing closing )",
    "unexpected )": "unexpected )",
    "invalid escape sequence": "invalid escape sequence",
    "bad repetition operator": "invalid nested repetition operator",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid character class range": "invalid character class range",
    "invalid character class": "invalid character class",
    "trailing \\": "trailing backslash at end of expression",
    "invalid named capture group": "invalid named capture",
    "invalid UTF-8": "invalid UTF-8",
    "bad repetition operator (nesting too deep)": "expression nests too deeply",
}
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


def compile_anchored(pattern: str) -> Any:
    """Compile `^(?:pattern)$` with RE2; MatcherError with Go's message when it is invalid."""
    anchored = f"^(?:{pattern})$"
    try:
        return re2.compile(anchored, options=_RE2_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0]
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        code, _, arg = text.partition(": ")
        raise MatcherError(
            f"error parsing regexp: {_GO_WORDING.get(code, code)}: `{arg}`"
        ) from None


@dataclass(frozen=True)
class Matcher:
    """One `name op value` condition on a label set (a missing label reads as "")."""

    name: str
    type: MatchType
    value: str
    _regex: Any = field(default=None, compare=False, repr=False, hash=False)

    @classmethod
    def new(cls, type_: MatchType, name: str, value: str) -> Matcher:
        """A matcher, with its regex compiled for the regex operators (MatcherError if bad)."""
        regex = compile_anchored(value) if type_ >= MatchType.REGEXP else None
        return cls(name, type_, value, regex)

    def matches(self, value: str) -> bool:
        """Whether a label value satisfies this matcher."""
        t = self.type
        if t is MatchType.EQUAL:
            return value == self.value
        if t is MatchType.NOT_EQUAL:
            return value != self.value
        hit = self._regex.match(value) is not None
        return hit if t is MatchType.REGEXP else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.type.op}"{escaped}"'


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """AND of every matcher; an empty list matches everything."""
    get = labels.get
    return all(m.matches(get(m.name, "")) for m in matchers)


def sort_matchers(matchers: Sequence[Matcher]) -> list[Matcher]:
    """Alertmanager's order: by name, then value, then operator (bytewise)."""
    return sorted(matchers, key=lambda m: (m.name.encode(), m.value.encode(), int(m.type)))


def format_matchers(matchers: Sequence[Matcher]) -> str:
    """`{a="1",b=~"x"}`: the form used in route keys and group keys."""
    return "{" + ",".join(str(m) for m in matchers) + "}"


# Go's `\s` is [\t\n\f\r ]; `(?s).*?` takes everything, lazily, up to the trailing spaces.
_MATCHER = re.compile(
    r"[\t\n\f\r ]*([a-zA-Z_:][a-zA-Z0-9_:]*)[\t\n\f\r ]*(=~|=|!=|!~)[\t\n\f\r ]*(.*?)[\t\n\f\r ]*",
    re.DOTALL,
)


def parse_matcher(text: str) -> Matcher:
    """Parse one `name op value` matcher (value optionally double-quoted, OpenMetrics escapes)."""
    m = _MATCHER.fullmatch(text)
    if m is None:
        raise MatcherError(f"bad matcher format: {text}")
    name, op, shown = m.group(1), m.group(2), m.group(3)
    raw = shown
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    last = len(raw) - 1
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            out.append("\n" if ch == "n" else ch if ch in '"\\' else "\\" + ch)
        elif ch == "\\":
            if i < last:
                escaped = True
            else:
                out.append("\\")  # a final backslash is literal
        elif ch == '"':
            if not quoted or i < last:
                raise MatcherError(f"matcher value contains unescaped double quote: {shown}")
            quoted = False
        else:
            out.append(ch)
    if quoted:
        raise MatcherError(f"matcher value contains unescaped double quote: {shown}")
    return Matcher.new(MatchType.from_op(op), name, "".join(out))


def parse_matchers(text: str) -> list[Matcher]:
    """Parse a comma-separated matcher list; one leading `{` and one trailing `}` are optional."""
    text = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    current: list[str] = []
    inside_quotes = escaped = False
    for ch in text:
        if ch == "," and not inside_quotes:
            tokens.append("".join(current))
            current = []
            continue
        if ch == '"':
            if escaped:
                escaped = False
            else:
                inside_quotes = not inside_quotes
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        current.append(ch)
    tail = "".join(current).strip()
    if tail:
        tokens.append(tail)
    return [parse_matcher(token) for token in tokens]
