"""A set of named templates with Alertmanager's functions, rendered as Alertmanager renders.

Where Tocsin knowingly differs from Go 1.19 / Alertmanager 0.25 (everything else is checked
against the real binaries by tests/notifiers):

- html/template escaping is tracked at run time (see htmlescape): Go's escape-time errors
  ("ends in a non-text context", branches ending in different contexts, actions in JS
  template literals) are not raised, and a few JS/CSS sub-contexts are simplified.
- Printing a time.Time with a non-string verb (`printf "%d"`) shows `%!d(time.Time=...)`
  where Go shows the struct's private fields; times never carry Go's monotonic ` m=+...`
  suffix; `+00:00` offsets are UTC (Alertmanager running with TZ=UTC) and `.Local` is UTC.
- Nested `{{template}}` calls stop at MAX_DEPTH (100) instead of Go's 100000.
- `slice` of a string cuts bytes as Go does, but a cut inside a UTF-8 sequence yields U+FFFD.
- `call` always fails: template data holds no function values.
"""

from __future__ import annotations

import os
from collections import ChainMap
from collections.abc import Iterable, Mapping
from pathlib import Path

from services.notifiers.template.defaults import DEFAULT_TEMPLATES, DEFAULTS_NAME
from services.notifiers.template.errors import TemplateError
from services.notifiers.template.evaluator import TextSink, execute
from services.notifiers.template.functions import FUNCS
from services.notifiers.template.gofmt import go_quote
from services.notifiers.template.htmlescape import HtmlSink
from services.notifiers.template.nodes import Tree
from services.notifiers.template.parser import parse

__all__ = ["TemplateSet"]

_CACHE_SIZE = 512


def _associate(into: dict[str, Tree], trees: Mapping[str, Tree]) -> None:
    """text/template's association: a later definition wins unless it is empty."""
    for name, tree in trees.items():
        old = into.get(name)
        if old is not None and tree.is_empty():
            continue
        into[name] = tree


class TemplateSet:
    """Named templates (Go's associated templates) sharing Alertmanager 0.25's functions.

    `default()` holds Tocsin's built-in definitions; `parse_files` adds a config's `templates:`
    files after them, so a file may redefine a built-in. `render` and `render_html` execute a
    receiver field's text the way Alertmanager's ExecuteTextString / ExecuteHTMLString do.
    """

    def __init__(self) -> None:
        self._trees: dict[str, Tree] = {}
        self._cache: dict[str, dict[str, Tree]] = {}

    @classmethod
    def default(cls) -> TemplateSet:
        """A set holding Tocsin's default templates (`__subject`, `slack.default.title`, ...)."""
        templates = cls()
        templates.parse(DEFAULT_TEMPLATES, DEFAULTS_NAME)
        return templates

    def copy(self) -> TemplateSet:
        """An independent set with the same definitions."""
        other = TemplateSet()
        other._trees = dict(self._trees)
        return other

    def parse(self, text: str, name: str) -> None:
        """Parse `text` as template `name` (as a file of that base name would be) and add it and
        its definitions. Raises TemplateSyntaxError (`template: NAME:LINE: ...`)."""
        _associate(self._trees, parse(text, name, FUNCS))
        self._cache.clear()

    def parse_files(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Parse template files in order, each named by its base name, as Go's ParseFiles."""
        for path in paths:
            file = Path(path)
            self.parse(file.read_text(encoding="utf-8", errors="surrogateescape"), file.name)

    def names(self) -> list[str]:
        """The names of the defined templates, sorted."""
        return sorted(name for name, tree in self._trees.items() if tree.root is not None)

    def check(self, text: str) -> None:
        """Parse a receiver field's text without running it; TemplateSyntaxError if invalid."""
        self._parse_text(text)

    def render(self, text: str, data: object) -> str:
        """Execute a receiver field's text (a text/template named "") with `data` as dot.

        An empty text renders as "" without being parsed, as in Alertmanager.
        Raises TemplateSyntaxError or TemplateExecError.
        """
        return self._render(text, data, TextSink())

    def render_html(self, text: str, data: object) -> str:
        """Like `render`, with html/template's contextual escaping of printed values."""
        return self._render(text, data, HtmlSink())

    def execute(self, name: str, data: object, *, html: bool = False) -> str:
        """Execute the defined template `name`; TemplateError if there is none."""
        tree = self._trees.get(name)
        if tree is None or tree.root is None:
            message = (
                f"template: no template {go_quote(name)} associated with template {go_quote('')}"
            )
            raise TemplateError(message, source="", line=0, column=0)
        sink: TextSink | HtmlSink = HtmlSink() if html else TextSink()
        execute(self._trees, FUNCS, tree, data, sink)
        return "".join(sink.parts)

    def _parse_text(self, text: str) -> dict[str, Tree]:
        trees = self._cache.get(text)
        if trees is None:
            trees = parse(text, "", FUNCS)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[text] = trees
        return trees

    def _render(self, text: str, data: object, sink: TextSink | HtmlSink) -> str:
        if not text:
            return ""
        trees = self._parse_text(text)
        local: dict[str, Tree] = {}
        for name, tree in trees.items():  # the text's own definitions, for this render only
            if not (tree.is_empty() and name in self._trees):
                local[name] = tree
        execute(ChainMap(local, self._trees), FUNCS, trees[""], data, sink)
        return "".join(sink.parts)
