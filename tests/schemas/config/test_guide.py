"""The monitoring guide's alertmanager.yml, verbatim: its secrets come from the environment."""

from __future__ import annotations

import json

import pytest

from schemas.config import ConfigError, lint, load
from schemas.config.receivers.email import DEFAULT_SUBJECT
from tests.schemas.config.casefiles import GUIDE, GUIDE_ENV


def test_loads_with_its_three_variables_set() -> None:
    config = load(GUIDE, env=GUIDE_ENV)
    assert [r.name for r in config.receivers] == [
        "default",
        "security-critical",
        "security-warning",
        "performance-team",
        "infrastructure-team",
    ]
    assert config.route.group_by == {"alertname", "cluster", "service"}
    assert config.route.group_wait == 10.0
    assert [r.receiver for r in config.route.routes] == [
        "security-critical",
        "security-warning",
        "performance-team",
        "infrastructure-team",
    ]
    assert config.global_.smtp_auth_password.get_secret_value() == GUIDE_ENV["SMTP_PASSWORD"]


def test_fails_clearly_without_them() -> None:
    with pytest.raises(ConfigError) as info:
        load(GUIDE, env={})
    assert [(p.line, p.path, p.message) for p in info.value.problems] == [
        (9, "global.smtp_auth_password", "environment variable SMTP_PASSWORD is not set"),
        (
            92,
            "receivers[1].slack_configs[0].api_url",
            "environment variable SLACK_WEBHOOK_URL is not set",
        ),
        (
            98,
            "receivers[1].webhook_configs[0].url",
            "environment variable PAGERDUTY_WEBHOOK_URL is not set",
        ),
        (
            109,
            "receivers[2].slack_configs[0].api_url",
            "environment variable SLACK_WEBHOOK_URL is not set",
        ),
    ]


def test_receivers_get_global_and_integration_defaults() -> None:
    config = load(GUIDE, env=GUIDE_ENV)
    critical = config.receiver("security-critical")
    (email,) = critical.email_configs
    assert email.send_resolved is True  # written; the email default would be false
    assert email.from_ == "alerts@catalyticcomputing.com"
    assert email.smarthost == "smtp.gmail.com:587"
    assert email.auth_username == "alerts@catalyticcomputing.com"
    assert email.auth_password.get_secret_value() == GUIDE_ENV["SMTP_PASSWORD"]
    assert email.require_tls is True
    assert email.hello == "localhost"
    assert email.headers == {"Subject": "[CRITICAL SECURITY] {{ .GroupLabels.alertname }}"}
    assert email.html == '{{ template "email.default.html" . }}'
    assert DEFAULT_SUBJECT == '{{ template "email.default.subject" . }}'
    (slack,) = critical.slack_configs
    assert slack.send_resolved is True
    assert slack.api_url.get_secret_value() == GUIDE_ENV["SLACK_WEBHOOK_URL"]
    assert slack.channel == "#security-critical"
    assert slack.username == '{{ template "slack.default.username" . }}'
    assert slack.http_config == config.global_.http_config
    # single-quoted YAML keeps the backslash: Slack gets a literal "\n", as from Alertmanager
    assert "}}\\n{{" in slack.text
    (hook,) = critical.webhook_configs
    assert hook.send_resolved is True
    assert hook.url.get_secret_value() == GUIDE_ENV["PAGERDUTY_WEBHOOK_URL"]
    assert hook.max_alerts == 0


def test_secrets_never_show_in_repr_or_str() -> None:
    config = load(GUIDE, env=GUIDE_ENV)
    shown = repr(config) + str(config) + repr(config.receivers) + str(config.global_)
    for secret in GUIDE_ENV.values():
        assert secret not in shown


def test_dumps_hide_secrets_too() -> None:
    dumped = json.dumps(load(GUIDE, env=GUIDE_ENV).model_dump(mode="json", by_alias=True))
    assert '"receiver": "security-critical"' in dumped
    for secret in GUIDE_ENV.values():
        assert secret not in dumped


def test_inhibit_rules_compile() -> None:
    config = load(GUIDE, env=GUIDE_ENV)
    rule = config.inhibit_rules[0]
    assert [str(m) for m in rule.source_matchers] == ['severity="critical"']
    assert [str(m) for m in rule.target_matchers] == ['severity="warning"']
    assert rule.equal == ("alertname", "instance")


def test_continue_does_not_also_send_to_default_and_lint_says_so() -> None:
    config = load(GUIDE, env=GUIDE_ENV)
    routes = config.route.match({"severity": "critical", "category": "security"})
    assert [r.receiver for r in routes] == ["security-critical"]
    (warning,) = [w for w in lint(config) if w.path == "route.routes[0].continue"]
    assert 'does not also send to the parent route\'s receiver "default"' in warning.message
    assert "receiver: default" in warning.message
