"""Silences in Redis, shared by every replica, with an in-memory copy for the hot path.

Writes go to one Redis hash and bump a version counter in the same transaction; each replica
reloads its copy when the version moved (one GET per flush pass), so a silence created through
any replica mutes on all of them within a poll interval.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from services.router.silences import Silence, Silencer, from_json, to_json
from services.runtime.redis import RedisClient

__all__ = ["SilenceStore"]


class SilenceStore:
    """The silences of the cluster, and a `mutes()` answered from memory."""

    def __init__(self, redis: RedisClient, prefix: str = "tocsin:") -> None:
        self._redis = redis
        self._hash = f"{prefix}silences"
        self._version_key = f"{prefix}silences:version"
        self._version: bytes | None = None
        self.silencer = Silencer()

    async def refresh(self) -> None:
        """Reload the copy if another replica (or this one) changed the silences."""
        raw = await self._redis.get(self._version_key)
        version = raw if isinstance(raw, bytes) else b"0"
        if version == self._version:
            return
        rows = await self._redis.hgetall(self._hash)
        self.silencer = Silencer(from_json(orjson.loads(v)) for v in rows.values())
        self._version = version

    def mutes(self, labels: Mapping[str, str], now_ns: int) -> list[str]:
        """Ids of the active silences matching `labels` (from the in-memory copy)."""
        return self.silencer.mutes(labels, now_ns)

    def all(self) -> dict[str, Silence]:
        """Every silence, by id, as of the last refresh."""
        return self.silencer.all()

    async def save(self, *silences: Silence) -> None:
        """Store (create or replace) silences in one transaction, then refresh the copy."""
        if not silences:
            return
        pipe = self._redis.pipeline(transaction=True)
        for silence in silences:
            pipe.hset(self._hash, silence.id, orjson.dumps(to_json(silence)))
        pipe.incr(self._version_key)
        await pipe.execute()
        await self.refresh()

    async def collect(self, now_ns: int) -> list[str]:
        """Delete silences expired longer than the retention (120 h, as Alertmanager)."""
        await self.refresh()
        gone = self.silencer.gc(now_ns)
        if gone:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hdel(self._hash, *gone)
            pipe.incr(self._version_key)
            await pipe.execute()
            await self.refresh()
        return gone
