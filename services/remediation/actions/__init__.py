"""Remediation actions: one module per action, each one async function."""

from services.remediation.actions.app_agent import app_agent_action
from services.remediation.actions.postgres_idle import terminate_idle
from services.remediation.actions.redis_flush import PolicyReverts, Reverted, cache_flush

__all__ = ["PolicyReverts", "Reverted", "app_agent_action", "cache_flush", "terminate_idle"]
