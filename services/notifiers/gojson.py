"""JSON bytes exactly as Go's encoding/json writes them (Alertmanager's webhook, Slack, PagerDuty).

Differences from Python's json: `<`, `>`, `&`, U+2028 and U+2029 are escaped as \\u003c etc.,
other non-ASCII is raw UTF-8, control characters other than \\n \\r \\t are \\u00XX (Go 1.19),
map keys are sorted, structs keep field order (pass a dict in that order), no spaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["dumps"]

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
for _code in range(0x20):
    _ESCAPES.setdefault(chr(_code), f"\\u{_code:04x}")
_TABLE = str.maketrans(_ESCAPES)


class GoMap(dict[str, Any]):
    """A Go map: encoded with its keys sorted (a plain dict keeps its order, like a struct)."""


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append('"' + value.translate(_TABLE) + '"')
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        out.append(repr(value) if value != int(value) else str(int(value)))
    elif isinstance(value, Mapping):
        items = sorted(value.items()) if isinstance(value, GoMap) else value.items()
        out.append("{")
        for i, (key, item) in enumerate(items):
            if i:
                out.append(",")
            _encode(str(key), out)
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, Sequence):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any, *, newline: bool = False) -> bytes:
    """Encode `value`; `newline` adds the "\\n" json.Encoder writes after each value."""
    out: list[str] = []
    _encode(value, out)
    if newline:
        out.append("\n")
    return "".join(out).encode()


__all__ += ["GoMap"]
