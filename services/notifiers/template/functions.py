"""Alertmanager 0.25's template functions (`DefaultFuncs`), next to Go's builtins."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import re2

from services.notifiers.template.builtins import BUILTINS
from services.notifiers.template.gotypes import (
    HTML,
    STRING,
    STRING_SLICE,
    CallError,
    Func,
    StringSlice,
)

__all__ = ["FUNCS"]


@functools.lru_cache(maxsize=4096)
def _upper(ch: str) -> str:
    up = ch.upper()
    if len(up) == 1:
        return up
    title = ch.title()  # Go maps runes one to one: ß stays, ᾳ becomes ᾼ
    return title if len(title) == 1 else ch


@functools.lru_cache(maxsize=4096)
def _lower(ch: str) -> str:
    low = ch.lower()
    return low if len(low) == 1 else "i" if ch == "\u0130" else ch


def _to_upper(text: str) -> str:
    return text.upper() if text.isascii() else "".join(map(_upper, text))


def _to_lower(text: str) -> str:
    return text.lower() if text.isascii() else "".join(map(_lower, text))


# Word-break classes that do not end a word for golang.org/x/text/cases title-casing:
# MidLetter, MidNumLet, Single_Quote, ExtendNumLet (besides letters, marks, digits, formats).
_IN_WORD = frozenset(
    ":·\u0387\u055f\u05f4\u2027\ufe13\ufe55\uff1a.\u2018\u2019\u2024\ufe52\uff07\uff0e'"
)
_IN_WORD |= frozenset("\u202f\u200c\u200d")


def _in_word(ch: str) -> bool:
    if ch in _IN_WORD or ch.isalpha() or ch.isdecimal():
        return True
    cat = unicodedata.category(ch)
    return cat[0] == "M" or cat == "Pc" or (cat == "Cf" and ch != "\u200b")


def _title(text: str) -> str:
    out: list[str] = []
    in_word = False
    for ch in text:
        if not in_word:
            if ch.islower() or ch.isupper() or unicodedata.category(ch) == "Lt":
                out.append(ch.title())
                in_word = True
            else:
                out.append(ch)
        elif _in_word(ch):
            out.append(ch.lower())
        else:
            out.append(ch)
            in_word = False
    return "".join(out)


def _join(sep: str, items: Sequence[str]) -> str:
    return sep.join(items)


# RE2 error codes in the words of Go's regexp/syntax.
_GO_WORDING = {
    "missing ]": "missing closing ]",
    "missing )": "missing closing )",
    "bad repetition operator": "invalid nested repetition operator",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid repetition size": "invalid repeat count",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "trailing \\": "trailing backslash at end of expression",
    "invalid named capture group": "invalid named capture",
    "bad repetition operator (nesting too deep)": "expression nests too deeply",
}
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> Any:
    try:
        return re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0]
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        code, _, arg = text.partition(": ")
        raise CallError(f"error parsing regexp: {_GO_WORDING.get(code, code)}: `{arg}`") from None


def _match(pattern: str, text: str) -> bool:
    return _compile(pattern).search(text) is not None


def _expand(template: str, match: Any, groupindex: Mapping[str, int]) -> str:
    out: list[str] = []
    while True:
        before, dollar, template = template.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        if template.startswith("$"):
            out.append("$")
            template = template[1:]
            continue
        brace = template.startswith("{")
        rest = template[1:] if brace else template
        n = 0
        while n < len(rest) and (rest[n] == "_" or rest[n].isalpha() or rest[n].isdecimal()):
            n += 1
        if n == 0 or (brace and rest[n : n + 1] != "}"):
            out.append("$")
            continue
        name, template = rest[:n], rest[n + 1 if brace else n :]
        if name.isdigit() and name.isascii() and not (name[0] == "0" and len(name) > 1):
            group: int | None = int(name)
        else:
            group = groupindex.get(name)
        if group is not None and group <= match.re.groups and match.group(group) is not None:
            out.append(match.group(group))


def _re_replace_all(pattern: str, repl: str, text: str) -> str:
    try:
        regex = _compile(pattern)
    except CallError as exc:  # Go's MustCompile panics; the panic text becomes the error
        raise CallError(f"regexp: Compile({'`' + pattern + '`'}): {exc}") from None
    out: list[str] = []
    last_end = search = 0
    while search <= len(text):
        m = regex.search(text, search)
        if m is None:
            break
        start, end = m.span()
        out.append(text[last_end:start])
        if end > last_end or start == 0:
            out.append(_expand(repl, m, regex.groupindex))
        last_end = end
        search = search + 1 if search + 1 > end else end
    out.append(text[last_end:])
    return "".join(out)


FUNCS: Mapping[str, Func] = {
    **BUILTINS,
    "toUpper": Func((STRING,), _to_upper),
    "toLower": Func((STRING,), _to_lower),
    "title": Func((STRING,), _title),
    "join": Func((STRING, STRING_SLICE), _join),
    "match": Func((STRING, STRING), _match),
    "reReplaceAll": Func((STRING, STRING, STRING), _re_replace_all),
    "safeHtml": Func((STRING,), HTML),
    "stringSlice": Func((STRING,), lambda *a: StringSlice(a), variadic=True),
}
