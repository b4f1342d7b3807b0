"""Prometheus durations: the exact syntax and messages, and the printed form."""

from __future__ import annotations

import pytest

from schemas.config.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("4h", 14400.0),
        ("1d", 86400.0),
        ("2w", 1209600.0),
        ("1y", 31536000.0),
        ("1m30s500ms", 90.5),
        ("5ms", 0.005),
        ("1y2w3d4h5m6s7ms", 31536000 + 1209600 + 259200 + 14400 + 300 + 6 + 0.007),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration string"),
        ("10", 'not a valid duration string: "10"'),
        ("1.5h", 'not a valid duration string: "1.5h"'),
        ("30s5m", 'not a valid duration string: "30s5m"'),
        ("5 m", 'not a valid duration string: "5 m"'),
        ("-5m", 'not a valid duration string: "-5m"'),
        ("5M", 'not a valid duration string: "5M"'),
        ("5m\n", 'not a valid duration string: "5m\\n"'),
        ("300y", "duration out of range"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="duration") as info:
        parse_duration(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (30, "30s"),
        (300, "5m"),
        (5400, "1h30m"),
        (86400 * 14, "2w"),
        (86400 * 9, "9d"),
        (0.25, "250ms"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
