"""Go's fmt and time formatting, as templates print values (cases from the fmt and time docs)."""

from __future__ import annotations

import pytest

from services.notifiers.template.data import KV, Pair, Pairs
from services.notifiers.template.gofmt import format_value, go_quote, sprint, sprintf, sprintln
from services.notifiers.template.gotime import Duration, GoTime
from services.notifiers.template.gotypes import StringSlice


@pytest.mark.parametrize(
    ("fmt", "args", "want"),
    [
        ("%s|%v|%q", ["a", "b", 'c"\n'], 'a|b|"c\\"\\n"'),
        ("%d|%5d|%-5d|%05d|%+d|% d", [1, 2, 3, 4, 5, 6], "1|    2|3    |00004|+5| 6"),
        ("%x|%X|%#x|%o|%#o|%O|%b", [255, 255, 255, 8, 8, 8, 5], "ff|FF|0xff|10|010|0o10|101"),
        ("%c|%q|%U|%#U", [65, 66, 0x1F525, 0x41], "A|'B'|U+1F525|U+0041 'A'"),
        (
            "%f|%.2f|%8.3f|%-8.1f|%e|%E|%g",
            [1.5, 3.14159, 2.5, 1.25, 1234.5678, 0.5, 1e-7],
            "1.500000|3.14|   2.500|1.2     |1.234568e+03|5.000000E-01|1e-07",
        ),
        ("%v|%v|%v|%v|%v", [1.0, 1e6, 123456.0, 1e-5, 0.0001], "1|1e+06|123456|1e-05|0.0001"),
        ("%v|%f|%v", [float("inf"), float("-inf"), float("nan")], "+Inf|-Inf|NaN"),
        ("%t|%v", [True, False], "true|false"),
        ("%x|% x|%X", ["hi", "hi", "é"], "6869|68 69|C3A9"),
        ("%.2s|%5s|%-5s|%05s", ["héllo", "ab", "ab", "ab"], "hé|   ab|ab   |000ab"),
        ("%+q|%#q", ["é", "back"], '"\\u00e9"|`back`'),
        ("%%|%d%%", [50], "%|50%"),
        ("%d", ["x"], "%!d(string=x)"),
        ("%s", [5], "%!s(int=5)"),
        ("%d", [None], "%!d(<nil>)"),
        ("%d %d", [1], "1 %!d(MISSING)"),
        ("%d", [1, "a", None], "1%!(EXTRA string=a, <nil>)"),
        ("%", [], "%!(NOVERB)"),
        ("%[2]s %[1]s", ["a", "b"], "b a"),
        ("%[3]s", ["a"], "%!s(BADINDEX)"),
        ("%*d|%-*d", [4, 7, 3, 1], "   7|1  "),
        ("%v", [[1, "a", None]], "[1 a <nil>]"),
        ("%v", [{"b": 2, "a": 1}], "map[a:1 b:2]"),
        ("%d", [StringSlice(["a"])], "[%!d(string=a)]"),
        ("%q", [StringSlice(["a", "b"])], '["a" "b"]'),
        ("%v|%+v", [Pair("a", "b"), Pair("a", "b")], "{a b}|{Name:a Value:b}"),
        ("%#v", [KV({"a": "b"})], 'template.KV{"a":"b"}'),
        ("%T|%T|%T", [KV(), Pairs(), 1.5], "template.KV|template.Pairs|float64"),
        ("%v", [complex(1, -2)], "(1-2i)"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_sprintf(fmt: str, args: list[object], want: str) -> None:
    assert sprintf(fmt, args) == want


def test_sprint_spaces_only_between_non_strings() -> None:
    assert sprint([1, 2, "a", "b", 3, None]) == "1 2ab3 <nil>"
    assert sprintln([1, "a", None]) == "1 a <nil>\n"


def test_quote_matches_strconv() -> None:
    assert go_quote('a"\\\n\t\x00\x7fé\u200b') == '"a\\"\\\\\\n\\t\\x00\\x7fé\\u200b"'
    assert go_quote("🔥", ascii_only=True) == '"\\U0001f525"'


def test_printed_values() -> None:
    kv = KV({"job": "node", "alertname": "A"})
    assert format_value(kv) == "map[alertname:A job:node]"
    assert format_value(kv.SortedPairs()) == "[{alertname A} {job node}]"
    assert format_value(StringSlice(["a", "b"])) == "[a b]"
    assert format_value(Duration(90 * 60 * 10**9)) == "1h30m0s"


@pytest.mark.parametrize(
    ("ns", "want"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1100, "1.1µs"),
        (2_200_000, "2.2ms"),
        (1_500_000_000, "1.5s"),
        (-1_500_000_000, "-1.5s"),
        (3_723_000_000_000, "1h2m3s"),
        (60_000_000_000, "1m0s"),
        (100 * 3600 * 10**9 + 1, "100h0m0.000000001s"),
    ],
)
def test_duration_string(ns: int, want: str) -> None:
    assert Duration(ns).go_string() == want


T = GoTime.parse("2026-11-27T02:10:31.083842749Z")
T_OFFSET = GoTime.parse("2026-11-27T14:05:09.5-07:30")


@pytest.mark.parametrize(
    ("t", "layout", "want"),
    [
        (T, "2006-01-02 15:04:05.999999999 -0700 MST", "2026-11-27 02:10:31.083842749 +0000 UTC"),
        (T, "2006-01-02T15:04:05Z07:00", "2026-11-27T02:10:31Z"),
        (T, "2006-01-02T15:04:05.000000000Z07:00", "2026-11-27T02:10:31.083842749Z"),
        (T, "Mon Jan _2 15:04:05 2006", "Fri Nov 27 02:10:31 2026"),
        (T, "Monday, January 2, 2006 3:04PM", "Friday, November 27, 2026 2:10AM"),
        (T, "02/01/06 03:04:05.00 pm", "27/11/26 02:10:31.08 am"),
        (T, "2006-002 __2 .9 ,999", "2026-331 331  ,083"),  # .9 drops a zero digit and its dot
        (
            T,
            "Janx Mond",
            "Janx Mond",
        ),  # a month or day name followed by a lower-case letter is text
        (
            T_OFFSET,
            "15:04:05.9 -0700 -07:00 -07 Z0700 MST",
            "14:05:09.5 -0730 -07:30 -07 -0730 -0730",
        ),
        (
            T_OFFSET,
            time_str := "2006-01-02 15:04:05.999999999 -0700 MST",
            "2026-11-27 14:05:09.5 -0730 -0730",
        ),
        (GoTime.zero(), time_str, "0001-01-01 00:00:00 +0000 UTC"),
        (GoTime.parse("2026-01-02T03:04:05+00:00"), time_str, "2026-01-02 03:04:05 +0000 UTC"),
    ],
)
def test_time_format(t: GoTime, layout: str, want: str) -> None:
    assert t.Format(layout) == want


def test_time_methods() -> None:
    assert (T.Unix(), T.UnixMilli(), T.Nanosecond()) == (1795745431, 1795745431083, 83842749)
    assert (T.Year(), T.Month().go_string(), T.Day(), T.Hour(), T.Weekday().go_string()) == (
        2026, "November", 27, 2, "Friday"
    )  # fmt: skip
    assert T_OFFSET.UTC().go_string() == "2026-11-27 21:35:09.5 +0000 UTC"
    assert GoTime.zero().IsZero()
    assert not T.IsZero()
    assert GoTime.zero().UnixNano() == -6795364578871345152  # int64 overflow, as in Go
    assert T_OFFSET.Sub(T).go_string() == "19h24m38.416157251s"
    assert T.Truncate(3600 * 10**9).go_string() == "2026-11-27 02:00:00 +0000 UTC"
    assert T.Round(3600 * 10**9).go_string() == "2026-11-27 02:00:00 +0000 UTC"
    assert T.Before(T_OFFSET)
    assert T_OFFSET.After(T)
    assert T.Equal(T.UTC())
