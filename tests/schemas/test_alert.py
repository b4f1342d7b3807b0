"""Fingerprints, alert validation and timestamps, against vectors read from Alertmanager 0.25."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.alert import fingerprint, fingerprint_py, label_name_ok, validate_alert
from schemas.timefmt import format_ns, parse_ns

# Reference §12: every row but the first was read back from a live Alertmanager 0.25.0.
FINGERPRINTS = [
    ({}, "cbf29ce484222325"),
    (
        {"alertname": "HighCPU", "instance": "a:9100", "job": "node", "severity": "critical"},
        "f640b7e1ff8afe25",
    ),
    (
        {"alertname": "HighCPU", "instance": "b:9100", "job": "node", "severity": "critical"},
        "c13f7a2620dad38a",
    ),
    ({"alertname": "Other", "team": "x.y"}, "d4cba7444aee36b8"),
    ({"alertname": "Other2", "team": "x.y"}, "b62c4bf347fcfc78"),
    (
        {"alertname": "Sort", "team": "x.y", "a": "1", "a0": "2", "a_b": "3", "B": "4"},
        "d2c9d85b32a37cc0",
    ),
    ({"alertname": "Ünïcødé ✓", "path": 'C:\\tmp\n"q"'}, "fa2a82900522a76a"),
]


@pytest.mark.parametrize(("labels", "expected"), FINGERPRINTS, ids=[e for _, e in FINGERPRINTS])
def test_fingerprint_matches_alertmanager(labels: dict[str, str], expected: str) -> None:
    assert fingerprint(labels) == expected


@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=6))
def test_fingerprint_ignores_insertion_order(labels: dict[str, str]) -> None:
    assert fingerprint(dict(reversed(list(labels.items())))) == fingerprint(labels)


@pytest.mark.parametrize(
    ("name", "ok"),
    [("alertname", True), ("_x", True), ("a1_B", True), ("a-b", False), ("1a", False),
     ("a:b", False), ("", False), ("ä", False)],
)  # fmt: skip
def test_label_name_rule_is_the_classic_one(name: str, ok: bool) -> None:
    assert label_name_ok(name) is ok


@pytest.mark.parametrize(
    ("labels", "annotations", "starts", "ends", "message"),
    [
        ({"a": "1"}, {}, 10, 5, "start time must be before end time"),
        ({"a-b": "1"}, {}, 1, None, 'invalid label set: invalid name "a-b"'),
        ({}, {}, 1, None, "at least one label pair required"),
        ({"a": "1"}, {"bad key": "x"}, 1, None, 'invalid annotations: invalid name "bad key"'),
        # Alertmanager checks the times first, so both problems report the time one.
        ({"a-b": "1"}, {}, 10, 5, "start time must be before end time"),
    ],
    ids=["ends-before-starts", "bad-label", "no-labels", "bad-annotation", "order"],
)
def test_validation_messages_are_alertmanagers(
    labels: dict[str, str], annotations: dict[str, str], starts: int, ends: int | None, message: str
) -> None:
    problem = validate_alert(labels, annotations, starts, ends, (3,))
    assert problem is not None
    assert problem.message == message
    assert problem.path.startswith("/3/")


def test_equal_start_and_end_is_valid() -> None:
    assert validate_alert({"a": "1"}, {}, 5, 5, (0,)) is None


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2026-11-27T02:10:31.083842749Z", 1795745431083842749),
        ("2026-11-27T03:10:31.5+01:00", 1795745431500000000),
        ("2026-11-26T20:10:31-06:00", 1795745431000000000),
    ],
)
def test_parse_keeps_nanoseconds_and_offsets(text: str, ns: int) -> None:
    assert parse_ns(text) == ns


@pytest.mark.parametrize(
    "text", ["2026-11-27", "2026-13-01T00:00:00Z", "2026-11-27T00:00:00", "now", ""]
)
def test_parse_rejects_non_rfc3339(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_ns(text)


@given(st.integers(min_value=0, max_value=4_000_000_000 * 10**9))
def test_format_round_trips(ns: int) -> None:
    assert parse_ns(format_ns(ns)) == ns


def test_format_drops_trailing_zeros_like_go() -> None:
    assert format_ns(1795745431500000000) == "2026-11-27T02:10:31.5Z"
    assert format_ns(1795745431000000000) == "2026-11-27T02:10:31Z"


_LABEL_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)


@given(st.dictionaries(_LABEL_TEXT, _LABEL_TEXT, max_size=40))
def test_c_fingerprint_equals_the_reference(labels: dict[str, str]) -> None:
    c_build = pytest.importorskip("schemas._fnv")
    assert c_build.fingerprint(labels) == fingerprint_py(labels)
