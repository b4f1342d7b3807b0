"""A receiver's integrations as Alertmanager names and orders them (`webhook[0]`, `email[1]`...)."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.config import Receiver

__all__ = ["Integration", "receiver_integrations"]


@dataclass(frozen=True, slots=True)
class Integration:
    """One integration of a receiver, named `<type>[<index>]` with an index per type."""

    kind: str
    index: int
    send_resolved: bool
    max_alerts: int = 0

    @property
    def name(self) -> str:
        """The integration's name, e.g. `webhook[0]`."""
        return f"{self.kind}[{self.index}]"


def receiver_integrations(receiver: Receiver) -> list[Integration]:
    """The receiver's integrations in the order Alertmanager builds them."""
    out = [
        Integration("webhook", i, c.send_resolved, c.max_alerts)
        for i, c in enumerate(receiver.webhook_configs)
    ]
    out += [Integration("email", i, c.send_resolved) for i, c in enumerate(receiver.email_configs)]
    out += [
        Integration("pagerduty", i, c.send_resolved)
        for i, c in enumerate(receiver.pagerduty_configs)
    ]
    out += [Integration("slack", i, c.send_resolved) for i, c in enumerate(receiver.slack_configs)]
    return out
