"""`tocsin notify test`: a synthetic group to each integration of a receiver, or a dry run."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
from aiohttp import web

from schemas.config import load
from services.notifiers.testsend import test_receiver as send_test
from services.runtime.embedded import free_port

CONFIG = """
route: {{receiver: team}}
receivers:
  - name: team
    webhook_configs: [{{url: "http://127.0.0.1:{port}/hook?token=hook-secret"}}]
    slack_configs: [{{api_url: "http://127.0.0.1:{port}/slack/slack-secret", channel: "#ops"}}]
    pagerduty_configs: [{{routing_key: "pd-secret", url: "http://127.0.0.1:{port}/pd"}}]
  - name: empty
"""


async def test_dry_run_renders_every_integration_and_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "am.yml"
    path.write_text(CONFIG.format(port=1))
    out = io.StringIO()
    assert await send_test(load(path), "team", "http://tocsin", out, dry_run=True) == 0
    text = out.getvalue()
    for name in ("webhook[0]", "slack[0]", "pagerduty[0]"):
        assert f"--- team/{name}" in text
    assert '"alertname":"TocsinTest"' in text
    for secret in ("hook-secret", "slack-secret"):
        assert secret not in text


async def test_real_send_reports_each_outcome(tmp_path: Path) -> None:
    got: dict[str, bytes] = {}

    async def handler(request: web.Request) -> web.Response:
        got[request.path] = await request.read()
        if request.path.startswith("/slack"):
            return web.Response(status=404, text="channel_not_found")
        return web.Response(status=202 if request.path == "/pd" else 200, text="ok")

    port = free_port()
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        path = tmp_path / "am.yml"
        path.write_text(CONFIG.format(port=port))
        out = io.StringIO()
        status = await send_test(load(path), "team", "http://tocsin", out, dry_run=False)
    finally:
        await runner.cleanup()
    text = out.getvalue()
    assert status == 1  # Slack failed
    assert "--- team/webhook[0]\ndelivered (200)" in text
    assert "--- team/pagerduty[0]\ndelivered (202)" in text
    assert "FAILED (permanent, client_error)" in text
    assert orjson.loads(got["/hook"])["alerts"][0]["labels"]["alertname"] == "TocsinTest"
    assert "slack-secret" not in text


async def test_unknown_and_empty_receivers(tmp_path: Path) -> None:
    path = tmp_path / "am.yml"
    path.write_text(CONFIG.format(port=1))
    out = io.StringIO()
    assert await send_test(load(path), "nope", "http://t", out, dry_run=True) == 1
    assert "no receiver 'nope'" in out.getvalue()
    out = io.StringIO()
    assert await send_test(load(path), "empty", "http://t", out, dry_run=True) == 0
    assert "no integrations" in out.getvalue()
