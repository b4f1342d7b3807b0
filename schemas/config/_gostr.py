"""Go's `strconv.Quote` (the `%q` verb), which Alertmanager uses in group keys and messages."""

from __future__ import annotations

__all__ = ["go_quote"]

_SHORT = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _escape(ch: str) -> str:
    if ch == '"' or ch == "\\":
        return "\\" + ch
    if ch.isprintable():  # Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols, ' '
        return ch
    short = _SHORT.get(ch)
    if short is not None:
        return short
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """`text` double-quoted with Go's escapes (`\\n`, `\\"`, `\\x01`, `\\u200b`; é stays as is)."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + "".join(_escape(ch) for ch in text) + '"'
