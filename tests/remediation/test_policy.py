"""The remediation policy: a good file loads; each bad file names the YAML path it fails at."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.config.errors import ConfigError
from schemas.remediation import (
    AppTarget,
    CacheFlushRule,
    GpuEmptyCacheParams,
    GpuEmptyCacheRule,
    Mode,
    PoolResizeParams,
    PoolResizeRule,
    TerminateIdleRule,
    load_policy,
    parse_policy,
)

_DATA = Path(__file__).parent / "testdata"


def test_good_policy_loads() -> None:
    policy = load_policy(_DATA / "good-policy.yml")
    flush, terminate, grow, gpu = policy.rules
    assert isinstance(flush, CacheFlushRule)
    assert flush.mode is Mode.AUTO
    assert flush.params.patterns == ["cache:*", "tmp:*"]
    assert flush.params.allow_flushdb is False
    assert flush.params.temporary_policy is not None
    assert flush.params.temporary_policy.revert_after == 900
    assert (flush.limits.timeout, flush.limits.cooldown) == (60, 600)
    assert isinstance(terminate, TerminateIdleRule)
    assert terminate.params.idle_seconds == 300
    assert terminate.params.state == "idle in transaction"
    assert terminate.limits.max_per_hour_per_target == 3  # the default
    assert isinstance(grow, PoolResizeRule)
    assert grow.params == PoolResizeParams(grow_by=10, max_size=50, revert_after=1800)
    assert grow.params.min_size == 1
    assert isinstance(gpu, GpuEmptyCacheRule)
    assert gpu.params == GpuEmptyCacheParams()
    assert policy.limits.max_concurrent == 2
    api, trainer = policy.targets.apps["api"], policy.targets.apps["trainer"]
    assert api.url == "http://api.internal:8000/tocsin-agent/"
    assert api.secret_file == Path("/run/secrets/api-agent")
    assert api.timeout == 10
    assert trainer.secret_bytes() == b"agent-secret"
    assert trainer.timeout == 5


def test_agent_secret_file_is_read_on_use(tmp_path: Path) -> None:
    secret = tmp_path / "agent-secret"
    secret.write_bytes(b"from-a-file\n")
    target = AppTarget(url="http://127.0.0.1:8000/", secret_file=secret)
    assert target.secret_bytes() == b"from-a-file"
    secret.write_bytes(b"\n")
    with pytest.raises(ValueError, match="is empty"):
        target.secret_bytes()


@pytest.mark.parametrize(
    ("params", "current", "expected"),
    [
        pytest.param({"grow_by": 10, "max_size": 50}, 20, 30, id="grow"),
        pytest.param({"grow_by": 10, "max_size": 25}, 20, 25, id="grow-capped-by-max"),
        pytest.param({"size": 40, "max_size": 50}, 20, 40, id="size"),
        pytest.param({"size": 5, "max_size": 50}, 20, 5, id="size-shrinks"),
        pytest.param({"grow_by": 5, "size": 40, "max_size": 50}, 20, 40, id="both-take-larger"),
        pytest.param({"grow_by": 5, "size": 10, "max_size": 50}, 20, 25, id="both-grow-larger"),
        pytest.param({"grow_by": 1, "min_size": 8, "max_size": 50}, 2, 8, id="raised-to-min"),
    ],
)
def test_pool_resize_new_size(params: dict[str, int], current: int, expected: int) -> None:
    assert PoolResizeParams.model_validate(params).new_size(current) == expected


def test_rules_match_and_labels_only_select_configured_targets() -> None:
    policy = load_policy(_DATA / "good-policy.yml")
    alert = {"alertname": "RedisMemoryHigh", "severity": "warning", "redis_target": "sessions"}
    (rule,) = policy.matching(alert)
    assert rule.name == "redis-memory-high"
    assert policy.target_for(rule, alert) == "sessions"
    # a label naming a host, or a target of another kind, selects nothing
    assert policy.target_for(rule, {**alert, "redis_target": "evil.example:6379"}) is None
    assert policy.target_for(rule, {**alert, "redis_target": "main"}) is None
    assert policy.target_for(rule, {"alertname": "RedisMemoryHigh"}) is None
    assert policy.matching({"alertname": "RedisMemoryHigh", "severity": "info"}) == []


def test_passwords_do_not_show() -> None:
    policy = load_policy(_DATA / "good-policy.yml")
    shown = repr(policy) + str(policy.model_dump()) + policy.model_dump_json()
    for secret in ("s3cret", "other-secret", "pg-secret", "agent-secret"):
        assert secret not in shown
    assert "cache.internal" in shown
    dsn = policy.targets.postgres["main"].dsn
    assert str(dsn) == "postgresql://remediator:***@db.internal:5432/app"
    assert dsn.get_secret_value() == "postgresql://remediator:pg-secret@db.internal:5432/app"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "bad-unknown-action.yml",
            "rules[0].action: unknown action 'redis.flushall' (one of app.pool_resize, gpu.empty_cache, postgres.terminate_idle, redis.cache_flush)",
            id="unknown-action",
        ),
        pytest.param(
            "bad-unknown-target.yml",
            "rules[0].target: unknown redis target 'main' for redis.cache_flush",
            id="unknown-target",
        ),
        pytest.param(
            "bad-matcher.yml",
            "rules[0].matchers[1]: error parsing regexp: missing closing ): `^(?:(unclosed)$`",
            id="bad-matcher",
        ),
        pytest.param(
            "bad-params-of-other-action.yml",
            "rules[0].params.idle_seconds: unknown field",
            id="params-of-other-action",
        ),
        pytest.param(
            "bad-flush-everything.yml",
            "rules[0].params.patterns: pattern '*' deletes every key: needs allow_flushdb",
            id="flush-everything",
        ),
        pytest.param(
            "bad-mode.yml",
            "rules[0].mode: Input should be 'auto', 'approval' or 'dry-run'",
            id="bad-mode",
        ),
        pytest.param(
            "bad-secret-url.yml",
            "targets.redis.cache.url: scheme must be one of redis, rediss",
            id="bad-url",
        ),
        pytest.param(
            "bad-app-url.yml",
            "targets.apps.api.url: scheme must be one of http, https",
            id="bad-agent-url",
        ),
        pytest.param(
            "bad-app-two-secrets.yml",
            "targets.apps.api: exactly one of secret, secret_file must be set",
            id="two-agent-secrets",
        ),
        pytest.param(
            "bad-pool-size-out-of-bounds.yml",
            "rules[0].params.size: must lie between min_size and max_size (5..50)",
            id="pool-size-out-of-bounds",
        ),
        pytest.param(
            "bad-pool-no-max.yml",
            "rules[0].params.max_size: missing required field",
            id="pool-without-max",
        ),
        pytest.param(
            "bad-gpu-params.yml",
            "rules[0].params.device: unknown field",
            id="gpu-params",
        ),
    ],
)
def test_bad_policy_names_the_path(name: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_policy(_DATA / name)
    assert str(raised.value) == f"{_DATA / name}: {expected}"
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        pytest.param(
            {"name": "r", "matchers": ['a="b"'], "action": "gpu.empty_cache"},
            "rules[0]: exactly one of target, target_label must be set",
            id="no-target",
        ),
        pytest.param(
            {"name": "r", "matchers": ['a="b"'], "target": "t"},
            "rules[0].action: missing required field",
            id="no-action",
        ),
        pytest.param(
            {
                "name": "r",
                "matchers": ['a="b"'],
                "action": "app.pool_resize",
                "target_label": "app",
                "params": {"max_size": 10},
            },
            "rules[0].params: needs at least one of grow_by, size",
            id="pool-resize-without-size",
        ),
        pytest.param(
            {
                "name": "r",
                "matchers": ['a="b"'],
                "action": "app.pool_resize",
                "target_label": "app",
                "params": {"grow_by": 1, "min_size": 20, "max_size": 10},
            },
            "rules[0].params.min_size: must not exceed max_size (10)",
            id="pool-min-over-max",
        ),
        pytest.param(
            {
                "name": "r",
                "matchers": ['a="b"'],
                "action": "postgres.terminate_idle",
                "target_label": "db",
                "params": {"idle_seconds": 5},
            },
            "rules[0].params: needs at least one of application_names, users, databases",
            id="unfiltered-terminate",
        ),
    ],
)
def test_rule_checks(rule: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_policy({"rules": [rule]}, "p.yml")
    assert str(raised.value) == f"p.yml: {expected}"


def test_duplicate_rule_names() -> None:
    rule = {"name": "r", "matchers": ['a="b"'], "action": "gpu.empty_cache", "target_label": "app"}
    with pytest.raises(ConfigError) as raised:
        parse_policy({"rules": [rule, rule]}, "p.yml")
    assert str(raised.value) == "p.yml: rules[1].name: duplicate rule name 'r'"


def test_target_strings_take_variables_from_the_environment() -> None:
    data = {
        "targets": {
            "redis": {"cache": {"url": "redis://:${CACHE_PASSWORD}@cache:6379/0"}},
            "postgres": {"main": {"dsn": "$PG_DSN"}},
        },
        "rules": [
            {
                "name": "r",
                "matchers": ['alertname=~"Redis.*High$"'],  # `$` in a matcher stays a regex
                "action": "redis.cache_flush",
                "target": "cache",
                "params": {"patterns": ["cache:*"]},
            }
        ],
    }
    env = {"CACHE_PASSWORD": "pw$1", "PG_DSN": "postgresql://u@db:5432/app"}
    policy = parse_policy(data, env=env)
    assert policy.targets.redis["cache"].url.get_secret_value() == "redis://:pw$1@cache:6379/0"
    assert policy.targets.postgres["main"].dsn.get_secret_value() == env["PG_DSN"]
    assert policy.matching({"alertname": "RedisMemoryHigh"})
    with pytest.raises(ConfigError) as caught:
        parse_policy(data, "p.yml", env={"CACHE_PASSWORD": "x"})
    assert "targets.postgres.main.dsn" in str(caught.value)
    assert "environment variable PG_DSN is not set" in str(caught.value)
