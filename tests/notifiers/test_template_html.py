"""Contextual escaping for email HTML (html/template); amtool-verified cases live in the corpus."""

from __future__ import annotations

import pytest

from services.notifiers.template import TemplateSet

RENDER = TemplateSet().render_html


@pytest.mark.parametrize(
    ("text", "value", "want"),
    [
        ("<p>{{ . }}</p>", "<b>&'\"+", "<p>&lt;b&gt;&amp;&#39;&#34;&#43;</p>"),
        ('<a title="{{ . }}">', "a\"b", '<a title="a&#34;b">'),
        ("<a title='{{ . }}'>", "a'b", "<a title='a&#39;b'>"),
        ("<a title={{ . }}>", "a b=c", "<a title=a&#32;b&#61;c>"),
        ('<a href="{{ . }}">', "javascript:alert(1)", '<a href="#ZgotmplZ">'),
        ('<a href="{{ . }}">', "https://x/a b?q=1&r", '<a href="https://x/a%20b?q=1&amp;r">'),
        ('<a href="/search?q={{ . }}">', "a&b c", '<a href="/search?q=a%26b%20c">'),
        ("<title>{{ . }}</title>", "<x>", "<title>&lt;x&gt;</title>"),
        ("<script>var v = {{ . }};</script>", "</script>", '<script>var v = "\\u003c/script\\u003e";</script>'),
        ("<script>var v = '{{ . }}';</script>", "'\n", "<script>var v = '\\u0027\\n';</script>"),
        ('<p style="color: {{ . }}">', "red;background:url(x)", '<p style="color: ZgotmplZ">'),
        ("<!-- {{ . }} -->after", "gone", "after"),
        ("a < b {{ . }}", "c", "a &lt; b c"),
        ("<!DOCTYPE html><p>{{ . }}", "x", "<!DOCTYPE html><p>x"),
    ],
    ids=[
        "text", "dq-attr", "sq-attr", "unquoted-attr", "url-scheme-filter", "url-normalized",
        "url-query", "rcdata", "script-value", "script-string", "css-filter", "comment",
        "lone-lt", "doctype",
    ],
)  # fmt: skip
def test_values_are_escaped_for_their_context(text: str, value: str, want: str) -> None:
    assert RENDER(text, value) == want


def test_safe_html_passes_in_text_and_is_stripped_in_attributes() -> None:
    assert RENDER('<p>{{ safeHtml "<b>x</b>" }}</p>', None) == "<p><b>x</b></p>"
    assert RENDER('<p title="{{ safeHtml "<b>x</b> &amp;" }}">', None) == '<p title="x &amp;">'


def test_html_and_urlquery_at_the_end_of_a_pipeline_are_not_applied_twice() -> None:
    assert RENDER('<p>{{ "<b>" | html }}</p>', None) == "<p>&lt;b&gt;</p>"
    assert RENDER('<a href="/?r={{ "a b+" | urlquery }}">', None) == '<a href="/?r=a&#43;b%2B">'


def test_nested_templates_are_escaped_in_the_callers_context() -> None:
    templates = TemplateSet()
    templates.parse('{{ define "v" }}{{ . }}{{ end }}', "t.tmpl")
    assert templates.render_html(
        '<a href="{{ template "v" "x y" }}">{{ template "v" "<" }}', None
    ) == ('<a href="x%20y">&lt;')


def test_missing_values_print_nothing() -> None:
    assert RENDER("<p>{{ .nope }}</p>", {}) == "<p></p>"
    assert TemplateSet().render("<p>{{ .nope }}</p>", {}) == "<p><no value></p>"
