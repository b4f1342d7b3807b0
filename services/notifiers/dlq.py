"""`tocsin dlq list|redrive`: look at dead-lettered notifications and put them back.

A redrive publishes the original message again on the topic it came from; the notifiers then
deliver it like any other (its claim was released when it was dead-lettered). Redriven entries
are remembered in Redis so that a second redrive does not send them twice.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.topics import DLQ
from services.runtime.kafka import KafkaFactory
from services.runtime.redis import RedisClient, connect
from services.runtime.settings import Settings

__all__ = ["dlq_list", "dlq_redrive", "read_dead_letters", "run_command"]


async def read_dead_letters(factory: KafkaFactory) -> list[tuple[str, dict[str, Any]]]:
    """Every message on the dead-letter topic, oldest first, as (entry id, dead letter)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=factory.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        await consumer.topics()  # fetches the cluster's metadata
        partitions = consumer.partitions_for_topic(DLQ.name) or set()
        tps = [TopicPartition(DLQ.name, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: list[tuple[int, str, dict[str, Any]]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    found.append(
                        (r.timestamp, f"{r.partition}-{r.offset}", orjson.loads(r.value)["data"])
                    )
        found.sort(key=lambda item: item[0])
        return [(entry, letter) for _, entry, letter in found]
    finally:
        await consumer.stop()


async def dlq_list(
    factory: KafkaFactory, redis: RedisClient, prefix: str, out: TextIO, limit: int = 100
) -> int:
    """Print the dead letters (newest last); returns how many there are."""
    letters = await read_dead_letters(factory)
    redriven = await redis.smembers(f"{prefix}dlq:redriven")
    header = ("ENTRY", "FAILED AT", "RECEIVER/INTEGRATION", "REASON", "ATTEMPTS", "REDRIVEN")
    print(f"{header[0]:<10} {header[1]:<31} {header[2]:<29} {header[3]:<13} {header[4]:<9} "
          f"{header[5]:<9} GROUP", file=out)  # fmt: skip
    for entry, letter in letters[-limit:]:
        data = letter["original"].get("data", {})
        where = f"{data.get('receiver', '?')}/{data.get('integration', '?')}"
        print(
            f"{entry:<10} {letter['failedAt']:<31} {where:<29} {letter['reason']:<13} "
            f"{letter['attempts']:<9} {'yes' if entry.encode() in redriven else 'no':<9} "
            f"{data.get('groupKey', '')}",
            file=out,
        )
    return len(letters)


async def dlq_redrive(
    factory: KafkaFactory,
    redis: RedisClient,
    prefix: str,
    out: TextIO,
    entries: Sequence[str] = (),
    reason: str | None = None,
) -> int:
    """Publish dead letters back to their topics (the given entries, or all not yet redriven)."""
    letters = await read_dead_letters(factory)
    key = f"{prefix}dlq:redriven"
    producer = factory.producer("dlq")
    await producer.start()
    count = 0
    try:
        for entry, letter in letters:
            if entries and entry not in entries:
                continue
            if reason is not None and letter["reason"] != reason:
                continue
            if not await redis.sadd(key, entry):
                continue  # redriven before
            original = letter["original"]
            keyed = str(original.get("data", {}).get("groupKey", "")).encode()
            await producer.send_and_wait(letter["topic"], orjson.dumps(original), key=keyed)
            count += 1
            print(f"redriven {entry} -> {letter['topic']}", file=out)
    finally:
        await producer.stop()
    print(f"{count} notification(s) redriven", file=out)
    return count


async def run_command(settings: Settings, command: str, **options: Any) -> int:
    """`tocsin dlq list|redrive` against the cluster the settings name."""
    if settings.kafka.bootstrap_servers is None or settings.redis.url is None:
        print(
            "tocsin: error: dlq needs the cluster's Kafka and Redis "
            "(--kafka.bootstrap-servers, --redis.url)",
            file=sys.stderr,
        )
        return 2
    factory = KafkaFactory(settings.kafka, settings.kafka.bootstrap_servers, embedded=False)
    prefix = settings.router.redis_prefix
    redis = connect(settings.redis.url.get_secret_value(), name="tocsin-dlq")
    try:
        if command == "list":
            await dlq_list(factory, redis, prefix, sys.stdout, options.get("limit", 100))
        else:
            entries = options.get("entries", ())
            await dlq_redrive(factory, redis, prefix, sys.stdout, entries, options.get("reason"))
    finally:
        await redis.aclose()
    return 0
