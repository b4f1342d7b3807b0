"""Verification: did the condition an action addressed get better, by its own before/after figures.

Each action re-measures what its alert is about after acting (Redis memory, matching sessions,
pool utilization, GPU reserved memory) and reports both figures in its result; this module
reads them and decides `improved`, keeping the figures for the audit record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.remediation import (
    ActionResult,
    CacheFlushResult,
    GpuEmptyCacheResult,
    PoolResizeResult,
    TerminateIdleResult,
)

__all__ = ["Verification", "verify"]


@dataclass(frozen=True)
class Verification:
    """Whether the re-measured condition improved, and the figures that say so."""

    improved: bool
    measure: str
    before: float | None
    after: float | None
    figures: dict[str, Any]

    def detail(self) -> dict[str, Any]:
        """The audit record's detail."""
        return {
            "improved": self.improved,
            "measure": self.measure,
            "before": self.before,
            "after": self.after,
            "figures": self.figures,
        }


def verify(result: ActionResult) -> Verification:
    """The verification of one action's result."""
    if isinstance(result, CacheFlushResult):
        return _cache_flush(result)
    if isinstance(result, TerminateIdleResult):
        before = len(result.terminated) + result.remaining
        return Verification(
            improved=result.remaining < before,
            measure="matching_sessions",
            before=before,
            after=result.remaining,
            figures={"terminated": len(result.terminated), "remaining": result.remaining},
        )
    if isinstance(result, PoolResizeResult):
        return _pool_resize(result)
    return _gpu(result)


def _cache_flush(result: CacheFlushResult) -> Verification:
    figures = {
        "keys_deleted": result.keys_deleted,
        "bytes_freed": result.bytes_freed,
        "used_memory_before": result.used_memory_before,
        "used_memory_after": result.used_memory_after,
        "maxmemory": result.maxmemory,
        "memory_ratio_before": result.memory_ratio_before,
        "memory_ratio_after": result.memory_ratio_after,
    }
    before, after = result.memory_ratio_before, result.memory_ratio_after
    if before is not None and after is not None:
        return Verification(after < before, "memory_ratio", before, after, figures)
    used_before, used_after = result.used_memory_before, result.used_memory_after
    return Verification(used_after < used_before, "used_memory", used_before, used_after, figures)


def _pool_resize(result: PoolResizeResult) -> Verification:
    figures = {
        "previous_size": result.previous_size,
        "new_size": result.new_size,
        "active_before": result.active_before,
        "active_after": result.active_after,
        "waiting_before": result.waiting_before,
        "waiting_after": result.waiting_after,
        "utilization_before": result.utilization_before,
        "utilization_after": result.utilization_after,
    }
    before, after = result.utilization_before, result.utilization_after
    if before is not None and after is not None:
        return Verification(after < before, "pool_utilization", before, after, figures)
    return Verification(
        result.waiting_after < result.waiting_before,
        "pool_waiting",
        result.waiting_before,
        result.waiting_after,
        figures,
    )


def _gpu(result: GpuEmptyCacheResult) -> Verification:
    if not result.gpu:
        # Nothing to free: there is no GPU memory condition to improve.
        return Verification(True, "gpu_reserved_bytes", None, None, {"gpu": False})
    before = sum(d.reserved_before for d in result.devices)
    after = sum(d.reserved_after for d in result.devices)
    figures = {
        "gpu": True,
        "bytes_freed": result.bytes_freed,
        "devices": [d.model_dump(mode="json") for d in result.devices],
    }
    return Verification(after < before, "gpu_reserved_bytes", before, after, figures)
