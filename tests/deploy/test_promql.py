"""Every PromQL expression in deploy/ (rules, dashboards) parses, checked by promtool."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import binary
from tests.deploy.artifacts import DASHBOARDS, alert_rules, dashboard, leaf_panels, recording_rules

pytestmark = pytest.mark.binaries

# A Grafana variable in a range or step position (`[$__rate_interval]`, `[$window:$step]`) needs
# a duration; anywhere else (`{instance=~"$instance"}`) any word will do.
_RANGE_VARIABLE = re.compile(r"\$(?:\{\w+(?::\w+)?\}|\w+)(?=[:\]])")
_VARIABLE = re.compile(r"\$(?:\{\w+(?::\w+)?\}|\w+)|\[\[\w+\]\]")
_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<expr>.+),\s*)?(?P<label>\w+)\)$", re.S)


def substitute_variables(expr: str) -> str:
    """The expression with Grafana's template variables replaced by valid placeholders."""
    return _VARIABLE.sub("placeholder", _RANGE_VARIABLE.sub("5m", expr))


def _panel_expressions(uid: str, model: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for panel in leaf_panels(model):
        for target in panel.get("targets", []):
            if target.get("datasource", panel.get("datasource", {})).get("type") == "prometheus":
                yield (
                    f"{uid} panel {panel['id']} ({panel['title']}) {target['refId']}",
                    target["expr"],
                )
    for annotation in model["annotations"]["list"]:
        if annotation.get("datasource", {}).get("type") == "prometheus":
            yield f"{uid} annotation {annotation['name']}", annotation["expr"]
    for variable in model["templating"]["list"]:
        if variable.get("datasource", {}).get("type") == "prometheus":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = _LABEL_VALUES.match(text)
            assert match, f"{uid} variable {variable['name']}: unexpected query {text!r}"
            if match["expr"]:
                yield f"{uid} variable {variable['name']}", match["expr"]


def expressions() -> list[tuple[str, str]]:
    """(where, expression) for every PromQL expression in deploy/."""
    found = [(f"rules/{r.file} {r.name}", r.expr) for r in alert_rules() + recording_rules()]
    for uid in DASHBOARDS:
        found.extend(_panel_expressions(uid, dashboard(uid)))
    return found


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('rate(x{instance=~"$instance"}[5m])', 'rate(x{instance=~"placeholder"}[5m])'),
        ("rate(x[$__rate_interval])", "rate(x[5m])"),
        ("rate(x[${window}])", "rate(x[5m])"),
        ("max_over_time(x[$__range:$__interval])", "max_over_time(x[5m:5m])"),
        ('x{env="${environment:regex}"}', 'x{env="placeholder"}'),
        ('x{env="[[environment]]"}', 'x{env="placeholder"}'),
    ],
)
def test_substitute_variables(expr: str, expected: str) -> None:
    assert substitute_variables(expr) == expected


def test_expressions_cover_rules_and_every_dashboard() -> None:
    found = expressions()
    assert len([where for where, _ in found if where.startswith("rules/")]) == 18 + 8
    for uid in ("catalytic-system-metrics", "catalytic-business-metrics", "tocsin-pipeline"):
        assert any(where.startswith(uid) for where, _ in found)


def test_every_promql_expression_parses(tmp_path: Path) -> None:
    found = expressions()
    rules = [
        {"record": f"deploy:expr_{i}", "expr": substitute_variables(expr)}
        for i, (_, expr) in enumerate(found)
    ]
    path = tmp_path / "expressions.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "deploy", "rules": rules}]}), "utf-8")
    result = subprocess.run(
        [binary("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    legend = "\n".join(
        f"deploy:expr_{i} = {where}: {expr}" for i, (where, expr) in enumerate(found)
    )
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{legend}"
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
