"""Remediation actions: one module per action, each one async function."""

from services.remediation.actions.app_agent import (
    AppReverts,
    RevertedPool,
    gpu_empty_cache,
    pool_resize,
)
from services.remediation.actions.postgres_idle import terminate_idle
from services.remediation.actions.redis_flush import PolicyReverts, Reverted, cache_flush

__all__ = [
    "AppReverts",
    "PolicyReverts",
    "Reverted",
    "RevertedPool",
    "cache_flush",
    "gpu_empty_cache",
    "pool_resize",
    "terminate_idle",
]
