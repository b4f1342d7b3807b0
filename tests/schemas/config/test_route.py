"""The routing tree: the 92 amtool/Alertmanager-verified cases, inheritance, keys and group keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.config import Route, loads
from schemas.config.route import format_label_set
from tests.conftest import TESTDATA

CASES: list[dict[str, Any]] = json.loads((TESTDATA / "route_cases.json").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_conformance_with_alertmanager(case: dict[str, Any]) -> None:
    root = loads(case["config"], env={}).route
    matched = root.match(case["labels"])
    assert [route.receiver for route in matched] == case["receivers"]
    first = matched[0]
    assert (["..."] if first.group_by_all else sorted(first.group_by)) == case["group_by"]
    assert first.key() == case["route_key"]
    assert first.group_key(case["labels"]) == case["group_key"]


def _tree(routes: str, root: str = "") -> Route:
    text = f"route:\n  receiver: r\n{root}  routes:\n{routes}receivers:\n  - name: r\n  - name: x\n"
    text += "time_intervals:\n  - name: t\n"
    return loads(text).route


def test_options_are_inherited_except_continue_and_time_intervals() -> None:
    root = _tree(
        "    - matchers: ['a=\"1\"']\n"
        "      receiver: x\n      group_wait: 1m\n      group_by: [alertname]\n"
        "      repeat_interval: 1h\n      continue: true\n      mute_time_intervals: [t]\n"
        "      active_time_intervals: [t]\n"
        "      routes:\n        - matchers: ['b=\"2\"']\n",
        root="  group_interval: 2m\n",
    )
    (parent,) = root.routes
    (child,) = parent.routes
    assert (root.group_wait, root.group_interval, root.repeat_interval) == (30.0, 120.0, 14400.0)
    assert (child.receiver, child.group_by, child.group_by_all) == (
        "x",
        frozenset({"alertname"}),
        False,
    )
    assert (child.group_wait, child.group_interval, child.repeat_interval) == (60.0, 120.0, 3600.0)
    assert parent.continue_
    assert not child.continue_
    assert parent.mute_time_intervals == parent.active_time_intervals == ("t",)
    assert child.mute_time_intervals == child.active_time_intervals == ()
    assert child.parent is parent
    assert parent.parent is root
    assert root.parent is None
    assert child.yaml_path == "route.routes[0].routes[0]"


@pytest.mark.parametrize(
    ("root_group_by", "child_group_by", "names", "all_labels"),
    [
        ("[a]", None, {"a"}, False),
        ("[a]", "[]", {"a"}, False),
        ("['...']", "[]", set(), True),
        ("['...']", "[b]", {"b"}, False),
        ("[a]", "['...']", {"a"}, True),
        ("[a, b]", "[c]", {"c"}, False),
    ],
    ids=[
        "absent-inherits",
        "empty-inherits",
        "empty-inherits-all",
        "names-reset-all",
        "wildcard",
        "replace",
    ],
)
def test_group_by_inheritance(
    root_group_by: str, child_group_by: str | None, names: set[str], all_labels: bool
) -> None:
    child = "    - matchers: ['a=\"1\"']\n"
    if child_group_by is not None:
        child += f"      group_by: {child_group_by}\n"
    (route,) = _tree(child, root=f"  group_by: {root_group_by}\n").routes
    assert route.group_by == names
    assert route.group_by_all is all_labels


def test_a_repeated_wildcard_is_accepted_like_alertmanager() -> None:
    text = "route:\n  receiver: r\n  group_by: ['...', '...']\nreceivers: [{name: r}]\n"
    assert loads(text).route.group_by_all


def test_match_re_and_matchers_combine_sorted_with_anchored_regex() -> None:
    (route,) = _tree(
        "    - match: {c: '3'}\n      match_re: {a: 'x|y'}\n      matchers: ['b!=\"2\"']\n"
    ).routes
    assert route.key() == '{}/{a=~"^(?:x|y)$",b!="2",c="3"}'
    assert route.match({"a": "x", "c": "3"}) == [route]
    assert route.match({"a": "xy", "c": "3"}) == []


def test_walk_is_depth_first_in_config_order() -> None:
    root = _tree(
        "    - matchers: ['a=\"1\"']\n      routes:\n        - matchers: ['b=\"1\"']\n"
        "    - matchers: ['a=\"2\"']\n"
    )
    assert [r.yaml_path for r in root.walk()] == [
        "route",
        "route.routes[0]",
        "route.routes[0].routes[0]",
        "route.routes[1]",
    ]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({}, "{}"),
        (
            {"alertname": "Sort", "team": "x.y", "a": "1", "a0": "2", "a_b": "3", "B": "4"},
            '{B="4", a0="2", a="1", a_b="3", alertname="Sort", team="x.y"}',
        ),
        (
            {"alertname": "GK", "path": 'C:\\tmp\n"q"\té✓\a'},
            '{alertname="GK", path="C:\\\\tmp\\n\\"q\\"\\té✓\\a"}',
        ),
        ({"z": "\x00\u200b\U0001f600"}, '{z="\\x00\\u200b\U0001f600"}'),
    ],
    ids=["empty", "sorted-as-strings", "go-quoting", "non-printable"],
)
def test_label_set_format_is_prometheus(labels: dict[str, str], expected: str) -> None:
    assert format_label_set(labels) == expected


def test_group_labels_skip_absent_names_and_all_takes_everything() -> None:
    root = _tree(
        "    - matchers: ['a=\"1\"']\n      group_by: ['...']\n", root="  group_by: [a, b]\n"
    )
    labels = {"a": "1", "c": "3"}
    assert root.group_labels(labels) == {"a": "1"}
    assert root.group_key(labels) == '{}:{a="1"}'
    (child,) = root.routes
    assert child.group_labels(labels) == labels
    assert child.group_key(labels) == '{}/{a="1"}:{a="1", c="3"}'


def test_sibling_routes_with_the_same_matchers_share_a_key() -> None:
    first, second = _tree(
        "    - matchers: ['a=\"1\"']\n      continue: true\n    - matchers: ['a=\"1\"']\n"
    ).routes
    assert first.key() == second.key() == '{}/{a="1"}'
    assert first.match({"a": "1"}) == [first]
    assert first.parent is not None
    assert first.parent.match({"a": "1"}) == [first, second]
