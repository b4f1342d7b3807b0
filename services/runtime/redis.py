"""Redis clients made one way (redis.asyncio), from a URL or the embedded server's socket."""

from __future__ import annotations

import redis.asyncio as aioredis

__all__ = ["RedisClient", "connect"]

RedisClient = aioredis.Redis


def connect(url: str, *, name: str = "tocsin", max_connections: int = 64) -> RedisClient:
    """A pooled client for `url` (redis://, rediss:// or unix://); connects lazily.

    The pool blocks (up to 20 s) when all its connections are busy instead of failing with
    "Too many connections": hundreds of concurrent tasks share a bounded pool."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=20,
        client_name=name,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
        decode_responses=False,
    )
    return aioredis.Redis(connection_pool=pool)
