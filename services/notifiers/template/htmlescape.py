"""Contextual escaping in the manner of Go's html/template, for email HTML bodies.

Go escapes statically, rewriting every action's pipeline for the HTML context the action sits
in. Here the context is tracked while the output is written: literal template text moves the
context (it is trusted), and each printed value is escaped for the context it lands in.
Escaped values cannot change the context, so both approaches agree wherever Go accepts the
template. Covered: HTML text (with comments removed, as Go removes them), RCDATA (title,
textarea), attribute names and quoted or unquoted values, URL attributes (filtered,
normalised, query parts percent-escaped), JS (script elements and on* attributes: values as
JSON, JS string literals escaped) and CSS (style elements and attributes: values filtered).
Not covered: Go's escaping-time errors (branches ending in different contexts, actions in
ambiguous URL parts or JS template literals), JS regexp literals, CSS url(...), srcset.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from services.notifiers.template.gofmt import format_value, sprint
from services.notifiers.template.gotypes import HTML, go_fields

__all__ = ["HtmlSink"]

_FAILSAFE = "ZgotmplZ"


class _S(enum.Enum):
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
class _Ctx:
    state: _S = _S.TEXT
    element: str = ""  # script, style, textarea or title while inside one of them
    attr: str = ""  # the value kind of the attribute being read: url, js, css or ""
    delim: str = ""  # the quote that ends the attribute value; " " for unquoted, "" outside
    url_part: int = 0  # 0: nothing yet, 1: before the query, 2: in the query or fragment


_ELEMENT_STATE = {"script": _S.JS, "style": _S.CSS, "textarea": _S.RCDATA, "title": _S.RCDATA}
_ATTR_STATE = {"url": _S.URL, "js": _S.JS, "css": _S.CSS}
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


def _attr_kind(name: str) -> str:
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


def _step(c: _Ctx, s: str) -> tuple[_Ctx, int, int]:
    """One transition over `s`: the new context, how much of `s` it consumed, and where a
    comment that Go elides from the output starts (-1 if none)."""
    st = c.state
    if st is _S.TEXT:
        k = 0
        while True:
            i = s.find("<", k)
            if i < 0 or i + 1 == len(s):
                return c, len(s), -1
            if s.startswith("<!--", i):
                return _Ctx(_S.HTML_COMMENT), i + 4, i
            j = i + 1
            end = s[j] == "/"
            if end:
                j += 1
            m = _TAG_NAME.match(s, j)
            if m:
                name = m.group(0).lower()
                element = "" if end or name not in _ELEMENT_STATE else name
                return _Ctx(_S.TAG, element=element), m.end(), -1
            k = j
    if st is _S.HTML_COMMENT:
        i = s.find("-->")
        return (_Ctx(), i + 3, -1) if i >= 0 else (c, len(s), -1)
    if st is _S.TAG:
        i = _skip_space(s, 0)
        if i == len(s):
            return c, i, -1
        if s[i] == ">":
            return _Ctx(_ELEMENT_STATE.get(c.element, _S.TEXT), element=c.element), i + 1, -1
        j = i
        while j < len(s) and s[j] not in _SPACE + "=>":
            j += 1
        state = _S.ATTR_NAME if j == len(s) else _S.AFTER_NAME
        return _Ctx(state, element=c.element, attr=_attr_kind(s[i:j])), j, -1
    if st is _S.ATTR_NAME:
        j = 0
        while j < len(s) and s[j] not in _SPACE + "=>":
            j += 1
        return (replace(c, state=_S.AFTER_NAME) if j < len(s) else c), j, -1
    if st is _S.AFTER_NAME:
        i = _skip_space(s, 0)
        if i == len(s):
            return c, i, -1
        if s[i] != "=":
            return replace(c, state=_S.TAG), i, -1
        return replace(c, state=_S.BEFORE_VALUE), i + 1, -1
    if st is _S.BEFORE_VALUE:
        i = _skip_space(s, 0)
        if i == len(s):
            return c, i, -1
        delim = " "
        if s[i] in "'\"":
            delim, i = s[i], i + 1
        return replace(c, state=_ATTR_STATE.get(c.attr, _S.ATTR), delim=delim), i, -1
    return _step_value(c, s)


def _step_value(c: _Ctx, s: str) -> tuple[_Ctx, int, int]:
    st = c.state
    if st is _S.URL:
        if "#" in s or "?" in s:
            return replace(c, url_part=2), len(s), -1
        if s.strip(_SPACE) and c.url_part == 0:
            return replace(c, url_part=1), len(s), -1
        return c, len(s), -1
    if st is _S.JS:
        m = re.search(r"[\"'/]", s)
        if m is None:
            return c, len(s), -1
        i = m.start()
        if s[i] == '"':
            return replace(c, state=_S.JS_DQ), i + 1, -1
        if s[i] == "'":
            return replace(c, state=_S.JS_SQ), i + 1, -1
        if s.startswith("//", i):
            return replace(c, state=_S.JS_LINE_COMMENT), i + 2, i
        if s.startswith("/*", i):
            return replace(c, state=_S.JS_BLOCK_COMMENT), i + 2, i
        return c, i + 1, -1
    if st in (_S.JS_DQ, _S.JS_SQ, _S.CSS_DQ, _S.CSS_SQ):
        quote = '"' if st in (_S.JS_DQ, _S.CSS_DQ) else "'"
        i = 0
        while i < len(s):
            if s[i] == "\\":
                i += 2
                continue
            if s[i] == quote:
                return replace(c, state=_S.JS if st in (_S.JS_DQ, _S.JS_SQ) else _S.CSS), i + 1, -1
            i += 1
        return c, len(s), -1
    if st in (_S.JS_LINE_COMMENT, _S.JS_BLOCK_COMMENT, _S.CSS_COMMENT):
        end = "*/" if st is not _S.JS_LINE_COMMENT else "\n"
        i = s.find(end)
        if i < 0:
            return c, len(s), -1
        back = _S.CSS if st is _S.CSS_COMMENT else _S.JS
        return replace(c, state=back), i + (0 if end == "\n" else 2), -1
    if st is _S.CSS:
        m = re.search(r"[\"']|/\*", s)
        if m is None:
            return c, len(s), -1
        i = m.start()
        if s[i] == "/":
            return replace(c, state=_S.CSS_COMMENT), i + 2, i
        return replace(c, state=_S.CSS_DQ if s[i] == '"' else _S.CSS_SQ), i + 1, -1
    return c, len(s), -1  # ATTR, RCDATA: nothing inside changes the context


_COMMENTS = (_S.HTML_COMMENT, _S.JS_LINE_COMMENT, _S.JS_BLOCK_COMMENT, _S.CSS_COMMENT)
_IN_TAG = (_S.TAG, _S.ATTR_NAME, _S.AFTER_NAME, _S.BEFORE_VALUE)
_END_TAG = {e: re.compile(f"</{e}(?=[{_SPACE}/>])", re.IGNORECASE) for e in _ELEMENT_STATE}


def _run(c: _Ctx, s: str) -> tuple[_Ctx, str]:
    """Step over text outside attribute values, dropping comments as Go does."""
    out: list[str] = []
    while s:
        c, s = _emit(c, s, out)
    return c, "".join(out)


def _emit(c: _Ctx, s: str, out: list[str]) -> tuple[_Ctx, str]:
    """One transition, writing the text it covers to `out` (comments elided as Go does: a
    JS or CSS block comment leaves one space) and returning the rest of `s`."""
    before = c
    c, n, cut = _step(c, s)
    if before.state not in _COMMENTS:
        out.append(s[:cut] if cut >= 0 else s[:n])
        if cut >= 0 and c.state in (_S.JS_BLOCK_COMMENT, _S.CSS_COMMENT):
            out.append(" ")
    return c, s[n:]


def _advance(c: _Ctx, s: str) -> tuple[_Ctx, str]:
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
            c, s = _Ctx(_S.TAG, element=c.element), s[i:]
        elif c.element and c.state not in _IN_TAG:  # script, style, title, textarea content
            m = _END_TAG[c.element].search(s)
            c, text = _run(c, s if m is None else s[: m.start()])
            out.append(text)
            if m is None:
                break
            c, s = _Ctx(), s[m.start() :]
        else:
            c, s = _emit(c, s, out)
    return c, "".join(out)


# Escapers ---------------------------------------------------------------------------------
_HTML = {"\0": "\ufffd", '"': "&#34;", "&": "&amp;", "'": "&#39;", "+": "&#43;"}
_HTML |= {"<": "&lt;", ">": "&gt;"}
_HTML_NORM = {k: v for k, v in _HTML.items() if k != "&"}
_NOSPACE = _HTML | {"\0": "&#xfffd;", "\t": "&#9;", "\n": "&#10;", "\v": "&#11;", "\f": "&#12;"}
_NOSPACE |= {"\r": "&#13;", " ": "&#32;", "=": "&#61;", "`": "&#96;"}
_JS_STR = {"\0": "\\u0000", "\t": "\\t", "\n": "\\n", "\v": "\\u000b", "\f": "\\f", "\r": "\\r"}
_JS_STR |= {'"': "\\u0022", "&": "\\u0026", "'": "\\u0027", "+": "\\u002b", "/": "\\/"}
_JS_STR |= {"<": "\\u003c", ">": "\\u003e", "\\": "\\\\", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_TAGS = re.compile(r"<[^>]*>?")


def _replace(text: str, table: Mapping[str, str]) -> str:
    return "".join(table.get(ch, ch) for ch in text)


def _stringify(value: object) -> tuple[str, bool]:
    """The text of a value and whether it is trusted HTML (html/template's stringify)."""
    if isinstance(value, HTML):
        return str(value), True
    if type(value) is str:
        return value, False
    return ("" if value is None else sprint([value])), False


def _url(text: str, normalize: bool) -> str:
    keep = "-._~" + ("!#$&*+,/:;=?@[]" if normalize else "")
    out = []
    data = text.encode("utf-8", "surrogateescape")
    for i, b in enumerate(data):
        ch = chr(b)
        if (b < 0x80 and (ch.isalnum() or ch in keep)) or (
            normalize and ch == "%" and re.fullmatch(rb"[0-9a-fA-F]{2}", data[i + 1 : i + 3])
        ):
            out.append(ch)
        else:
            out.append(f"%{b:02x}")
    return "".join(out)


def _safe_url(text: str) -> bool:
    scheme, colon, _ = text.partition(":")
    return not colon or "/" in scheme or scheme.lower() in ("http", "https", "mailto")


def _json(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_json(v) for v in value]
    if go_fields(value):
        return {f: _json(getattr(value, f)) for f in go_fields(value)}
    if hasattr(value, "go_string") and not isinstance(value, int):
        return format_value(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _js_value(value: object) -> str:
    if value is None:
        return " null "
    text = json.dumps(_json(value), ensure_ascii=False, separators=(",", ":"))
    for ch, rep in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, rep)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if re.match(r"[\w$]", text[0]) or re.match(r"[\w$]", text[-1]):
        text = f" {text} "
    return text


def _css_value(text: str) -> str:
    for i, ch in enumerate(text):
        if ch in "\0\"'()/;@[\\]`{}<>" or (ch == "-" and i and text[i - 1] == "-"):
            return _FAILSAFE
    ident = "".join(ch for ch in text.lower() if ch.isalnum() or ch in "-_")
    return _FAILSAFE if "expression" in ident or "mozbinding" in ident else text


def _html_escaper(value: object) -> str:
    text, trusted = _stringify(value)
    return text if trusted else _replace(text, _HTML)


def _rcdata_escaper(value: object) -> str:
    text, trusted = _stringify(value)
    return _replace(text, _HTML_NORM if trusted else _HTML)


def _attr_escaper(value: object) -> str:
    text, trusted = _stringify(value)
    return _replace(_TAGS.sub("", text), _HTML_NORM) if trusted else _replace(text, _HTML)


def _nospace_escaper(value: object) -> str:
    text, trusted = _stringify(value)
    if trusted:
        return _replace(_TAGS.sub("", text), {k: v for k, v in _NOSPACE.items() if k != "&"})
    return _replace(text, _NOSPACE)


def _url_filter(value: object) -> str:
    text = _stringify(value)[0]
    return text if _safe_url(text) else "#" + _FAILSAFE


def _name_filter(value: object) -> str:
    name = _stringify(value)[0].lower()
    ok = name and _attr_kind(name) == "" and re.fullmatch(r"[a-z0-9]+", name)
    return name if ok else _FAILSAFE


def _css_escaper(value: object) -> str:
    return re.sub(r"[^\w .,-]", lambda m: f"\\{ord(m.group(0)):x} ", _stringify(value)[0])


_ESCAPERS = {
    "htmlescaper": _html_escaper,
    "rcdataescaper": _rcdata_escaper,
    "attrescaper": _attr_escaper,
    "nospaceescaper": _nospace_escaper,
    "urlfilter": _url_filter,
    "urlnormalizer": lambda v: _url(_stringify(v)[0], normalize=True),
    "urlescaper": lambda v: _url(_stringify(v)[0], normalize=False),
    "jsvalescaper": _js_value,
    "jsstrescaper": lambda v: _replace(_stringify(v)[0], _JS_STR),
    "cssvaluefilter": lambda v: (
        _stringify(v)[0] if _stringify(v)[1] else _css_value(_stringify(v)[0])
    ),
    "cssescaper": _css_escaper,
    "htmlnamefilter": _name_filter,
}
# Contextual escapers that an action's own trailing `html` or `urlquery` stands in for.
_EQUIVALENT = {
    "attrescaper": "html",
    "htmlescaper": "html",
    "rcdataescaper": "html",
    "urlescaper": "urlquery",
    "urlnormalizer": "urlquery",
}
_STATE_ESCAPERS = {
    _S.TEXT: ["htmlescaper"],
    _S.RCDATA: ["rcdataescaper"],
    _S.ATTR: [],
    _S.JS: ["jsvalescaper"],
    _S.JS_DQ: ["jsstrescaper"],
    _S.JS_SQ: ["jsstrescaper"],
    _S.CSS: ["cssvaluefilter"],
    _S.CSS_DQ: ["cssescaper"],
    _S.CSS_SQ: ["cssescaper"],
}


def _escapers(c: _Ctx) -> tuple[_Ctx, list[str]]:
    """The escapers html/template puts at the end of an action's pipeline in context `c`."""
    if c.state is _S.BEFORE_VALUE:  # `<a href={{.}}`: an unquoted value (Go's nudge)
        c = replace(c, state=_ATTR_STATE.get(c.attr, _S.ATTR), delim=" ", attr="")
    if c.state is _S.URL:
        names = [["urlfilter", "urlnormalizer"], ["urlnormalizer"], ["urlescaper"]][c.url_part]
        c = replace(c, url_part=max(c.url_part, 1))
    elif c.state in _IN_TAG:
        return replace(c, state=_S.ATTR_NAME), ["htmlnamefilter"]
    else:
        names = list(_STATE_ESCAPERS[c.state])
    if c.delim == " ":
        names.append("nospaceescaper")
    elif c.delim:
        names.append("attrescaper")
    return c, names


def _escape(c: _Ctx, value: object, predefined: str | None) -> tuple[_Ctx, str]:
    if c.state in _COMMENTS:
        return c, ""
    c, names = _escapers(c)
    if predefined is not None:  # Go merges a trailing html/urlquery with its equivalents
        names = [n for n in names if _EQUIVALENT.get(n) != predefined]
    out: object = value
    for name in names:
        out = _ESCAPERS[name](out)
    return c, out if isinstance(out, str) else _stringify(out)[0]


class HtmlSink:
    """html/template output: every value escaped for the HTML context it is written in."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._ctx = _Ctx()

    def text(self, text: str) -> None:
        self._ctx, out = _advance(self._ctx, text)
        self.parts.append(out)

    def value(self, value: object, escaper: str | None = None) -> None:
        """Write a printed value; `escaper` is the action's trailing `html` or `urlquery`."""
        if isinstance(value, HTML) and self._ctx.state is _S.TEXT:
            self._ctx, _ = _advance(self._ctx, value)  # trusted markup may open tags
            self.parts.append(value)
            return
        self._ctx, out = _escape(self._ctx, value, escaper)
        self.parts.append(out)
