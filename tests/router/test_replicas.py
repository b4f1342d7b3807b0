"""Router replicas as real processes: one is killed (-9) mid-stream, nothing is lost.

Two `tocsin router` processes share the alerts topic (consumer group) and Redis. One dies with
SIGKILL while alerts stream in; the other takes over its partitions (after the group's session
timeout) and its groups (after the flush lease). Every group must then have been notified with
every one of its alerts, and any flush repeated across the crash must carry the same idempotency
key, so that consumers and the notifiers see one flush.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.alert import fingerprint
from schemas.envelope import encode
from schemas.timefmt import format_ns, now_ns
from services.runtime.kafka import KafkaFactory
from services.runtime.settings import load_settings
from tests.helpers import start_tocsin, stop, wait_ready

GROUPS = 60
PER_GROUP = 3


async def test_a_killed_replica_loses_no_flush(kafka_bootstrap: str, tmp_path: Path) -> None:
    run = f"r{uuid.uuid4().hex[:8]}"
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: void
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: ['run="{run}"']
      receiver: {run}
receivers:
  - name: void
  - name: {run}
    webhook_configs: [{{url: "http://127.0.0.1:1/hook"}}]
"""
    )
    factory = KafkaFactory(
        load_settings({"kafka.partitions": 8}).kafka, kafka_bootstrap, embedded=True
    )
    await factory.ensure_topics(["alerts", f"notifications.{run}"])
    flags = [
        f"--config.file={config}",
        f"--router.group-id=router-{run}",
        "--router.flush-lease=3",
        "--router.poll-interval=0.05",
    ]
    replicas = [
        start_tocsin("router", *flags, bootstrap=kafka_bootstrap, run=run) for _ in range(2)
    ]
    redis = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        for proc, url in replicas:
            await asyncio.to_thread(wait_ready, url, proc)
        await producer.start()
        sent: dict[str, set[str]] = collections.defaultdict(set)
        victim = replicas[0][0]
        total = GROUPS * PER_GROUP
        for n in range(total):
            labels = {"alertname": f"G{n % GROUPS}", "i": str(n // GROUPS), "run": run}
            fp = fingerprint(labels)
            now = now_ns()
            data = {
                "labels": labels, "annotations": {}, "startsAt": format_ns(now), "endsAt": None,
                "generatorURL": "", "status": "firing", "fingerprint": fp,
                "receivedAt": format_ns(now), "source": "api.v2",
            }  # fmt: skip
            await producer.send("alerts", encode("tocsin.alert/v1", "test", data), key=fp.encode())
            sent[f'{{}}/{{run="{run}"}}:{{alertname="G{n % GROUPS}"}}'].add(fp)
            if n == total // 2:
                os.kill(victim.pid, signal.SIGKILL)  # mid-stream, mid-flush as likely as not
            await asyncio.sleep(0.01)
        await producer.flush()
        notes = await collect(kafka_bootstrap, f"notifications.{run}", sent, within=45)
    finally:
        stop(proc for proc, _ in replicas)
        await producer.stop()
        async for key in redis.scan_iter(match=f"test:{run}:*"):
            await redis.delete(key)
        await redis.aclose()
    assert victim.returncode == -signal.SIGKILL
    by_group: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for note in notes:
        by_group[note["groupKey"]].append(note)
    assert set(by_group) == set(sent), "a group was never notified"
    for key, group in by_group.items():
        seen = set().union(*({a["fingerprint"] for a in n["alerts"]} for n in group))
        assert seen == sent[key], f"{key}: alerts missing from every notification"
        per_tick = collections.defaultdict(set)
        for note in group:
            per_tick[note["tick"]].add(note["idempotencyKey"])
        assert all(len(keys) == 1 for keys in per_tick.values())
        # Nothing is published twice except across the crash, and then with the same key.
        assert len(group) - len(per_tick) <= 1


async def collect(
    bootstrap: str, topic: str, sent: dict[str, set[str]], within: float
) -> list[dict[str, Any]]:
    """Notifications until every group has been notified with all its alerts (or time is up)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    notes: list[dict[str, Any]] = []
    covered: dict[str, set[str]] = collections.defaultdict(set)
    try:
        async with asyncio.timeout(within):
            while any(covered[k] != v for k, v in sent.items()):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        note = orjson.loads(record.value)["data"]
                        notes.append(note)
                        covered[note["groupKey"]] |= {a["fingerprint"] for a in note["alerts"]}
        await asyncio.sleep(2.5)  # a little longer, to see duplicates too
        for records in (await consumer.getmany(timeout_ms=500)).values():
            notes += [orjson.loads(r.value)["data"] for r in records]
    except TimeoutError:
        pytest.fail(f"not every group was notified with all its alerts in {within}s")
    finally:
        await consumer.stop()
    return notes
