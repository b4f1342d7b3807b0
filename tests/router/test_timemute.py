"""Route muting by time intervals (reference §7.3): active intervals, mute intervals, zones."""

from __future__ import annotations

import pytest

from schemas.config import Route
from schemas.timefmt import parse_ns
from services.router.timemute import mute_reason, route_muted
from tests.router.alertgen import config

CONFIG = config("""
route:
  receiver: r
  routes:
    - matchers: [k="mute"]
      mute_time_intervals: [weekends, nights]
      routes: [{matchers: [sub="1"]}]
    - matchers: [k="active"]
      active_time_intervals: [business]
    - matchers: [k="both"]
      active_time_intervals: [business]
      mute_time_intervals: [lunch]
    - matchers: [k="berlin"]
      active_time_intervals: [berlin-business]
receivers: [{name: r}]
time_intervals:
  - name: weekends
    time_intervals: [{weekdays: [saturday, sunday]}]
  - name: nights
    time_intervals:
      - times: [{start_time: "22:00", end_time: "24:00"}, {start_time: "00:00", end_time: "06:00"}]
  - name: business
    time_intervals: [{weekdays: ["monday:friday"], times: [{start_time: "09:00", end_time: "17:00"}]}]
  - name: lunch
    time_intervals: [{times: [{start_time: "12:00", end_time: "13:00"}]}]
  - name: berlin-business
    time_intervals: [{times: [{start_time: "09:00", end_time: "17:00"}], location: Europe/Berlin}]
""")


def _route(labels: dict[str, str]) -> Route:
    (route,) = CONFIG.route.match(labels)
    return route


# (route labels, UTC time, reason or None); 2026-01-05 is a Monday, Berlin is UTC+1 in January.
CASES = [
    pytest.param({"k": "mute"}, "2026-01-05T09:00:00Z", None, id="mute-weekday-daytime"),
    pytest.param({"k": "mute"}, "2026-01-10T12:00:00Z", "mute_time_interval", id="mute-saturday"),
    pytest.param(
        {"k": "mute"}, "2026-01-05T23:00:00Z", "mute_time_interval", id="mute-night-until-24"
    ),
    pytest.param(
        {"k": "mute"}, "2026-01-05T05:59:59Z", "mute_time_interval", id="mute-early-morning"
    ),
    pytest.param({"k": "mute"}, "2026-01-05T06:00:00Z", None, id="mute-end-is-exclusive"),
    pytest.param(
        {"k": "mute", "sub": "1"}, "2026-01-10T12:00:00Z", None, id="child-does-not-inherit"
    ),
    pytest.param({"k": "active"}, "2026-01-05T09:00:00Z", None, id="active-at-start"),
    pytest.param(
        {"k": "active"}, "2026-01-05T08:59:59Z", "active_time_interval", id="active-before-start"
    ),
    pytest.param(
        {"k": "active"},
        "2026-01-05T17:00:00Z",
        "active_time_interval",
        id="active-end-is-exclusive",
    ),
    pytest.param(
        {"k": "active"}, "2026-01-10T10:00:00Z", "active_time_interval", id="active-not-on-saturday"
    ),
    pytest.param(
        {"k": "both"}, "2026-01-05T12:30:00Z", "mute_time_interval", id="both-lunch-muted"
    ),
    pytest.param(
        {"k": "both"},
        "2026-01-05T18:00:00Z",
        "active_time_interval",
        id="both-inactive-reported-first",
    ),
    pytest.param({"k": "berlin"}, "2026-01-05T08:30:00Z", None, id="zone-0930-berlin"),
    pytest.param(
        {"k": "berlin"}, "2026-01-05T16:30:00Z", "active_time_interval", id="zone-1730-berlin"
    ),
    pytest.param({"x": "y"}, "2026-01-10T03:00:00Z", None, id="root-never-muted"),
]


@pytest.mark.parametrize(("labels", "when", "reason"), CASES)
def test_route_muting(labels: dict[str, str], when: str, reason: str | None) -> None:
    route = _route(labels)
    assert mute_reason(route, CONFIG.time_intervals, parse_ns(when)) == reason
    assert route_muted(route, CONFIG.time_intervals, parse_ns(when)) is (reason is not None)
