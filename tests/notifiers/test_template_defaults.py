"""Default templates and receiver fields render as Alertmanager 0.25 rendered them on the wire.

tests/testdata/templates/alertmanager-0.25.json holds, per scenario, the webhook payload (the
template data) and what the real binary sent to Slack, PagerDuty and an SMTP server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from schemas.webhook import WebhookMessage
from services.notifiers.template import Data, TemplateSet, template_data
from tests.notifiers.alertmanager_capture import CAPTURE_FILE

CAPTURE = json.loads(CAPTURE_FILE.read_text())
RECORDS = CAPTURE["records"]
DEFAULTS = TemplateSet.default()


def data_of(record: dict[str, Any]) -> Data:
    """The template data of a captured notification, built as Tocsin builds it."""
    message = WebhookMessage.model_validate(record["webhook"])
    return template_data(
        record["receiver"], None, message.alerts, message.groupLabels, message.externalURL
    )


def render(text: str, record: dict[str, Any]) -> str:
    return DEFAULTS.render(text, data_of(record))


@pytest.mark.parametrize("record", RECORDS, ids=[r["scenario"] for r in RECORDS])
def test_template_data_matches_the_webhook_payload(record: dict[str, Any]) -> None:
    data, hook = data_of(record), record["webhook"]
    assert data.Receiver == hook["receiver"]
    assert data.Status == hook["status"]
    assert data.CommonLabels == hook["commonLabels"]
    assert data.CommonAnnotations == hook["commonAnnotations"]
    assert data.GroupLabels == hook["groupLabels"]
    assert data.ExternalURL == hook["externalURL"]
    assert [a.Fingerprint for a in data.Alerts] == [a["fingerprint"] for a in hook["alerts"]]


SLACK_DEFAULTS = {
    "title": '{{ template "slack.default.title" . }}',
    "title_link": '{{ template "slack.default.titlelink" . }}',
    "fallback": '{{ template "slack.default.fallback" . }}',
}


@pytest.mark.parametrize("record", RECORDS, ids=[r["scenario"] for r in RECORDS])
def test_slack_fields(record: dict[str, Any]) -> None:
    body = record["slack"]
    attachment = body["attachments"][0]
    assert render('{{ template "slack.default.username" . }}', record) == body["username"]
    for key, text in SLACK_DEFAULTS.items():
        assert render(text, record) == attachment[key], key
    for key, text in CAPTURE["slack_fields"].items():
        assert render(text, record) == attachment.get(key, ""), key
    assert "channel" not in body  # the empty default renders to nothing
    for key in ("pretext", "text", "iconemoji", "iconurl", "callbackid", "footer"):
        assert render(f'{{{{ template "slack.default.{key}" . }}}}', record) == ""


@pytest.mark.parametrize("record", RECORDS, ids=[r["scenario"] for r in RECORDS])
def test_pagerduty_fields(record: dict[str, Any]) -> None:
    body = record["pagerduty"]
    details = body["payload"]["custom_details"]
    assert (
        render('{{ template "pagerduty.default.description" .}}', record)
        == body["payload"]["summary"]
    )
    assert render('{{ template "pagerduty.default.client" . }}', record) == body["client"]
    assert render('{{ template "pagerduty.default.clientURL" . }}', record) == body["client_url"]
    for key, text in {
        "firing": '{{ template "pagerduty.default.instances" .Alerts.Firing }}',
        "resolved": '{{ template "pagerduty.default.instances" .Alerts.Resolved }}',
        "num_firing": "{{ .Alerts.Firing | len }}",
        "num_resolved": "{{ .Alerts.Resolved | len }}",
    }.items():
        assert render(text, record) == details[key], key


@pytest.mark.parametrize("record", RECORDS, ids=[r["scenario"] for r in RECORDS])
def test_email_subject_and_headers(record: dict[str, Any]) -> None:
    headers = record["email"]
    assert render('{{ template "email.default.subject" . }}', record) == headers["Subject"]
    assert render(CAPTURE["email_header"], record) == headers["X-Tocsin-Test"]
    html = DEFAULTS.render_html('{{ template "email.default.html" . }}', data_of(record))
    assert f"<title>{_escaped(headers['Subject'])}</title>" in html


def _escaped(text: str) -> str:
    table = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;", "+": "&#43;"}
    return "".join(table.get(c, c) for c in text)


def test_the_capture_covers_the_cases_that_matter() -> None:
    titles = {r["scenario"]: r["slack"]["attachments"][0]["title"] for r in RECORDS}
    assert titles["nogroup"].startswith("[FIRING:2]  (")  # empty group labels: two spaces
    assert titles["resolved"].startswith("[RESOLVED] ")
    assert titles["single"].startswith("[FIRING:1] HighCPU (")
    unicode = next(r for r in RECORDS if r["scenario"] == "unicode")
    assert unicode["webhook"]["receiver"] == r"team\.x\+y"
    assert unicode["slack"]["attachments"][0]["title_link"].endswith("receiver=team%5C.x%5C%2By")


# User template files --------------------------------------------------------------------------
def test_user_file_redefines_a_builtin(tmp_path: Path) -> None:
    (tmp_path / "custom.tmpl").write_text(
        '{{ define "__subject" }}[{{ .Status }}] {{ .CommonLabels.alertname }}{{ end }}\n'
        '{{ define "my.title" }}{{ template "slack.default.title" . }}!{{ end }}'
    )
    templates = TemplateSet.default()
    templates.parse_files([tmp_path / "custom.tmpl"])
    record = RECORDS[0]
    data = data_of(record)
    assert templates.render('{{ template "slack.default.title" . }}', data) == "[firing] HighCPU"
    assert templates.render('{{ template "my.title" . }}', data) == "[firing] HighCPU!"
    # the built-ins are untouched in other sets
    assert DEFAULTS.render('{{ template "slack.default.title" . }}', data).startswith("[FIRING:1]")


def test_later_files_win_and_empty_definitions_do_not_erase(tmp_path: Path) -> None:
    (tmp_path / "a.tmpl").write_text('{{ define "x" }}A{{ end }}{{ define "y" }}Y{{ end }}')
    (tmp_path / "b.tmpl").write_text('{{ define "x" }}B{{ end }}{{ define "y" }} {{ end }}')
    templates = TemplateSet.default()
    templates.parse_files([tmp_path / "a.tmpl", tmp_path / "b.tmpl"])
    assert templates.render('{{ template "x" . }}{{ template "y" . }}', None) == "BY"
    assert {"x", "y", "a.tmpl", "b.tmpl", "__subject"} <= set(templates.names())


def test_a_receiver_text_may_define_templates_for_itself_only() -> None:
    templates = TemplateSet.default()
    text = '{{ define "__alertmanager" }}Tocsin{{ end }}{{ template "slack.default.username" . }}'
    assert templates.render(text, None) == "Tocsin"
    assert templates.render('{{ template "slack.default.username" . }}', None) == "Alertmanager"


def test_empty_text_is_not_executed() -> None:
    assert DEFAULTS.render("", None) == ""
    assert DEFAULTS.render_html("", None) == ""


def test_errors_in_a_user_file_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.tmpl").write_text('{{ define "x" }}\n{{ humanize 1 }}{{ end }}')
    templates = TemplateSet.default()
    with pytest.raises(Exception, match=r'^template: bad.tmpl:2: function "humanize" not defined$'):
        templates.parse_files([tmp_path / "bad.tmpl"])
