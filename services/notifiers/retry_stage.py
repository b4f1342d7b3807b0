"""Retry stage: the only place that waits. Exponential backoff with jitter, Retry-After honoured,
until the notification's deadline; integrations only classify their failures."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

from services.notifiers.errors import NotifyError, Reason
from services.notifiers.job import Job

__all__ = ["Attempt", "RetryStage"]

Attempt = Callable[[Job, int, float, NotifyError | None, int | None], Awaitable[None]]


class RetryStage:
    """Alertmanager's backoff (500 ms initial, x1.5, +-50 % jitter, 60 s cap), with a deadline."""

    def __init__(
        self,
        deadline: float,
        on_attempt: Attempt,
        *,
        initial: float = 0.5,
        multiplier: float = 1.5,
        max_interval: float = 60.0,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._deadline = deadline
        self._on_attempt = on_attempt
        self._initial = initial
        self._multiplier = multiplier
        self._max = max_interval
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._sleep = sleep

    def backoff(self, attempt: int) -> float:
        """The wait after the `attempt`-th failure (1-based), before jitter is applied."""
        return min(self._initial * self._multiplier ** (attempt - 1), self._max)

    async def run(self, job: Job) -> bool:
        """Send until success (True), a permanent failure or the deadline (False)."""
        give_up = time.monotonic() + self._deadline
        while True:
            job.attempts += 1
            started = time.perf_counter()
            try:
                code = await job.notifier.notify(job.notification)
            except NotifyError as exc:
                elapsed = time.perf_counter() - started
                job.last_error, job.last_reason = str(exc), exc.reason.value
                await self._on_attempt(job, job.attempts, elapsed, exc, exc.status)
                if not exc.retryable:
                    return False
                wait = self.backoff(job.attempts) * self._rng.uniform(0.5, 1.5)
                if exc.retry_after is not None:
                    wait = max(wait, exc.retry_after)
                if time.monotonic() + wait > give_up:
                    job.last_reason = job.last_reason or Reason.TIMEOUT.value
                    job.extra["deadline"] = True
                    return False
                await self._sleep(wait)
                continue
            await self._on_attempt(job, job.attempts, time.perf_counter() - started, None, code)
            return True
