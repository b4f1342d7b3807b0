"""Redis clients made one way (redis.asyncio), from a URL or the embedded server's socket."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

__all__ = ["RedisClient", "connect", "pack_resp"]

RedisClient = aioredis.Redis


def pack_resp(args: Sequence[Any]) -> bytes | None:
    """A command as RESP bytes, as redis-py's `pack_command` writes it (a first argument
    holding spaces split into words; str as UTF-8, int in decimal); None when an argument is
    of another type (float, bool, memoryview...), which redis-py's own packer then handles."""
    first = args[0]
    if type(first) is str:
        head = first.encode().split()
    elif type(first) is bytes:
        head = first.split() if b" " in first else [first]
    else:
        return None
    out = [b"*%d\r\n" % (len(head) + len(args) - 1)]
    for word in head:
        out.append(b"$%d\r\n%s\r\n" % (len(word), word))
    for i in range(1, len(args)):
        arg = args[i]
        kind = type(arg)
        if kind is bytes:
            pass
        elif kind is str:
            arg = arg.encode()
        elif kind is int:
            arg = b"%d" % arg
        else:
            return None
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class _DirectPacking:
    """Connection mixin: commands packed by `pack_resp`.

    The router's and notifiers' script calls carry thousands of arguments (a batch's alerts,
    a page's groups); redis-py's packer spends about 0.45 us on each (its encoder, type
    checks, a growing buffer copied per argument), this one about 0.17 us."""

    def pack_command(self, *args: Any) -> list[bytes]:
        packed = pack_resp(args)
        if packed is None:
            return super().pack_command(*args)  # type: ignore[misc,no-any-return]
        return [packed]


_PACKING: dict[type, type] = {}


def _with_direct_packing(cls: type) -> type:
    if cls not in _PACKING:
        _PACKING[cls] = type(cls.__name__, (_DirectPacking, cls), {})
    return _PACKING[cls]


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
    # UTF-8 and strict errors (the defaults above) are what pack_resp assumes for str.
    pool.connection_class = _with_direct_packing(pool.connection_class)
    return aioredis.Redis(connection_pool=pool)
