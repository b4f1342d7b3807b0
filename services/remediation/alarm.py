"""The alert that says auto-remediation stopped: `TocsinRemediationCircuitOpen` on `alerts`.

When an hourly limit opens the circuit, the service publishes this alert on the `alerts` topic,
in the envelope and shape ingest uses and keyed by its fingerprint, so the normal routing
notifies someone. While the circuit stays open the alert is sent again (as Prometheus re-sends
firing alerts) with an end a few minutes ahead; resetting the circuit sends it resolved. Its
state is in Redis, so whichever replica notices first raises it, and any replica keeps it alive.
"""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from schemas.alert import fingerprint
from schemas.envelope import encode
from schemas.timefmt import format_ns
from schemas.topics import ALERTS
from services.remediation.clock import Clock

__all__ = ["ALERTNAME", "CircuitAlarm"]

ALERTNAME = "TocsinRemediationCircuitOpen"
_NS = 1_000_000_000


class CircuitAlarm:
    """Raises, keeps alive and resolves the circuit-open alert."""

    def __init__(
        self,
        redis: aioredis.Redis,
        producer: AIOKafkaProducer,
        *,
        clock: Clock,
        producer_name: str,
        prefix: str = "tocsin:",
        resend_interval: float = 60.0,
        topic: str = ALERTS.name,
    ) -> None:
        self._redis = redis
        self._producer = producer
        self._clock = clock
        self._producer_name = producer_name
        self._key = f"{prefix}remediation:circuit-alert"
        self._resend = resend_interval
        self._topic = topic

    @staticmethod
    def labels(scope: str) -> dict[str, str]:
        """The alert's labels for a limit's scope ("global" or "target <name>")."""
        labels = {"alertname": ALERTNAME, "severity": "warning", "service": "tocsin-remediation"}
        kind, _, target = scope.partition(" ")
        labels["scope"] = kind or "global"
        if target:
            labels["target"] = target
        return labels

    async def raise_once(self, reason: str, scope: str) -> dict[str, str] | None:
        """Publish the alert unless it is up already; its labels when this call raised it."""
        now = self._clock.now()
        labels = self.labels(scope)
        state = {
            "labels": labels,
            "reason": reason,
            "startsAt": format_ns(int(now * _NS)),
            "sentAt": now,
        }
        if not await self._redis.set(self._key, orjson.dumps(state), nx=True):
            return None
        await self._publish(state, resolved=False)
        return labels

    async def keep_alive(self) -> None:
        """Send the alert again when its last send is a resend interval ago."""
        state = await self._state()
        if state is None or self._clock.now() - float(state["sentAt"]) < self._resend:
            return
        state["sentAt"] = self._clock.now()
        await self._redis.set(self._key, orjson.dumps(state), xx=True)
        await self._publish(state, resolved=False)

    async def resolve(self) -> bool:
        """Send the alert resolved and forget it; False when none was up."""
        state = await self._state()
        if state is None:
            return False
        await self._publish(state, resolved=True)
        await self._redis.delete(self._key)
        return True

    async def _state(self) -> dict[str, Any] | None:
        raw = await self._redis.get(self._key)
        if raw is None:
            return None
        state: dict[str, Any] = orjson.loads(raw)
        return state

    async def _publish(self, state: dict[str, Any], *, resolved: bool) -> None:
        now_ns = int(self._clock.now() * _NS)
        labels: dict[str, str] = state["labels"]
        ends_ns = now_ns if resolved else now_ns + int(5 * self._resend * _NS)
        fp = fingerprint(labels)
        reason = state["reason"]
        data = {
            "labels": labels,
            "annotations": {
                "summary": "Auto-remediation stopped: the remediation circuit is open",
                "description": f"{reason}. Auto-remediation actions are refused until the "
                "circuit is reset (approved actions still run). Check the remediation audit "
                "trail, then reset it with `tocsin remediation circuit-reset` or "
                "POST /api/v1/remediations/circuit/reset.",
            },
            "startsAt": state["startsAt"],
            "endsAt": format_ns(ends_ns),
            "generatorURL": "",
            "status": "resolved" if resolved else "firing",
            "fingerprint": fp,
            "receivedAt": format_ns(now_ns),
            "source": "api.v2",
        }
        value = encode(ALERTS.schema, self._producer_name, data)
        await self._producer.send_and_wait(self._topic, value, key=fp.encode())
