"""Per-receiver limits: the token bucket spaces sends out, the semaphore caps them in flight."""

from __future__ import annotations

import asyncio
import time

from services.notifiers.ratelimit import ReceiverLimits


async def test_bucket_spaces_sends_after_the_burst() -> None:
    limits = ReceiverLimits(rate=10.0, burst=2, concurrency=100)
    stamps: list[float] = []

    async def send() -> None:
        async with limits.slot("team"):
            stamps.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(send() for _ in range(7)))
    # 2 at once from the burst, then one per 100 ms: the 7th about 0.5 s in.
    assert stamps[-1] - started >= 0.45
    assert stamps[1] - started < 0.05


async def test_receivers_do_not_share_a_bucket() -> None:
    limits = ReceiverLimits(rate=1.0, burst=1, concurrency=1)
    started = time.monotonic()
    async with limits.slot("a"):
        pass
    async with limits.slot("b"):
        pass
    assert time.monotonic() - started < 0.2


async def test_concurrency_caps_sends_in_flight() -> None:
    limits = ReceiverLimits(rate=1000.0, burst=1000, concurrency=3)
    in_flight = peak = 0

    async def send() -> None:
        nonlocal in_flight, peak
        async with limits.slot("team"):
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1

    await asyncio.gather(*(send() for _ in range(12)))
    assert peak == 3


async def test_a_cancelled_wait_for_a_token_gives_its_slot_back() -> None:
    limits = ReceiverLimits(rate=1.0, burst=1, concurrency=1)
    await limits.acquire("team")  # the only token and the only slot
    limits.release("team")
    waiting = asyncio.create_task(limits.acquire("team"))  # a slot, but no token for ~1 s
    await asyncio.sleep(0.05)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    # The slot is free again: a caller gets it as soon as the next token is due.
    started = time.monotonic()
    await asyncio.wait_for(limits.acquire("team"), 2)
    assert time.monotonic() - started < 1.1
    limits.release("team")


async def test_callers_queued_for_tokens_are_served_in_order() -> None:
    limits = ReceiverLimits(rate=20.0, burst=1, concurrency=100)
    order: list[int] = []

    async def send(n: int) -> None:
        await limits.acquire("team")
        order.append(n)
        limits.release("team")

    tasks = [asyncio.create_task(send(n)) for n in range(6)]
    await asyncio.gather(*tasks)
    assert order == list(range(6))
