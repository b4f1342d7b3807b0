"""The notifiers service on real Kafka and Redis, delivering to a local HTTP endpoint."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.envelope import encode
from schemas.topics import notifications_topic
from services.notifiers.service import NotifierService
from services.notifiers.webhook import webhook_payload
from services.runtime.embedded import free_port
from services.runtime.kafka import KafkaFactory
from services.runtime.metrics import new_registry
from services.runtime.settings import load_settings
from tests.notifiers.test_webhook import notification


@dataclass
class Recorder:
    """An HTTP endpoint whose answers the test scripts (status, Retry-After, delay)."""

    url: str
    bodies: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    port = free_port()
    rec = Recorder(f"http://127.0.0.1:{port}/hook")

    async def hook(request: web.Request) -> web.Response:
        rec.bodies.append(await request.read())
        rec.times.append(time.monotonic())
        rec.headers.append(dict(request.headers))
        status, headers = rec.script.pop(0) if rec.script else (200, {})
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "nope")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield rec
    await runner.cleanup()


@dataclass
class Notifiers:
    service: NotifierService
    receiver: str
    producer: AIOKafkaProducer
    bootstrap: str

    async def publish(self, **changes: Any) -> dict[str, Any]:
        data = notification().model_dump()
        data.update(receiver=self.receiver, idempotencyKey=uuid.uuid4().hex, **changes)
        value = encode("tocsin.notification/v1", "test", data)
        await self.producer.send_and_wait(notifications_topic(self.receiver), value, key=b"g")
        return data


@pytest.fixture
async def notifiers(
    kafka_bootstrap: str, recorder: Recorder, tmp_path: Path
) -> AsyncIterator[Notifiers]:
    receiver = f"r{uuid.uuid4().hex[:8]}"
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route: {{receiver: {receiver}}}
receivers:
  - name: {receiver}
    webhook_configs:
      - url: {recorder.url}
        http_config: {{authorization: {{credentials: tok-123}}}}
    slack_configs: [{{api_url: "http://127.0.0.1:1/slack", channel: "#x"}}]
"""
    )
    settings = load_settings(
        {
            "config.file": str(config),
            "notifiers.group_id": f"notifiers-{receiver}",
            "notifiers.deadline": 4,
            "router.redis_prefix": f"test:{receiver}:",
        }
    )
    factory = KafkaFactory(settings.kafka, kafka_bootstrap, embedded=True)
    await factory.ensure_topics([notifications_topic(receiver)])
    redis = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    service = NotifierService(settings, factory, redis, new_registry())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    await service.start()
    try:
        yield Notifiers(service, receiver, producer, kafka_bootstrap)
    finally:
        await service.stop()
        await producer.stop()
        async for key in redis.scan_iter(match=f"test:{receiver}:*"):
            await redis.delete(key)
        await redis.aclose()


