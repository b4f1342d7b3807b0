"""Alertmanager's template data model and the builder that computes it from alerts."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from schemas.webhook import WebhookAlert
from services.notifiers.template import KV, TemplateSet, template_data
from services.notifiers.template.data import quote_meta
from services.notifiers.template.gotime import GoTime


@dataclass
class _Alert:
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    status: str = "firing"
    startsAt: str = "2026-11-27T02:10:31.083842749Z"
    endsAt: str | None = None
    generatorURL: str = ""
    fingerprint: str = "0000000000000000"


def test_sorted_pairs_put_alertname_first() -> None:
    kv = KV({"b": "2", "alertname": "X", "B": "4", "a0": "3", "a": "1", "a_b": "5"})
    assert kv.Names() == ["alertname", "B", "a", "a0", "a_b", "b"]
    assert kv.Values() == ["X", "4", "1", "3", "5", "2"]
    assert kv.SortedPairs().Names() == kv.Names()
    assert kv.Remove(["a", "nope"]) == {"b": "2", "alertname": "X", "B": "4", "a0": "3", "a_b": "5"}
    assert KV({"z": "1", "y": "2"}).Names() == ["y", "z"]


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("team", "team"),
        ("team.x+y", r"team\.x\+y"),
        (r"a\b[c]{d}(e)|f^g$h*?", r"a\\b\[c\]\{d\}\(e\)\|f\^g\$h\*\?"),
    ],
)
def test_receiver_is_quote_meta_escaped(name: str, escaped: str) -> None:
    assert quote_meta(name) == escaped
    assert template_data(name, None, [], {}, "").Receiver == escaped


def test_common_labels_and_annotations() -> None:
    alerts = [
        _Alert({"alertname": "A", "job": "n", "x": "1"}, {"s": "same", "d": "one"}),
        _Alert({"alertname": "A", "job": "n", "x": "2"}, {"s": "same"}),
        _Alert({"alertname": "A", "job": "n", "y": "1"}, {"s": "same", "d": "one"}),
    ]
    data = template_data("r", None, alerts, {"alertname": "A"}, "http://am")
    assert data.CommonLabels == {"alertname": "A", "job": "n"}
    assert data.CommonAnnotations == {"s": "same"}
    assert data.GroupLabels == {"alertname": "A"}
    assert data.ExternalURL == "http://am"
    assert template_data("r", None, [], {}, "").CommonLabels == {}
    one = template_data("r", None, alerts[:1], {}, "")
    assert one.CommonLabels == alerts[0].labels
    assert one.CommonAnnotations == alerts[0].annotations


def test_status_and_firing_resolved() -> None:
    firing = _Alert({"alertname": "A", "i": "1"})
    resolved = _Alert(
        {"alertname": "A", "i": "2"}, status="resolved", endsAt="2026-11-27T03:00:00Z"
    )
    mixed = template_data("r", None, [resolved, firing], {}, "")
    assert mixed.Status == "firing"
    assert [a.Labels["i"] for a in mixed.Alerts.Firing()] == ["1"]
    assert [a.Labels["i"] for a in mixed.Alerts.Resolved()] == ["2"]
    assert template_data("r", None, [resolved], {}, "").Status == "resolved"
    assert template_data("r", "resolved", [firing], {}, "").Status == "resolved"  # given wins


def test_times_keep_nanoseconds_and_zone() -> None:
    alert = _Alert({"alertname": "A"}, startsAt="2026-11-27T04:10:31.5+02:00")
    data = template_data("r", None, [alert], {}, "")
    assert data.Alerts[0].StartsAt == GoTime.parse("2026-11-27T04:10:31.5+02:00")
    assert data.Alerts[0].EndsAt.IsZero()  # no endsAt: Go's zero time
    rendered = TemplateSet().render(
        "{{ range .Alerts }}{{ .StartsAt }}|{{ .EndsAt }}{{ end }}", data
    )
    assert rendered == "2026-11-27 04:10:31.5 +0200 +0200|0001-01-01 00:00:00 +0000 UTC"


def test_webhook_alerts_are_accepted() -> None:
    hook = WebhookAlert(
        status="firing",
        labels={"alertname": "A"},
        startsAt="2026-11-27T02:10:31Z",
        endsAt="0001-01-01T00:00:00Z",
        fingerprint="abc",
    )
    data = template_data("r", None, [hook], {"alertname": "A"}, "http://am")
    assert data.Alerts[0].EndsAt.IsZero()
    assert data.Alerts[0].Fingerprint == "abc"


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("{{ .Receiver }}", r"team\.x"),
        ('{{ printf "%T" . }}', "*template.Data"),
        ("{{ .Alerts.Firing | len }}/{{ .Alerts.Resolved | len }}", "1/0"),
        ("{{ .CommonLabels.alertname }}{{ .CommonLabels.missing }}", "A"),
        ("{{ (index .Alerts 0).Labels.Names }}", "[alertname Names]"),
        ("{{ (index .Alerts 0).Labels.SortedPairs }}", "[{alertname A} {Names shadowed}]"),
        ("{{ range .GroupLabels.SortedPairs }}{{ .Name }}={{ .Value }}{{ end }}", "alertname=A"),
        ("{{ eq . . }}", "true"),  # Alertmanager passes a pointer: comparable
        ('{{ printf "%.3v" .ExternalURL }}', "htt"),
    ],
)
def test_data_in_templates(text: str, want: str) -> None:
    alert = _Alert({"alertname": "A", "Names": "shadowed"})
    data = template_data("team.x", None, [alert], {"alertname": "A"}, "http://am")
    assert TemplateSet().render(text, data) == want


def test_printing_the_data_prints_the_struct() -> None:
    data = template_data("r", None, [_Alert({"alertname": "A"})], {}, "http://am")
    printed = TemplateSet().render("{{ . }}", data)
    assert printed.startswith("{r firing [{firing map[alertname:A] map[] 2026-11-27 02:10:31")
    assert (
        TemplateSet().render("{{ print . }}", data).startswith("&{r firing")
    )  # fmt sees the pointer
