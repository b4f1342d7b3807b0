"""The Redis-backed dispatcher against the in-memory reference simulator, on the same clock.

Random scenarios (alerts firing, re-sent, resolved; silences; inhibition; several routes with
continue and different timers) are fed to both; every notification must be the same, at the
same simulated tick. The simulator is checked tick for tick against Alertmanager's documented
timelines (test_sim.py); this test carries that to the durable router.
"""

from __future__ import annotations

import random
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
from services.router.sim import Simulator
from services.router.store import RouterStore
from services.runtime.metrics import new_registry
from services.runtime.nflog import RedisNflog

S = 1_000_000_000
T0 = 1_800_000_000 * S

CONFIG = """
route:
  receiver: default
  group_by: [alertname]
  group_wait: 3s
  group_interval: 8s
  repeat_interval: 20s
  routes:
    - matchers: ['team="db"']
      receiver: db
      group_by: [alertname, instance]
      group_wait: 1s
      group_interval: 5s
      repeat_interval: 12s
      continue: true
    - matchers: ['severity="critical"']
      receiver: pager
      group_by: ['...']
      group_wait: 0s
      group_interval: 4s
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
receivers:
  - name: default
    webhook_configs: [{url: "http://h/1"}, {url: "http://h/2", send_resolved: false, max_alerts: 2}]
  - name: db
    webhook_configs: [{url: "http://h/3"}]
  - name: pager
    webhook_configs: [{url: "http://h/4"}]
"""


