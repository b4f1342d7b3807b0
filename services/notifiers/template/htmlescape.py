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

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from services.notifiers.template.gofmt import format_value
from services.notifiers.template.gotypes import HTML, go_fields
from services.notifiers.template.htmlcontext import (
    ATTR_STATE,
    COMMENTS,
    IN_TAG,
    Context,
    State,
    advance,
    attr_kind,
)

__all__ = ["HtmlSink"]

_FAILSAFE = "ZgotmplZ"


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
    return ("" if value is None else format_value(value, deref=True)), False


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
    ok = name and attr_kind(name) == "" and re.fullmatch(r"[a-z0-9]+", name)
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
    State.TEXT: ["htmlescaper"],
    State.RCDATA: ["rcdataescaper"],
    State.ATTR: [],
    State.JS: ["jsvalescaper"],
    State.JS_DQ: ["jsstrescaper"],
    State.JS_SQ: ["jsstrescaper"],
    State.CSS: ["cssvaluefilter"],
    State.CSS_DQ: ["cssescaper"],
    State.CSS_SQ: ["cssescaper"],
}


def _escapers(c: Context) -> tuple[Context, list[str]]:
    """The escapers html/template puts at the end of an action's pipeline in context `c`."""
    if c.state is State.BEFORE_VALUE:  # `<a href={{.}}`: an unquoted value (Go's nudge)
        c = replace(c, state=ATTR_STATE.get(c.attr, State.ATTR), delim=" ", attr="")
    if c.state is State.URL:
        names = [["urlfilter", "urlnormalizer"], ["urlnormalizer"], ["urlescaper"]][c.url_part]
        c = replace(c, url_part=max(c.url_part, 1))
    elif c.state in IN_TAG:
        return replace(c, state=State.ATTR_NAME), ["htmlnamefilter"]
    else:
        names = list(_STATE_ESCAPERS[c.state])
    if c.delim == " ":
        names.append("nospaceescaper")
    elif c.delim:
        names.append("attrescaper")
    return c, names


def _escape(c: Context, value: object, predefined: str | None) -> tuple[Context, str]:
    if c.state in COMMENTS:
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
        self._ctx = Context()

    def text(self, text: str) -> None:
        self._ctx, out = advance(self._ctx, text)
        self.parts.append(out)

    def value(self, value: object, escaper: str | None = None) -> None:
        """Write a printed value; `escaper` is the action's trailing `html` or `urlquery`."""
        if isinstance(value, HTML) and self._ctx.state is State.TEXT:
            self._ctx, _ = advance(self._ctx, value)  # trusted markup may open tags
            self.parts.append(value)
            return
        self._ctx, out = _escape(self._ctx, value, escaper)
        self.parts.append(out)
