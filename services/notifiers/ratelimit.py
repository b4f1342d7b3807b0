"""Per-receiver limits: a token bucket for the rate, a semaphore for sends in flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["ReceiverLimits"]


class _Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        async with self.lock:  # callers queue in order
            while True:
                now = time.monotonic()
                self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class ReceiverLimits:
    """`async with limits.slot(receiver)`: waits for a token and a free slot."""

    def __init__(self, rate: float, burst: int, concurrency: int) -> None:
        self._rate, self._burst, self._concurrency = rate, burst, concurrency
        self._buckets: dict[str, _Bucket] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def slot(self, receiver: str) -> AsyncIterator[None]:
        """Hold one of the receiver's slots, after its rate allowed one more send."""
        semaphore = self._slots.get(receiver)
        if semaphore is None:  # made once per receiver, not on every call
            semaphore = self._slots[receiver] = asyncio.Semaphore(self._concurrency)
        bucket = self._buckets.get(receiver)
        if bucket is None:
            bucket = self._buckets[receiver] = _Bucket(self._rate, self._burst)
        async with semaphore:
            await bucket.take()
            yield
