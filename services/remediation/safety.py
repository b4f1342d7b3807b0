"""The safety envelope around every remediation action.

In order, a run is refused when: the circuit is open (auto runs only), no concurrency slot is
free, another run holds the (action, target) lock, the (action, target) cooldown has not passed,
the alert is no longer firing, or an hourly limit trips (which also opens the circuit). Otherwise
the action runs under `asyncio.timeout`, and the outcome says done, failed or timed out.

Hourly limits are sliding windows: a Redis sorted set per target and one global, scored by the
start time (from the injected clock) of each run that passed every other check; a Lua script
trims, counts and adds atomically, so envelopes in several processes share the limits. Every
started run counts, whatever its outcome. Cooldown and circuit state live in Redis too.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from schemas.remediation import ActionName, ActionResult, GlobalLimits, RuleLimits
from services.remediation.clock import Clock

__all__ = [
    "ActionRefused",
    "CircuitState",
    "Done",
    "Envelope",
    "Failed",
    "Outcome",
    "RefusalReason",
    "Refused",
    "TimedOut",
]

_HOUR = 3600.0


class RefusalReason(enum.StrEnum):
    """Why a run did not start (bounded: usable as a metric label)."""

    CIRCUIT_OPEN = "circuit_open"
    BUSY = "busy"
    LOCKED = "locked"
    COOLDOWN = "cooldown"
    NOT_FIRING = "not_firing"
    RATE_LIMITED = "rate_limited"
    NOT_ALLOWED = "not_allowed"
    NEEDS_APP_AGENT = "needs_app_agent"


class ActionRefused(Exception):
    """Raised by an action that declines to act (e.g. FLUSHDB not allowed by the rule)."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Refused:
    """The action did not run (or declined before touching anything)."""

    reason: RefusalReason
    detail: str
    status: Literal["refused"] = "refused"
    scope: str = ""  # for RATE_LIMITED: the window that is full ("global", "target <name>")


@dataclass(frozen=True)
class Done:
    """The action ran to completion."""

    result: ActionResult
    status: Literal["done"] = "done"


@dataclass(frozen=True)
class Failed:
    """The action raised; `error` is the exception's type and message."""

    error: str
    status: Literal["failed"] = "failed"


@dataclass(frozen=True)
class TimedOut:
    """The action ran past its timeout and was cancelled."""

    timeout: float
    status: Literal["timed_out"] = "timed_out"


Outcome = Refused | Done | Failed | TimedOut


@dataclass(frozen=True)
class CircuitState:
    """An open circuit: why, and when (clock seconds) it opened."""

    reason: str
    opened_at: float


# Delete the lock only when it still holds our token (it may have expired and been retaken).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

# Open the circuit, keeping the first reason: both fields at once, so that no reader (another
# replica) ever sees a reason without its time, and no crash leaves one half written.
_OPEN = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    redis.call('HSET', KEYS[1], 'reason', ARGV[1], 'opened_at', ARGV[2])
    return 1
end
return 0
"""

# KEYS: window sorted sets; ARGV: now, window, member, then one limit per key.
# Returns 0 when counted in every window, else the 1-based index of the window that is full.
_COUNT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
        return i
    end
end
for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[3])
    redis.call('PEXPIRE', key, math.ceil(window * 1000))
end
return 0
"""


