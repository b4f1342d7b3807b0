"""deploy/tocsin/remediation.yml: loads, and covers exactly the guide's automatable runbooks.

Its target URLs/DSNs are `$VAR`s that each deployment defines: `policy_variables()` names them,
`SAMPLE_ENV` gives them values of the right shape (the deployment tests use their own)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from schemas.config.errors import ConfigError
from schemas.remediation import (
    ActionName,
    CacheFlushParams,
    Mode,
    TemporaryEvictionPolicy,
    load_policy,
)
from tests.deploy.artifacts import DEPLOY

POLICY_FILE = DEPLOY / "tocsin" / "remediation.yml"

# Values of the right shape for the policy's variables (asserted to be exactly those it uses).
SAMPLE_ENV = {
    "REMEDIATION_REDIS_URL": "redis://:redis-secret@redis:6379/0",
    "REMEDIATION_POSTGRES_DSN": (
        "postgresql://tocsin_remediation:pg-secret@postgresql:5432/catalytic_db"
    ),
}

# What schemas.config.env.expand_env expands: $$ is a literal $.
_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)")


def policy_variables() -> set[str]:
    """The `$VAR`s of the strings under the policy's `targets:` (the only ones Tocsin expands)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            for match in _REFERENCE.finditer(value):
                name = match.group(1) or match.group(2)
                if name:
                    found.add(name)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))["targets"])
    return found


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
    policy = load_policy(POLICY_FILE, env=SAMPLE_ENV)
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


def test_target_urls_come_from_the_environment() -> None:
    assert policy_variables() == set(SAMPLE_ENV)
    policy = load_policy(POLICY_FILE, env=SAMPLE_ENV)
    [redis] = policy.targets.redis.values()
    [postgres] = policy.targets.postgres.values()
    assert redis.url.get_secret_value() == SAMPLE_ENV["REMEDIATION_REDIS_URL"]
    assert postgres.dsn.get_secret_value() == SAMPLE_ENV["REMEDIATION_POSTGRES_DSN"]


@pytest.mark.parametrize("name", sorted(SAMPLE_ENV))
def test_an_unset_variable_is_named(name: str) -> None:
    env = {k: v for k, v in SAMPLE_ENV.items() if k != name}
    with pytest.raises(ConfigError, match=f"environment variable {name} is not set"):
        load_policy(POLICY_FILE, env=env)


def test_no_eviction_policy_switch_by_default() -> None:
    # Tocsin's state shares the Redis (noeviction on purpose): allkeys-lru would evict it
    policy = load_policy(POLICY_FILE, env=SAMPLE_ENV)
    [flush] = [r for r in policy.rules if r.action is ActionName.REDIS_CACHE_FLUSH]
    assert isinstance(flush.params, CacheFlushParams)
    assert flush.params.temporary_policy is None
    # left as a commented option, with its condition, that loads once uncommented
    text = POLICY_FILE.read_text(encoding="utf-8")
    assert "only when the cache Redis holds nothing but cache" in " ".join(
        line.strip().lstrip("#").strip() for line in text.splitlines()
    )
    [option] = re.findall(r"^\s*# (temporary_policy: .*)$", text, re.MULTILINE)
    TemporaryEvictionPolicy.model_validate(yaml.safe_load(option)["temporary_policy"])
