"""The services' process set-up: the garbage collector tuned once start-up is done."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from services.runtime.lifecycle import GC_THRESHOLDS, tune_gc


@pytest.fixture
def collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_start_up_objects_are_frozen_and_thresholds_raised(collector: None) -> None:
    built_at_start = [{"config": i} for i in range(1000)]
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() >= len(built_at_start)


def test_cyclic_garbage_is_still_collected(collector: None) -> None:
    tune_gc()

    class Node:
        pass

    node = Node()
    node.self = node  # type: ignore[attr-defined]
    ref = weakref.ref(node)
    del node
    assert ref() is not None  # a cycle: reference counting alone does not free it
    gc.collect(0)
    assert ref() is None