class Outbox:
    """Records what the dispatcher publishes (our Publisher seam), acked at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> Any:
        self.sent.append((topic, orjson.loads(value)["data"]))

        async def ack() -> None:
            return None

        return ack()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def message(labels: dict[str, str], now: int, ends: int | None) -> Alert:
    return Alert(
        labels=labels,
        annotations={"summary": labels["alertname"]},
        startsAt=format_ns(now if ends is None else min(now, ends)),
        endsAt=None if ends is None else format_ns(ends),
        status="firing" if ends is None or ends > now else "resolved",
        fingerprint=fingerprint(labels),
        receivedAt=format_ns(now),
        source="api.v2",
    )


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    yield client
    await client.aclose()


class NoSilences:
    def mutes(self, labels: Any, now_ns: int) -> list[str]:
        return []


def summary(note: Any) -> tuple[Any, ...]:
    return (note[0], note[1], note[2], note[3], tuple(note[4]))


@pytest.mark.parametrize("seed", range(12))
async def test_redis_dispatcher_matches_the_simulator(seed: int, redis: aioredis.Redis) -> None:
    rng = random.Random(seed)
    config = loads(CONFIG)
    clock = Clock()
    prefix = f"diff:{uuid.uuid4().hex[:8]}:"
    outbox = Outbox()
    sim = Simulator(config, T0)
    dispatcher = Dispatcher(
        config,
        RouterStore(redis, prefix=prefix + "router:"),
        RedisNflog(redis, "published", prefix=prefix + "nflog:"),
        outbox,
        sim.silencer,  # the same silences for both
        new_registry(),
        clock=clock,
        owner="test",
        external_url="http://tocsin",
        producer_name="test",
    )
    names = ["DiskFull", "HighCPU", "Down"]
    ours: list[tuple[Any, ...]] = []
    theirs: list[tuple[Any, ...]] = []
    active: dict[str, dict[str, str]] = {}
    try:

        async def collect() -> None:
            for note in sim.advance(clock.now):
                theirs.append(
                    (
                        (note.at_ns - T0) // (S // 10),
                        note.receiver,
                        note.integration,
                        note.group_key,
                        sorted((a.fingerprint, a.ends_ns == 0) for a in note.alerts),
                    )
                )
            await dispatcher.flush_due(lease_ms=5000)
            for topic, data in outbox.sent:
                if topic.startswith("notifications."):
                    ours.append(
                        (
                            step,
                            data["receiver"],
                            data["integration"],
                            data["groupKey"],
                            sorted(
                                (a["fingerprint"], a["status"] == "firing") for a in data["alerts"]
                            ),
                        )
                    )
            outbox.sent.clear()

        for step in range(400):  # 100 ms steps: 40 s of simulated time
            clock.now = T0 + step * S // 10
            # Ticks due now run before this instant's alerts are received (the simulator's order
            # for an alert arriving exactly at a tick), then again for groups created now.
            await collect()
            if rng.random() < 0.08:
                labels = {
                    "alertname": rng.choice(names),
                    "instance": f"h{rng.randint(1, 3)}",
                    "severity": rng.choice(["warning", "critical", "info"]),
                }
                if rng.random() < 0.4:
                    labels["team"] = "db"
                resolve = (
                    labels["alertname"] + labels["instance"] + labels["severity"] in active
                    and rng.random() < 0.5
                )
                key = labels["alertname"] + labels["instance"] + labels["severity"]
                msg = message(labels, clock.now, clock.now if resolve else None)
                if resolve:
                    active.pop(key, None)
                else:
                    active[key] = labels
                sim.receive(msg, clock.now)
                await dispatcher.receive([msg])
            if step == 200 and seed % 3 == 0:  # a silence over every warning, half way
                sim.add_silence(
                    {
                        "matchers": [{"name": "severity", "value": "warning", "isRegex": False}],
                        "startsAt": format_ns(clock.now),
                        "endsAt": format_ns(clock.now + 60 * S),
                        "createdBy": "t",
                        "comment": "c",
                    },
                    clock.now,
                )
            await collect()  # groups with group_wait 0 flush at their creation instant
    finally:
        async for key in redis.scan_iter(match=f"{prefix}*"):
            await redis.delete(key)
    assert theirs, "the scenario produced no notification at all"
    # Within one tick instant the order of groups is not defined (Alertmanager runs them
    # concurrently): compare each instant's notifications as a sorted list.
    assert sorted(summary(n) for n in ours) == sorted(summary(n) for n in theirs)


async def test_inhibition_survives_a_reload_that_reorders_rules(redis: aioredis.Redis) -> None:
    """The inhibition index is keyed by each rule's content, not its position in the list."""
    base = """
route: {receiver: r, group_by: [alertname], group_wait: 0s, group_interval: 5s}
inhibit_rules:
%s  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
receivers: [{name: r, webhook_configs: [{url: "http://h/1"}]}]
"""
    clock = Clock()
    prefix = f"reload:{uuid.uuid4().hex[:8]}:"
    outbox = Outbox()
    dispatcher = Dispatcher(
        loads(base % ""),
        RouterStore(redis, prefix=prefix + "router:"),
        RedisNflog(redis, "published", prefix=prefix + "nflog:"),
        outbox,
        Simulator(loads(base % ""), T0).silencer,
        new_registry(),
        clock=clock,
        owner="test",
        external_url="http://tocsin",
        producer_name="test",
    )
    try:
        await dispatcher.receive(
            [message({"alertname": "Hot", "severity": "critical", "instance": "x"}, T0, None)]
        )
        other_rule = "  - source_matchers: ['a=\"b\"']\n    target_matchers: ['c=\"d\"']\n"
        dispatcher.use_config(loads(base % other_rule))  # the rule moves to position 1
        clock.now = T0 + S
        await dispatcher.receive(
            [
                message(
                    {"alertname": "Warm", "severity": "warning", "instance": "x"}, clock.now, None
                )
            ]
        )
        await dispatcher.flush_due(lease_ms=5000)
    finally:
        async for key in redis.scan_iter(match=f"{prefix}*"):
            await redis.delete(key)
    groups = {d["groupKey"] for t, d in outbox.sent if t.startswith("notifications.")}
    decisions = [d for t, d in outbox.sent if t == "alerts.decisions"]
    assert groups == {'{}:{alertname="Hot"}'}
    assert [(d["labels"]["alertname"], d["decision"]) for d in decisions] == [("Warm", "inhibited")]
