"""Broker down: 503 with Retry-After, nothing half-taken; once it is back the retry lands."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from services.runtime.embedded import EmbeddedKafka, free_port
from services.runtime.kafka import KafkaFactory
from services.runtime.settings import load_settings
from tests.helpers import read_alerts, start_ingest

JSON = {"Content-Type": "application/json"}
STARTS = "2026-11-27T02:00:00.123456789Z"


async def test_outage_gives_503_then_the_retried_request_is_accepted(run_id: str) -> None:
    broker = EmbeddedKafka(port=free_port())
    await broker.start()
    try:
        overrides = {"kafka.publish_timeout": 1.5}
        factory = KafkaFactory(load_settings().kafka, broker.bootstrap_servers, embedded=True)
        async with (
            start_ingest(broker.bootstrap_servers, free_port(), **overrides) as url,
            aiohttp.ClientSession() as http,
        ):

            async def post(name: str) -> aiohttp.ClientResponse:
                alert = {"labels": {"alertname": name, "run": run_id}, "startsAt": STARTS}
                body = json.dumps([alert])
                async with http.post(f"{url}/api/v2/alerts", data=body, headers=JSON) as r:
                    await r.read()
                    return r

            assert (await post("Before")).status == 200

            await broker.stop()
            down = await post("During")
            assert down.status == 503
            assert down.headers["Retry-After"] == "5"
            async with http.get(f"{url}/health") as r:
                assert r.status == 503
                assert (await r.json())["services"]["kafka"] == "error"

            # Same port. Tansu keeps topics in memory only, so recreate the topic as it was:
            # a real broker comes back with its topics and everything it acknowledged.
            await broker.start()
            await factory.ensure_topics(["alerts"])
            # Retry as Alertmanager/Prometheus do on 5xx, bounded.
            for _ in range(40):
                if (await post("During")).status == 200:
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError("the retried request was never accepted")
        got = await read_alerts(
            broker.bootstrap_servers, lambda e: e.data.labels.get("run") == run_id, 1
        )
        # The accepted retry landed. A request answered 503 may still have reached the broker
        # (a timeout cannot tell "not written" from "ack lost"): at-least-once, and the copies
        # are the same alert (same fingerprint, labels, startsAt), which the router merges.
        assert {e.data.labels["alertname"] for _, e in got} == {"During"}
        assert {(k, e.data.fingerprint, e.data.startsAt) for k, e in got} == {
            (got[0][0], got[0][1].data.fingerprint, STARTS)
        }
    finally:
        await broker.stop()
