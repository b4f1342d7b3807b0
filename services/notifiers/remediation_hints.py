"""Pending remediations of a notification's alerts, so that a message can say how to approve them.

The remediation service keeps, per alert fingerprint, a Redis hash of the remediations waiting
for an approval (`schemas.remediation_flow.pending_index_key`). A notifier reads it for the
firing alerts of a group just before sending; one pipelined round trip per notification, and
only for integrations that show hints (Slack). A remediation created after the message went out
is not mentioned in it (the approval request stays visible through the API and CLI).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from schemas.group import Notification
from schemas.remediation_flow import PendingHint, pending_index_key
from schemas.timefmt import now_ns, parse_ns
from services.runtime.redis import RedisClient

__all__ = ["PendingHints", "approval_text"]


class PendingHints:
    """Reads the pending remediations of alerts from the shared Redis."""

    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str = "tocsin:",
        clock: Callable[[], int] = now_ns,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock

    async def for_notification(self, notification: Notification) -> list[PendingHint]:
        """The pending remediations of the notification's firing alerts, oldest expiry first."""
        fingerprints = [a.fingerprint for a in notification.alerts if a.status == "firing"]
        if not fingerprints:
            return []
        pipe = self._redis.pipeline(transaction=False)
        for fp in fingerprints:
            pipe.hgetall(pending_index_key(self._prefix, fp))
        hints: dict[str, PendingHint] = {}
        now = self._clock()
        for rows in await pipe.execute():
            for value in rows.values():
                try:
                    hint = PendingHint.model_validate_json(value)
                    if parse_ns(hint.expiresAt) <= now:
                        continue  # expired; the remediation service's next check removes it
                except ValueError:  # ValidationError included: an unknown record is no failure
                    continue
                hints[hint.id] = hint
        return sorted(hints.values(), key=lambda h: (h.expiresAt, h.id))


def approval_text(hints: Sequence[PendingHint], external_url: str) -> str:
    """Slack mrkdwn telling on-call what waits for approval and how to approve or reject it."""
    lines = []
    for hint in hints:
        lines.append(
            f"• `{hint.action}` on `{hint.target}` (rule `{hint.rule}`), expires {hint.expiresAt}\n"
            f"   approve: `tocsin remediation approve {hint.id}`"
            f" or `POST {external_url}/api/v1/remediations/{hint.id}/approve`;"
            f" reject: `tocsin remediation reject {hint.id}`"
        )
    return "\n".join(lines)
