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
