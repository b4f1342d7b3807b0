"""The lexer of Go's text/template (Go 1.19, as Alertmanager 0.25 is built), ported to Python.

Positions are character offsets into the source; lines are computed from them exactly as Go's
items carry them. A lexing error becomes an ERROR token and ends the stream, as in Go.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from services.notifiers.template.gofmt import go_quote, go_unicode_repr

__all__ = ["Item", "T", "lex"]


class T(enum.IntEnum):
    """Token types, in Go's order (keywords last, so `typ > KEYWORD` marks them)."""

    ERROR = 0
    BOOL = enum.auto()
    CHAR = enum.auto()
    CHAR_CONSTANT = enum.auto()
    COMMENT = enum.auto()
    COMPLEX = enum.auto()
    ASSIGN = enum.auto()
    DECLARE = enum.auto()
    EOF = enum.auto()
    FIELD = enum.auto()
    IDENTIFIER = enum.auto()
    LEFT_DELIM = enum.auto()
    LEFT_PAREN = enum.auto()
    NUMBER = enum.auto()
    PIPE = enum.auto()
    RAW_STRING = enum.auto()
    RIGHT_DELIM = enum.auto()
    RIGHT_PAREN = enum.auto()
    SPACE = enum.auto()
    STRING = enum.auto()
    TEXT = enum.auto()
    VARIABLE = enum.auto()
    KEYWORD = enum.auto()
    BLOCK = enum.auto()
    BREAK = enum.auto()
    CONTINUE = enum.auto()
    DOT = enum.auto()
    DEFINE = enum.auto()
    ELSE = enum.auto()
    END = enum.auto()
    IF = enum.auto()
    NIL = enum.auto()
    RANGE = enum.auto()
    TEMPLATE = enum.auto()
    WITH = enum.auto()


_KEYWORDS = {
    ".": T.DOT,
    "block": T.BLOCK,
    "break": T.BREAK,
    "continue": T.CONTINUE,
    "define": T.DEFINE,
    "else": T.ELSE,
    "end": T.END,
    "if": T.IF,
    "range": T.RANGE,
    "nil": T.NIL,
    "template": T.TEMPLATE,
    "with": T.WITH,
}
_LEFT, _RIGHT = "{{", "}}"
_State = Callable[[], "_State | None"]
_SPACE = " \t\r\n"


@dataclass(frozen=True, slots=True)
class Item:
    """One token: its type, offset, text and line."""

    typ: T
    pos: int
    val: str
    line: int

    def __str__(self) -> str:  # Go's item.String(), as parse errors quote tokens
        if self.typ is T.EOF:
            return "EOF"
        if self.typ is T.ERROR:
            return self.val
        if self.typ > T.KEYWORD:
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


def _alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdecimal()  # Go: '_', unicode.IsLetter, IsDigit


def _has_left_trim(s: str, at: int) -> bool:
    return s[at : at + 1] == "-" and s[at + 1 : at + 2] != "" and s[at + 1] in _SPACE


