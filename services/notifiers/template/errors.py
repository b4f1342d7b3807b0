"""Template errors. The message is Go's text, which Alertmanager users already know."""

from __future__ import annotations

__all__ = ["TemplateError", "TemplateExecError", "TemplateSyntaxError"]


class TemplateError(Exception):
    """A template could not be parsed or executed; `str()` is the message Go would print.

    `source` names the text the error is in (a file's base name, "" for a receiver field),
    `line` is 1-based and `column` a 0-based byte offset in that line (Go's convention).
    """

    def __init__(self, message: str, *, source: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.line = line
        self.column = column

    def __str__(self) -> str:
        return self.message


class TemplateSyntaxError(TemplateError):
    """A parse error: `template: NAME:LINE: message` (Go reports no column; we keep one)."""


class TemplateExecError(TemplateError):
    """An execution error: `template: NAME:LINE:COL: executing "T" at <node>: message`.

    `template` is the name of the template that was executing (a `define`d name, say).
    """

    def __init__(self, message: str, *, source: str, line: int, column: int, template: str) -> None:
        super().__init__(message, source=source, line=line, column=column)
        self.template = template
