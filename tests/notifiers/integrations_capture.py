"""Capture the raw bytes Alertmanager 0.25 sends to Slack, PagerDuty (v2 and v1) and SMTP for a
receiver that sets every field, as test data for the integrations.

One group of two alerts fires, then resolves (group_interval 1s). Slack and PagerDuty v2 post
to a local HTTP recorder; PagerDuty v1 (whose URL is fixed to events.pagerduty.com) reaches the
same recorder through `proxy_url`: a CONNECT proxy that ends the TLS itself with a throwaway
certificate (the config skips verification). Email goes to a local SMTP sink.
`python -m tests.notifiers.integrations_capture` rewrites
tests/testdata/notifiers/alertmanager-0.25-integrations.json.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
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

CAPTURE_FILE = (
    Path(__file__).parents[1] / "testdata" / "notifiers" / "alertmanager-0.25-integrations.json"
)
EXTERNAL_URL = "http://am.example:9093"
LONG = "é" * 1030  # over the 1024-rune limits of the Slack title and PagerDuty summary

SLACK = {
    "channel": "#alerts-{{ .CommonLabels.team }}",
    "username": "AM {{ .Status }}",
    "icon_emoji": ":fire:",
    "icon_url": "http://icons/{{ .CommonLabels.alertname }}.png",
    "link_names": True,
    "title": LONG + "{{ .Status }}",
    "pretext": "{{ .CommonAnnotations.summary }}",
    "text": 'multi\nline <b>&</b> "q" {{ range .Alerts }}{{ .Labels.instance }} {{ end }}',
    "callback_id": "cb-{{ .GroupLabels.alertname }}",
    "footer": "footer ✓",
    "color": '{{ if eq .Status "firing" }}#ff0000{{ end }}',
    "image_url": "http://img/{{ .Status }}.png",
    "thumb_url": "http://thumb",
    "mrkdwn_in": ["text", "title"],
    "short_fields": True,
    "fields": [
        {"title": "sev", "value": "{{ .CommonLabels.severity }}"},
        {"title": "inst", "value": "{{ range .Alerts }}{{ .Labels.instance }} {{ end }}", "short": False},
        {"title": "gone", "value": "{{ .CommonLabels.nope }}"},
    ],
    "actions": [
        {"type": "button", "text": "Runbook ✓", "url": "http://runbook/{{ .GroupLabels.alertname }}", "style": "primary"},
        {"type": "button", "text": "Ack", "name": "ack", "value": "{{ .GroupLabels.alertname }}", "confirm": {"text": "Sure?", "title": "Ack it", "ok_text": "Yes", "dismiss_text": "No"}},
        {"type": "button", "text": "Silence", "name": "silence", "confirm": {"text": "Really?"}},
    ],
}  # fmt: skip

PAGERDUTY = {
    "routing_key": "rk-{{ .GroupLabels.alertname }}",
    "severity": "{{ .CommonLabels.severity }}",
    "class": "cls",
    "component": "{{ .CommonLabels.job }}",
    "group": "grp",
    "description": LONG + " {{ .Status }}",
    "client": "Tocsin ✓",
    "client_url": "http://c/{{ .Receiver }}",
    "details": {"firing": "custom {{ len .Alerts }}", "extra": "<&> ü", "empty": ""},
    "images": [
        {"src": "http://img/{{ .Status }}.png", "alt": "a", "href": "http://h"},
        {"src": "{{ .CommonLabels.nope }}", "alt": "dropped"},
    ],
    "links": [
        {"href": "http://l/{{ .GroupLabels.alertname }}", "text": "L"},
        {"href": "", "text": "dropped"},
    ],
}

PAGERDUTY_V1 = {
    "service_key": "sk-{{ .GroupLabels.alertname }}",
    "description": "v1 {{ .CommonAnnotations.summary }}",
    "details": {"extra": "x"},
}

EMAIL = {
    "to": "ops@example.org, Second Person <two@example.org>",
    "from": "Alertmanager ✓ <am@example.org>",
    "headers": {
        "X-Long": "Zürich " * 20 + "{{ .Status }}",
        "x-plain": "tab\tand   spaces {{ .GroupLabels.alertname }}",
        "X-Equals": "a=b?c_d =?x?= ü",
    },
    "text": "Text {{ .CommonAnnotations.summary }}\n  trailing space \ntab\t\n"
    + "long line " + "=x" * 60 + "\r\nend é",
    "html": '<p title="{{ .CommonLabels.alertname }}">{{ range .Alerts }}<b>{{ .Labels.instance }}</b>'
    ' {{ .Annotations.summary }}<br>{{ end }}</p>\n<a href="{{ .ExternalURL }}/?q={{ .GroupLabels.alertname }}">'
    + "link</a> " + "ü" * 40,
}  # fmt: skip

ALERTS = [
    {
        "labels": {"alertname": "Rich", "team": "ops", "severity": "critical", "job": "api", "instance": instance},
        "annotations": {"summary": 'Disk ü <full> & "hot"'},
        "generatorURL": f"http://prom/graph?g0.expr=up&i={instance}",
    }
    for instance in ("a", "b")
]  # fmt: skip


def _config(http_port: int, smtp_port: int, proxy_port: int) -> str:
    base = f"http://127.0.0.1:{http_port}"
    receiver = {
        "name": "rich",
        "webhook_configs": [{"url": f"{base}/webhook", "send_resolved": True}],
        "slack_configs": [{"api_url": f"{base}/slack", "send_resolved": True, **SLACK}],
        "pagerduty_configs": [
            {"url": f"{base}/pagerduty", "send_resolved": True, **PAGERDUTY},
            {
                "send_resolved": True,
                "http_config": {
                    "proxy_url": f"http://127.0.0.1:{proxy_port}",
                    "tls_config": {"insecure_skip_verify": True},
                },
                **PAGERDUTY_V1,
            },
        ],
        "email_configs": [
            {
                "smarthost": f"127.0.0.1:{smtp_port}",
                "require_tls": False,
                "send_resolved": True,
                **EMAIL,
            }
        ],
    }
    route = {
        "receiver": "rich",
        "group_by": ["alertname"],
        "group_wait": "0s",
        "group_interval": "1s",
        "repeat_interval": "4h",
    }
    return json.dumps({"route": route, "receivers": [receiver]}, indent=1)


def self_signed(directory: Path, name: str = "localhost") -> tuple[Path, Path]:
    """A throwaway certificate and key for `name` (and 127.0.0.1), made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl CLI makes the test certificates; install openssl")
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content)
        return "250 OK"


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


