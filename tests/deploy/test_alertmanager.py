"""deploy/alertmanager relays every alert to Tocsin; deploy/tocsin routes them as the guide does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from schemas.config import load
from tests.conftest import binary
from tests.deploy.artifacts import (
    GUIDE_ENV,
    K8S,
    RELAY_CONFIG,
    TOCSIN_CONFIG,
    Rule,
    alert_rules,
    load_yaml,
    load_yaml_all,
)

ALERTS = alert_rules()

# Where the guide's routing tree sends each kind of alert.
GUIDE_RECEIVERS = {
    ("security", "critical"): "security-critical",
    ("security", "warning"): "security-warning",
    ("performance", "critical"): "performance-team",
    ("performance", "warning"): "performance-team",
    ("infrastructure", "warning"): "infrastructure-team",
}


def amtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("amtool"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def labels_of(alert: Rule) -> dict[str, str]:
    """The labels every instance of the alert carries: its name and the rule's labels."""
    return {"alertname": alert.name, **{k: str(v) for k, v in alert.body["labels"].items()}}


@pytest.mark.binaries
def test_relay_config_is_valid() -> None:
    result = amtool("check-config", RELAY_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_relay_forwards_everything_to_tocsin_ingest() -> None:
    config = load_yaml(RELAY_CONFIG)
    route = config["route"]
    assert route["receiver"] == "tocsin"
    assert "routes" not in route
    assert route["group_by"] == ["..."]
    assert "inhibit_rules" not in config
    [receiver] = config["receivers"]
    [webhook] = receiver["webhook_configs"]
    assert webhook["url"] == "http://tocsin:9095/api/v1/alertmanager"
    assert webhook["send_resolved"] is True
    authorization = webhook["http_config"]["authorization"]
    assert authorization["type"] == "Bearer"
    assert authorization["credentials_file"] == "/run/secrets/tocsin-ingest-token"


def test_relay_refreshes_firing_alerts_before_tocsin_resolves_them() -> None:
    # Webhook payloads carry no endsAt for firing alerts: Tocsin resolves them after the routing
    # config's resolve_timeout unless the relay re-sends them first (at a group_interval tick).
    def seconds(text: str) -> int:
        return int(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]

    route = load_yaml(RELAY_CONFIG)["route"]
    resolve_timeout = seconds(load_yaml(TOCSIN_CONFIG)["global"]["resolve_timeout"])
    worst_case = seconds(route["repeat_interval"]) + seconds(route["group_interval"])
    assert worst_case < resolve_timeout


@pytest.mark.binaries
@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a.name)
def test_amtool_routes_every_alert_to_tocsin(alert: Rule) -> None:
    labels = [f"{k}={v}" for k, v in labels_of(alert).items()]
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={RELAY_CONFIG}",
        "--verify.receivers=tocsin",
        *labels,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tocsin_loads_the_guides_config_unchanged() -> None:
    config = load(TOCSIN_CONFIG, env=GUIDE_ENV)
    assert [r.name for r in config.receivers] == [
        "default",
        "security-critical",
        "security-warning",
        "performance-team",
        "infrastructure-team",
    ]
    assert len(config.inhibit_rules) == 2


@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a.name)
def test_tocsin_routes_every_alert_to_its_team(alert: Rule) -> None:
    labels = labels_of(alert)
    config = load(TOCSIN_CONFIG, env=GUIDE_ENV)
    expected = GUIDE_RECEIVERS[labels["category"], labels["severity"]]
    assert [route.receiver for route in config.route.match(labels)] == [expected]


@pytest.mark.binaries
@pytest.mark.parametrize("alert", ALERTS, ids=lambda a: a.name)
def test_amtool_agrees_on_the_guides_routing(alert: Rule, tmp_path: Path) -> None:
    # amtool cannot expand $VARs: give it the file with them expanded, as Tocsin sees it.
    text = TOCSIN_CONFIG.read_text(encoding="utf-8")
    for name, value in GUIDE_ENV.items():
        text = text.replace(f"${name}", value)
    expanded = tmp_path / "alertmanager.yml"
    expanded.write_text(text, encoding="utf-8")
    labels = labels_of(alert)
    expected = GUIDE_RECEIVERS[labels["category"], labels["severity"]]
    result = amtool(
        "config",
        "routes",
        "test",
        f"--config.file={expanded}",
        f"--verify.receivers={expected}",
        *(f"{k}={v}" for k, v in labels.items()),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_configmap_holds_the_same_config() -> None:
    [configmap] = load_yaml_all(K8S / "configmap.yaml")
    assert configmap["data"]["alertmanager.yml"] == TOCSIN_CONFIG.read_text(encoding="utf-8")
