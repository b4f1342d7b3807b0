"""The executor: a rule's action, on its configured target, inside the safety envelope.

It owns one client per target, made on first use and closed by `close()`: a Redis client per
Redis target (from its URL), an asyncpg connection per PostgreSQL target (made again when it
broke), an agent client per app target. Alerts never supply a host: the target is a name the
policy defines. Whatever fails while acting (a client that cannot connect included) becomes the
envelope's `Failed` outcome, never an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import redis.asyncio as aioredis
import structlog

from schemas.remediation import (
    ActionResult,
    CacheFlushRule,
    GpuEmptyCacheRule,
    Policy,
    PoolResizeRule,
    Rule,
    TerminateIdleRule,
)
from services.remediation.actions.app_agent import (
    AppReverts,
    RevertedPool,
    gpu_empty_cache,
    pool_resize,
)
from services.remediation.actions.postgres_idle import terminate_idle
from services.remediation.actions.redis_flush import PolicyReverts, Reverted, cache_flush
from services.remediation.agent import AgentClient
from services.remediation.clock import Clock
from services.remediation.safety import Envelope, Outcome

__all__ = ["Executor", "Plan"]

_log = structlog.get_logger("tocsin.remediation.executor")


@dataclass(frozen=True)
class Plan:
    """What a run would do: the rule, its action, the target and the parameters."""

    rule: str
    action: str
    target: str
    params: dict[str, Any]

    def detail(self) -> dict[str, Any]:
        """As recorded for a dry run."""
        return {"rule": self.rule, "action": self.action, "target": self.target,
                "params": self.params}  # fmt: skip


class Executor:
    """Runs actions through the envelope with the right client for each target."""

    def __init__(
        self,
        policy: Policy,
        envelope: Envelope,
        *,
        state: aioredis.Redis,
        clock: Clock,
        prefix: str = "tocsin:remediation:",
    ) -> None:
        self.policy = policy
        self.envelope = envelope
        self.policy_reverts = PolicyReverts(state, clock=clock, prefix=prefix)
        self.app_reverts = AppReverts(state, clock=clock, prefix=prefix)
        self._redis: dict[str, aioredis.Redis] = {}
        self._postgres: dict[str, Any] = {}
        self._agents: dict[str, AgentClient] = {}
        self._connecting = asyncio.Lock()

    def rule(self, name: str) -> Rule | None:
        """The policy's rule of that name."""
        return next((rule for rule in self.policy.rules if rule.name == name), None)

    @staticmethod
    def plan(rule: Rule, target: str) -> Plan:
        """What running `rule` on `target` would do (for dry runs and audit records)."""
        return Plan(rule.name, rule.action.value, target, rule.params.model_dump(mode="json"))

    async def run(
        self,
        rule: Rule,
        target: str,
        *,
        auto: bool,
        still_firing: Callable[[], Awaitable[bool]],
        on_start: Callable[[], Awaitable[None]] | None = None,
    ) -> Outcome:
        """Run the rule's action on `target` in the envelope; `on_start` once it is admitted.

        `auto` is False for a run a person approved: the open circuit stops auto runs only.
        """

        async def act() -> ActionResult:
            if on_start is not None:
                await on_start()
            return await self._act(rule, target)

        return await self.envelope.run(
            action=rule.action,
            target=target,
            limits=rule.limits,
            auto=auto,
            still_firing=still_firing,
            act=act,
        )

    async def _act(self, rule: Rule, target: str) -> ActionResult:
        if isinstance(rule, CacheFlushRule):
            client = self.redis(target)
            return await cache_flush(
                client, rule.params, target=target, reverts=self.policy_reverts
            )
        if isinstance(rule, TerminateIdleRule):
            conn = await self._postgres_connection(target)
            return await terminate_idle(conn, rule.params, target=target)
        agent = self.agent(target)
        if isinstance(rule, PoolResizeRule):
            return await pool_resize(agent, rule.params, target=target, reverts=self.app_reverts)
        if isinstance(rule, GpuEmptyCacheRule):
            return await gpu_empty_cache(agent, rule.params, target=target)
        raise TypeError(f"no executor for {rule.action}")  # pragma: no cover - union exhausted

    def redis(self, target: str) -> aioredis.Redis:
        """The client of a configured Redis target (KeyError for an unknown name)."""
        client = self._redis.get(target)
        if client is None:
            url = self.policy.targets.redis[target].url.get_secret_value()
            client = aioredis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
            self._redis[target] = client
        return client

    def agent(self, target: str) -> AgentClient:
        """The agent client of a configured app target (reads its secret on first use)."""
        client = self._agents.get(target)
        if client is None:
            client = AgentClient.from_target(self.policy.targets.apps[target])
            self._agents[target] = client
        return client

    async def _postgres_connection(self, target: str) -> Any:
        async with self._connecting:
            conn = self._postgres.get(target)
            if conn is None or conn.is_closed():
                dsn = self.policy.targets.postgres[target].dsn.get_secret_value()
                conn = await asyncpg.connect(
                    dsn, timeout=10, server_settings={"application_name": "tocsin-remediation"}
                )
                self._postgres[target] = conn
            return conn

    async def revert_due(self) -> list[Reverted | RevertedPool]:
        """Put back every temporary change whose time is up (eviction policies, pool sizes)."""
        done: list[Reverted | RevertedPool] = []
        redis_targets = {name: self.redis(name) for name in self.policy.targets.redis}
        done += await self.policy_reverts.revert_due(redis_targets)
        agents: dict[str, AgentClient] = {}
        for name in self.policy.targets.apps:
            try:
                agents[name] = self.agent(name)
            except (OSError, ValueError) as exc:  # an unreadable secret: log, keep the others
                _log.warning("agent_unavailable", target=name, error=str(exc))
        done += await self.app_reverts.revert_due(agents)
        return done

    async def close(self) -> None:
        """Close every client made so far; idempotent."""
        redis, self._redis = self._redis, {}
        postgres, self._postgres = self._postgres, {}
        agents, self._agents = self._agents, {}
        for client in redis.values():
            await client.aclose()
        for conn in postgres.values():
            await conn.close(timeout=5)
        for agent in agents.values():
            await agent.close()
