"""Go text/template semantics: every case's expected output was produced by Alertmanager 0.25's
own engine (amtool template render), see tests/notifiers/amtool_corpus.py."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifiers.template import (
    TemplateError,
    TemplateExecError,
    TemplateSet,
    TemplateSyntaxError,
)
from services.notifiers.template.evaluator import MAX_DEPTH
from tests.notifiers.amtool_corpus import CORPUS_FILE, USER_FILE, corpus_data

CORPUS = json.loads(CORPUS_FILE.read_text())
CASES = CORPUS["cases"]
# Tocsin's default.tmpl is its own text, so positions inside it differ from Alertmanager's.
OWN_DEFAULTS = {"err:default-template-error"}


def run_case(case: dict[str, Any]) -> str:
    templates = TemplateSet.default()
    if case["user_file"]:
        templates.parse(USER_FILE, "user.tmpl")
    render = templates.render_html if case["html"] else templates.render
    try:
        return render(case["text"], corpus_data(case["data"]))
    except TemplateError as exc:
        return "ERR:" + str(exc)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_renders_as_alertmanager(case: dict[str, Any]) -> None:
    got, want = run_case(case), case["want"]
    if case["id"] in OWN_DEFAULTS:
        got, want = (re.sub(r"default\.tmpl:\d+:\d+", "default.tmpl:L:C", s) for s in (got, want))
    assert got == want


def test_corpus_is_broad() -> None:
    ids = {c["id"] for c in CASES}
    assert sum(i.startswith("err:") for i in ids) >= 60
    assert sum(i.startswith("html:") for i in ids) >= 25
    assert len(ids) == len(CASES)


# Error objects ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message", "line", "column"),
    [
        ("{{ } }}", 'template: :1: unexpected "}" in command', 1, 3),
        ("a\nb {{ .X | 1 }}", "template: :2: non executable command in pipeline stage 2", 2, 12),
        ("x\n\n  {{ if }}", "template: :3: missing value for if", 3, 8),
        ("{{ humanize 1 }}", 'template: :1: function "humanize" not defined', 1, 3),
        ("é{{ .X", "template: :1: unclosed action", 1, 7),
    ],
    ids=["unexpected", "second-line", "third-line", "function", "byte-column"],
)
def test_syntax_error_position(text: str, message: str, line: int, column: int) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        TemplateSet().render(text, None)
    assert str(info.value) == message
    assert (info.value.source, info.value.line, info.value.column) == ("", line, column)


def test_exec_error_names_template_and_position() -> None:
    templates = TemplateSet()
    templates.parse('{{ define "inner" }}\n  {{ .Nope }}{{ end }}', "user.tmpl")
    with pytest.raises(TemplateExecError) as info:
        templates.render('{{ template "inner" . }}', corpus_data("two"))
    err = info.value
    assert str(err) == (
        'template: user.tmpl:2:5: executing "inner" at <.Nope>: '
        "can't evaluate field Nope in type template.Data"
    )
    assert (err.template, err.source, err.line, err.column) == ("inner", "user.tmpl", 2, 5)


def test_recursion_is_bounded() -> None:
    templates = TemplateSet()
    templates.parse('{{ define "loop" }}x{{ template "loop" . }}{{ end }}', "loop.tmpl")
    with pytest.raises(
        TemplateExecError, match=rf"exceeded maximum template depth \({MAX_DEPTH}\)"
    ):
        templates.render('{{ template "loop" . }}', None)


def test_execute_a_named_template() -> None:
    templates = TemplateSet.default()
    assert templates.execute("__alertmanager", None) == "Alertmanager"
    with pytest.raises(TemplateError, match='no template "nope"'):
        templates.execute("nope", None)


def test_check_parses_without_running() -> None:
    TemplateSet.default().check('{{ template "does.not.exist" . }}')
    with pytest.raises(TemplateSyntaxError):
        TemplateSet.default().check("{{ end }}")


# Robustness: any input either renders or fails with a TemplateError --------------------------
_PIECES = [
    "{{", "}}", "{{-", "-}}", " ", "\n", ".", ".Status", ".Alerts", "$", "$x", ":=", "=", "|",
    "(", ")", '"s"', "`r`", "'c'", "1", "-2", "3.5", "nil", "true", "if", "else", "end", "range",
    "with", "define", "template", "block", "break", "continue", "len", "index", "printf", "eq",
    "and", "toUpper", "join", "/*", "*/", "x", ",", "é",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=25).map("".join))
def test_arbitrary_input_fails_cleanly(text: str) -> None:
    templates = TemplateSet.default()
    for render in (templates.render, templates.render_html):
        with contextlib.suppress(TemplateError):
            render(text, corpus_data("two"))
