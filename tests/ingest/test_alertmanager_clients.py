"""Real Alertmanager 0.25 and amtool as clients of ingest (Debian packages)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from services.runtime.embedded import free_port
from tests.conftest import Ingest, binary
from tests.helpers import read_alerts, run_alertmanager, start_ingest

pytestmark = pytest.mark.binaries


@pytest.fixture
async def alertmanager_to_ingest(
    kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[tuple[str, str]]:
    """Alertmanager whose only receiver is a webhook to an ingest that requires a Bearer token."""
    am = binary("prometheus-alertmanager")
    ingest_port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: tocsin
  group_by: ['alertname']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: tocsin
    webhook_configs:
      - url: http://127.0.0.1:{ingest_port}/api/v1/alertmanager
        send_resolved: true
        http_config:
          authorization:
            credentials: am-token
"""
    )
    async with (
        start_ingest(
            kafka_bootstrap, ingest_port, **{"web.auth.bearer_token": "am-token"}
        ) as ingest_url,
        run_alertmanager(am, config, tmp_path / "data") as am_url,
    ):
        yield am_url, ingest_url


async def test_alertmanager_webhook_delivers_into_kafka(
    alertmanager_to_ingest: tuple[str, str], kafka_bootstrap: str, run_id: str
) -> None:
    am_url, _ = alertmanager_to_ingest
    labels = {
        "alertname": "DiskFull",
        "instance": "db1:9100",
        "severity": "critical",
        "run": run_id,
    }
    alert = {
        "labels": labels,
        "annotations": {"summary": "disk <full> & hot"},
        "generatorURL": "http://prom/x",
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{am_url}/api/v2/alerts", json=[alert]) as r:
            assert r.status == 200
        fired = await read_alerts(
            kafka_bootstrap, lambda e: e.data.labels.get("run") == run_id, 1, settle=0
        )
        assert fired[0][1].data.status == "firing"
        assert fired[0][1].data.labels == labels
        assert fired[0][1].data.annotations == {"summary": "disk <full> & hot"}
        assert fired[0][1].data.generatorURL == "http://prom/x"
        assert fired[0][1].data.source == "webhook"
        assert fired[0][0] == fired[0][1].data.fingerprint.encode()

        resolved = {**alert, "endsAt": "2020-01-01T00:00:00Z", "startsAt": "2019-12-31T00:00:00Z"}
        # Alertmanager merges by fingerprint; an overlapping resolved copy resolves it.
        resolved["startsAt"] = fired[0][1].data.startsAt
        resolved["endsAt"] = fired[0][1].data.receivedAt
        async with http.post(f"{am_url}/api/v2/alerts", json=[resolved]) as r:
            assert r.status == 200
    got = await read_alerts(
        kafka_bootstrap,
        lambda e: e.data.labels.get("run") == run_id and e.data.status == "resolved",
        1,
        within=20,
        settle=0,
    )
    assert got[0][1].data.fingerprint == fired[0][1].data.fingerprint
    assert got[0][1].data.endsAt is not None


async def test_amtool_alert_add_against_ingest(ingest: Ingest) -> None:
    amtool = binary("amtool")
    proc = await asyncio.create_subprocess_exec(
        amtool, f"--alertmanager.url={ingest.url}", "alert", "add", "TestAlert",
        "severity=warning", f"run={ingest.run_id}", "--annotation=summary=from amtool",
        "--generator-url=http://gen/1",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, (out + err).decode()
    got = await read_alerts(
        ingest.bootstrap, lambda e: e.data.labels.get("run") == ingest.run_id, 1
    )
    assert len(got) == 1
    data = got[0][1].data
    assert data.labels == {"alertname": "TestAlert", "severity": "warning", "run": ingest.run_id}
    assert data.annotations == {"summary": "from amtool"}
    assert data.generatorURL == "http://gen/1"
    assert data.status == "firing"


async def test_amtool_sees_a_refused_alert_as_an_error(ingest: Ingest) -> None:
    """amtool passes end-before-start through; ingest refuses it (400) and publishes nothing.

    amtool's generated client expects Alertmanager's bare JSON string in a 400 and so prints
    "cannot unmarshal object"; Tocsin's body is the documented object naming each problem.
    """
    amtool = binary("amtool")
    proc = await asyncio.create_subprocess_exec(
        amtool, f"--alertmanager.url={ingest.url}", "alert", "add", "Bad", f"run={ingest.run_id}",
        "--start=2026-01-02T00:00:00Z", "--end=2026-01-01T00:00:00Z",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    await proc.communicate()
    assert proc.returncode == 1
    got = await read_alerts(
        ingest.bootstrap, lambda e: e.data.labels.get("run") == ingest.run_id, 1, within=2
    )
    assert got == []
