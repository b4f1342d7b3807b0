"""The safety envelope against the real Redis (db 14): locks, cooldowns, limits, circuit, timeout."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from schemas.remediation import (
    ActionName,
    ActionResult,
    CacheFlushResult,
    GlobalLimits,
    RuleLimits,
)
from services.remediation.safety import (
    Done,
    Envelope,
    Failed,
    Outcome,
    RefusalReason,
    Refused,
    TimedOut,
)
from tests.remediation.conftest import FakeClock

_FLUSH = ActionName.REDIS_CACHE_FLUSH
_LIMITS = RuleLimits(timeout=5, cooldown=60, max_per_hour_per_target=3)


def _result(target: str = "cache") -> CacheFlushResult:
    return CacheFlushResult(
        target=target,
        keys_deleted=1,
        bytes_freed=1,
        used_memory_before=2,
        used_memory_after=1,
        maxmemory=0,
    )


async def _firing() -> bool:
    return True


async def _quick() -> ActionResult:
    return _result()


@pytest.fixture
def envelope(redis_db: aioredis.Redis, clock: FakeClock) -> Envelope:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    return Envelope(
        redis_db, clock=clock, limits=GlobalLimits(max_per_hour=5, max_concurrent=4), prefix=prefix
    )


async def _run(
    envelope: Envelope,
    *,
    target: str = "cache",
    limits: RuleLimits = _LIMITS,
    auto: bool = True,
    act: object = None,
) -> Outcome:
    return await envelope.run(
        action=_FLUSH,
        target=target,
        limits=limits,
        auto=auto,
        still_firing=_firing,
        act=_quick if act is None else act,  # type: ignore[arg-type]
    )


async def test_done_carries_the_result(envelope: Envelope) -> None:
    outcome = await _run(envelope)
    assert outcome == Done(_result())


async def test_concurrent_runs_on_one_target_one_is_locked(envelope: Envelope) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> ActionResult:
        started.set()
        await release.wait()
        return _result()

    first = asyncio.create_task(_run(envelope, act=slow))
    await started.wait()
    second = await _run(envelope)
    release.set()
    assert isinstance(second, Refused)
    assert second.reason is RefusalReason.LOCKED
    assert isinstance(await first, Done)
    # another target is not held by that lock
    assert isinstance(await _run(envelope, target="other"), Done)


async def test_cooldown_refuses_until_it_has_passed(envelope: Envelope, clock: FakeClock) -> None:
    assert isinstance(await _run(envelope), Done)
    clock.advance(30)
    refused = await _run(envelope)
    assert isinstance(refused, Refused)
    assert refused.reason is RefusalReason.COOLDOWN
    assert "30s left" in refused.detail
    clock.advance(31)
    assert isinstance(await _run(envelope), Done)


async def test_max_per_hour_trips_the_circuit_until_reset(
    envelope: Envelope, clock: FakeClock
) -> None:
    first = clock.now()
    for _ in range(3):
        assert isinstance(await _run(envelope), Done)
        clock.advance(61)  # past the cooldown
    tripped = await _run(envelope)
    assert isinstance(tripped, Refused)
    assert tripped.reason is RefusalReason.RATE_LIMITED
    assert tripped.detail == "max 3 runs per hour reached (target cache)"

    state = await envelope.circuit()
    assert state is not None
    assert state.reason == tripped.detail
    # open circuit: every auto run is refused with the reason, on any target
    other = await _run(envelope, target="other")
    assert isinstance(other, Refused)
    assert other.reason is RefusalReason.CIRCUIT_OPEN
    assert tripped.detail in other.detail
    # an approved (non-auto) run on another target still passes
    assert isinstance(await _run(envelope, target="other", auto=False), Done)

    await envelope.reset_circuit()
    assert await envelope.circuit() is None
    clock.advance(61)  # past the cooldown of `other`
    assert isinstance(await _run(envelope, target="other"), Done)
    # the sliding window still holds the three runs on `cache` until an hour after the first
    still = await _run(envelope)
    assert isinstance(still, Refused)
    assert still.reason is RefusalReason.RATE_LIMITED
    await envelope.reset_circuit()
    clock.advance(first + 3600 - clock.now())
    assert isinstance(await _run(envelope), Done)


async def test_global_limit_counts_every_target(envelope: Envelope) -> None:
    for i in range(5):
        assert isinstance(await _run(envelope, target=f"t{i}"), Done)
    tripped = await _run(envelope, target="t9")
    assert isinstance(tripped, Refused)
    assert tripped.detail == "max 5 runs per hour reached (global)"


async def test_timeout_cancels_the_action_and_releases_the_lock(
    envelope: Envelope, clock: FakeClock
) -> None:
    cancelled = asyncio.Event()

    async def stuck() -> ActionResult:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return _result()

    limits = RuleLimits(timeout=0.2, cooldown=1, max_per_hour_per_target=10)
    outcome = await _run(envelope, limits=limits, act=stuck)
    assert outcome == TimedOut(0.2)
    assert cancelled.is_set()
    clock.advance(2)
    assert isinstance(await _run(envelope, limits=limits), Done)  # the lock was released


async def test_alert_no_longer_firing_is_refused(envelope: Envelope) -> None:
    ran = False

    async def resolved() -> bool:
        return False

    async def act() -> ActionResult:
        nonlocal ran
        ran = True
        return _result()

    outcome = await envelope.run(
        action=_FLUSH, target="cache", limits=_LIMITS, auto=True, still_firing=resolved, act=act
    )
    assert outcome == Refused(RefusalReason.NOT_FIRING, "alert no longer firing")
    assert not ran


async def test_a_raising_action_is_failed(envelope: Envelope) -> None:
    async def broken() -> ActionResult:
        raise ConnectionError("target down")

    assert await _run(envelope, act=broken) == Failed("ConnectionError: target down")


async def test_no_free_slot_is_busy(redis_db: aioredis.Redis, clock: FakeClock) -> None:
    envelope = Envelope(
        redis_db, clock=clock, limits=GlobalLimits(max_concurrent=1), prefix="test:busy:"
    )
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow() -> ActionResult:
        started.set()
        await release.wait()
        return _result()

    first = asyncio.create_task(_run(envelope, act=slow))
    await started.wait()
    busy = await _run(envelope, target="other")
    release.set()
    assert isinstance(busy, Refused)
    assert busy.reason is RefusalReason.BUSY
    assert isinstance(await first, Done)


async def test_circuit_is_opened_in_one_step(
    envelope: Envelope, redis_db: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a crash (or a reader in another replica) between two writes must never see a reason
    # without its time: circuit() would fail on every call after that
    async def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("gone between the two writes")

    monkeypatch.setattr(redis_db, "hset", broken)
    await envelope.open_circuit("max 5 runs per hour reached (global)")
    state = await envelope.circuit()
    assert state is not None
    assert state.reason == "max 5 runs per hour reached (global)"
    await envelope.open_circuit("a later reason")  # the first reason is kept
    assert (await envelope.circuit()) == state
