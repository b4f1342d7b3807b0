"""Integration configs: Alertmanager 0.25's defaults, and global settings copied down at load."""

from __future__ import annotations

import pytest

from schemas.config import Config, loads
from schemas.config.receivers import EmailConfig, PagerdutyConfig, SlackConfig, WebhookConfig
from schemas.config.receivers.pagerduty import DEFAULT_DETAILS
from tests.schemas.config.casefiles import CONFIG_DIR

GLOBAL = (
    "global:\n  smtp_smarthost: smtp.example.org:587\n  smtp_from: am@example.org\n"
    "  slack_api_url: https://hooks.slack.example/global\n"
)


def _receiver(body: str, global_: str = GLOBAL) -> Config:
    return loads(global_ + "route:\n  receiver: r\nreceivers:\n  - name: r\n" + body)


@pytest.mark.parametrize(
    ("body", "kind", "send_resolved"),
    [
        ("    email_configs: [{to: a@example.org}]\n", "email_configs", False),
        ("    slack_configs: [{}]\n", "slack_configs", False),
        ("    pagerduty_configs: [{routing_key: k}]\n", "pagerduty_configs", True),
        ("    webhook_configs: [{url: 'http://h.example/'}]\n", "webhook_configs", True),
    ],
    ids=["email", "slack", "pagerduty", "webhook"],
)
def test_send_resolved_defaults_differ_per_integration(
    body: str, kind: str, send_resolved: bool
) -> None:
    (config,) = getattr(_receiver(body).receivers[0], kind)
    assert config.send_resolved is send_resolved


def test_email_takes_unset_smtp_fields_from_global() -> None:
    global_ = (
        GLOBAL + "  smtp_hello: am.example.org\n  smtp_auth_username: u\n"
        "  smtp_auth_password: global-pw\n  smtp_auth_identity: id\n  smtp_auth_secret: s\n"
        "  smtp_require_tls: false\n"
    )
    inherit, own, own_file = (
        _receiver(
            "    email_configs:\n      - to: a@example.org\n"
            "      - to: b@example.org\n        from: b@example.org\n        smarthost: mx:25\n"
            "        auth_password: own-pw\n        require_tls: true\n        hello: own\n"
            "      - to: c@example.org\n        auth_password_file: /pw\n        require_tls: false\n",
            global_,
        )
        .receivers[0]
        .email_configs
    )
    assert (inherit.from_, inherit.smarthost, inherit.hello) == (
        "am@example.org",
        "smtp.example.org:587",
        "am.example.org",
    )
    assert inherit.auth_password.get_secret_value() == "global-pw"
    assert (inherit.auth_username, inherit.auth_identity) == ("u", "id")
    assert inherit.auth_secret.get_secret_value() == "s"
    assert inherit.require_tls is False
    assert (own.from_, own.smarthost, own.hello, own.require_tls) == (
        "b@example.org",
        "mx:25",
        "own",
        True,
    )
    assert own.auth_password.get_secret_value() == "own-pw"
    # a password file of its own means neither global password nor file is taken
    assert own_file.auth_password.get_secret_value() == ""
    assert own_file.auth_password_file == "/pw"
    assert own_file.require_tls is False


def test_email_defaults_and_canonical_headers() -> None:
    (email,) = (
        _receiver(
            "    email_configs:\n      - to: a@example.org\n        headers: {x-priority: '1', subject: s}\n"
        )
        .receivers[0]
        .email_configs
    )
    assert email.headers == {"X-Priority": "1", "Subject": "s"}
    assert email.html == '{{ template "email.default.html" . }}'
    assert email.text == ""
    assert email.require_tls is True


def test_slack_defaults_and_global_url() -> None:
    (slack,) = _receiver("    slack_configs: [{channel: '#a'}]\n").receivers[0].slack_configs
    assert slack.api_url.get_secret_value() == "https://hooks.slack.example/global"
    assert slack.color == '{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}'
    assert slack.title == '{{ template "slack.default.title" . }}'
    assert slack.fallback == '{{ template "slack.default.fallback" . }}'
    assert (slack.image_url, slack.thumb_url, slack.mrkdwn_in, slack.short_fields) == (
        "",
        "",
        [],
        False,
    )


