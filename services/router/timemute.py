"""Time-based muting of a route: its `active_time_intervals` and `mute_time_intervals` at a tick."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal

from schemas.config.route import Route
from schemas.config.timeinterval import TimeIntervalSet

__all__ = ["MuteReason", "mute_reason", "route_muted"]

MuteReason = Literal["active_time_interval", "mute_time_interval"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moment(tick_ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=tick_ns // 1000)


def mute_reason(
    route: Route, time_intervals: Mapping[str, TimeIntervalSet], tick_ns: int
) -> MuteReason | None:
    """Why the route's groups send nothing at `tick_ns`, or None when they may send.

    Outside every active interval (when the route has any) comes first, as Alertmanager runs
    the TimeActive stage before TimeMute.
    """
    if not route.active_time_intervals and not route.mute_time_intervals:
        return None
    when = _moment(tick_ns)
    if route.active_time_intervals and not any(
        time_intervals[name].contains(when) for name in route.active_time_intervals
    ):
        return "active_time_interval"
    if any(time_intervals[name].contains(when) for name in route.mute_time_intervals):
        return "mute_time_interval"
    return None


def route_muted(route: Route, time_intervals: Mapping[str, TimeIntervalSet], tick_ns: int) -> bool:
    """Whether the route is muted at `tick_ns`: inside no active interval, or inside a mute one."""
    return mute_reason(route, time_intervals, tick_ns) is not None