async def until(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition never met"
        await asyncio.sleep(0.05)


async def read(
    bootstrap: str, topic: str, key: str, count: int, within: float = 10.0
) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(within):
            while len(found) < count:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found += [
                        orjson.loads(r.value)["data"] for r in records if r.key == key.encode()
                    ]
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return found


async def test_delivers_alertmanagers_bytes_with_auth(
    notifiers: Notifiers, recorder: Recorder
) -> None:
    sent = await notifiers.publish()
    await until(lambda: len(recorder.bodies) == 1)
    from schemas.group import Notification

    assert recorder.bodies[0] == webhook_payload(Notification.model_validate(sent))
    assert recorder.headers[0]["Authorization"] == "Bearer tok-123"
    assert recorder.headers[0]["User-Agent"] == "Alertmanager/0.25.0"
    receipts = await read(notifiers.bootstrap, "notifications.receipts", sent["idempotencyKey"], 1)
    assert [(r["status"], r["attempt"], r["code"]) for r in receipts] == [("delivered", 1, 200)]


async def test_5xx_and_429_are_retried_honouring_retry_after(
    notifiers: Notifiers, recorder: Recorder
) -> None:
    recorder.script = [(500, {}), (429, {"Retry-After": "1"}), (200, {})]
    sent = await notifiers.publish()
    await until(lambda: len(recorder.bodies) == 3)
    assert recorder.times[2] - recorder.times[1] >= 1.0  # Retry-After honoured
    receipts = await read(notifiers.bootstrap, "notifications.receipts", sent["idempotencyKey"], 3)
    assert [(r["status"], r["reason"]) for r in receipts] == [
        ("retrying", "server_error"),
        ("retrying", "rate_limited"),
        ("delivered", None),
    ]


async def test_4xx_is_dead_lettered_at_once_with_the_original(
    notifiers: Notifiers, recorder: Recorder
) -> None:
    recorder.script = [(400, {})]
    sent = await notifiers.publish()
    dead = await read(notifiers.bootstrap, "notifications.dlq", sent["idempotencyKey"], 1)
    assert len(recorder.bodies) == 1
    assert dead[0]["reason"] == "client_error"
    assert dead[0]["attempts"] == 1
    assert "unexpected status code 400" in dead[0]["error"]
    assert dead[0]["original"]["data"]["idempotencyKey"] == sent["idempotencyKey"]
    assert dead[0]["topic"] == notifications_topic(notifiers.receiver)


async def test_deadline_dead_letters_a_failing_endpoint(
    notifiers: Notifiers, recorder: Recorder
) -> None:
    recorder.script = [(503, {})] * 50
    sent = await notifiers.publish()
    dead = await read(
        notifiers.bootstrap, "notifications.dlq", sent["idempotencyKey"], 1, within=15
    )
    assert dead[0]["reason"] == "deadline"
    assert dead[0]["attempts"] >= 3


async def test_the_same_notification_twice_is_sent_once(
    notifiers: Notifiers, recorder: Recorder
) -> None:
    sent = await notifiers.publish()
    data = dict(sent)
    value = encode("tocsin.notification/v1", "test", data)  # a redelivered copy, same key
    await notifiers.producer.send_and_wait(notifications_topic(notifiers.receiver), value, key=b"g")
    receipts = await read(notifiers.bootstrap, "notifications.receipts", sent["idempotencyKey"], 2)
    assert sorted(r["status"] for r in receipts) == ["delivered", "duplicate"]
    assert len(recorder.bodies) == 1


async def test_unknown_integration_is_dead_lettered_not_dropped(notifiers: Notifiers) -> None:
    sent = await notifiers.publish(integration="slack[1]")  # not in the config
    dead = await read(notifiers.bootstrap, "notifications.dlq", sent["idempotencyKey"], 1)
    assert dead[0]["reason"] == "config"
    assert "slack[1]" in dead[0]["error"]
    assert "tok-123" not in dead[0]["error"]


async def test_dlq_list_and_redrive_deliver_after_the_fix(
    notifiers: Notifiers, recorder: Recorder
) -> None:
    """A 4xx dead-letters the notification; once the endpoint is fixed, a redrive delivers it."""
    import io

    from services.notifiers.dlq import dlq_list, dlq_redrive

    recorder.script = [(404, {})]
    sent = await notifiers.publish()
    await read(notifiers.bootstrap, "notifications.dlq", sent["idempotencyKey"], 1)
    factory = KafkaFactory(load_settings().kafka, notifiers.bootstrap, embedded=True)
    redis = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    prefix = f"test:{notifiers.receiver}:"
    try:
        out = io.StringIO()
        await dlq_list(factory, redis, prefix, out)
        ours = [line for line in out.getvalue().splitlines() if notifiers.receiver in line]
        assert len(ours) == 1
        assert "client_error" in ours[0]
        entry = ours[0].split()[0]
        assert await dlq_redrive(factory, redis, prefix, io.StringIO(), [entry]) == 1
        await until(lambda: len(recorder.bodies) == 2)  # delivered this time (200)
        assert await dlq_redrive(factory, redis, prefix, io.StringIO(), [entry]) == 0  # once only
    finally:
        await redis.aclose()


class _FailingConsumer:
    """Stands in for the Kafka consumer: polls and commits fail as after a rebalance."""

    def __init__(self, service: NotifierService) -> None:
        self.service = service
        self.polls = 0
        self.commits = 0

    async def getmany(self, **_: Any) -> dict[Any, Any]:
        self.polls += 1
        if self.polls == 1:
            from aiokafka.errors import KafkaConnectionError

            raise KafkaConnectionError("broker away")
        self.service._stopping.set()
        return {}

    async def commit(self, offsets: Any = None) -> None:
        from aiokafka.errors import CommitFailedError

        self.commits += 1
        raise CommitFailedError("partitions were reassigned")


async def test_poll_and_commit_failures_do_not_end_the_consume_loop(
    notifiers: Notifiers,
) -> None:
    from aiokafka import TopicPartition

    service = notifiers.service
    fake = _FailingConsumer(service)
    tp = TopicPartition("t", 0)
    service._offsets.begin(tp, 5)
    service._offsets.end(tp, 5)
    real, service._consumer = service._consumer, fake
    try:
        await service._commit()  # CommitFailedError: logged, not raised
        await service._consume(fake)
    finally:
        service._consumer = real
        service._stopping.clear()
    assert fake.commits >= 1  # the loop commits through the stand-in too
    assert fake.polls == 2  # polled again after the failed poll
