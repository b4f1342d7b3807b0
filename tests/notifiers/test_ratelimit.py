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