@asynccontextmanager
async def _sinks(
    directory: Path,
) -> AsyncIterator[tuple[int, int, int, dict[str, list[dict[str, str]]], _Mailbox]]:
    posts: dict[str, list[dict[str, str]]] = {}

    def record(kind: str, body: bytes, content_type: str) -> None:
        posts.setdefault(kind, []).append({"body": body.decode(), "content_type": content_type})

    async def http_post(request: web.Request) -> web.Response:
        record(request.match_info["kind"], await request.read(), request.content_type)
        return web.Response(status=202 if "pagerduty" in request.path else 200, text="ok")

    cert, key = self_signed(directory, "events.pagerduty.com")
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # CONNECT events.pagerduty.com:443
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await writer.start_tls(server_tls)
        head, body = await _read_request(reader)
        content_type = next(
            (line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
             if line.lower().startswith(b"content-type:")),
            "",
        )  # fmt: skip
        record("pagerduty-v1", body, content_type)
        writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    app = web.Application()
    app.router.add_post("/{kind}", http_post)
    runner = web.AppRunner(app)
    await runner.setup()
    http_port, smtp_port, proxy_port = free_port(), free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    mailbox = _Mailbox()
    loop = asyncio.get_running_loop()
    smtp = await loop.create_server(lambda: SMTP(mailbox, hostname="sink"), "127.0.0.1", smtp_port)
    proxy_server = await asyncio.start_server(proxy, "127.0.0.1", proxy_port)
    try:
        yield http_port, smtp_port, proxy_port, posts, mailbox
    finally:
        proxy_server.close()
        smtp.close()
        await smtp.wait_closed()
        await runner.cleanup()


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


async def capture(alertmanager: str) -> dict[str, Any]:
    """Run Alertmanager; what each integration received, firing then resolved."""
    with tempfile.TemporaryDirectory() as tmp:
        async with _sinks(Path(tmp)) as (http_port, smtp_port, proxy_port, posts, mailbox):
            config = Path(tmp) / "alertmanager.yml"
            config.write_text(_config(http_port, smtp_port, proxy_port))
            async with run_alertmanager(
                alertmanager, config, Path(tmp) / "data", external_url=f"{EXTERNAL_URL}/"
            ) as url:
                now = datetime.now(UTC)
                for phase in (1, 2):
                    body = [
                        {**alert, "startsAt": _timestamp(now - timedelta(minutes=10))}
                        | ({"endsAt": _timestamp(now - timedelta(seconds=1))} if phase == 2 else {})
                        for alert in ALERTS
                    ]
                    async with (
                        aiohttp.ClientSession() as http,
                        http.post(f"{url}/api/v2/alerts", json=body) as r,
                    ):
                        assert r.status == 200, await r.text()
                    for _ in range(300):
                        kinds = ("webhook", "slack", "pagerduty", "pagerduty-v1")
                        if all(len(posts.get(k, [])) >= phase for k in kinds) and (
                            len(mailbox.messages) >= phase
                        ):
                            break
                        await asyncio.sleep(0.05)
    return {
        "webhook": [json.loads(p["body"]) for p in posts.get("webhook", [])],
        "slack": posts.get("slack", []),
        "pagerduty": posts.get("pagerduty", []),
        "pagerduty_v1": posts.get("pagerduty-v1", []),
        "email": [m.decode("ascii") for m in mailbox.messages],
    }


def main() -> None:
    """Re-capture with the installed binary and rewrite the test data file."""
    binary = sys.argv[1] if len(sys.argv) > 1 else "prometheus-alertmanager"
    document = {
        "captured_with": "prometheus-alertmanager 0.25.0 (Debian), amd64",
        "external_url": EXTERNAL_URL,
        **asyncio.run(capture(binary)),
    }
    CAPTURE_FILE.parent.mkdir(parents=True, exist_ok=True)
    CAPTURE_FILE.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
