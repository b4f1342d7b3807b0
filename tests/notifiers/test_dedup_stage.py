"""The dedup stage on real Redis: a claim held by another worker is waited on, never taken as sent."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from services.notifiers.dedup_stage import DedupStage
from services.notifiers.job import Job
from services.runtime.nflog import RedisNflog
from tests.notifiers.test_webhook import notification


class _Never:
    async def notify(self, notification: object) -> int:
        raise AssertionError("not sent in these tests")


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    yield client
    await client.aclose()


def job() -> Job:
    n = notification().model_copy(update={"idempotencyKey": uuid.uuid4().hex})
    return Job(n, "notifications.hook", {}, _Never(), time.time_ns())


async def test_a_dead_workers_claim_is_waited_out_then_sent(redis: aioredis.Redis) -> None:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    stage = DedupStage(redis, RedisNflog(redis, "delivered", prefix=prefix), 0.6, prefix)
    mine = job()
    # Another worker claimed it and died before sending: its claim runs for 0.6 s.
    await redis.set(stage._claim_key(mine), b"someone-else", px=600)
    started = time.monotonic()
    assert await stage.admit(mine, time.time_ns()) is True
    assert time.monotonic() - started >= 0.4


async def test_a_claim_marked_sent_meanwhile_is_a_duplicate(redis: aioredis.Redis) -> None:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    stage = DedupStage(redis, RedisNflog(redis, "delivered", prefix=prefix), 5, prefix)
    mine = job()
    key = stage._claim_key(mine)
    await redis.set(key, b"someone-else", px=5000)

    async def other_worker_finishes() -> None:
        await asyncio.sleep(0.3)
        await redis.set(key, b"sent", px=5000)

    finisher = asyncio.create_task(other_worker_finishes())
    assert await stage.admit(mine, time.time_ns()) is False
    await finisher
    assert mine.outcome == "duplicate"


async def test_our_own_claim_from_a_failed_attempt_is_ours(redis: aioredis.Redis) -> None:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    stage = DedupStage(redis, RedisNflog(redis, "delivered", prefix=prefix), 30, prefix)
    first = job()
    first.extra["claim"] = "token-1"
    assert await stage.admit(first, time.time_ns()) is True
    retry = Job(first.notification, first.topic, {}, _Never(), time.time_ns())
    retry.extra["claim"] = "token-1"  # the same message retried after, e.g., a Redis hiccup
    started = time.monotonic()
    assert await stage.admit(retry, time.time_ns()) is True
    assert time.monotonic() - started < 0.5


async def test_a_batch_is_admitted_in_one_call_as_one_at_a_time_would(
    redis: aioredis.Redis,
) -> None:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    stage = DedupStage(redis, RedisNflog(redis, "delivered", prefix=prefix), 30, prefix)
    now = time.time_ns()
    fresh, sent, held, ours, logged = (job() for _ in range(5))
    for i, j in enumerate((fresh, sent, held, ours, logged)):
        update = {"firingHashes": ["1", "2"], "groupKey": f'{{}}:{{n="{i}"}}'}
        j.notification = j.notification.model_copy(update=update)
    await redis.set(stage._claim_key(sent), b"sent", px=30_000)
    await redis.set(stage._claim_key(held), b"someone-else", px=30_000)
    ours.extra["claim"] = "token-1"
    await redis.set(stage._claim_key(ours), b"token-1", px=30_000)
    await stage.delivered(logged, now)  # delivered before, by a worker that then died...
    await redis.delete(stage._claim_key(logged))  # ...and whose "sent" mark expired
    decisions = await stage.admit_many([fresh, sent, held, ours, logged], now)
    assert decisions == [True, False, None, True, False]
    assert (sent.outcome, logged.outcome) == ("duplicate", "deduplicated")
    assert await redis.get(stage._claim_key(fresh)) == fresh.extra["claim"].encode()
    assert await redis.get(stage._claim_key(held)) == b"someone-else"  # left to `admit`
    assert await redis.get(stage._claim_key(logged)) == b"sent"
    # Delivered together: each caller's log entry and mark are written when its await returns.
    await asyncio.gather(stage.delivered(fresh, now), stage.delivered(ours, now))
    again = [Job(j.notification, j.topic, {}, _Never(), now) for j in (fresh, ours)]
    assert await stage.admit_many(again, now) == [False, False]
    assert [j.outcome for j in again] == ["duplicate", "duplicate"]
