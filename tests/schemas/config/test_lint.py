"""Lint: the §18 pitfalls found statically, each with a plain explanation."""

from __future__ import annotations

import pytest

from schemas.config import lint, load, loads
from tests.schemas.config.casefiles import CONFIG_DIR

BASE = "receivers:\n  - name: r\n    webhook_configs: [{url: 'http://h.example/'}]\n"


def _warnings(route: str, extra: str = "") -> list[tuple[str, str]]:
    return [
        (w.path, w.message) for w in lint(loads("route:\n  receiver: r\n" + route + BASE + extra))
    ]


def _one(route: str, extra: str = "") -> tuple[str, str]:
    (found,) = _warnings(route, extra)
    return found


@pytest.mark.parametrize(
    ("route", "path", "words"),
    [
        (
            "  routes:\n    - matchers: ['a=\"1\"']\n      continue: true\n",
            "route.routes[0].continue",
            "no sibling route follows it",
        ),
        (
            "  routes:\n    - matchers: ['a=\"1\"']\n      continue: true\n    - matchers: ['a=\"2\"']\n",
            "route.routes[0].continue",
            "none of the sibling routes after it can match",
        ),
        (
            "  routes:\n    - matchers: ['a=\"1\"']\n      continue: true\n    - matchers: ['a!=\"1\"']\n",
            "route.routes[0].continue",
            'parent route\'s receiver "r"',
        ),
        (
            "  routes:\n    - matchers: ['a=\"1\"']\n      continue: true\n    - matchers: ['a=~\"2|3\"']\n",
            "route.routes[0].continue",
            "receiver: r",
        ),
        (
            "  routes:\n    - receiver: r\n    - matchers: ['a=\"1\"']\n",
            "route.routes[1]",
            "earlier sibling route.routes[0] has no matchers",
        ),
        (
            "  routes:\n    - matchers: ['a=\"1\"']\n    - matchers: ['a=\"1\"']\n",
            "route.routes[1]",
            "has the same matchers and no continue",
        ),
        (
            "  routes:\n    - {matchers: ['a=\"1\"'], continue: true}\n    - {matchers: ['a=\"1\"'], receiver: r}\n",
            "route.routes[1]",
            "share one notification log entry",
        ),
        (
            "  group_by: [a]\n  routes:\n    - matchers: ['a=\"1\"']\n      group_by: []\n",
            "route.routes[0].group_by",
            "inherits the parent's group_by (here ['a'])",
        ),
        (
            "  routes:\n    - matchers: ['a=\"1\"']\n      mute_time_intervals: [t]\n"
            "      routes: [{matchers: ['b=\"1\"']}]\n",
            "route.routes[0].mute_time_intervals",
            "not inherited by child routes",
        ),
        (
            "  group_interval: 10m\n  repeat_interval: 5m\n",
            "route",
            "repeat_interval (5m) is shorter than group_interval (10m)",
        ),
        (
            "  routes:\n    - match_re: {svc: '^api$'}\n",
            "route.routes[0].match_re",
            "write matchers: ['svc=~\"^api$\"']",
        ),
        (
            "  routes:\n    - matchers: ['svc=\"api.*\"']\n",
            "route.routes[0]",
            'use svc=~"..." to match a pattern',
        ),
        (
            "  routes:\n    - matchers: ['svc=~\"^api\"']\n",
            "route.routes[0]",
            "the ^ and $ in '^api' are redundant",
        ),
    ],
    ids=[
        "continue-last-sibling",
        "continue-disjoint-equal",
        "continue-disjoint-not-equal",
        "continue-disjoint-regex",
        "after-catch-all",
        "after-same-matchers",
        "same-key-and-receiver",
        "empty-group-by",
        "time-intervals-not-inherited",
        "repeat-below-group-interval",
        "deprecated-match-re",
        "literal-looks-like-regex",
        "anchored-matchers-regex",
    ],
)
def test_route_pitfalls(route: str, path: str, words: str) -> None:
    extra = "time_intervals: [{name: t}]\n"
    found = [(p, m) for p, m in _warnings(route, extra) if p == path and words in m]
    assert found, _warnings(route, extra)


def test_continue_that_can_reach_a_later_sibling_is_fine() -> None:
    route = (
        "  routes:\n    - {matchers: ['a=\"1\"'], continue: true}\n    - matchers: ['b=\"1\"']\n"
    )
    assert _warnings(route) == []


def test_anchored_match_re_points_at_the_key() -> None:
    path, message = next(
        w
        for w in _warnings("  routes:\n    - match_re: {svc: '^api$'}\n")
        if "anchored already" in w[1]
    )
    assert path == "route.routes[0].match_re.svc"
    assert "'^api$'" in message


def test_unused_and_empty_receivers() -> None:
    config = loads("route:\n  receiver: used\nreceivers:\n  - name: used\n  - name: spare\n")
    assert [(w.path, w.message) for w in lint(config)] == [
        (
            "receivers[0]",
            'receiver "used" has no integrations: alerts routed to it are dropped (fine for a deliberate black hole)',
        ),
        (
            "receivers[1]",
            'receiver "spare" is not used by any route: it is validated but never sent anything',
        ),
    ]


def test_receiver_names_with_regex_metacharacters() -> None:
    config = loads("route:\n  receiver: team.x+y\nreceivers:\n  - name: team.x+y\n")
    (name_warning, _) = lint(config)
    assert name_warning.path == "receivers[0].name"
    assert '"team\\.x\\+y"' in name_warning.message


def test_inhibit_rule_pitfalls() -> None:
    extra = "inhibit_rules:\n  - source_match: {sev: critical}\n    target_match_re: {sev: '^warning$'}\n  - {}\n"
    found = _warnings("", extra)
    assert [path for path, _ in found] == [
        "inhibit_rules[0]",
        "inhibit_rules[0].source_match",
        "inhibit_rules[0].target_match_re",
        "inhibit_rules[0].target_match_re.sev",
        "inhibit_rules[1]",
        "inhibit_rules[1]",
        "inhibit_rules[1]",
    ]
    assert "no equal labels" in found[0][1]
    assert "write source_matchers: ['sev=\"critical\"']" in found[1][1]
    assert "no source matchers" in found[5][1]


def test_clean_config_has_no_warnings() -> None:
    config = load(CONFIG_DIR / "good-every-integration.yml")
    assert lint(config) == []
