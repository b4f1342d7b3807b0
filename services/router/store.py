"""The router's durable state in Redis: alerts, groups and their schedule, leases, inhibition index.

Every replica of the router shares this state; Kafka partitions split the alerts between
replicas, a lease per group decides which replica flushes it. Keys (all under one prefix):

    a:<fp>          alert (compact JSON), expiring some time after the alert ends
    g:<gid>         group: key, route path, labels, timer state (hash)
    m:<gid>         the group's alert fingerprints (set)
    empty           groups that may have become empty, checked by the 30 s collection (set)
    sched           next tick of every group (sorted set, score = ms since the epoch)
    l:<gid>         flush lease (string, owner id, with a TTL)
    i:<rule>:<h>    fingerprints of inhibition sources of a rule, by their `equal` values (set)
    d:<hash>        a decision already announced (string with a TTL)

Values are bytes; the dispatcher converts them. Reads and writes are pipelined per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from services.runtime.redis import RedisClient

__all__ = ["GroupRecord", "RouterStore"]

# Resolved alerts stay this long after their end, for the API and late flushes (Alertmanager
# garbage-collects resolved alerts every 30 minutes).
_ALERT_RETENTION_MS = 60 * 60 * 1000


@dataclass
class GroupRecord:
    """An aggregation group as stored: identity, route, labels and timer state."""

    gid: str
    group_key: str
    route_path: str
    labels: dict[str, str]
    created_ns: int
    flushed: bool
    next_tick_ns: int

    def to_redis(self) -> dict[str, bytes]:
        """The hash fields."""
        return {
            "k": self.group_key.encode(),
            "r": self.route_path.encode(),
            "l": orjson.dumps(self.labels),
            "c": str(self.created_ns).encode(),
            "f": b"1" if self.flushed else b"0",
            "t": str(self.next_tick_ns).encode(),
        }

    @classmethod
    def from_redis(cls, gid: str, fields: Mapping[bytes, bytes]) -> GroupRecord | None:
        """A record from its hash fields, None when the hash is gone."""
        if not fields:
            return None
        return cls(
            gid=gid,
            group_key=fields[b"k"].decode(),
            route_path=fields[b"r"].decode(),
            labels=orjson.loads(fields[b"l"]),
            created_ns=int(fields[b"c"]),
            flushed=fields.get(b"f") == b"1",
            next_tick_ns=int(fields[b"t"]),
        )


class RouterStore:
    """Typed access to the router's Redis keys."""

    def __init__(self, redis: RedisClient, prefix: str = "tocsin:router:") -> None:
        self.redis = redis
        self._p = prefix
        self._sched = f"{prefix}sched"
        # EVALSHA, loaded into Redis on first use (also inside pipelines) by redis-py.
        self._ensure_group = redis.register_script(_ENSURE_GROUP)

    def _alert_key(self, fp: str) -> str:
        return f"{self._p}a:{fp}"

    # -- alerts -----------------------------------------------------------------------------

    async def get_alerts(self, fps: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored alerts among `fps` (absent ones are left out)."""
        if not fps:
            return {}
        values = await self.redis.mget([self._alert_key(fp) for fp in fps])
        return {fp: orjson.loads(v) for fp, v in zip(fps, values, strict=True) if v is not None}

    async def scan_alerts(self, count: int = 1000) -> list[dict[str, Any]]:
        """Every stored alert (for the API); SCAN in pages, no blocking KEYS."""
        found: list[dict[str, Any]] = []
        keys: list[bytes] = []
        async for key in self.redis.scan_iter(match=f"{self._p}a:*", count=count):
            keys.append(key)
            if len(keys) >= count:
                found += [orjson.loads(v) for v in await self.redis.mget(keys) if v is not None]
                keys = []
        if keys:
            found += [orjson.loads(v) for v in await self.redis.mget(keys) if v is not None]
        return found

    # -- one batch of received alerts -------------------------------------------------------

    async def get_groups(self, gids: Sequence[str]) -> dict[str, GroupRecord]:
        """The stored groups among `gids`."""
        if not gids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for gid in gids:
            pipe.hgetall(f"{self._p}g:{gid}")
        found = {}
        for gid, fields in zip(gids, await pipe.execute(), strict=True):
            record = GroupRecord.from_redis(gid, fields)
            if record is not None:
                found[gid] = record
        return found

    async def write_batch(
        self,
        alerts: Mapping[str, tuple[dict[str, Any], int]],
        groups: Iterable[GroupRecord],
        members: Mapping[str, set[str]],
        early: Mapping[str, int],
        inhibition_sources: Mapping[str, set[str]],
    ) -> None:
        """Write one consumed batch: alerts (json, expire-at ms), the groups they joined (created
        if missing), memberships, early flushes (a tick moved earlier, never later) and
        inhibition sources. One MULTI/EXEC, so the empty-group collector never sees a group
        between its creation and its first member."""
        pipe = self.redis.pipeline(transaction=True)
        latest = 0
        for fp, (data, expire_at_ms) in alerts.items():
            pipe.set(
                self._alert_key(fp), orjson.dumps(data), pxat=expire_at_ms + _ALERT_RETENTION_MS
            )
            latest = max(latest, expire_at_ms + _ALERT_RETENTION_MS)
        for group in groups:
            # One script per group: created with all its fields only if missing (a concurrent
            # creator, or the collector having just removed it), scheduled only if unscheduled.
            fields = [item for pair in group.to_redis().items() for item in pair]
            await self._ensure_group(
                keys=[f"{self._p}g:{group.gid}", self._sched],
                args=[group.gid, group.next_tick_ns // 1_000_000, *fields],
                client=pipe,
            )
        for gid, fps in members.items():
            pipe.sadd(f"{self._p}m:{gid}", *fps)
        for gid, tick_ns in early.items():
            pipe.zadd(self._sched, {gid: tick_ns // 1_000_000}, lt=True)
        for key, fps in inhibition_sources.items():
            index = f"{self._p}i:{key}"
            pipe.sadd(index, *fps)
            # The index lives as long as its longest-lived source; members whose alert expired
            # are dropped when a flush finds them gone.
            pipe.pexpireat(index, latest, nx=True)
            pipe.pexpireat(index, latest, gt=True)
        await pipe.execute()

    # -- flushing ---------------------------------------------------------------------------

    async def due_groups(
        self, now_ns: int, limit: int = 256, offset: int = 0
    ) -> list[tuple[str, int]]:
        """Groups whose next tick is due, earliest first, with that tick (ns)."""
        rows = cast(
            "list[tuple[bytes, float]]",
            await self.redis.zrangebyscore(
                self._sched, "-inf", now_ns // 1_000_000, start=offset, num=limit, withscores=True
            ),
        )
        return [(gid.decode(), int(score) * 1_000_000) for gid, score in rows]

    async def next_due_ns(self) -> int | None:
        """When the earliest group is due, or None without groups."""
        rows = cast(
            "list[tuple[bytes, float]]", await self.redis.zrange(self._sched, 0, 0, withscores=True)
        )
        return int(rows[0][1]) * 1_000_000 if rows else None

    async def acquire_lease(self, gid: str, owner: str, ttl_ms: int) -> bool:
        """Claim the flush of `gid` for `ttl_ms` unless another replica holds it."""
        return bool(await self.redis.set(f"{self._p}l:{gid}", owner, nx=True, px=ttl_ms))

    async def release_lease(self, gid: str, owner: str) -> None:
        """Give the lease back if still ours (compare-and-delete)."""
        await self.redis.eval(_RELEASE, 1, f"{self._p}l:{gid}", owner)

    async def load_group(self, gid: str) -> tuple[GroupRecord | None, list[str]]:
        """The group and its member fingerprints."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(f"{self._p}g:{gid}")
        pipe.smembers(f"{self._p}m:{gid}")
        fields, fps = await pipe.execute()
        return GroupRecord.from_redis(gid, fields), sorted(fp.decode() for fp in fps)

    async def finish_flush(
        self, gid: str, remove: Iterable[str], next_tick_ns: int, expected_tick_ns: int
    ) -> None:
        """After a successful flush: drop `remove` from the group, mark it flushed, move its tick.

        The tick moves only if nobody moved it meanwhile (an early flush then wins)."""
        removed = list(remove)
        pipe = self.redis.pipeline(transaction=False)
        if removed:
            pipe.srem(f"{self._p}m:{gid}", *removed)
        pipe.hset(f"{self._p}g:{gid}", mapping={"f": b"1", "t": str(next_tick_ns).encode()})
        pipe.eval(
            _MOVE_TICK,
            1,
            self._sched,
            gid,
            expected_tick_ns // 1_000_000,
            next_tick_ns // 1_000_000,
        )
        await pipe.execute()

    async def delete_group(self, gid: str) -> None:
        """Remove a group outright (its route left the config)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(self._sched, gid)
        pipe.delete(f"{self._p}g:{gid}", f"{self._p}m:{gid}")
        pipe.srem(f"{self._p}empty", gid)
        await pipe.execute()

    async def maybe_empty(self, gid: str) -> None:
        """Note a group that may have no alerts left, for the next collection."""
        await self.redis.sadd(f"{self._p}empty", gid)

    async def collect_empty(self) -> int:
        """Delete the noted groups that are still empty (Alertmanager's 30 s group GC)."""
        gids = await self.redis.smembers(f"{self._p}empty")
        removed = 0
        for raw in gids:
            gid = raw.decode() if isinstance(raw, bytes) else str(raw)
            removed += int(
                await self.redis.eval(
                    _COLLECT,
                    4,
                    f"{self._p}m:{gid}",
                    f"{self._p}g:{gid}",
                    self._sched,
                    f"{self._p}empty",
                    gid,
                )
            )
        return removed

    async def forget_members(self, gid: str, fps: Iterable[str]) -> None:
        """Drop members whose alert expired from the store."""
        gone = list(fps)
        if gone:
            await self.redis.srem(f"{self._p}m:{gid}", *gone)

    async def forget_sources(self, gone: Mapping[str, Iterable[str]]) -> None:
        """Drop index members whose alert has expired."""
        pipe = self.redis.pipeline(transaction=False)
        for key, fps in gone.items():
            members = list(fps)
            if members:
                pipe.srem(f"{self._p}i:{key}", *members)
        await pipe.execute()

    async def inhibition_sources(self, keys: Sequence[str]) -> dict[str, list[str]]:
        """Source fingerprints for each index key."""
        if not keys:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.smembers(f"{self._p}i:{key}")
        rows = await pipe.execute()
        return {k: sorted(m.decode() for m in row) for k, row in zip(keys, rows, strict=True)}

    async def announce_once(self, digest: str, ttl_ms: int) -> bool:
        """True the first time `digest` is seen within `ttl_ms` (decision de-duplication)."""
        return bool(await self.redis.set(f"{self._p}d:{digest}", b"1", nx=True, px=ttl_ms))


# Create a group's hash (every field) and schedule only when it does not exist yet.
_ENSURE_GROUP = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
end
redis.call('ZADD', KEYS[2], 'NX', ARGV[2], ARGV[1])
return 1
"""
# Delete a group if it has no member, atomically with respect to a batch adding one.
_COLLECT = """
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('SCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 1
end
return 0
"""
# Delete the lease only if we still own it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Move a group's tick from the flushed one to the next, unless an early flush moved it meanwhile.
_MOVE_TICK = """
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  return redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
end
return 0
"""
