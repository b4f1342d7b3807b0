"""Alertmanager's v2 API on Tocsin, driven by the real amtool: alerts, silences, status."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from services.ingest import IngestService
from services.router.service import RouterService
from services.runtime.auth import Authenticator
from services.runtime.embedded import free_port
from services.runtime.health import HealthRegistry
from services.runtime.kafka import KafkaFactory
from services.runtime.metrics import new_registry
from services.runtime.settings import load_settings
from tests.conftest import binary

pytestmark = pytest.mark.binaries


@dataclass
class Tocsin:
    url: str
    run: str
    router: RouterService


@pytest.fixture
async def tocsin(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Tocsin]:
    """Ingest and router in one process on one port, as `tocsin run --config.file` serves."""
    run = f"r{uuid.uuid4().hex[:8]}"
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: void
  group_by: [alertname]
  group_wait: 1s
  routes:
    - matchers: ['run="{run}"']
      receiver: team
      routes:
        - matchers: ['severity="page"']
          receiver: pager
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
receivers:
  - name: void
  - name: team
    webhook_configs: [{{url: "http://127.0.0.1:1/hook", http_config: {{bearer_token: "s3cret"}}}}]
  - name: pager
"""
    )
    port = free_port()
    settings = load_settings(
        {
            "config.file": str(config),
            "web.listen_address": f"127.0.0.1:{port}",
            "router.group_id": f"router-{run}",
            "router.redis_prefix": f"test:{run}:",
            "router.poll_interval": 0.05,
        }
    )
    factory = KafkaFactory(settings.kafka, kafka_bootstrap, embedded=True)
    await factory.ensure_topics(["alerts"])
    redis = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    registry = new_registry()
    router = RouterService(settings, factory, redis, registry)
    await router.start()
    ingest = IngestService(
        settings, factory, registry, HealthRegistry("t"), version="t",
        extra_routes=router.api(Authenticator(None, None, None)).routes(),
    )  # fmt: skip
    await ingest.start()
    try:
        yield Tocsin(f"http://127.0.0.1:{port}", run, router)
    finally:
        await ingest.stop()
        await router.stop()
        async for key in redis.scan_iter(match=f"test:{run}:*"):
            await redis.delete(key)
        await redis.aclose()


async def amtool(url: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        binary("amtool"), f"--alertmanager.url={url}", *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert b"version" not in err, err  # no version-mismatch warning from amtool
    return proc.returncode or 0, out.decode() + err.decode()


async def query_json(url: str, *args: str) -> list[dict[str, object]]:
    status, out = await amtool(url, "-o", "json", *args)
    assert status == 0, out
    assert out.startswith("["), out
    parsed: list[dict[str, object]] = json.loads(out)
    return parsed


async def wait_for_alerts(t: Tocsin, count: int) -> list[dict[str, object]]:
    for _ in range(100):
        found = await query_json(
            t.url, "alert", "query", "--active", "--silenced", "--inhibited", f"run={t.run}"
        )
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError("alerts never reached the router")


async def test_alert_add_then_query_with_state(tocsin: Tocsin) -> None:
    t = tocsin
    for labels in (
        ["Hot", "severity=critical", "instance=x"],
        ["Warm", "severity=warning", "instance=x"],
        ["Paged", "severity=page"],
    ):
        status, out = await amtool(t.url, "alert", "add", *labels, f"run={t.run}")
        assert status == 0, out
    found = {a["labels"]["alertname"]: a for a in await wait_for_alerts(t, 3)}  # type: ignore[index]
    assert found["Hot"]["status"] == {"inhibitedBy": [], "silencedBy": [], "state": "active"}
    assert found["Warm"]["status"]["inhibitedBy"] == [found["Hot"]["fingerprint"]]  # type: ignore[index]
    assert found["Warm"]["status"]["state"] == "suppressed"  # type: ignore[index]
    assert found["Paged"]["receivers"] == [{"name": "pager"}]
    assert found["Hot"]["receivers"] == [{"name": "team"}]
    # amtool's own table and filters work too
    status, out = await amtool(t.url, "alert", "query", f"run={t.run}", "--inhibited")
    assert status == 0
    assert "Warm" in out
    status, out = await amtool(t.url, "alert", "query", f"run={t.run}", "--receiver=pager")
    assert "Paged" in out
    assert "Hot" not in out


async def test_silence_add_query_expire(tocsin: Tocsin) -> None:
    t = tocsin
    await amtool(t.url, "alert", "add", "Noisy", f"run={t.run}")
    await wait_for_alerts(t, 1)
    status, out = await amtool(
        t.url, "silence", "add", "alertname=Noisy", f"run={t.run}", "--comment=maintenance",
        "--author=ops", "--duration=1h",
    )  # fmt: skip
    assert status == 0, out
    silence_id = out.strip()
    uuid.UUID(silence_id)
    status, out = await amtool(t.url, "silence", "query", f"run={t.run}")
    assert silence_id in out
    assert "maintenance" in out
    noisy = (await query_json(t.url, "alert", "query", f"run={t.run}", "--silenced"))[0]
    assert noisy["status"] == {"inhibitedBy": [], "silencedBy": [silence_id], "state": "suppressed"}
    status, out = await amtool(t.url, "silence", "expire", silence_id)
    assert status == 0, out
    status, out = await amtool(t.url, "silence", "query", f"run={t.run}")
    assert silence_id not in out  # only active and pending by default
    status, out = await amtool(t.url, "silence", "query", "--expired", f"run={t.run}")
    assert silence_id in out


async def test_bad_silence_gets_alertmanagers_error(tocsin: Tocsin) -> None:
    async with aiohttp.ClientSession() as http:
        body = {
            "matchers": [{"name": "a", "value": "", "isRegex": False}],
            "startsAt": "2030-01-01T00:00:00Z",
            "endsAt": "2030-01-02T00:00:00Z",
            "createdBy": "me",
            "comment": "c",
        }
        async with http.post(f"{tocsin.url}/api/v2/silences", json=body) as r:
            assert r.status == 400
            assert (
                await r.json()
                == "silence invalid: at least one matcher must not match the empty string"
            )
        async with http.get(f"{tocsin.url}/api/v2/silence/not-a-uuid") as r:
            assert r.status == 422


async def test_status_masks_secrets_and_reload_works(tocsin: Tocsin, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{tocsin.url}/api/v2/status") as r:
            status = await r.json()
        assert "s3cret" not in status["config"]["original"]
        assert "<secret>" in status["config"]["original"]
        assert status["versionInfo"]["version"] == "0.25.0"  # the API amtool talks to
        assert status["versionInfo"]["revision"].startswith("tocsin-")
        async with http.get(f"{tocsin.url}/api/v2/receivers") as r:
            assert [x["name"] for x in await r.json()] == ["void", "team", "pager"]
        (tmp_path / "alertmanager.yml").write_text("route: {receiver: nope}\n")
        async with http.post(f"{tocsin.url}/-/reload") as r:
            assert r.status == 500
            assert "undefined receiver" in await r.text()
        assert [r.name for r in tocsin.router.config.receivers] == ["void", "team", "pager"]