def _has_right_trim(s: str, at: int) -> bool:
    return at + 1 < len(s) and s[at] in _SPACE and s[at + 1] == "-"


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.items: list[Item] = []
        self.newlines: list[int] = [i for i, c in enumerate(text) if c == "\n"]

    def line_at(self, pos: int) -> int:
        lo, hi = 0, len(self.newlines)
        while lo < hi:  # count newlines before pos
            mid = (lo + hi) // 2
            if self.newlines[mid] < pos:
                lo = mid + 1
            else:
                hi = mid
        return lo + 1

    def emit(self, typ: T) -> None:
        self.items.append(
            Item(typ, self.start, self.text[self.start : self.pos], self.line_at(self.start))
        )
        self.start = self.pos

    def error(self, message: str) -> _State | None:
        """Emit an error token; returning None from a state function stops the lexer."""
        self.items.append(Item(T.ERROR, self.start, message, self.line_at(self.start)))
        return None

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def at_right_delim(self) -> tuple[bool, bool]:
        if _has_right_trim(self.text, self.pos) and self.text.startswith(_RIGHT, self.pos + 2):
            return True, True
        return self.text.startswith(_RIGHT, self.pos), False

    def at_terminator(self) -> bool:
        ch = self.peek()
        return ch == "" or ch in _SPACE or ch in ".,|:)(" or self.text.startswith(_RIGHT, self.pos)

    def run(self) -> list[Item]:
        state: _State | None = self.lex_text
        while state is not None:
            state = state()
        return self.items

    def lex_text(self) -> _State | None:
        x = self.text.find(_LEFT, self.pos)
        if x < 0:
            self.pos = len(self.text)
            if self.pos > self.start:
                self.emit(T.TEXT)
            self.emit(T.EOF)
            return None
        self.pos = x
        trim = 0
        if _has_left_trim(self.text, x + len(_LEFT)):
            body = self.text[self.start : x]
            trim = len(body) - len(body.rstrip(_SPACE))
        self.pos -= trim
        if self.pos > self.start:
            self.emit(T.TEXT)
        self.pos += trim
        self.start = self.pos
        return self.lex_left_delim

    def lex_left_delim(self) -> _State | None:
        self.pos += len(_LEFT)
        trim = _has_left_trim(self.text, self.pos)
        after = 2 if trim else 0
        if self.text.startswith("/*", self.pos + after):
            self.pos += after
            self.start = self.pos
            return self.lex_comment
        self.emit(T.LEFT_DELIM)
        self.pos += after
        self.start = self.pos
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self) -> _State | None:
        self.pos += 2
        x = self.text.find("*/", self.pos)
        if x < 0:
            return self.error("unclosed comment")
        self.pos = x + 2
        delim, trim = self.at_right_delim()
        if not delim:
            return self.error("comment ends before closing delimiter")
        self.pos += (2 if trim else 0) + len(_RIGHT)
        if trim:
            self.pos = len(self.text) - len(self.text[self.pos :].lstrip(_SPACE))
        self.start = self.pos
        return self.lex_text

    def lex_right_delim(self) -> _State | None:
        trim = _has_right_trim(self.text, self.pos)
        if trim:
            self.pos += 2
            self.start = self.pos
        self.pos += len(_RIGHT)
        self.emit(T.RIGHT_DELIM)
        if trim:
            self.pos = len(self.text) - len(self.text[self.pos :].lstrip(_SPACE))
            self.start = self.pos
        return self.lex_text

    def lex_inside_action(self) -> _State | None:
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            return self.error("unclosed left paren")
        if self.pos >= len(self.text):
            return self.error("unclosed action")
        ch = self.text[self.pos]
        self.pos += 1
        if ch in _SPACE:
            self.pos -= 1
            return self.lex_space
        if ch == "=":
            self.emit(T.ASSIGN)
        elif ch == ":":
            if self.peek() != "=":
                return self.error("expected :=")
            self.pos += 1
            self.emit(T.DECLARE)
        elif ch == "|":
            self.emit(T.PIPE)
        elif ch == '"':
            return self.lex_quote
        elif ch == "`":
            return self.lex_raw_quote
        elif ch == "$":
            return self.lex_variable
        elif ch == "'":
            return self.lex_char
        elif ch == "." and self.peek() != "" and not "0" <= self.peek() <= "9":
            return self.lex_field
        elif ch in "+-." or "0" <= ch <= "9":
            self.pos -= 1
            return self.lex_number
        elif _alnum(ch):
            self.pos -= 1
            return self.lex_identifier
        elif ch == "(":
            self.emit(T.LEFT_PAREN)
            self.paren_depth += 1
        elif ch == ")":
            self.emit(T.RIGHT_PAREN)
            self.paren_depth -= 1
            if self.paren_depth < 0:
                return self.error(f"unexpected right paren {go_unicode_repr(ch)}")
        elif ch <= "\x7f" and ch.isprintable():
            self.emit(T.CHAR)
        else:
            return self.error(f"unrecognized character in action: {go_unicode_repr(ch)}")
        return self.lex_inside_action

    def lex_space(self) -> _State | None:
        spaces = 0
        while self.peek() != "" and self.peek() in _SPACE:
            self.pos += 1
            spaces += 1
        # A trim-marked closing delimiter (" -}}") starts with a space: leave it for the delimiter.
        if _has_right_trim(self.text, self.pos - 1) and self.text.startswith(_RIGHT, self.pos + 1):
            self.pos -= 1
            if spaces == 1:
                return self.lex_right_delim
        self.emit(T.SPACE)
        return self.lex_inside_action

    def lex_identifier(self) -> _State | None:
        while self.pos < len(self.text) and _alnum(self.text[self.pos]):
            self.pos += 1
        word = self.text[self.start : self.pos]
        if not self.at_terminator():
            return self.error(f"bad character {go_unicode_repr(self.peek())}")
        if word in _KEYWORDS and _KEYWORDS[word] > T.KEYWORD:
            self.emit(_KEYWORDS[word])
        elif word[0] == ".":
            self.emit(T.FIELD)
        elif word in ("true", "false"):
            self.emit(T.BOOL)
        else:
            self.emit(T.IDENTIFIER)
        return self.lex_inside_action

    def lex_field(self) -> _State | None:
        return self.lex_field_or_variable(T.FIELD)

    def lex_variable(self) -> _State | None:
        if self.at_terminator():
            self.emit(T.VARIABLE)
            return self.lex_inside_action
        return self.lex_field_or_variable(T.VARIABLE)

    def lex_field_or_variable(self, typ: T) -> _State | None:
        if self.at_terminator():
            self.emit(T.VARIABLE if typ is T.VARIABLE else T.DOT)
            return self.lex_inside_action
        while self.pos < len(self.text) and _alnum(self.text[self.pos]):
            self.pos += 1
        if not self.at_terminator():
            return self.error(f"bad character {go_unicode_repr(self.peek())}")
        self.emit(typ)
        return self.lex_inside_action

    def lex_char(self) -> _State | None:
        while True:
            ch = self.peek()
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                self.pos += 1
                if nxt not in ("", "\n"):
                    continue
                ch = nxt
            if ch in ("", "\n"):
                return self.error("unterminated character constant")
            if ch == "'":
                break
        self.emit(T.CHAR_CONSTANT)
        return self.lex_inside_action

    def lex_number(self) -> _State | None:
        if not self.scan_number():
            return self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
        if self.peek() in ("+", "-"):
            if not self.scan_number() or self.text[self.pos - 1] != "i":
                return self.error(
                    f"bad number syntax: {go_quote(self.text[self.start : self.pos])}"
                )
            self.emit(T.COMPLEX)
        else:
            self.emit(T.NUMBER)
        return self.lex_inside_action

    def accept(self, valid: str) -> bool:
        if self.peek() != "" and self.peek() in valid:
            self.pos += 1
            return True
        return False

    def accept_run(self, valid: str) -> None:
        while self.accept(valid):
            pass

    def scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if self.peek() != "" and _alnum(self.peek()):
            self.pos += 1
            return False
        return True

    def lex_quote(self) -> _State | None:
        while True:
            ch = self.peek()
            self.pos += 1
            if ch == "\\":
                nxt = self.peek()
                self.pos += 1
                if nxt not in ("", "\n"):
                    continue
                ch = nxt
            if ch in ("", "\n"):
                return self.error("unterminated quoted string")
            if ch == '"':
                break
        self.emit(T.STRING)
        return self.lex_inside_action

    def lex_raw_quote(self) -> _State | None:
        end = self.text.find("`", self.pos)
        if end < 0:
            return self.error("unterminated raw quoted string")
        self.pos = end + 1
        self.emit(T.RAW_STRING)
        return self.lex_inside_action


def lex(text: str) -> list[Item]:
    """All tokens of `text`, ending with EOF or with the ERROR token that stopped lexing."""
    return _Lexer(text).run()
