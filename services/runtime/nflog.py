"""The notification log in Redis: per (group, receiver, integration) what was last notified.

One module for both sides: the router keeps a "published" log (what it put on a receiver's
topic, so it skips unchanged groups until repeat_interval, as Alertmanager's dedup stage), the
notifiers a "delivered" log (written after a successful send, checked before sending, so a
redelivered notification is not sent twice). Entries expire by themselves (Redis TTL).

`get_many`, `put` and `put_many` do the I/O; `redis_key`, `encode` and `decode` let a caller
fold the reads and writes of many entries into its own script or pipeline (the notifiers'
batches do).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson

from schemas.nflog import NflogEntry
from services.runtime.redis import RedisClient

__all__ = ["RedisNflog"]


class RedisNflog:
    """Entries under `<prefix><log>:<sha1 of the entry key>`, as compact JSON with a TTL."""

    def __init__(self, redis: RedisClient, log: str, prefix: str = "tocsin:nflog:") -> None:
        self._redis = redis
        self._prefix = f"{prefix}{log}:"
        self._put_many = redis.register_script(_PUT_MANY)

    def redis_key(self, key: str) -> str:
        """The Redis key holding the entry for `key`."""
        return self._prefix + hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()

    @staticmethod
    def encode(entry: NflogEntry) -> tuple[bytes, int]:
        """The stored value and its expiry (Unix milliseconds, for SET ... PXAT)."""
        return orjson.dumps(entry.to_json()), max(entry.expires_ns // 1_000_000, 1)

    @staticmethod
    def decode(value: bytes | str | None, now_ns: int) -> NflogEntry | None:
        """The entry a stored value holds; None when absent or expired."""
        if value is None:
            return None
        entry = NflogEntry.from_json(orjson.loads(value))
        return None if entry.expired(now_ns) else entry

    async def get_many(self, keys: Sequence[str], now_ns: int) -> dict[str, NflogEntry]:
        """The entries among `keys` that exist and have not expired."""
        if not keys:
            return {}
        values = await self._redis.mget([self.redis_key(k) for k in keys])
        found = {}
        for key, value in zip(keys, values, strict=True):
            entry = self.decode(value, now_ns)
            if entry is not None:
                found[key] = entry
        return found

    async def put(self, key: str, entry: NflogEntry) -> None:
        """Store `entry`, expiring when it does."""
        value, pxat = self.encode(entry)
        await self._redis.set(self.redis_key(key), value, pxat=pxat)

    async def put_many(self, entries: Sequence[tuple[str, NflogEntry]]) -> None:
        """Store many entries in one script call (one round trip), each expiring when it does.
        When it raises, any of them may or may not be stored."""
        if not entries:
            return
        keys: list[str] = []
        args: list[bytes | int] = []
        for key, entry in entries:
            value, pxat = self.encode(entry)
            keys.append(self.redis_key(key))
            args += [value, pxat]
        await self._put_many(keys=keys, args=args)


# SET KEYS[i] ARGV[2i-1] PXAT ARGV[2i] for every key (PXAT: Redis 6.2).
_PUT_MANY = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[2 * i - 1], 'PXAT', ARGV[2 * i])
end
return #KEYS
"""
