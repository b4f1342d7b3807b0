"""`$VAR` expansion: outside Go template actions only, `$$` escapes, unset variables are errors."""

from __future__ import annotations

import pytest

from schemas.config import ConfigError, loads
from schemas.config.env import UnsetVariableError, expand_env

ENV = {"HOST": "hooks.example.org", "TOKEN": "s3cr3t", "EMPTY": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://$HOST/x", "https://hooks.example.org/x"),
        ("https://${HOST}/x", "https://hooks.example.org/x"),
        ("${HOST}name", "hooks.example.orgname"),
        ("$TOKEN$TOKEN", "s3cr3ts3cr3t"),
        ("[$EMPTY]", "[]"),
        ("costs $$5", "costs $5"),
        ("$$HOST", "$HOST"),
        ("costs $5", "costs $5"),
        ("trailing $", "trailing $"),
        ("regex ^a$", "regex ^a$"),
        ("${not-a-name}", "${not-a-name}"),
        ("${", "${"),
        (
            "{{ range $k, $v := .Labels }}{{ $k }}{{ end }}",
            "{{ range $k, $v := .Labels }}{{ $k }}{{ end }}",
        ),
        ("{{ $labels.team }} on $HOST", "{{ $labels.team }} on hooks.example.org"),
        ("{{ $$ }} and $$", "{{ $$ }} and $"),
        ("unclosed {{ $x", "unclosed {{ $x"),
        ("no dollar at all", "no dollar at all"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_expand(text: str, expected: str) -> None:
    assert expand_env(text, ENV) == expected


@pytest.mark.parametrize("text", ["$MISSING", "${MISSING}", "x-$MISSING-y"])
def test_an_unset_variable_is_named(text: str) -> None:
    with pytest.raises(UnsetVariableError) as info:
        expand_env(text, ENV)
    assert info.value.name == "MISSING"
    assert str(info.value) == "environment variable MISSING is not set"


ROUTE = "route:\n  receiver: a\nreceivers:\n  - name: a\n"


def test_expansion_happens_before_validation() -> None:
    text = ROUTE + "    webhook_configs:\n      - url: $URL\n        max_alerts: $MAX\n"
    config = loads(text, env={"URL": "https://hooks.example.org/x", "MAX": "3"})
    (hook,) = config.receivers[0].webhook_configs
    assert hook.url.get_secret_value() == "https://hooks.example.org/x"
    assert hook.max_alerts == 3


def test_an_expanded_value_is_validated_without_showing_it() -> None:
    text = ROUTE + "    webhook_configs:\n      - url: $URL\n"
    with pytest.raises(ConfigError) as info:
        loads(text, source="am.yml", env={"URL": "http://hooks.example.org:s3cr3t/"})
    assert str(info.value) == (
        'am.yml:6: receivers[0].webhook_configs[0].url: parse "<secret>": invalid port'
    )
    assert "s3cr3t" not in repr(info.value.problems)


def test_unset_variables_are_reported_by_name_and_path_only() -> None:
    text = (
        "global:\n  smtp_auth_password: '$SMTP_PASSWORD'\n"
        + ROUTE
        + "    webhook_configs:\n      - url: '${HOOK_URL}'\n"
    )
    with pytest.raises(ConfigError) as info:
        loads(text, source="am.yml", env={})
    assert str(info.value).splitlines() == [
        "am.yml:2: global.smtp_auth_password: environment variable SMTP_PASSWORD is not set",
        "am.yml:8: receivers[0].webhook_configs[0].url: environment variable HOOK_URL is not set",
    ]


def test_keys_and_template_text_are_not_expanded() -> None:
    text = (
        ROUTE
        + "    slack_configs:\n      - api_url: https://x.example/\n        text: '{{ $v }}'\n"
    )
    (slack,) = loads(text, env={}).receivers[0].slack_configs
    assert slack.text == "{{ $v }}"


def test_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOCSIN_TEST_RECEIVER", "from-env")
    config = loads("route:\n  receiver: $TOCSIN_TEST_RECEIVER\nreceivers: [{name: from-env}]\n")
    assert config.route.receiver == "from-env"
