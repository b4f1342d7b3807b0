"""The router service on real Kafka and Redis: alerts in, grouped notifications out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.envelope import encode
from schemas.timefmt import format_ns, now_ns
from schemas.topics import ALERTS
from services.router.service import RouterService
from services.runtime.kafka import KafkaFactory
from services.runtime.metrics import new_registry
from services.runtime.settings import load_settings

REDIS_URL = "redis://127.0.0.1:6379/0"


def config_text(receiver: str) -> str:
    # The alerts topic is shared by the whole session: each test routes only its own alerts.
    return f"""
route:
  receiver: void
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: ['run="{receiver}"']
      receiver: {receiver}
      routes:
        - matchers: ['severity="page"']
          receiver: {receiver}-pager
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
receivers:
  - name: void
  - name: {receiver}
    webhook_configs: [{{url: "http://127.0.0.1:1/hook"}}]
  - name: {receiver}-pager
    webhook_configs: [{{url: "http://127.0.0.1:1/page", send_resolved: false}}]
"""


async def post(
    producer: AIOKafkaProducer, labels: dict[str, str], ends_at: str | None = None
) -> None:
    from schemas.alert import fingerprint

    now = now_ns()
    fp = fingerprint(labels)
    data: dict[str, Any] = {
        "labels": labels,
        "annotations": {"summary": "s"},
        "startsAt": format_ns(now),
        "endsAt": ends_at,
        "generatorURL": "",
        "status": "firing" if ends_at is None else "resolved",
        "fingerprint": fp,
        "receivedAt": format_ns(now),
        "source": "api.v2",
    }
    await producer.send_and_wait(
        ALERTS.name, encode("tocsin.alert/v1", "test", data), key=fp.encode()
    )


async def collect(
    bootstrap: str, topic: str, count: int, within: float = 20.0
) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(within):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=300)).values():
                    found += [orjson.loads(r.value)["data"] for r in records]
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return found


@asynccontextmanager
async def started_router(
    kafka_bootstrap: str, tmp_path: Path, receiver: str, **settings: Any
) -> AsyncIterator[tuple[RouterService, AIOKafkaProducer]]:
    """A RouterService on `config_text(receiver)`, its keys under `test:<receiver>:`, and a
    producer for the alerts topic; `settings` add to or override the test settings."""
    config = tmp_path / "alertmanager.yml"
    config.write_text(config_text(receiver))
    loaded = load_settings(
        {
            "config.file": str(config),
            "router.group_id": f"router-{receiver}",
            "router.redis_prefix": f"test:{receiver}:",
            "router.poll_interval": 0.05,
            **settings,
        }
    )
    factory = KafkaFactory(loaded.kafka, kafka_bootstrap, embedded=True)
    await factory.ensure_topics(["alerts"])
    redis = aioredis.Redis.from_url(REDIS_URL)
    service = RouterService(loaded, factory, redis, new_registry())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    await service.start()
    try:
        yield service, producer
    finally:
        await service.stop()
        await producer.stop()
        async for key in redis.scan_iter(match=f"test:{receiver}:*"):
            await redis.delete(key)
        await redis.aclose()


@pytest.fixture
async def router(
    kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[tuple[RouterService, str, AIOKafkaProducer]]:
    receiver = f"r{uuid.uuid4().hex[:8]}"
    async with started_router(kafka_bootstrap, tmp_path, receiver) as (service, producer):
        yield service, receiver, producer


async def test_alerts_are_grouped_and_published_per_receiver(
    router: tuple[RouterService, str, AIOKafkaProducer], kafka_bootstrap: str
) -> None:
    _, receiver, producer = router
    run = receiver
    for i in range(3):
        await post(producer, {"alertname": "DiskFull", "instance": f"h{i}", "run": run})
    await post(producer, {"alertname": "Paged", "severity": "page", "run": run})
    got = await collect(kafka_bootstrap, f"notifications.{receiver}", 1)
    assert len(got) == 1
    note = got[0]
    assert note["receiver"] == receiver
    assert note["integration"] == "webhook[0]"
    assert note["groupKey"] == f'{{}}/{{run="{run}"}}:{{alertname="DiskFull"}}'
    assert note["status"] == "firing"
    assert [a["labels"]["instance"] for a in note["alerts"]] == ["h0", "h1", "h2"]
    assert {a["endsAt"] for a in note["alerts"]} == {"0001-01-01T00:00:00Z"}
    assert note["commonLabels"] == {"alertname": "DiskFull", "run": run}
    assert note["groupLabels"] == {"alertname": "DiskFull"}
    paged = await collect(kafka_bootstrap, f"notifications.{receiver}-pager", 1)
    assert paged[0]["groupKey"] == f'{{}}/{{run="{run}"}}/{{severity="page"}}:{{alertname="Paged"}}'
    assert paged[0]["sendResolved"] is False


async def test_inhibited_alerts_become_decisions(
    router: tuple[RouterService, str, AIOKafkaProducer], kafka_bootstrap: str
) -> None:
    _, receiver, producer = router
    await post(
        producer, {"alertname": "Hot", "severity": "critical", "instance": "x", "run": receiver}
    )
    await post(
        producer, {"alertname": "Warm", "severity": "warning", "instance": "x", "run": receiver}
    )
    notes = await collect(kafka_bootstrap, f"notifications.{receiver}", 1)
    assert [n["groupKey"] for n in notes] == [f'{{}}/{{run="{receiver}"}}:{{alertname="Hot"}}']
    decisions = [
        d
        for d in await collect(kafka_bootstrap, "alerts.decisions", 100, within=4)
        if d["receiver"] == receiver
    ]
    assert len(decisions) == 1
    assert decisions[0]["decision"] == "inhibited"
    assert decisions[0]["labels"]["alertname"] == "Warm"


async def test_unchanged_group_is_not_published_again_until_repeat(
    router: tuple[RouterService, str, AIOKafkaProducer], kafka_bootstrap: str
) -> None:
    _, receiver, producer = router
    await post(producer, {"alertname": "Once", "run": receiver})
    await asyncio.sleep(5)  # group_wait 1s + two group_interval ticks of 2s
    notes = await collect(kafka_bootstrap, f"notifications.{receiver}", 5, within=2)
    assert len(notes) == 1


async def test_invalid_reload_keeps_the_old_config(
    router: tuple[RouterService, str, AIOKafkaProducer], tmp_path: Path
) -> None:
    service, receiver, _ = router
    before = service.config
    (tmp_path / "alertmanager.yml").write_text("route:\n  receiver: nope\n")
    error = await service.reload()
    assert error is not None
    assert 'undefined receiver "nope"' in error
    assert service.config is before
    (tmp_path / "alertmanager.yml").write_text(config_text(receiver).replace("1h", "2h"))
    assert await service.reload() is None
    assert service.config.route.repeat_interval == 7200
