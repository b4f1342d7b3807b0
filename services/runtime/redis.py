"""Redis clients made one way (redis.asyncio), from a URL or the embedded server's socket."""

from __future__ import annotations

import redis.asyncio as aioredis

__all__ = ["RedisClient", "connect"]

RedisClient = aioredis.Redis


def connect(url: str, *, name: str = "tocsin") -> RedisClient:
    """A pooled client for `url` (redis://, rediss:// or unix://); connects lazily."""
    return aioredis.Redis.from_url(
        url,
        client_name=name,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
        decode_responses=False,
    )
