"""Matcher parsing and matching: the 77 amtool-verified cases, and Go RE2 regex semantics."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.config.matchers import (
    Matcher,
    MatcherError,
    MatchType,
    format_matchers,
    matches_all,
    parse_matchers,
    sort_matchers,
)
from tests.conftest import TESTDATA

CASES: list[dict[str, Any]] = json.loads((TESTDATA / "matcher_cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["input"] for c in CASES])
def test_conformance_with_amtool(case: dict[str, Any]) -> None:
    if "error" in case:
        with pytest.raises(MatcherError) as info:
            parse_matchers(case["input"])
        assert str(info.value) == case["error"]
        return
    got = parse_matchers(case["input"])
    assert [{"name": m.name, "op": m.type.op, "value": m.value} for m in got] == case["matchers"]
    assert format_matchers(sort_matchers(got)) == case["sorted_string"]


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ('foo=""', {}, True),  # a missing label reads as ""
        ('foo!="x"', {}, True),
        ('foo=~"ba.*"', {"foo": "bar"}, True),
        ('foo=~"ba"', {"foo": "bar"}, False),  # anchored: a full match
        ('foo=~"foo"', {"foo": "foo\n"}, False),  # $ is end of text, not before a newline
        ('foo=~"(?i)FOO"', {"foo": "foo"}, True),  # inline flags inside the wrapper group
        ('foo!~"b.*"', {"foo": "bar"}, False),
        ('foo=~"\\\\d+"', {"foo": "١٢"}, False),  # \d is ASCII in RE2, Unicode in Python's re
        ('foo=~"a|b"', {"foo": "ab"}, False),  # alternation stays inside the anchors
    ],
)
def test_matching_follows_go_semantics(
    matcher: str, labels: dict[str, str], expected: bool
) -> None:
    assert matches_all(parse_matchers(matcher), labels) is expected


def test_backreferences_are_rejected_like_go() -> None:
    with pytest.raises(MatcherError, match=r"invalid escape sequence: `\\1`"):
        Matcher.new(MatchType.REGEXP, "a", r"(a)\1")


def test_empty_list_matches_everything() -> None:
    assert parse_matchers("") == []
    assert parse_matchers("{}") == []
    assert matches_all([], {"anything": "x"})
