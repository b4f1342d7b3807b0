"""The Redis client Tocsin makes: commands packed directly, byte for byte as redis-py would."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection, UnixDomainSocketConnection

from services.runtime.redis import connect, pack_resp

_REFERENCE = Connection()  # redis-py's own packer (never connected)

argument = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=32),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.binary(min_size=6_000, max_size=9_000),  # beyond redis-py's chunking cut-off
)
command = st.one_of(
    st.sampled_from(["SET", "EVALSHA", "CLIENT SETNAME", b"SET", b"CONFIG  GET", "ZADD"]),
    st.text(min_size=1, max_size=12).filter(lambda s: s.split() != []),
)


@given(command, st.lists(argument, max_size=40))
def test_packing_equals_redis_py(name: str | bytes, args: list[Any]) -> None:
    packed = pack_resp([name, *args])
    assert packed == b"".join(_REFERENCE.pack_command(name, *args))


@pytest.mark.parametrize("odd", [1.5, True, memoryview(b"ab"), bytearray(b"x")])
def test_other_types_are_left_to_redis_py(odd: Any) -> None:
    assert pack_resp(["SET", "k", odd]) is None


async def test_clients_use_the_direct_packer_and_work() -> None:
    client = connect("redis://127.0.0.1:6379/0")
    key = f"test:redis:{uuid.uuid4().hex}"
    try:
        pool = client.connection_pool
        assert issubclass(pool.connection_class, Connection)
        assert "pack_resp" in pool.connection_class.pack_command.__code__.co_names
        many: dict[Any, Any] = {f"f{i}".encode(): str(i).encode() for i in range(3_000)}
        await client.hset(key, mapping=many)
        assert await client.hgetall(key) == many
        await client.set(key, 1.5)  # a float: redis-py's own packer
        assert await client.get(key) == b"1.5"
        script = client.register_script("return #ARGV")
        assert await script(keys=[key], args=list(range(5_000))) == 5_000
    finally:
        await client.delete(key)
        await client.aclose()
        await client.connection_pool.disconnect()


def test_unix_sockets_keep_their_connection_class() -> None:
    client = connect("unix:///tmp/tocsin-no-such.sock")
    assert issubclass(client.connection_pool.connection_class, UnixDomainSocketConnection)
