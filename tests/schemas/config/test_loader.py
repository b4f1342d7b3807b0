"""Loading alertmanager.yml: good files load, each bad file fails with Alertmanager's message."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.config import ConfigError, load, loads
from tests.schemas.config.casefiles import BAD, CONFIG_DIR, GOOD, env_of, header

# §2.7 of the reference: the catalogue of validation messages, each verified with amtool.
CATALOGUE = [
    "no route provided in config",
    "no routes provided",
    "root route must specify a default receiver",
    "root route must not have any matchers",
    "cannot have continue in root route",
    "root route must not have any mute time intervals",
    "root route must not have any active time intervals",
    'undefined receiver "nope" used in route',
    'notification config name "r" is not unique',
    "missing name in receiver",
    'undefined time interval "nope" used in route',
    'time interval "x" is not unique',
    "no global SMTP smarthost set",
    "no global SMTP from set",
    "missing to address in email config",
    "no global Slack API URL set either inline or in a file",
    "missing service or routing key in PagerDuty config",
    "at most one of routing_key & routing_key_file must be configured",
    "missing URL in webhook config",
    "error parsing regexp: missing closing ]: `[))$`",
    'invalid label name "a-b"',
    "address localhost: missing port in address",
    'unsupported scheme "ftp" for URL',
    "missing host for URL",
    "group_interval cannot be zero",
    "repeat_interval cannot be zero",
    'not a valid duration string: "10"',
    "empty duration string",
    "cannot have wildcard group_by (`...`) and other other labels at the same time",
    'duplicated label "alertname" in group_by',
    'invalid label name "a-b" in group_by list',
    '"a-b" is not a valid label name',
    'duplicate header "Subject" in email config',
    "at most one of api_url & api_url_file must be configured",
    "funday is not a valid weekday",
    "start time cannot be equal or greater than end time",
    "both start and end times must be provided",
    "unknown time zone Mars/Base",
]


def _load_case(path: Path) -> None:
    loads(path.read_text(), source=path.name, base_dir=path.parent, env=env_of(path))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_config_fails_with_one_exact_problem(path: Path) -> None:
    (expected,) = header(path, "error")
    with pytest.raises(ConfigError) as info:
        _load_case(path)
    assert [str(problem) for problem in info.value.problems] == [expected]
    assert str(info.value) == expected


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_config_loads(path: Path) -> None:
    config = load(path, env=env_of(path))
    assert config.source == str(path)
    assert config.route.receiver


@pytest.mark.parametrize("message", CATALOGUE)
def test_every_catalogue_message_has_a_bad_file(message: str) -> None:
    assert any(message in header(path, "error")[0] for path in BAD)


def test_problems_carry_file_line_and_yaml_path() -> None:
    text = "route:\n  receiver: a\n  routes:\n    - receiver: nope\nreceivers:\n  - name: a\n"
    with pytest.raises(ConfigError) as info:
        loads(text, source="alertmanager.yml")
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.path) == (
        "alertmanager.yml",
        4,
        "route.routes[0].receiver",
    )
    assert problem.message == 'undefined receiver "nope" used in route'
    assert isinstance(info.value, ValueError)


def test_every_problem_is_reported_sorted_by_line() -> None:
    text = (
        "global:\n  smtp_smarthost: localhost\n"
        "route:\n  receiver: a\n  group_wait: 10\n  colour: red\n  routes:\n    - receiver: nope\n"
        "receivers:\n  - name: a\n  - name: a\n    webhook_configs:\n      - url: ftp://x/\n"
    )
    with pytest.raises(ConfigError) as info:
        loads(text, source="am.yml")
    assert str(info.value).splitlines() == [
        "am.yml:2: global.smtp_smarthost: address localhost: missing port in address",
        'am.yml:5: route.group_wait: not a valid duration string: "10"',
        "am.yml:6: route.colour: field colour not found",
        'am.yml:11: receivers[1].name: notification config name "a" is not unique',
        'am.yml:13: receivers[1].webhook_configs[0].url: unsupported scheme "ftp" for URL',
    ]


def test_an_invalid_receiver_still_defines_its_name() -> None:
    text = "route:\n  receiver: a\nreceivers:\n  - name: a\n    webhook_configs: [{}]\n"
    with pytest.raises(ConfigError) as info:
        loads(text)
    assert [p.message for p in info.value.problems] == ["missing URL in webhook config"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("global:\nroute:\n  receiver: a\nreceivers: [{name: a}]\n", 300.0),
        ("global: {}\nroute:\n  receiver: a\nreceivers: [{name: a}]\n", 300.0),
        ("global: {resolve_timeout: 0s}\nroute:\n  receiver: a\nreceivers: [{name: a}]\n", 0.0),
    ],
    ids=["null-global", "empty-global", "zero-resolve-timeout"],
)
def test_an_empty_global_block_gets_the_defaults(text: str, expected: float) -> None:
    assert loads(text).global_.resolve_timeout == expected


def test_global_defaults_are_alertmanagers() -> None:
    defaults = loads("route:\n  receiver: a\nreceivers: [{name: a}]\n").global_
    assert defaults.resolve_timeout == 300.0
    assert defaults.smtp_hello == "localhost"
    assert defaults.smtp_require_tls is True
    assert defaults.smtp_smarthost == defaults.smtp_from == ""
    assert defaults.pagerduty_url == "https://events.pagerduty.com/v2/enqueue"
    assert defaults.opsgenie_api_url == "https://api.opsgenie.com/"
    assert defaults.telegram_api_url == "https://api.telegram.org"
    assert defaults.webex_api_url == "https://webexapis.com/v1/messages"
    assert defaults.http_config.follow_redirects is True
    assert defaults.http_config.enable_http2 is True
    assert not defaults.slack_api_url.get_secret_value()


def test_time_intervals_from_both_lists_share_one_namespace() -> None:
    config = load(CONFIG_DIR / "good-time-intervals.yml")
    assert sorted(config.time_intervals) == ["holidays", "nights", "office-hours"]


def test_templates_resolve_against_the_config_directory() -> None:
    config = load(CONFIG_DIR / "good-templates.yml")
    assert config.templates == [CONFIG_DIR / "templates/a.tmpl", CONFIG_DIR / "templates/b.tmpl"]


def test_relative_http_config_files_resolve_against_the_config_directory() -> None:
    config = load(CONFIG_DIR / "good-every-integration.yml")
    hook = config.receiver("hook-only").webhook_configs[1].http_config
    assert hook.authorization is not None
    assert hook.authorization.credentials_file == str(CONFIG_DIR / "token.txt")
    assert hook.tls_config.cert_file == str(CONFIG_DIR / "client.pem")
    assert hook.tls_config.key_file == "/etc/tls/client.key"
    assert config.global_.http_config.tls_config.ca_file == str(CONFIG_DIR / "ca.pem")
    inherited = config.receiver("everything").slack_configs[0].http_config
    assert inherited.tls_config.ca_file == str(CONFIG_DIR / "ca.pem")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file or directory"):
        load(tmp_path / "absent.yml")


def test_unknown_keys_are_errors_at_every_level() -> None:
    text = (
        "global: {smtp_host: x}\n"
        "route:\n  receiver: a\n  routes: [{receiver: a, contine: true}]\n"
        "receivers:\n  - name: a\n    email: []\n"
        "inhibit_rules: [{source: x}]\n"
        "extra: 1\n"
    )
    with pytest.raises(ConfigError) as info:
        loads(text)
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("global.smtp_host", "field smtp_host not found"),
        ("route.routes[0].contine", "field contine not found"),
        ("receivers[0].email", "field email not found"),
        ("inhibit_rules[0].source", "field source not found"),
        ("extra", "field extra not found"),
    ]


def test_inhibit_rules_compile_all_three_spellings() -> None:
    config = load(CONFIG_DIR / "good-inhibit-rules.yml")
    first, second, empty = config.inhibit_rules
    assert [str(m) for m in first.target_matchers] == ['severity=~"warning|info"']
    assert [str(m) for m in second.source_matchers] == [
        'alertname="NodeDown"',
        'cluster=~"^(?:prod-.*)$"',
    ]
    assert second.equal == ("instance",)
    assert second.is_source({"alertname": "NodeDown", "cluster": "prod-eu"})
    assert not second.is_source({"alertname": "NodeDown", "cluster": "xprod-eu"})
    assert second.is_target({"alertname": "Anything"})
    assert second.equal_on({"instance": "a"}, {"instance": "a", "x": "y"})
    assert not second.equal_on({"instance": "a"}, {})
    assert empty.is_source({})
    assert empty.is_target({"a": "b"})
    assert empty.equal_on({"a": "1"}, {})


def test_yaml_merge_keys_follow_alertmanagers_decoder() -> None:
    config = load(CONFIG_DIR / "good-yaml-features.yml")
    keys = [route.key() for route in config.route.walk()]
    assert keys == [
        "{}",
        '{}/{team="x"}',
        '{}/{team="x",team="y"}',  # amtool shows the same: matcher lists add up
        '{}/{code="500",empty="",enabled="yes"}',
    ]
    assert [route.group_wait for route in config.route.walk()] == [30.0, 60.0, 60.0, 30.0]


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        ("group_by: [~]", 'invalid label name "" in group_by list'),
        ("mute_time_intervals: [~]", 'undefined time interval "" used in route'),
        ("receiver: 5", 'undefined receiver "5" used in route'),
        ("matchers: [~]", None),
        ("match: {a: ~}", None),
        ("group_wait: ~", None),
    ],
)
def test_yaml_nulls_and_numbers_read_as_alertmanager_reads_them(
    route: str, problem: str | None
) -> None:
    # each case checked with amtool check-config 0.25
    text = f"route:\n  receiver: a\n  routes:\n    - {route}\nreceivers: [{{name: a}}]\n"
    text += "inhibit_rules: [{equal: [~]}]\n"
    if problem is None:
        loads(text)
        return
    with pytest.raises(ConfigError) as info:
        loads(text)
    assert [p.message for p in info.value.problems] == [problem]
