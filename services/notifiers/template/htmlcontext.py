"""The HTML context a position in an html/template's output is in (Go's context transitions).

Literal template text moves the context; see htmlescape for how values are escaped in it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace

__all__ = ["ATTR_STATE", "COMMENTS", "IN_TAG", "Context", "State", "advance", "attr_kind"]


class State(enum.Enum):
    TEXT = enum.auto()
    TAG = enum.auto()
    ATTR_NAME = enum.auto()
    AFTER_NAME = enum.auto()
    BEFORE_VALUE = enum.auto()
    HTML_COMMENT = enum.auto()
    RCDATA = enum.auto()
    ATTR = enum.auto()
    URL = enum.auto()
    JS = enum.auto()
    JS_DQ = enum.auto()
    JS_SQ = enum.auto()
    JS_LINE_COMMENT = enum.auto()
    JS_BLOCK_COMMENT = enum.auto()
    CSS = enum.auto()
    CSS_DQ = enum.auto()
    CSS_SQ = enum.auto()
    CSS_COMMENT = enum.auto()


@dataclass(frozen=True)
class Context:
    state: State = State.TEXT
    element: str = ""  # script, style, textarea or title while inside one of them
    attr: str = ""  # the value kind of the attribute being read: url, js, css or ""
    delim: str = ""  # the quote that ends the attribute value; " " for unquoted, "" outside
    url_part: int = 0  # 0: nothing yet, 1: before the query, 2: in the query or fragment


_ELEMENT_STATE = {
    "script": State.JS,
    "style": State.CSS,
    "textarea": State.RCDATA,
    "title": State.RCDATA,
}
ATTR_STATE = {"url": State.URL, "js": State.JS, "css": State.CSS}
_URL_ATTRS = frozenset(
    [
        "action",
        "archive",
        "background",
        "cite",
        "classid",
        "codebase",
        "data",
        "formaction",
        "href",
        "icon",
        "longdesc",
        "manifest",
        "poster",
        "profile",
        "src",
        "usemap",
        "xmlns",
    ]
)
_TAG_NAME = re.compile(r"[a-zA-Z](?:[a-zA-Z0-9]|[:-][a-zA-Z0-9])*")
_SPACE = " \t\n\f\r"


def attr_kind(name: str) -> str:
    name = name.lower()
    if name.startswith("data-"):
        name = name[5:]
    elif ":" in name:
        prefix, _, local = name.partition(":")
        if prefix == "xmlns":
            return "url"
        name = local
    if name.startswith("on"):
        return "js"
    if name == "style":
        return "css"
    if name in _URL_ATTRS or "src" in name or "uri" in name or "url" in name:
        return "url"
    return ""


def _skip_space(s: str, i: int) -> int:
    while i < len(s) and s[i] in _SPACE:
        i += 1
    return i


def _step(c: Context, s: str) -> tuple[Context, int, int]:
    """One transition over `s`: the new context, how much of `s` it consumed, and where a
    comment that Go elides from the output starts (-1 if none)."""
    st = c.state
    if st is State.TEXT:
        k = 0
        while True:
            i = s.find("<", k)
            if i < 0 or i + 1 == len(s):
                return c, len(s), -1
            if s.startswith("<!--", i):
                return Context(State.HTML_COMMENT), i + 4, i
            j = i + 1
            end = s[j] == "/"
            if end:
                j += 1
            m = _TAG_NAME.match(s, j)
            if m:
                name = m.group(0).lower()
                element = "" if end or name not in _ELEMENT_STATE else name
                return Context(State.TAG, element=element), m.end(), -1
            k = j
    if st is State.HTML_COMMENT:
        i = s.find("-->")
        return (Context(), i + 3, -1) if i >= 0 else (c, len(s), -1)
    if st is State.TAG:
        i = _skip_space(s, 0)
        if i == len(s):
            return c, i, -1
        if s[i] == ">":
            return Context(_ELEMENT_STATE.get(c.element, State.TEXT), element=c.element), i + 1, -1
        j = i
        while j < len(s) and s[j] not in _SPACE + "=>":
            j += 1
        state = State.ATTR_NAME if j == len(s) else State.AFTER_NAME
        return Context(state, element=c.element, attr=attr_kind(s[i:j])), j, -1
    if st is State.ATTR_NAME:
        j = 0
        while j < len(s) and s[j] not in _SPACE + "=>":
            j += 1
        return (replace(c, state=State.AFTER_NAME) if j < len(s) else c), j, -1
    if st is State.AFTER_NAME:
        i = _skip_space(s, 0)
        if i == len(s):
            return c, i, -1
        if s[i] != "=":
            return replace(c, state=State.TAG), i, -1
        return replace(c, state=State.BEFORE_VALUE), i + 1, -1
    if st is State.BEFORE_VALUE:
        i = _skip_space(s, 0)
        if i == len(s):
            return c, i, -1
        delim = " "
        if s[i] in "'\"":
            delim, i = s[i], i + 1
        return replace(c, state=ATTR_STATE.get(c.attr, State.ATTR), delim=delim), i, -1
    return _step_value(c, s)


def _step_value(c: Context, s: str) -> tuple[Context, int, int]:
    st = c.state
    if st is State.URL:
        if "#" in s or "?" in s:
            return replace(c, url_part=2), len(s), -1
        if s.strip(_SPACE) and c.url_part == 0:
            return replace(c, url_part=1), len(s), -1
        return c, len(s), -1
    if st is State.JS:
        m = re.search(r"[\"'/]", s)
        if m is None:
            return c, len(s), -1
        i = m.start()
        if s[i] == '"':
            return replace(c, state=State.JS_DQ), i + 1, -1
        if s[i] == "'":
            return replace(c, state=State.JS_SQ), i + 1, -1
        if s.startswith("//", i):
            return replace(c, state=State.JS_LINE_COMMENT), i + 2, i
        if s.startswith("/*", i):
            return replace(c, state=State.JS_BLOCK_COMMENT), i + 2, i
        return c, i + 1, -1
    if st in (State.JS_DQ, State.JS_SQ, State.CSS_DQ, State.CSS_SQ):
        quote = '"' if st in (State.JS_DQ, State.CSS_DQ) else "'"
        i = 0
        while i < len(s):
            if s[i] == "\\":
                i += 2
                continue
            if s[i] == quote:
                return (
                    replace(c, state=State.JS if st in (State.JS_DQ, State.JS_SQ) else State.CSS),
                    i + 1,
                    -1,
                )
            i += 1
        return c, len(s), -1
    if st in (State.JS_LINE_COMMENT, State.JS_BLOCK_COMMENT, State.CSS_COMMENT):
        end = "*/" if st is not State.JS_LINE_COMMENT else "\n"
        i = s.find(end)
        if i < 0:
            return c, len(s), -1
        back = State.CSS if st is State.CSS_COMMENT else State.JS
        return replace(c, state=back), i + (0 if end == "\n" else 2), -1
    if st is State.CSS:
        m = re.search(r"[\"']|/\*", s)
        if m is None:
            return c, len(s), -1
        i = m.start()
        if s[i] == "/":
            return replace(c, state=State.CSS_COMMENT), i + 2, i
        return replace(c, state=State.CSS_DQ if s[i] == '"' else State.CSS_SQ), i + 1, -1
    return c, len(s), -1  # ATTR, RCDATA: nothing inside changes the context


COMMENTS = (State.HTML_COMMENT, State.JS_LINE_COMMENT, State.JS_BLOCK_COMMENT, State.CSS_COMMENT)
IN_TAG = (State.TAG, State.ATTR_NAME, State.AFTER_NAME, State.BEFORE_VALUE)
_END_TAG = {e: re.compile(f"</{e}(?=[{_SPACE}/>])", re.IGNORECASE) for e in _ELEMENT_STATE}


def _run(c: Context, s: str) -> tuple[Context, str]:
    """Step over text outside attribute values, dropping comments as Go does."""
    out: list[str] = []
    while s:
        c, s = _emit(c, s, out)
    return c, "".join(out)


def _emit(c: Context, s: str, out: list[str]) -> tuple[Context, str]:
    """One transition, writing the text it covers to `out` (comments elided as Go does: a
    JS or CSS block comment leaves one space) and returning the rest of `s`."""
    before = c
    c, n, cut = _step(c, s)
    if before.state not in COMMENTS:
        text = s[:cut] if cut >= 0 else s[:n]
        if before.state in (State.TEXT, State.RCDATA):
            text = _lt(text, tag_start=c.state is not before.state and cut < 0)
        out.append(text)
        if cut >= 0 and c.state in (State.JS_BLOCK_COMMENT, State.CSS_COMMENT):
            out.append(" ")
    return c, s[n:]


_DOCTYPE = re.compile("<!DOCTYPE", re.IGNORECASE)


def _lt(text: str, tag_start: bool) -> str:
    """Go escapes a `<` in text that starts no tag (the last one may start the tag that ends
    the text), except in `<!DOCTYPE`."""
    end = text.rfind("<") if tag_start else len(text)
    out = [
        "&lt;" if ch == "<" and i < end and not _DOCTYPE.match(text, i) else ch
        for i, ch in enumerate(text)
    ]
    return "".join(out)


def advance(c: Context, s: str) -> tuple[Context, str]:
    """Move the context over trusted template text; returns it and the text to emit."""
    out: list[str] = []
    while s:
        if c.delim:  # inside an attribute value: run its content up to the closing quote
            ends = _SPACE + ">" if c.delim == " " else c.delim
            i = next((k for k, ch in enumerate(s) if ch in ends), len(s))
            inner = s[:i]
            while inner:
                c, n, _ = _step(c, inner)
                inner = inner[n:]
            if i == len(s):
                out.append(s)
                break
            i += 0 if c.delim == " " else 1
            out.append(s[:i])
            c, s = Context(State.TAG, element=c.element), s[i:]
        elif c.element and c.state not in IN_TAG:  # script, style, title, textarea content
            m = _END_TAG[c.element].search(s)
            c, text = _run(c, s if m is None else s[: m.start()])
            out.append(text)
            if m is None:
                break
            c, s = Context(), s[m.start() :]
        else:
            c, s = _emit(c, s, out)
    return c, "".join(out)
