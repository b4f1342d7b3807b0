"""deploy/prometheus: promtool accepts the config and rules, and the rule unit tests pass and bite."""

from __future__ import annotations

import functools
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import binary
from tests.deploy.artifacts import (
    ALERT_RULE_FILES,
    PROMETHEUS,
    PROMTOOL_TESTS,
    RULES,
    Rule,
    alert_rules,
    load_yaml,
    recording_rules,
)

pytestmark = pytest.mark.binaries

ALERTS = alert_rules()
TEST_FILES = sorted(PROMTOOL_TESTS.glob("*_test.yml"))


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@functools.cache
def _alert_tests() -> dict[str, list[dict[str, Any]]]:
    """alert_rule_test entries by alert name, over every promtool test file."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in TEST_FILES:
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                found.setdefault(case["alertname"], []).append(case)
    return found


def test_config_is_valid() -> None:
    result = promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 rule files found" in result.stdout


def test_documented_alternative_to_tocsin_is_valid(tmp_path: Path) -> None:
    # The commented "Prometheus straight to Tocsin" block, uncommented in place of `alerting:`.
    text = (PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8")
    head = text[: text.index("\nalerting:\n") + 1]
    block: list[str] = []
    for line in text[text.index("# alerting:\n") :].splitlines():
        if not line.startswith("# "):
            break
        block.append(line[2:])
    assert "        - targets: ['tocsin:9095']" in block
    config = tmp_path / "prometheus.yml"
    config.write_text(head + "\n".join(block) + "\n", encoding="utf-8")
    (tmp_path / "rules").symlink_to(RULES)
    result = promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    alerting = load_yaml(config)["alerting"]["alertmanagers"][0]
    assert alerting["static_configs"] == [{"targets": ["tocsin:9095"]}]


def test_rule_files_are_valid() -> None:
    result = promtool("check", "rules", *sorted(RULES.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    result = promtool("test", "rules", *TEST_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_guide_has_18_alerts_10_security_7_performance_1_infrastructure() -> None:
    assert len(ALERTS) == 18
    assert len({a.name for a in ALERTS}) == 18
    by_category = Counter(a.body["labels"]["category"] for a in ALERTS)
    assert by_category == {"security": 10, "performance": 7, "infrastructure": 1}
    for name in ALERT_RULE_FILES:  # one file per category
        categories = {a.body["labels"]["category"] for a in ALERTS if a.file == name}
        assert categories == {name.removesuffix(".yml")}


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a.name)
def test_alert_has_the_guide_shape(alert: Rule) -> None:
    assert set(alert.body) == {"alert", "expr", "for", "labels", "annotations"}
    assert alert.body["labels"]["severity"] in {"critical", "warning"}
    assert set(alert.body["labels"]) <= {"severity", "category", "compliance"}
    assert {"summary", "description", "remediation"} <= set(alert.body["annotations"])


def test_the_guide_has_8_recording_rules() -> None:
    rules = recording_rules()
    assert [r.name for r in rules] == [
        "api:http_requests:rate1m",
        "api:http_requests:error_rate",
        "api:http_request_duration:p95",
        "api:http_request_duration:p99",
        "database:connection_pool:utilization",
        "cache:redis:hit_rate",
        "system:memory:efficiency_ratio",
        "system:processing:speed_ratio",
    ]


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a.name)
def test_every_alert_is_unit_tested_firing_and_silent(alert: Rule) -> None:
    # The guide promises 100% alert-rule coverage: each alert has a case where it fires, with
    # its exact labels and annotations, and cases where it must stay silent.
    cases = _alert_tests().get(alert.name, [])
    firing = [c for c in cases if c["exp_alerts"]]
    silent = [c for c in cases if not c["exp_alerts"]]
    assert firing, f"no promtool test expects {alert.name} to fire"
    assert silent, f"no promtool test expects {alert.name} to stay silent"
    for case in firing:
        for expected in case["exp_alerts"]:
            static = {k: str(v) for k, v in alert.body["labels"].items()}
            assert static.items() <= {k: str(v) for k, v in expected["exp_labels"].items()}.items()
            assert set(expected["exp_annotations"]) == set(alert.body["annotations"])


def test_every_recording_rule_is_unit_tested() -> None:
    tested = {
        case["expr"]
        for path in TEST_FILES
        for group in load_yaml(path)["tests"]
        for case in group.get("promql_expr_test", [])
    }
    assert {r.name for r in recording_rules()} <= tested


def _duration(text: str) -> int:
    match = re.fullmatch(r"(\d+)([smh])", text)
    assert match, text
    return int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]


def _weakened(alert: Rule, kind: str) -> tuple[str, str]:
    """(text in the rule, replacement) that makes the alert fire too early."""
    if kind == "comparison":  # `> x` becomes `>= x`, `< x` becomes `<= x`
        match = re.search(r" ([<>]) ([\d.]+)$", alert.expr)
        assert match, alert.expr
        return match[0], f" {match[1]}= {match[2]}"
    seconds = _duration(alert.body["for"])  # `for` one evaluation (15s) shorter
    return f"for: {alert.body['for']}", f"for: {seconds - 15}s"


@pytest.mark.parametrize("kind", ["comparison", "for"])
@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a.name)
def test_unit_tests_catch_a_weakened_alert(alert: Rule, kind: str, tmp_path: Path) -> None:
    # Mutation check: the tests pin the threshold's strictness and the `for` duration, so
    # `>` written as `>=` or a shorter `for` makes them fail.
    text = (RULES / alert.file).read_text(encoding="utf-8")
    start = text.index(f"- alert: {alert.name}\n")
    end = text.find("- alert:", start + 1)
    end = len(text) if end < 0 else end
    old, new = _weakened(alert, kind)
    assert text[start:end].count(old) == 1
    rules = tmp_path / alert.file
    rules.write_text(text[:start] + text[start:end].replace(old, new) + text[end:], "utf-8")
    suite = load_yaml(PROMTOOL_TESTS / alert.file.replace(".yml", "_test.yml"))
    suite["rule_files"] = [str(rules)]
    suite["tests"] = [
        group
        for group in suite["tests"]
        if any(c["alertname"] == alert.name for c in group.get("alert_rule_test", []))
    ]
    tests = tmp_path / "test.yml"
    tests.write_text(yaml.safe_dump(suite), encoding="utf-8")
    result = promtool("test", "rules", tests)
    output = result.stdout + result.stderr
    assert result.returncode == 1, f"{kind} mutant of {alert.name} survived:\n{output}"
    # ... and it is the silent case meant for it that fails: at the threshold until 30m, or
    # pending one evaluation short of `for` (the timeline of deploy/prometheus/tests/*.yml).
    minutes = 30 if kind == "comparison" else 30 + _duration(alert.body["for"]) // 60
    assert f"alertname: {alert.name}, time: {minutes}m, \n        exp:[]" in output, output