def test_slack_takes_the_global_url_file_too() -> None:
    global_ = "global:\n  slack_api_url_file: /run/slack\n"
    (slack,) = _receiver("    slack_configs: [{}]\n", global_).receivers[0].slack_configs
    assert (slack.api_url.get_secret_value(), slack.api_url_file) == ("", "/run/slack")


def test_slack_action_with_url_drops_name_value_and_confirm() -> None:
    (slack,) = (
        _receiver(
            "    slack_configs:\n      - actions:\n          - {type: button, text: t, url: 'https://x/',"
            " name: n, value: v, confirm: {text: sure}}\n"
        )
        .receivers[0]
        .slack_configs
    )
    (action,) = slack.actions
    assert (action.url, action.name, action.value, action.confirm) == ("https://x/", "", "", None)


def test_pagerduty_defaults() -> None:
    (pd,) = (
        _receiver("    pagerduty_configs: [{routing_key: k, details: {firing: mine, extra: x}}]\n")
        .receivers[0]
        .pagerduty_configs
    )
    assert pd.url == "https://events.pagerduty.com/v2/enqueue"
    assert pd.client == '{{ template "pagerduty.default.client" . }}'
    assert pd.source == pd.client  # source defaults to client at load
    assert pd.details == {**DEFAULT_DETAILS, "firing": "mine", "extra": "x"}
    assert (pd.severity, pd.class_, pd.component, pd.group) == ("", "", "", "")
    (custom,) = (
        _receiver("    pagerduty_configs: [{service_key: k, client: Tocsin, class: db}]\n")
        .receivers[0]
        .pagerduty_configs
    )
    assert (custom.source, custom.class_) == ("Tocsin", "db")


def test_integrations_without_http_config_share_the_global_one() -> None:
    global_ = "global:\n  http_config:\n    proxy_url: http://proxy.example:3128/\n"
    hook, own = (
        _receiver(
            "    webhook_configs:\n      - url: http://a.example/\n"
            "      - url: http://b.example/\n        http_config: {follow_redirects: false}\n",
            global_,
        )
        .receivers[0]
        .webhook_configs
    )
    assert hook.http_config.proxy_url.get_secret_value() == "http://proxy.example:3128/"
    # an integration's own http_config starts from the library defaults, not from global
    assert own.http_config.proxy_url.get_secret_value() == ""
    assert own.http_config.follow_redirects is False
    assert own.http_config.enable_http2 is True


def test_bearer_token_becomes_the_authorization_header() -> None:
    (hook,) = (
        _receiver(
            "    webhook_configs:\n      - url: http://a.example/\n        http_config: {bearer_token: t}\n"
        )
        .receivers[0]
        .webhook_configs
    )
    assert hook.http_config.authorization_header is not None
    kind, token, _ = hook.http_config.authorization_header
    assert (kind, token.get_secret_value()) == ("Bearer", "t")


def test_integrations_come_in_alertmanagers_notifier_order() -> None:
    config = loads((CONFIG_DIR / "good-every-integration.yml").read_text())
    kinds = [type(c) for c in config.receiver("everything").integrations]
    assert kinds == [
        EmailConfig,
        EmailConfig,
        PagerdutyConfig,
        PagerdutyConfig,
        SlackConfig,
        SlackConfig,
    ]
    assert [type(c) for c in config.receiver("hook-only").integrations] == [WebhookConfig] * 2


def test_secrets_are_hidden_in_repr() -> None:
    config = loads((CONFIG_DIR / "good-every-integration.yml").read_text())
    shown = repr(config.receivers) + str(config.global_)
    for secret in (
        "smtp-secret",
        "hook-secret",
        "basic-secret",
        "slack-token",
        "pd-routing-key",
        "XXXX",
    ):
        assert secret not in shown


def test_a_receiver_lookup_by_name() -> None:
    config = _receiver("")
    assert config.receiver("r").name == "r"
    with pytest.raises(KeyError):
        config.receiver("nope")
