"""Kafka's default partitioning of keyed messages: murmur2(key) made positive, mod partitions.

The same partition a Java or aiokafka producer would choose for the key, so per-key order holds
whoever produces. The C build of murmur2 is used when present.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from aiokafka.partitioner import murmur2 as murmur2_py

__all__ = ["KafkaPartitioner", "murmur2", "murmur2_py", "partition_for"]

murmur2: Callable[[bytes], int]
try:
    from services.runtime._murmur2 import murmur2
except ImportError:  # pragma: no cover - no compiler at install time
    murmur2 = murmur2_py


def partition_for(key: bytes, partitions: int) -> int:
    """The index (into the sorted partition ids) Kafka's default partitioner picks for `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class KafkaPartitioner:
    """aiokafka's DefaultPartitioner on the C murmur2: the same choices, without the pure-Python
    hash (a quarter of a router's flush CPU went to aiokafka's own murmur2)."""

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        """The partition for `key`; a random available one for a message without a key."""
        if key is None:
            return random.choice(available or all_partitions)  # noqa: S311 - spreading, not security
        return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]
