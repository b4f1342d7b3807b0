"""`app.pool_resize` and `gpu.empty_cache`: performed inside the application by its agent.

`pool_resize` reads the pool's stats, sets a size bounded by the rule, and measures utilization
(active / max) again to verify the change. With `revert_after`, the previous size is recorded
(target, previous, applied, deadline) in the state Redis and restored by `AppReverts.revert_due`,
which the service calls periodically, which survives restarts, and which leaves the pool alone
when its size is no longer the one we set. `gpu_empty_cache` reports what the app's allocator
returned; an app without a GPU is a clean result (`gpu` False, "no GPU"), not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog

from schemas.remediation import (
    ActionName,
    GpuDeviceMemory,
    GpuEmptyCacheParams,
    GpuEmptyCacheResult,
    PoolResizeParams,
    PoolResizeResult,
)
from services.remediation.agent import AgentClient, AgentError
from services.remediation.clock import Clock

__all__ = ["AppReverts", "RevertedPool", "gpu_empty_cache", "pool_resize"]

_log = structlog.get_logger("tocsin.remediation.app_agent")


@dataclass(frozen=True)
class RevertedPool:
    """A pool size put back (or left alone, `reverted` False, because it changed meanwhile)."""

    target: str
    size: int
    reverted: bool


class AppReverts:
    """Pending pool-size reverts, kept in the state Redis (deadline per target)."""

    def __init__(
        self, state: aioredis.Redis, *, clock: Clock, prefix: str = "tocsin:remediation:"
    ) -> None:
        self._state = state
        self._clock = clock
        self._deadlines = f"{prefix}pool_revert:deadline"
        self._previous = f"{prefix}pool_revert:previous"
        self._applied = f"{prefix}pool_revert:applied"

    async def record(self, target: str, previous: int, applied: int, revert_after: float) -> float:
        """Remember to put `previous` back; a pending revert keeps its original previous size."""
        deadline = self._clock.now() + revert_after
        async with self._state.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self._previous, target, previous)
            pipe.hset(self._applied, target, applied)
            pipe.zadd(self._deadlines, {target: deadline})
            await pipe.execute()
        return deadline

    async def pending(self, target: str) -> int | None:
        """The size a pending revert will restore for `target`, if one is pending."""
        raw = await self._state.hget(self._previous, target)
        return None if raw is None else int(raw)

    async def revert_due(self, agents: Mapping[str, AgentClient]) -> list[RevertedPool]:
        """Restore every pool whose deadline has passed, unless its size changed meanwhile.

        An agent that cannot be reached keeps its record, so a later call tries again.
        """
        due = await self._state.zrangebyscore(self._deadlines, "-inf", self._clock.now())
        done: list[RevertedPool] = []
        for raw in due:
            target = raw.decode() if isinstance(raw, bytes) else str(raw)
            agent = agents.get(target)
            if agent is None:
                continue  # the target left the policy; keep the record for an operator to see
            previous = await self._state.hget(self._previous, target)
            applied = await self._state.hget(self._applied, target)
            if previous is None or applied is None:
                await self._forget(target)
                continue
            try:
                current = _int(await agent.pool_stats(), "max")
                ours = current == int(applied)
                if ours:
                    await agent.pool_resize(int(previous))
            except AgentError as exc:
                _log.warning("pool_revert_failed", target=target, error=str(exc))
                continue
            await self._forget(target)
            done.append(RevertedPool(target, int(previous) if ours else current, ours))
        return done

    async def _forget(self, target: str) -> None:
        async with self._state.pipeline(transaction=True) as pipe:
            pipe.zrem(self._deadlines, target)
            pipe.hdel(self._previous, target)
            pipe.hdel(self._applied, target)
            await pipe.execute()


async def pool_resize(
    agent: AgentClient, params: PoolResizeParams, *, target: str, reverts: AppReverts
) -> PoolResizeResult:
    """Set the pool size the rule computes from the current one; verify; schedule the revert."""
    before = await agent.pool_stats()
    current = _int(before, "max")
    new_size = params.new_size(current)
    changed = new_size != current
    if changed:
        answer = await agent.pool_resize(new_size)
        current = _int(answer, "previous_size")  # the size the app replaced, as it saw it
    after = await agent.pool_stats()
    if _int(after, "max") != new_size:
        raise AgentError(f"pool max is {_int(after, 'max')} after resizing to {new_size}")
    revert_at = revert_to = None
    if changed and params.revert_after is not None:
        revert_to = await reverts.pending(target) or current
        revert_at = await reverts.record(target, current, new_size, params.revert_after)
    return PoolResizeResult(
        action=ActionName.APP_POOL_RESIZE,
        target=target,
        previous_size=current,
        new_size=new_size,
        changed=changed,
        active_before=_int(before, "active"),
        active_after=_int(after, "active"),
        utilization_before=_utilization(before),
        utilization_after=_utilization(after),
        waiting_before=_int(before, "waiting"),
        waiting_after=_int(after, "waiting"),
        revert_at=revert_at,
        revert_to=revert_to,
    )


async def gpu_empty_cache(
    agent: AgentClient, params: GpuEmptyCacheParams, *, target: str
) -> GpuEmptyCacheResult:
    """Ask the app to empty its GPU cache and report the bytes each device gave back."""
    del params  # no parameters: the app's hook decides what its caches are
    answer = await agent.gpu_empty_cache()
    gpu = answer.get("gpu")
    if not isinstance(gpu, bool):
        raise AgentError("answer lacks a boolean 'gpu'")
    raw_devices = answer.get("devices", [])
    if not isinstance(raw_devices, list):
        raise AgentError("answer's 'devices' is not a list")
    devices = [
        GpuDeviceMemory(
            index=_int(d, "index"),
            allocated_before=_int(d, "allocated_before"),
            allocated_after=_int(d, "allocated_after"),
            reserved_before=_int(d, "reserved_before"),
            reserved_after=_int(d, "reserved_after"),
        )
        for d in raw_devices
    ]
    return GpuEmptyCacheResult(
        action=ActionName.GPU_EMPTY_CACHE,
        target=target,
        gpu=gpu,
        detail=str(answer.get("detail") or ("no GPU" if not gpu else "")),
        devices=devices,
        bytes_freed=sum(d.reserved_before - d.reserved_after for d in devices),
    )


def _int(answer: Any, key: str) -> int:
    value = answer.get(key) if isinstance(answer, Mapping) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AgentError(f"answer lacks a non-negative integer {key!r}")
    return value


def _utilization(stats: Mapping[str, Any]) -> float | None:
    size = _int(stats, "max")
    return _int(stats, "active") / size if size else None
