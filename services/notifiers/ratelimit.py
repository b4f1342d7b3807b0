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

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self) -> None:
        if not self.lock.locked():  # nobody queued: take a token without queueing
            self._refill()
            if self.tokens >= 1:
                self.tokens -= 1
                return
        async with self.lock:  # callers queue in order
            while True:
                self._refill()
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


class ReceiverLimits:
    """`await acquire(receiver)` ... `release(receiver)` (or `async with slot(receiver)`): waits
    for a free slot of the receiver, then for a token of its rate."""

    def __init__(self, rate: float, burst: int, concurrency: int) -> None:
        self._rate, self._burst, self._concurrency = rate, burst, concurrency
        self._buckets: dict[str, _Bucket] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def acquire(self, receiver: str) -> None:
        """Hold one of the receiver's slots, after its rate allowed one more send."""
        semaphore = self._slots.get(receiver)
        if semaphore is None:  # made once per receiver
            semaphore = self._slots[receiver] = asyncio.Semaphore(self._concurrency)
        bucket = self._buckets.get(receiver)
        if bucket is None:
            bucket = self._buckets[receiver] = _Bucket(self._rate, self._burst)
        await semaphore.acquire()
        try:
            await bucket.take()
        except BaseException:
            semaphore.release()
            raise

    def release(self, receiver: str) -> None:
        """Give back the slot `acquire` took."""
        self._slots[receiver].release()

    @asynccontextmanager
    async def slot(self, receiver: str) -> AsyncIterator[None]:
        """`acquire` and `release` around a block."""
        await self.acquire(receiver)
        try:
            yield
        finally:
            self.release(receiver)
