"""Capture what Alertmanager 0.25 renders for Slack, PagerDuty and email, as test data.

The real binary runs on loopback with one receiver per scenario: a webhook (its payload is the
template data), Slack and PagerDuty pointed at a local HTTP recorder, and email sent to a
local SMTP sink. `python -m tests.notifiers.alertmanager_capture` rewrites
tests/testdata/templates/alertmanager-0.25.json; the binaries test re-captures and compares.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiosmtpd.smtp import SMTP

from services.runtime.embedded import free_port
from tests.helpers import run_alertmanager

CAPTURE_FILE = Path(__file__).parents[1] / "testdata" / "templates" / "alertmanager-0.25.json"
EXTERNAL_URL = "http://am.example:9093/am"

#: Receiver fields that Tocsin's engine must render exactly as Alertmanager does.
SLACK_FIELDS = {
    "text": '{{ range .Alerts }}{{ .Status }} {{ .StartsAt }} | {{ .EndsAt }} | {{ .StartsAt.Format "Mon, 02 Jan 2006 15:04:05.000 -0700" }} {{ .StartsAt.Unix }} {{ .Fingerprint }}{{ "\\n" }}{{ end }}',
    "pretext": "{{ .Receiver }} {{ .Status }} {{ .GroupLabels }} {{ .CommonLabels.SortedPairs }} {{ .CommonAnnotations }} {{ .ExternalURL }}",
    "footer": '{{ printf "%T" . }} {{ len .Alerts.Firing }}/{{ len .Alerts.Resolved }} {{ .CommonLabels.Names }} {{ title (index .Alerts 0).Labels.alertname }}',
    "callback_id": "{{ . }}",
}
EMAIL_HEADER = (
    '{{ .CommonLabels.Values | join "," }} {{ (index .Alerts 0).Labels.alertname | toUpper }}'
)


def _alert(name: str, **labels: str) -> dict[str, Any]:
    return {"labels": {"alertname": name, **labels}}


#: name, receiver, group_by, alerts (a "resolved" key marks an alert posted already resolved).
SCENARIOS: list[dict[str, Any]] = [
    {
        "name": "single",
        "receiver": "single",
        "group_by": ["alertname"],
        "alerts": [
            {
                **_alert("HighCPU", instance="a:9100", job="node", severity="critical"),
                "annotations": {"summary": "CPU is high"},
                "generatorURL": "http://prom/graph?g0.expr=up&g0.tab=1",
            }
        ],
    },
    {
        "name": "several",
        "receiver": "several",
        "group_by": ["alertname"],
        "alerts": [
            {**_alert("DiskFull", instance=f"h{i}:9100", job="node", severity="critical")}
            for i in (1, 2, 3)
        ],
    },
    {
        "name": "mixed",
        "receiver": "mixed",
        "group_by": ["alertname", "job"],
        "alerts": [
            {**_alert("Latency", instance="a", job="api"), "annotations": {"runbook": "r1"}},
            {**_alert("Latency", instance="b", job="api"), "resolved": True},
            {**_alert("Latency", instance="c", job="api"), "annotations": {"runbook": "r1"}},
        ],
    },
    {  # Alertmanager announces a resolution only after the firing: posted firing, then resolved
        "name": "resolved",
        "receiver": "resolved",
        "group_by": ["alertname"],
        "group_interval": "1s",
        "alerts": [
            {**_alert("Gone", instance="x", team="ops"), "resolved": True},
            {**_alert("Gone", instance="y", team="ops"), "resolved": True},
        ],
    },
    {
        "name": "labels",
        "receiver": "labels",
        "group_by": ["alertname", "zone"],
        "alerts": [
            {
                **_alert(
                    "Many", **{f"l{i:02d}": f"v{i}" for i in range(12)}, zone="eu", B="4", a0="x"
                ),
                "annotations": {"a": "1", "b": "2", "alertname": "not a label"},
            },
            {**_alert("Many", **{f"l{i:02d}": f"v{i}" for i in range(12)}, zone="eu", B="5")},
        ],
    },
    {
        "name": "unicode",
        "receiver": "team.x+y",
        "group_by": ["alertname"],
        "alerts": [
            {
                **_alert("Ünïcødé ✓", path='C:\\tmp\n"q"', city="Zürich"),
                "annotations": {"summary": "日本語 ✓ — “quotes”", "emoji": "🔥"},
            },
            {**_alert("Ünïcødé ✓", path="/x", city="Zürich")},
        ],
    },
    {
        "name": "html",
        "receiver": "html",
        "group_by": ["alertname"],
        "alerts": [
            {
                **_alert("Html<b>", severity="<crit> & 'warn'", q='a"b'),
                "annotations": {"summary": "<script>alert(1)</script> & more +1"},
                "generatorURL": "http://prom/graph?g0.expr=rate(x[5m])>0&g0.tab=1",
            }
        ],
    },
    {
        "name": "nogroup",
        "receiver": "nogroup",
        "group_by": [],
        "alerts": [
            {**_alert("Free", job="batch", severity="info"), "startsAt_offset": "+02:00"},
            {**_alert("Free", job="batch", severity="info", instance="2")},
        ],
    },
]


def _config(http_port: int, smtp_port: int) -> str:
    base = f"http://127.0.0.1:{http_port}"
    routes: list[dict[str, Any]] = []
    receivers: list[dict[str, Any]] = [{"name": "blackhole"}]
    for sc in SCENARIOS:
        route: dict[str, Any] = {
            "matchers": [f'scenario="{sc["name"]}"'],
            "receiver": sc["receiver"],
        }
        if sc["group_by"]:
            route["group_by"] = sc["group_by"]
        if "group_interval" in sc:
            route["group_interval"] = sc["group_interval"]
        routes.append(route)
        name = sc["name"]
        receivers.append(
            {
                "name": sc["receiver"],
                "webhook_configs": [{"url": f"{base}/webhook/{name}", "send_resolved": True}],
                "slack_configs": [
                    {"api_url": f"{base}/slack/{name}", "send_resolved": True, **SLACK_FIELDS}
                ],
                "pagerduty_configs": [
                    {"url": f"{base}/pagerduty/{name}", "routing_key": "rk", "send_resolved": True}
                ],
                "email_configs": [
                    {
                        "to": f"{name}@example.org",
                        "from": "am@example.org",
                        "smarthost": f"127.0.0.1:{smtp_port}",
                        "require_tls": False,
                        "send_resolved": True,
                        "headers": {"X-Tocsin-Test": EMAIL_HEADER},
                    }
                ],
            }
        )
    config = {
        "route": {
            "receiver": "blackhole",
            "group_wait": "0s",
            "group_interval": "1h",
            "repeat_interval": "4h",
            "routes": routes,
        },
        "receivers": receivers,
    }
    return json.dumps(config, indent=1)  # JSON is YAML


def _timestamp(at: datetime, offset: str = "Z") -> str:
    if offset == "Z":
        return at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    delta = timedelta(hours=hours, minutes=minutes) * (1 if offset[0] == "+" else -1)
    return (at + delta).strftime("%Y-%m-%dT%H:%M:%S.%f") + offset


def _postable(now: datetime, phase: int) -> list[dict[str, Any]]:
    """Phase 0 posts every scenario (two-phase ones firing); phase 1 resolves the two-phase ones."""
    out = []
    for sc in SCENARIOS:
        two_phase = "group_interval" in sc
        if phase == 1 and not two_phase:
            continue
        for alert in sc["alerts"]:
            body = {k: v for k, v in alert.items() if k not in ("resolved", "startsAt_offset")}
            body["labels"] = {**alert["labels"], "scenario": sc["name"]}
            body["startsAt"] = _timestamp(
                now - timedelta(minutes=10), alert.get("startsAt_offset", "Z")
            )
            if alert.get("resolved") and (phase == 1 or not two_phase):
                body["endsAt"] = _timestamp(now - timedelta(seconds=1))
            out.append(body)
    return out


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content or envelope.content)
        return "250 OK"


@asynccontextmanager
async def _sinks() -> AsyncIterator[tuple[int, int, dict[str, dict[str, Any]], _Mailbox]]:
    posts: dict[str, dict[str, Any]] = {}

    async def record(request: web.Request) -> web.Response:
        posts[f"{request.match_info['kind']}/{request.match_info['name']}"] = await request.json()
        return web.json_response(
            {"status": "success"}, status=202 if "pagerduty" in request.path else 200
        )

    app = web.Application()
    app.router.add_post("/{kind}/{name}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    http_port, smtp_port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    mailbox = _Mailbox()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(lambda: SMTP(mailbox, hostname="sink"), "127.0.0.1", smtp_port)
    try:
        yield http_port, smtp_port, posts, mailbox
    finally:
        smtp.close()
        await smtp.wait_closed()
        await runner.cleanup()


def _email(raw: bytes) -> tuple[str, dict[str, str]]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    to = str(message["To"])
    headers = {k: str(message[k]) for k in ("Subject", "X-Tocsin-Test", "To", "From")}
    return to.split("@")[0], headers


async def capture(alertmanager: str) -> list[dict[str, Any]]:
    """Run Alertmanager against the scenarios; one record per scenario, in SCENARIOS order."""
    with tempfile.TemporaryDirectory() as tmp:
        async with _sinks() as (http_port, smtp_port, posts, mailbox):
            config = Path(tmp) / "alertmanager.yml"
            config.write_text(_config(http_port, smtp_port))
            async with run_alertmanager(
                alertmanager,
                config,
                Path(tmp) / "data",
                external_url=f"{EXTERNAL_URL}/",
                path="/am",
            ) as url:
                now = datetime.now(UTC)
                wanted = len(SCENARIOS)
                for phase, emails in ((0, wanted), (1, wanted + 1)):
                    async with aiohttp.ClientSession() as http:
                        body = _postable(now, phase)
                        async with http.post(f"{url}/api/v2/alerts", json=body) as r:
                            assert r.status == 200, await r.text()
                    for _ in range(300):
                        if len(posts) >= 3 * wanted and len(mailbox.messages) >= emails:
                            break
                        await asyncio.sleep(0.1)
    mails = dict(_email(raw) for raw in mailbox.messages)
    records = []
    for sc in SCENARIOS:
        name = sc["name"]
        records.append(
            {
                "scenario": name,
                "receiver": sc["receiver"],
                "webhook": posts.get(f"webhook/{name}"),
                "slack": posts.get(f"slack/{name}"),
                "pagerduty": posts.get(f"pagerduty/{name}"),
                "email": mails.get(name),
            }
        )
    return records


def main() -> None:
    """Re-capture with the installed binary and rewrite the test data file."""
    records = asyncio.run(capture(sys.argv[1] if len(sys.argv) > 1 else "prometheus-alertmanager"))
    document = {
        "captured_with": "prometheus-alertmanager 0.25.0 (Debian), amd64",
        "external_url": EXTERNAL_URL,
        "slack_fields": SLACK_FIELDS,
        "email_header": EMAIL_HEADER,
        "records": records,
    }
    CAPTURE_FILE.parent.mkdir(parents=True, exist_ok=True)
    CAPTURE_FILE.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
