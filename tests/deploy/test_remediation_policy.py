"""deploy/tocsin/remediation.yml: loads, and covers exactly the guide's automatable runbooks."""

from __future__ import annotations

from pathlib import Path

import yaml

from schemas.remediation import ActionName, Mode, load_policy

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def guide_alerts() -> dict[str, dict[str, str]]:
    """Every alert rule of deploy/prometheus/rules: name -> its labels (with alertname)."""
    found: dict[str, dict[str, str]] = {}
    for path in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found[rule["alert"]] = {"alertname": rule["alert"], **rule.get("labels", {})}
    return found


def test_policy_acts_on_the_runbooks_alerts_only() -> None:
    policy = load_policy(DEPLOY / "tocsin" / "remediation.yml")
    acted = {
        name: [(r.action, r.mode) for r in policy.matching(labels)]
        for name, labels in guide_alerts().items()
        if policy.matching(labels)
    }
    assert acted == {
        "DatabaseConnectionPoolExhaustion": [
            (ActionName.POSTGRES_TERMINATE_IDLE, Mode.APPROVAL),
            (ActionName.APP_POOL_RESIZE, Mode.APPROVAL),
        ],
        "RedisMemoryHigh": [(ActionName.REDIS_CACHE_FLUSH, Mode.AUTO)],
        "GPUMemoryExhaustion": [(ActionName.GPU_EMPTY_CACHE, Mode.AUTO)],
    }
    for rule in policy.rules:
        assert policy.target_for(rule, {}) is not None  # every target named in the file
