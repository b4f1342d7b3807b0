"""`redis.cache_flush`: UNLINK the keys matching the rule's patterns, measure what that freed.

Keys are found with SCAN MATCH/COUNT and unlinked in batches, so the server is never blocked
by a KEYS or a huge DEL; FLUSHDB runs only when asked for and allowed by the rule. An optional
temporary maxmemory-policy is recorded (target, previous value, deadline) in the state Redis and
reverted by `revert_due`, which the service calls periodically and which survives restarts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from schemas.remediation import ActionName, CacheFlushParams, CacheFlushResult
from services.remediation.clock import Clock
from services.remediation.safety import ActionRefused, RefusalReason

__all__ = ["PolicyReverts", "Reverted", "cache_flush"]

_log = structlog.get_logger("tocsin.remediation.redis_flush")


@dataclass(frozen=True)
class Reverted:
    """A maxmemory-policy put back (or left alone because someone changed it meanwhile)."""

    target: str
    policy: str
    reverted: bool


class PolicyReverts:
    """Pending maxmemory-policy reverts, kept in the state Redis (deadline per target)."""

    def __init__(
        self, state: aioredis.Redis, *, clock: Clock, prefix: str = "tocsin:remediation:"
    ) -> None:
        self._state = state
        self._clock = clock
        self._deadlines = f"{prefix}policy_revert:deadline"
        self._previous = f"{prefix}policy_revert:previous"
        self._applied = f"{prefix}policy_revert:applied"

    async def record(self, target: str, previous: str, applied: str, revert_after: float) -> float:
        """Remember to put `previous` back; a pending revert keeps its original previous value."""
        deadline = self._clock.now() + revert_after
        # One transaction: a crash between the writes must not leave a previous value without
        # its deadline (a change that is then never reverted).
        pipe = self._state.pipeline(transaction=True)
        pipe.hsetnx(self._previous, target, previous)
        pipe.hset(self._applied, target, applied)
        pipe.zadd(self._deadlines, {target: deadline})
        await pipe.execute()
        return deadline

    async def pending(self, target: str) -> str | None:
        """The value a pending revert will restore for `target`, if one is pending."""
        raw = await self._state.hget(self._previous, target)
        return None if raw is None else _text(raw)

    async def revert_due(self, targets: Mapping[str, aioredis.Redis]) -> list[Reverted]:
        """Put back every policy whose deadline has passed, unless it was changed meanwhile.

        A target that cannot be reached keeps its record, so a later call tries again.
        """
        due = await self._state.zrangebyscore(self._deadlines, "-inf", self._clock.now())
        done: list[Reverted] = []
        for raw in due:
            target = _text(raw) if isinstance(raw, bytes | str) else str(raw)
            client = targets.get(target)
            if client is None:
                continue  # the target left the policy; keep the record for an operator to see
            previous = await self._state.hget(self._previous, target)
            applied = await self._state.hget(self._applied, target)
            if previous is None:
                await self._state.zrem(self._deadlines, target)
                continue
            try:
                current = await _policy(client)
                ours = applied is not None and current == _text(applied)
                if ours:
                    await client.config_set("maxmemory-policy", _text(previous))
            except (RedisError, OSError) as exc:  # target away: keep the record, try again later
                _log.warning("policy_revert_failed", target=target, error=type(exc).__name__)
                continue
            async with self._state.pipeline(transaction=True) as pipe:
                pipe.zrem(self._deadlines, target)
                pipe.hdel(self._previous, target)
                pipe.hdel(self._applied, target)
                await pipe.execute()
            done.append(Reverted(target, _text(previous) if ours else current, ours))
        return done


async def cache_flush(
    client: aioredis.Redis,
    params: CacheFlushParams,
    *,
    target: str,
    reverts: PolicyReverts,
    flushdb: bool = False,
) -> CacheFlushResult:
    """Delete the matching keys (or FLUSHDB when asked and allowed) and report what was freed."""
    if flushdb and not params.allow_flushdb:
        raise ActionRefused(
            RefusalReason.NOT_ALLOWED, f"FLUSHDB on {target} is not allowed by the rule"
        )
    before = await _memory(client)
    policy_previous = policy_set = None
    revert_at = None
    if params.temporary_policy is not None:
        wanted = params.temporary_policy.policy
        current = await _policy(client)
        policy_previous = await reverts.pending(target) or current
        if current != wanted:
            await client.config_set("maxmemory-policy", wanted)
        policy_set = wanted
        revert_at = await reverts.record(
            target, current, wanted, params.temporary_policy.revert_after
        )
    if flushdb:
        deleted = int(await client.dbsize())
        await client.flushdb(asynchronous=True)
        sampled: list[int] = []
    else:
        deleted, sampled = await _unlink_matching(client, params)
    after = await _memory(client)
    return CacheFlushResult(
        action=ActionName.REDIS_CACHE_FLUSH,
        target=target,
        keys_deleted=deleted,
        flushdb=flushdb,
        bytes_freed=before.used - after.used,
        sampled_bytes_per_key=sum(sampled) / len(sampled) if sampled else None,
        used_memory_before=before.used,
        used_memory_after=after.used,
        maxmemory=before.maxmemory,
        memory_ratio_before=before.ratio,
        memory_ratio_after=after.ratio,
        policy_set=policy_set,
        policy_previous=policy_previous,
        policy_revert_at=revert_at,
    )


async def _unlink_matching(
    client: aioredis.Redis, params: CacheFlushParams
) -> tuple[int, list[int]]:
    deleted = 0
    sampled: list[int] = []
    for pattern in params.patterns:
        cursor = 0
        while deleted < params.max_keys:
            cursor, keys = await client.scan(cursor, match=pattern, count=params.batch_size)
            batch = keys[: params.max_keys - deleted]
            if batch:
                want = max(0, params.memory_samples - len(sampled))
                if want:
                    async with client.pipeline(transaction=False) as pipe:
                        for key in batch[:want]:
                            pipe.memory_usage(key)
                        sampled.extend(int(n) for n in await pipe.execute() if n is not None)
                deleted += int(await client.unlink(*batch))
            if cursor == 0:
                break
    return deleted, sampled


@dataclass(frozen=True)
class _Memory:
    used: int
    maxmemory: int

    @property
    def ratio(self) -> float | None:
        return self.used / self.maxmemory if self.maxmemory else None


async def _memory(client: aioredis.Redis) -> _Memory:
    info = await client.info("memory")
    return _Memory(used=int(info["used_memory"]), maxmemory=int(info.get("maxmemory", 0)))


async def _policy(client: aioredis.Redis) -> str:
    config = await client.config_get("maxmemory-policy")
    value = next(iter(config.values()), None)
    return "" if value is None else _text(value)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
