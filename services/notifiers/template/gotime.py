"""Go's time.Time, time.Duration, time.Month and time.Weekday as template values.

Alertmanager hands templates `time.Time` values: `{{ .StartsAt }}` prints Go's `Time.String()`
(`2026-11-27 02:10:31.083842749 +0000 UTC`) and `.Format` takes Go layouts (`2006-01-02`).
Times keep nanoseconds and their zone offset, as Go does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from schemas.timefmt import parse_ns
from services.notifiers.template.gotypes import STRING, Func, GoType, Kind

__all__ = ["Duration", "GoTime", "Month", "Weekday"]

_SECOND = 1_000_000_000
_ZERO_UNIX = -62135596800  # 0001-01-01T00:00:00Z, Go's zero Time, in Unix seconds
_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - naive on purpose: civil fields come from offsets
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_OFFSET = re.compile(r"(?:[Zz]|([+-])(\d{2}):(\d{2}))$")


class Month(int):
    """time.Month: an int that prints as its English name."""

    go_type = GoType("time.Month", Kind.INT)

    def go_string(self) -> str:
        return _MONTHS[self - 1] if 1 <= self <= 12 else f"%!Month({int(self)})"


class Weekday(int):
    """time.Weekday: an int (Sunday = 0) that prints as its English name."""

    go_type = GoType("time.Weekday", Kind.INT)

    def go_string(self) -> str:
        return _DAYS[self] if 0 <= self <= 6 else f"%!Weekday({int(self)})"


def _frac(u: int, prec: int) -> tuple[str, int]:
    if prec == 0:
        return "", u
    digits = f"{u % 10**prec:0{prec}d}".rstrip("0")
    return ("." + digits if digits else ""), u // 10**prec


class Duration(int):
    """time.Duration: nanoseconds, printed like `1h2m3.5s`."""

    go_type = GoType("time.Duration", Kind.INT)
    go_methods: ClassVar[Mapping[str, Func]]

    def go_string(self) -> str:
        u = abs(int(self))
        if u == 0:
            return "0s"
        if u < _SECOND:
            prec, unit = (0, "ns") if u < 1000 else (3, "µs") if u < 1_000_000 else (6, "ms")
            frac, whole = _frac(u, prec)
            text = f"{whole}{frac}{unit}"
        else:
            frac, secs = _frac(u, 9)
            text = f"{secs % 60}{frac}s"
            if secs >= 60:
                text = f"{secs // 60 % 60}m" + text
                if secs >= 3600:
                    text = f"{secs // 3600}h" + text
        return "-" + text if self < 0 else text

    def Seconds(self) -> float:
        return int(self) / _SECOND

    def Minutes(self) -> float:
        return int(self) / (60 * _SECOND)

    def Hours(self) -> float:
        return int(self) / (3600 * _SECOND)

    def Milliseconds(self) -> int:
        whole = abs(int(self)) // 1_000_000  # Go's integer division truncates toward zero
        return -whole if self < 0 else whole

    def Nanoseconds(self) -> int:
        return int(self)

    def String(self) -> str:
        return self.go_string()


_DURATION = Duration.go_type
Duration.go_methods = {
    name: Func((), getattr(Duration, name))
    for name in ("Seconds", "Minutes", "Hours", "Milliseconds", "Nanoseconds", "String")
}


@dataclass(frozen=True, slots=True)
class GoTime:
    """An instant with nanoseconds and the zone it was given in (name "" prints as +hhmm)."""

    unix_ns: int
    offset: int = 0
    zone: str = "UTC"

    go_type: ClassVar[GoType] = GoType("time.Time", Kind.STRUCT)
    go_methods: ClassVar[Mapping[str, Func]]

    @classmethod
    def zero(cls) -> GoTime:
        """Go's zero Time, `0001-01-01 00:00:00 +0000 UTC` (a firing alert's EndsAt)."""
        return cls(_ZERO_UNIX * _SECOND)

    @classmethod
    def parse(cls, text: str) -> GoTime:
        """An RFC 3339 timestamp; `Z` and `+00:00` are UTC, other offsets an unnamed zone."""
        ns = parse_ns(text)
        m = _OFFSET.search(text)
        if m is None or m.group(1) is None:
            return cls(ns)
        offset = int(m.group(2)) * 3600 + int(m.group(3)) * 60
        offset = -offset if m.group(1) == "-" else offset
        return cls(ns, offset, "UTC" if offset == 0 else "")

    def _civil(self) -> datetime:
        seconds = self.unix_ns // _SECOND + self.offset
        return _EPOCH + timedelta(seconds=seconds)

    def go_string(self) -> str:
        return self.Format("2006-01-02 15:04:05.999999999 -0700 MST")

    # The methods below are Go's; templates call them by these names.
    def String(self) -> str:
        return self.go_string()

    def Format(self, layout: str) -> str:
        return _format(self, layout)

    def Unix(self) -> int:
        return self.unix_ns // _SECOND

    def UnixMilli(self) -> int:
        return self.unix_ns // 1_000_000

    def UnixMicro(self) -> int:
        return self.unix_ns // 1000

    def UnixNano(self) -> int:
        return (self.unix_ns + 2**63) % 2**64 - 2**63  # int64 arithmetic wraps, as in Go

    def Year(self) -> int:
        return self._civil().year

    def Month(self) -> Month:
        return Month(self._civil().month)

    def Day(self) -> int:
        return self._civil().day

    def Hour(self) -> int:
        return self._civil().hour

    def Minute(self) -> int:
        return self._civil().minute

    def Second(self) -> int:
        return self._civil().second

    def Nanosecond(self) -> int:
        return self.unix_ns % _SECOND

    def YearDay(self) -> int:
        return self._civil().timetuple().tm_yday

    def Weekday(self) -> Weekday:
        return Weekday((self._civil().weekday() + 1) % 7)

    def IsZero(self) -> bool:
        return self.unix_ns == _ZERO_UNIX * _SECOND

    def UTC(self) -> GoTime:
        return GoTime(self.unix_ns)

    def Local(self) -> GoTime:
        return GoTime(self.unix_ns, 0, "UTC")

    def Add(self, d: int) -> GoTime:
        return GoTime(self.unix_ns + int(d), self.offset, self.zone)

    def Sub(self, other: GoTime) -> Duration:
        return Duration(self.unix_ns - other.unix_ns)

    def Before(self, other: GoTime) -> bool:
        return self.unix_ns < other.unix_ns

    def After(self, other: GoTime) -> bool:
        return self.unix_ns > other.unix_ns

    def Equal(self, other: GoTime) -> bool:
        return self.unix_ns == other.unix_ns

    def Truncate(self, d: int) -> GoTime:
        if d <= 0:
            return self
        return self.Add(-((self.unix_ns - _ZERO_UNIX * _SECOND) % d))

    def Round(self, d: int) -> GoTime:
        if d <= 0:
            return self
        r = (self.unix_ns - _ZERO_UNIX * _SECOND) % d
        return self.Add(-r) if r + r < d else self.Add(d - r)


_TIME = GoTime.go_type
GoTime.go_methods = {
    "String": Func((), GoTime.String),
    "Format": Func((STRING,), GoTime.Format),
    **{n: Func((), getattr(GoTime, n)) for n in ("Unix", "UnixMilli", "UnixMicro", "UnixNano")},
    **{
        n: Func((), getattr(GoTime, n))
        for n in ("Year", "Month", "Day", "Hour", "Minute", "Second", "Nanosecond", "YearDay")
    },
    **{n: Func((), getattr(GoTime, n)) for n in ("Weekday", "IsZero", "UTC", "Local")},
    "Add": Func((_DURATION,), GoTime.Add),
    "Sub": Func((_TIME,), GoTime.Sub),
    **{n: Func((_TIME,), getattr(GoTime, n)) for n in ("Before", "After", "Equal")},
    **{n: Func((_DURATION,), getattr(GoTime, n)) for n in ("Truncate", "Round")},
    # Go methods with several results cannot be called from a template either.
    **{n: Func((), GoTime.String, results=3) for n in ("Date", "Clock")},
    **{n: Func((), GoTime.String, results=2) for n in ("Zone", "ISOWeek")},
}

# Layout elements, longest first within each leading character, as Go's nextStdChunk finds them.
_STD = re.compile(
    r"January|Jan(?![a-z])|Monday|Mon(?![a-z])|MST|0[1-6]|002|15|1|2006|2|_2006|__2|_2|3|4|5"
    r"|PM|pm|-070000|-07:00:00|-0700|-07:00|-07|Z070000|Z07:00:00|Z0700|Z07:00|Z07"
    r"|[.,](?:0+|9+)(?![0-9])"
)


def _zone(t: GoTime, code: str) -> str:
    if t.offset == 0 and code.startswith("Z"):
        return "Z"
    sign = "-" if t.offset < 0 else "+"
    minutes, secs = divmod(abs(t.offset), 60)
    out = f"{sign}{minutes // 60:02d}"
    if ":" in code:
        out += ":"
    if code not in ("-07", "Z07"):
        out += f"{minutes % 60:02d}"
    if code in ("-070000", "Z070000", "-07:00:00", "Z07:00:00"):
        out += (":" if ":" in code else "") + f"{secs:02d}"
    return out


def _element(t: GoTime, c: datetime, code: str) -> str:
    if code == "_2006":
        return "_" + f"{c.year:04d}"
    if code[0] in ".,":
        digits = f"{t.unix_ns % _SECOND:09d}"[: len(code) - 1]
        if code[1] == "9":
            digits = digits.rstrip("0")
            return code[0] + digits if digits else ""
        return code[0] + digits
    if code[0] in "-Z":
        return _zone(t, code)
    simple = {
        "January": _MONTHS[c.month - 1],
        "Jan": _MONTHS[c.month - 1][:3],
        "Monday": _DAYS[(c.weekday() + 1) % 7],
        "Mon": _DAYS[(c.weekday() + 1) % 7][:3],
        "01": f"{c.month:02d}",
        "02": f"{c.day:02d}",
        "03": f"{(c.hour % 12) or 12:02d}",
        "04": f"{c.minute:02d}",
        "05": f"{c.second:02d}",
        "06": f"{c.year % 100:02d}",
        "002": f"{c.timetuple().tm_yday:03d}",
        "__2": f"{c.timetuple().tm_yday:>3d}",
        "15": f"{c.hour:02d}",
        "1": str(c.month),
        "2006": f"{c.year:04d}",
        "2": str(c.day),
        "_2": f"{c.day:>2d}",
        "3": str((c.hour % 12) or 12),
        "4": str(c.minute),
        "5": str(c.second),
        "PM": "PM" if c.hour >= 12 else "AM",
        "pm": "pm" if c.hour >= 12 else "am",
    }
    if code in simple:
        return simple[code]
    if t.zone:  # MST
        return t.zone
    return _zone(t, "-0700")


def _format(t: GoTime, layout: str) -> str:
    c = t._civil()
    return _STD.sub(lambda m: _element(t, c, m.group(0)), layout)
