"""Time intervals: Alertmanager 0.25's containment rules, quirks included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from schemas.config import TimeIntervalSet, load
from tests.schemas.config.casefiles import CONFIG_DIR


def _set(**interval: Any) -> TimeIntervalSet:
    return TimeIntervalSet.model_validate({"name": "t", "time_intervals": [interval]})


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


INTERVALS = load(CONFIG_DIR / "good-time-intervals.yml").time_intervals


@pytest.mark.parametrize(
    ("name", "when", "expected"),
    [
        ("office-hours", _utc(2024, 1, 15, 8, 0), True),  # Monday 09:00 in Berlin
        ("office-hours", _utc(2024, 1, 15, 7, 59), False),
        ("office-hours", _utc(2024, 1, 15, 16, 29), True),
        ("office-hours", _utc(2024, 1, 15, 16, 30), False),  # 17:30 Berlin: the end is exclusive
        ("office-hours", _utc(2024, 7, 15, 15, 29), True),  # summer time: UTC+2
        ("office-hours", _utc(2024, 1, 13, 10, 0), False),  # Saturday
        ("nights", _utc(2024, 1, 13, 23, 59), True),  # 24:00 is a valid end
        ("nights", _utc(2024, 1, 13, 6, 59), True),
        ("nights", _utc(2024, 1, 13, 7, 0), False),
        ("holidays", _utc(2024, 12, 25, 12), True),
        ("holidays", _utc(2024, 12, 31, 12), True),  # -1: the last day of the month
        ("holidays", _utc(2024, 12, 30, 12), False),
        ("holidays", _utc(2025, 1, 1, 0), True),
        ("holidays", _utc(2031, 1, 1, 0), False),
    ],
)
def test_config_intervals(name: str, when: datetime, expected: bool) -> None:
    assert INTERVALS[name].contains(when) is expected


def test_mute_time_intervals_use_their_own_messages_but_the_same_type() -> None:
    assert isinstance(INTERVALS["holidays"], TimeIntervalSet)


def test_without_location_the_time_is_read_in_its_own_zone() -> None:
    nine_to_five = _set(times=[{"start_time": "09:00", "end_time": "17:00"}])
    four_pm_in_brazil = datetime(2024, 1, 1, 16, tzinfo=timezone(timedelta(hours=-2)))
    assert nine_to_five.contains(_utc(2024, 1, 1, 9))
    assert nine_to_five.contains(four_pm_in_brazil)
    assert not nine_to_five.contains(four_pm_in_brazil.astimezone(UTC))


@pytest.mark.parametrize(
    ("interval", "when", "expected"),
    [
        ({}, _utc(2024, 2, 29), True),  # no fields: always
        ({"weekdays": []}, _utc(2024, 2, 29), False),  # an empty list: never (yaml.v2 non-nil)
        ({"weekdays": ["sunday"]}, _utc(2024, 3, 3), True),
        ({"weekdays": ["SATURDAY"]}, _utc(2024, 3, 3), False),  # names are case-insensitive
        ({"weekdays": ["monday:friday", "sunday"]}, _utc(2024, 3, 3), True),
        ({"days_of_month": ["1:31"]}, _utc(2024, 2, 29), True),  # clamped to the month
        ({"days_of_month": ["30:31"]}, _utc(2024, 2, 29), False),  # starts after the month
        ({"days_of_month": ["-31:-1"]}, _utc(2023, 2, 1), True),
        ({"days_of_month": ["-7:-1"]}, _utc(2023, 2, 21), False),
        ({"days_of_month": ["-7:-1"]}, _utc(2023, 2, 22), True),
        ({"months": ["13"]}, _utc(2024, 12, 1), False),  # accepted, never matches (as 0.25)
        ({"months": ["may:august"]}, _utc(2024, 8, 31), True),
        ({"years": ["2024"], "months": ["2"]}, _utc(2024, 2, 1), True),
        ({"years": ["2024"], "months": ["3"]}, _utc(2024, 2, 1), False),
    ],
)
def test_contains(interval: dict[str, Any], when: datetime, expected: bool) -> None:
    assert _set(**interval).contains(when) is expected


def test_last_day_of_a_dst_month_follows_alertmanager_0_25() -> None:
    # 0.25 counts March in Berlin as 743 hours // 24 = 30 days, so -1 is the 30th (fixed in 0.28)
    last = _set(days_of_month=["-1"], location="Europe/Berlin")
    assert last.contains(_utc(2024, 3, 30, 12))
    assert not last.contains(_utc(2024, 3, 31, 12))
    assert _set(days_of_month=["-1"]).contains(_utc(2024, 3, 31, 12))


def test_local_location_is_accepted() -> None:
    assert _set(location="Local").contains(_utc(2024, 1, 1))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _set().contains(datetime(2024, 1, 1))  # noqa: DTZ001 - the point of the test
