"""The router's side of remediation: alert updates that match a rule go to `remediation.requests`.

For each consumed alert message whose labels match at least one rule of the remediation policy,
the router publishes a `RemediationRequest` keyed by the alert's fingerprint, before it commits
the batch (at-least-once; the remediation service derives its ids from the incident, so a copy
changes nothing). Firing alerts muted by a silence are not passed on: a silence stops automation
as it stops pages. Resolved updates always are, so that a pending approval is cancelled.
Inhibition and time intervals are decided per receiver at flush time and do not apply here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from aiokafka import AIOKafkaProducer

from schemas.alert import Alert
from schemas.envelope import encode
from schemas.remediation import Policy
from schemas.remediation_flow import RemediationRequest
from schemas.timefmt import format_ns, parse_ns
from schemas.topics import REMEDIATION_REQUESTS
from services.router.alerts import StoredAlert, resolved_at
from services.router.silence_store import SilenceStore

__all__ = ["RemediationTap", "requests_for"]


def requests_for(
    policy: Policy,
    alerts: Sequence[Alert],
    *,
    now_ns: int,
    resolve_timeout_s: float,
    silences: SilenceStore | None = None,
) -> list[RemediationRequest]:
    """The remediation requests for a batch of alert messages, in batch order."""
    out: list[RemediationRequest] = []
    received_at = format_ns(now_ns)
    for message in alerts:
        rules = [rule.name for rule in policy.matching(message.labels)]
        if not rules:
            continue
        stored = StoredAlert.from_message(message, parse_ns(message.receivedAt), resolve_timeout_s)
        resolved = resolved_at(stored, now_ns)
        if not resolved and silences is not None and silences.mutes(message.labels, now_ns):
            continue
        out.append(
            RemediationRequest(
                fingerprint=message.fingerprint,
                status="resolved" if resolved else "firing",
                labels=message.labels,
                annotations=message.annotations,
                startsAt=message.startsAt,
                endsAt=format_ns(stored.ends_ns),
                generatorURL=message.generatorURL,
                rules=rules,
                receivedAt=received_at,
            )
        )
    return out


class RemediationTap:
    """Publishes the remediation requests of each consumed batch (the policy swaps on reload)."""

    def __init__(
        self,
        policy: Policy,
        producer: AIOKafkaProducer,
        silences: SilenceStore,
        *,
        producer_name: str,
        clock: Callable[[], int],
    ) -> None:
        self.policy = policy
        self._producer = producer
        self._silences = silences
        self._producer_name = producer_name
        self._clock = clock

    async def publish(self, alerts: Sequence[Alert], resolve_timeout_s: float) -> int:
        """Publish the batch's requests and wait for the broker's acks; returns how many."""
        requests = requests_for(
            self.policy,
            alerts,
            now_ns=self._clock(),
            resolve_timeout_s=resolve_timeout_s,
            silences=self._silences,
        )
        futures = [
            await self._producer.send(
                REMEDIATION_REQUESTS.name,
                encode(
                    REMEDIATION_REQUESTS.schema,
                    self._producer_name,
                    request.model_dump(mode="json"),
                ),
                key=request.fingerprint.encode(),
            )
            for request in requests
        ]
        if futures:
            await asyncio.gather(*futures)
        return len(requests)
