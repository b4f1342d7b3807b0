"""Flushing a page of groups at once: a failed publish fails only its group, which stays due."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis

from schemas.alert import Alert, fingerprint
from schemas.config import loads
from schemas.timefmt import format_ns
from services.router.dispatcher import Dispatcher
from services.router.store import RouterStore
from services.runtime.metrics import new_registry
from services.runtime.nflog import RedisNflog

S = 1_000_000_000
T0 = 1_800_000_000 * S

CONFIG = """
route:
  receiver: a
  group_by: [alertname]
  group_wait: 0s
  group_interval: 10s
  repeat_interval: 1h
  routes:
    - matchers: ['team="b"']
      receiver: b
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname]
receivers:
  - name: a
    webhook_configs: [{url: "http://h/a"}]
  - name: b
    webhook_configs: [{url: "http://h/b0"}, {url: "http://h/b1"}]
"""


class BrokerDown(Exception):
    """What the flaky publisher raises."""


class Flaky:
    """Acknowledges every message except those of `failing` (topic, integration) pairs: their
    acknowledgement fails, or with `at_send` the send itself."""

    def __init__(self) -> None:
        self.failing: set[tuple[str, str]] = set()
        self.at_send = False
        self.acked: list[tuple[str, dict[str, Any]]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> Any:
        data = orjson.loads(value)["data"]
        failing = (topic, data.get("integration", "")) in self.failing
        if failing and self.at_send:
            raise BrokerDown(topic)

        async def ack() -> None:
            if failing:
                raise BrokerDown(topic)
            self.acked.append((topic, data))

        return ack()

    def notified(self) -> list[tuple[str, str, list[str]]]:
        out = [
            (d["receiver"], d["integration"], sorted(a["labels"]["alertname"] for a in d["alerts"]))
            for t, d in self.acked
            if t.startswith("notifications.")
        ]
        self.acked.clear()
        return sorted(out)


class NoSilences:
    def mutes(self, labels: Any, now_ns: int) -> list[str]:
        return []


def message(labels: dict[str, str]) -> Alert:
    return Alert(
        labels=labels,
        startsAt=format_ns(T0),
        status="firing",
        fingerprint=fingerprint(labels),
        receivedAt=format_ns(T0),
        source="api.v2",
    )


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: aioredis.Redis) -> AsyncIterator[str]:
    """This test's key prefix, its keys deleted afterwards."""
    prefix = f"flush:{uuid.uuid4().hex[:8]}:"
    yield prefix
    async for key in redis.scan_iter(match=f"{prefix}*"):
        await redis.delete(key)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.mark.parametrize("at_send", [False, True], ids=["ack-fails", "send-raises"])
async def test_a_failed_publish_keeps_only_its_group_due(
    redis: aioredis.Redis, prefix: str, at_send: bool
) -> None:
    clock, publisher, registry = Clock(), Flaky(), new_registry()
    store = RouterStore(redis, prefix=prefix + "router:")
    dispatcher = Dispatcher(
        loads(CONFIG),
        store,
        RedisNflog(redis, "published", prefix=prefix + "nflog:"),
        publisher,
        NoSilences(),
        registry,
        clock=clock,
        owner="me",
        external_url="http://tocsin",
        producer_name="test",
    )
    await dispatcher.receive(
        [
            message({"alertname": "Disk", "team": "b"}),
            message({"alertname": "Cpu"}),
            message({"alertname": "Mem"}),
        ]
    )
    publisher.failing = {("notifications.b", "webhook[1]")}
    publisher.at_send = at_send

    assert await dispatcher.flush_due(lease_ms=5000) == 2  # Cpu and Mem; Disk failed
    assert publisher.notified() == [
        ("a", "webhook[0]", ["Cpu"]),
        ("a", "webhook[0]", ["Mem"]),
        ("b", "webhook[0]", ["Disk"]),
    ]
    assert registry.get_sample_value("tocsin_router_flush_failures_total") == 1
    due = await store.due_groups(clock.now)
    assert [tick for _, tick in due] == [T0]  # Disk's group, at the tick it failed
    assert not [k async for k in redis.scan_iter(match=f"{prefix}router:l:*")]  # leases back

    publisher.failing = set()
    assert await dispatcher.flush_due(lease_ms=5000) == 1
    # webhook[0] was acknowledged and logged: only webhook[1] is sent again.
    assert publisher.notified() == [("b", "webhook[1]", ["Disk"])]
    assert await store.due_groups(clock.now) == []
    clock.now = T0 + 10 * S  # the next tick: nothing changed, nothing to send
    assert await dispatcher.flush_due(lease_ms=5000) == 3
    assert publisher.notified() == []


async def test_a_page_decides_inhibition_per_group_and_announces_once(
    redis: aioredis.Redis, prefix: str
) -> None:
    clock, publisher = Clock(), Flaky()
    dispatcher = Dispatcher(
        loads(CONFIG),
        RouterStore(redis, prefix=prefix + "router:"),
        RedisNflog(redis, "published", prefix=prefix + "nflog:"),
        publisher,
        NoSilences(),
        new_registry(),
        clock=clock,
        owner="me",
        external_url="http://tocsin",
        producer_name="test",
    )
    names = [f"N{i:03d}" for i in range(150)]  # a group per name: more than two pages
    await dispatcher.receive(
        [message({"alertname": n, "severity": "critical"}) for n in names[::2]]
        + [message({"alertname": n, "severity": "warning"}) for n in names]
    )
    assert await dispatcher.flush_due(lease_ms=5000, limit=64) == 64
    while await dispatcher.flush_due(lease_ms=5000, limit=64):
        pass
    decisions = [d for t, d in publisher.acked if t == "alerts.decisions"]
    sent = publisher.notified()
    # Every group notified once, with its one alert that is not inhibited: the warning of
    # each even name is inhibited by the critical beside it.
    assert sent == [("a", "webhook[0]", [n]) for n in names]
    assert sorted(
        (d["labels"]["alertname"], d["labels"]["severity"], d["decision"]) for d in decisions
    ) == [(n, "warning", "inhibited") for n in names[::2]]
    clock.now = T0 + 10 * S
    while await dispatcher.flush_due(lease_ms=5000, limit=64):
        pass
    assert publisher.acked == []  # decisions are announced once per repeat_interval
