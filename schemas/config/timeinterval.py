"""Named time intervals (`time_intervals`, `mute_time_intervals`) and when they contain a moment."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, PlainValidator, PrivateAttr, model_validator

from schemas.config._base import ConfigModel, FieldProblem, yaml_kind
from schemas.config._gostr import go_quote

__all__ = ["MuteTimeIntervalSet", "TimeInterval", "TimeIntervalSet", "TimeRange"]

_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTHS = (
    "",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_ATOI = re.compile(r"[+-]?[0-9]+")
_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")


def _atoi(text: str) -> int:
    if _ATOI.fullmatch(text) is None:
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    return int(text)


def _weekday(text: str) -> int:
    if text not in _WEEKDAYS:
        raise ValueError(f"{text} is not a valid weekday")
    return _WEEKDAYS.index(text)


def _month(text: str) -> int:
    if text in _MONTHS[1:]:
        return _MONTHS.index(text)
    try:
        return _atoi(text)
    except ValueError:
        raise ValueError(f"{text} is not a valid month") from None


def _range(value: Any, member: Any) -> tuple[int, int]:
    if not isinstance(value, str):
        # pydantic turns only ValueError into a validation error
        raise ValueError(f"cannot unmarshal {yaml_kind(value)} into string")
    text = value.lower()
    if ":" not in text:
        single = member(text)
        return single, single
    parts = text.split(":")
    if len(parts) != 2:
        raise ValueError(f"couldn't parse range {text}, invalid format")
    return member(parts[0]), member(parts[1])


def _weekdays(value: Any) -> tuple[int, int]:
    begin, end = _range(value, _weekday)
    if begin > end:
        raise ValueError("start day cannot be before end day")
    return begin, end


def _days_of_month(value: Any) -> tuple[int, int]:
    begin, end = _range(value, _atoi)
    for day in (begin, end):
        if day == 0 or not -31 <= day <= 31:
            raise ValueError(f"{day} is not a valid day of the month: out of range")
    if begin < 0 < end:
        raise ValueError("end day must be negative if start day is negative")
    if (28 + begin if begin < 0 else begin) > (28 + end if end < 0 else end):
        raise ValueError(f"end day {end} is always before start day {begin}")
    return begin, end


def _months(value: Any) -> tuple[int, int]:
    begin, end = _range(value, _month)
    if begin > end:
        names = dict(enumerate(_MONTHS))
        end_name, begin_name = names.get(end, ""), names.get(begin, "")
        raise ValueError(f"end month {end_name} is before start month {begin_name}")
    return begin, end


def _years(value: Any) -> tuple[int, int]:
    begin, end = _range(value, _atoi)
    if begin > end:
        raise ValueError(f"end year {end} is before start year {begin}")
    return begin, end


def _zone(name: str) -> tzinfo | None:
    """The zone of a `location` (None for `Local`); ValueError worded as Go's time package."""
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return None
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise ValueError(f"unknown time zone {name}") from None
    except ValueError:
        raise ValueError("time: invalid location name") from None


def _location(name: str) -> str:
    _zone(name)
    return name


def _minutes(text: str) -> int:
    if _TIME.fullmatch(text) is None:
        raise ValueError(f"couldn't parse timestamp {text}, invalid format")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


Weekdays = Annotated[tuple[int, int], PlainValidator(_weekdays)]
DaysOfMonth = Annotated[tuple[int, int], PlainValidator(_days_of_month)]
Months = Annotated[tuple[int, int], PlainValidator(_months)]
Years = Annotated[tuple[int, int], PlainValidator(_years)]


class TimeRange(ConfigModel):
    """`[start_time, end_time)` within a day, `HH:MM` (end may be `24:00`)."""

    start_time: str = ""
    end_time: str = ""

    @model_validator(mode="after")
    def _check(self) -> TimeRange:
        if not self.start_time or not self.end_time:
            raise ValueError("both start and end times must be provided")
        if _minutes(self.start_time) >= _minutes(self.end_time):
            raise ValueError("start time cannot be equal or greater than end time")
        return self

    @property
    def minutes(self) -> tuple[int, int]:
        """Start and end as minutes of the day."""
        return _minutes(self.start_time), _minutes(self.end_time)


def _days_in_month(when: datetime) -> int:
    # Alertmanager 0.25 counts the hours of the month and divides by 24, so a month with a DST
    # jump forward has one day less (30 for March in Europe/Berlin); kept for exact behaviour.
    start = datetime(when.year, when.month, 1, tzinfo=when.tzinfo)
    after = datetime(when.year + when.month // 12, when.month % 12 + 1, 1, tzinfo=when.tzinfo)
    return int((after.astimezone(UTC) - start.astimezone(UTC)).total_seconds() // 86400)


def _day_in(day: int, ranges: list[tuple[int, int]], days: int) -> bool:
    for begin, end in ranges:
        first = days + begin + 1 if begin < 0 else begin
        last = days + end + 1 if end < 0 else end
        if first > days:
            continue
        if max(-days, min(first, days)) <= day <= max(-days, min(last, days)):
            return True
    return False


def _in(value: int, ranges: list[tuple[int, int]] | None) -> bool:
    return ranges is None or any(begin <= value <= end for begin, end in ranges)


class TimeInterval(ConfigModel):
    """One entry: every field given must match; a field matches when any of its ranges does."""

    times: list[TimeRange] | None = None
    weekdays: list[Weekdays] | None = None
    days_of_month: list[DaysOfMonth] | None = None
    months: list[Months] | None = None
    years: list[Years] | None = None
    location: Annotated[str, AfterValidator(_location)] | None = None

    _times: list[tuple[int, int]] | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        """Precompute the minute ranges."""
        if self.times is not None:
            self._times = [t.minutes for t in self.times]

    def contains(self, when: datetime) -> bool:
        """Whether the aware datetime `when` (taken in `location` when set) is inside."""
        if when.tzinfo is None:
            raise ValueError("contains() needs a timezone-aware datetime")
        if self.location is not None:
            when = when.astimezone(_zone(self.location))
        if self._times is not None:
            minute = when.hour * 60 + when.minute
            if not any(start <= minute < end for start, end in self._times):
                return False
        if self.days_of_month is not None and not _day_in(
            when.day, self.days_of_month, _days_in_month(when)
        ):
            return False
        go_weekday = (when.weekday() + 1) % 7  # Go counts from Sunday = 0
        return (
            _in(when.month, self.months)
            and _in(go_weekday, self.weekdays)
            and _in(when.year, self.years)
        )


class TimeIntervalSet(ConfigModel):
    """A named list of intervals; it contains a moment when any of them does."""

    _kind: ClassVar[str] = "time interval"

    name: str = ""
    time_intervals: list[TimeInterval] = []

    @model_validator(mode="after")
    def _named(self) -> TimeIntervalSet:
        if not self.name:
            raise FieldProblem(f"missing name in {self._kind}", "name")
        return self

    def contains(self, when: datetime) -> bool:
        """Whether any interval contains the aware datetime `when`."""
        return any(interval.contains(when) for interval in self.time_intervals)


class MuteTimeIntervalSet(TimeIntervalSet):
    """An entry of the deprecated `mute_time_intervals` list (same meaning, own messages)."""

    _kind: ClassVar[str] = "mute time interval"
