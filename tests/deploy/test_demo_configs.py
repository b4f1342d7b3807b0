"""The demo's copies of deploy/'s configs: still valid for the tools that load them, only shorter."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from schemas.config import load
from services.demo import (
    DEPLOY,
    FOR_AT_MOST,
    Ports,
    alertmanager_config,
    demo_rules,
    prometheus_config,
    tocsin_routing,
)
from tests.conftest import binary

PORTS = Ports(app=18000, prometheus=19090, alertmanager=19093, tocsin=19095)


def test_rule_copies_keep_every_alert_and_cut_only_for(tmp_path: Path) -> None:
    names = demo_rules(DEPLOY / "prometheus" / "rules", tmp_path)
    assert len(names) == 18
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        original = yaml.safe_load(path.read_text())
        copy = yaml.safe_load((tmp_path / path.name).read_text())
        for group_o, group_c in zip(original["groups"], copy["groups"], strict=True):
            for rule_o, rule_c in zip(group_o["rules"], group_c["rules"], strict=True):
                assert rule_c.get("expr") == rule_o.get("expr")
                assert rule_c.get("labels") == rule_o.get("labels")
                assert rule_c.get("annotations") == rule_o.get("annotations")
                if "for" in rule_o:
                    assert rule_c["for"] == f"{FOR_AT_MOST:g}s"
    promtool = binary("promtool")
    files = sorted(str(p) for p in tmp_path.glob("*.yml"))
    done = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_config_is_valid(tmp_path: Path) -> None:
    demo_rules(DEPLOY / "prometheus" / "rules", tmp_path / "rules")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(PORTS, tmp_path / "rules")))
    promtool = binary("promtool")
    done = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = yaml.safe_load(config.read_text())
    assert data["global"]["external_labels"] == {
        "cluster": "catalytic-prod",
        "environment": "production",
    }


def test_alertmanager_relay_config_is_valid(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump(alertmanager_config(PORTS, token)))
    amtool = binary("amtool")
    done = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    hook = yaml.safe_load(config.read_text())["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == "http://127.0.0.1:19095/api/v1/alertmanager"


def test_routing_copy_is_the_guides_with_short_timers(tmp_path: Path) -> None:
    env = {
        "SLACK_WEBHOOK_URL": "http://127.0.0.1:1/slack",
        "PAGERDUTY_WEBHOOK_URL": "http://127.0.0.1:1/pd",
        "SMTP_PASSWORD": "x",
    }
    path = tmp_path / "routing.yml"
    path.write_text(tocsin_routing(2525))
    demo = load(path, env=env)
    guide = load(DEPLOY / "tocsin" / "alertmanager.yml", env=env)
    assert str(demo.global_.smtp_smarthost) == "127.0.0.1:2525"
    assert demo.global_.smtp_require_tls is False
    for mine, theirs in zip(demo.receivers, guide.receivers, strict=True):
        assert mine.name == theirs.name
        assert mine.slack_configs == theirs.slack_configs
        assert mine.webhook_configs == theirs.webhook_configs
        emails = [(e.to, e.from_, e.headers, e.send_resolved) for e in mine.email_configs]
        assert emails == [(e.to, e.from_, e.headers, e.send_resolved) for e in theirs.email_configs]
        assert all(e.smarthost == "127.0.0.1:2525" for e in mine.email_configs)
    assert demo.inhibit_rules == guide.inhibit_rules
    pairs = list(zip(demo.route.walk(), guide.route.walk(), strict=True))
    for copy, original in pairs:
        assert (copy.receiver, copy.matchers, copy.continue_, copy.group_by) == (
            original.receiver, original.matchers, original.continue_, original.group_by
        )  # fmt: skip
        assert (copy.group_wait, copy.group_interval) == (1.0, 3.0)
        assert copy.repeat_interval == original.repeat_interval
