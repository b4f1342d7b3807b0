"""`$VAR` / `${VAR}` expansion in config strings, leaving Go template actions untouched."""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["UnsetVariableError", "expand_env"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UnsetVariableError(KeyError):
    """A `$NAME` whose variable is not set; carries only the name, never a value."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"environment variable {self.name} is not set"


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """Expand `$NAME`/`${NAME}` outside `{{ ... }}` (`$$` is `$`); UnsetVariableError if unset."""
    if "$" not in text:
        return text
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("{{", i):
            end = text.find("}}", i + 2)
            stop = n if end < 0 else end + 2  # an unclosed action runs to the end: keep it all
            out.append(text[i:stop])
            i = stop
            continue
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        if text.startswith("$", i + 1):
            out.append("$")
            i += 2
            continue
        match = _BRACED.match(text, i + 1) or _NAME.match(text, i + 1)
        if match is None:
            out.append("$")
            i += 1
            continue
        name = match.group(1) if match.re is _BRACED else match.group(0)
        if name not in env:
            raise UnsetVariableError(name)
        out.append(env[name])
        i = match.end()
    return "".join(out)