class Envelope:
    """Runs actions inside the locks, cooldowns, hourly limits, circuit breaker and timeouts."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        clock: Clock,
        limits: GlobalLimits,
        prefix: str = "tocsin:remediation:",
        lock_margin: float = 10.0,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._limits = limits
        self._prefix = prefix
        self._lock_margin = lock_margin
        self._slots = asyncio.Semaphore(limits.max_concurrent)
        self._release = redis.register_script(_RELEASE)
        self._count = redis.register_script(_COUNT)
        self._open = redis.register_script(_OPEN)

    def _key(self, *parts: str) -> str:
        return self._prefix + ":".join(parts)

    async def circuit(self) -> CircuitState | None:
        """The open circuit, or None when closed."""
        raw = await self._redis.hgetall(self._key("circuit"))
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return CircuitState(reason=fields["reason"], opened_at=float(fields["opened_at"]))

    async def open_circuit(self, reason: str) -> None:
        """Open the circuit (kept open, with the first reason, until `reset_circuit`)."""
        await self._open(keys=[self._key("circuit")], args=[reason, str(self._clock.now())])

    async def reset_circuit(self) -> None:
        """Close the circuit so that auto runs may start again."""
        await self._redis.delete(self._key("circuit"))

    async def run(
        self,
        *,
        action: ActionName,
        target: str,
        limits: RuleLimits,
        auto: bool,
        still_firing: Callable[[], Awaitable[bool]],
        act: Callable[[], Awaitable[ActionResult]],
    ) -> Outcome:
        """Run `act` for (action, target) if every check passes; never raises for the action."""
        if auto:
            state = await self.circuit()
            if state is not None:
                return Refused(RefusalReason.CIRCUIT_OPEN, f"circuit open: {state.reason}")
        if self._slots.locked():
            return Refused(RefusalReason.BUSY, "all remediation slots are in use")
        async with self._slots:
            return await self._locked(action, target, limits, still_firing, act)

    async def _locked(
        self,
        action: ActionName,
        target: str,
        limits: RuleLimits,
        still_firing: Callable[[], Awaitable[bool]],
        act: Callable[[], Awaitable[ActionResult]],
    ) -> Outcome:
        lock = self._key("lock", action.value, target)
        token = secrets.token_hex(16)
        ttl_ms = int((limits.timeout + self._lock_margin) * 1000)
        if not await self._redis.set(lock, token, nx=True, px=ttl_ms):
            return Refused(RefusalReason.LOCKED, f"{action.value} on {target} is already running")
        try:
            refusal = await self._admit(action, target, limits, still_firing, token)
            if refusal is not None:
                return refusal
            outcome = await self._act(limits.timeout, act)
            cooldown = self._key("cooldown", action.value, target)
            await self._redis.set(cooldown, str(self._clock.now()), px=int(limits.cooldown * 1000))
            return outcome
        finally:
            await self._release(keys=[lock], args=[token])

    async def _admit(
        self,
        action: ActionName,
        target: str,
        limits: RuleLimits,
        still_firing: Callable[[], Awaitable[bool]],
        token: str,
    ) -> Refused | None:
        last = await self._redis.get(self._key("cooldown", action.value, target))
        now = self._clock.now()
        if last is not None and now - float(last) < limits.cooldown:
            left = limits.cooldown - (now - float(last))
            return Refused(RefusalReason.COOLDOWN, f"{action.value} on {target}: {left:.0f}s left")
        if not await still_firing():
            return Refused(RefusalReason.NOT_FIRING, "alert no longer firing")
        windows = [
            (self._key("runs", target), limits.max_per_hour_per_target, f"target {target}"),
            (self._key("runs-global"), self._limits.max_per_hour, "global"),
        ]
        full = int(
            await self._count(
                keys=[key for key, _, _ in windows],
                args=[now, _HOUR, f"{now}:{token}", *(limit for _, limit, _ in windows)],
            )
        )
        if full:
            _, limit, scope = windows[full - 1]
            reason = f"max {limit} runs per hour reached ({scope})"
            await self.open_circuit(reason)
            return Refused(RefusalReason.RATE_LIMITED, reason, scope=scope)
        return None

    @staticmethod
    async def _act(seconds: float, act: Callable[[], Awaitable[ActionResult]]) -> Outcome:
        try:
            async with asyncio.timeout(seconds):
                return Done(await act())
        except TimeoutError:
            return TimedOut(seconds)
        except ActionRefused as exc:
            return Refused(exc.reason, exc.detail)
        except Exception as exc:  # noqa: BLE001 - the envelope is where failures become outcomes
            return Failed(f"{type(exc).__name__}: {exc}")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
