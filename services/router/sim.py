"""An in-memory, single-process router that composes the decision logic as Alertmanager does.

It is the reference the Redis-backed router is checked against, and it runs on an injected
clock: every call takes `now_ns`, and `advance` fires every tick that came due, in time order.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.alert import Alert, fingerprint
from schemas.config import Config, Receiver, Route
from services.router.aggregation import (
    GroupTimer,
    after_flush,
    on_insert,
    on_tick,
    snapshot_for_flush,
)
from services.router.alerts import StoredAlert, dedup_hash, merge, resolved_at
from services.router.dedup import NflogEntry, needs_update, new_entry, nflog_key, payload_alerts
from services.router.inhibit import Inhibitor
from services.router.integrations import Integration, receiver_integrations
from services.router.silences import SilenceError, Silencer, expire, validate_postable
from services.router.timemute import route_muted

__all__ = ["Integration", "Notification", "Simulator", "receiver_integrations"]

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Notification:
    """One send: what an integration got, alerts in flush order (endsAt 0 for firing ones)."""

    receiver: str
    integration: str
    group_key: str
    group_labels: dict[str, str]
    status: Literal["firing", "resolved"]
    alerts: list[StoredAlert]
    truncated_alerts: int = 0
    at_ns: int = 0


@dataclass(slots=True)
class _Group:
    route: Route
    labels: dict[str, str]
    timer: GroupTimer
    seq: int
    alerts: dict[str, StoredAlert] = field(default_factory=dict)


class Simulator:
    """Alertmanager's alert store, dispatcher and notification pipeline, in one process."""

    def __init__(self, config: Config, now_ns: int, group_gc_interval_s: float = 30.0) -> None:
        self.config = config
        self.now_ns = now_ns
        self.alerts: dict[str, StoredAlert] = {}
        self.inhibitor = Inhibitor(config.inhibit_rules)
        self.silencer = Silencer()
        self.nflog: dict[str, NflogEntry] = {}
        self.failing: set[str] = set()
        """Integration names (`webhook[0]`) whose sends fail until removed from the set."""
        self._receivers = {r.name: r for r in config.receivers}
        self._groups: dict[tuple[Route, str], _Group] = {}
        self._outbox: list[Notification] = []
        self._seq = itertools.count()
        self._gc_interval_ns = round(group_gc_interval_s * _NS)
        self._next_gc_ns = now_ns + self._gc_interval_ns

    # -- inputs ---------------------------------------------------------------------------

    def receive(self, message: Alert, now_ns: int) -> StoredAlert:
        """Store an alert message (merged), offer it to the inhibitor, and group it per route."""
        self._run_until(now_ns)
        new = StoredAlert.from_message(message, now_ns, self.config.global_.resolve_timeout)
        alert = merge(self.alerts.get(new.fingerprint), new, now_ns)
        self.alerts[alert.fingerprint] = alert
        self.inhibitor.observe(alert)
        for route in self.config.route.match(alert.labels):
            labels = route.group_labels(alert.labels)
            gid = (route, fingerprint(labels))
            group = self._groups.get(gid)
            if group is None:
                timer = GroupTimer.new(
                    now_ns, route.group_wait, route.group_interval, route.group_key(alert.labels)
                )
                group = self._groups[gid] = _Group(route, labels, timer, next(self._seq))
            group.alerts[alert.fingerprint] = alert
            on_insert(group.timer, alert, now_ns)
        return alert

    def add_silence(self, body: Mapping[str, Any], now_ns: int) -> str:
        """`POST /api/v2/silences`: the silence id; SilenceError as Alertmanager answers."""
        self._run_until(now_ns)
        try:
            silence, replaced = validate_postable(body, now_ns, self.silencer.all())
        except SilenceError as exc:
            if exc.expired_id is not None:
                self.expire_silence(exc.expired_id, now_ns)
            raise
        if replaced is not None:
            self.expire_silence(replaced, now_ns)
        self.silencer.set(silence)
        return silence.id

    def expire_silence(self, silence_id: str, now_ns: int) -> None:
        """`DELETE /api/v2/silence/{id}` (KeyError for an unknown id)."""
        self._run_until(now_ns)
        silence = self.silencer.get(silence_id)
        if silence is None:
            raise KeyError(silence_id)
        self.silencer.set(expire(silence, now_ns))

    def advance(self, now_ns: int) -> list[Notification]:
        """Run every tick due up to `now_ns`; the notifications sent since the last call."""
        self._run_until(now_ns)
        out, self._outbox = self._outbox, []
        return out

    # -- introspection --------------------------------------------------------------------

    def groups(self) -> dict[str, list[str]]:
        """Group key to the fingerprints the group holds, for every live group."""
        return {g.timer.group_key: sorted(g.alerts) for g in self._groups.values()}

    def timer(self, group_key: str) -> GroupTimer:
        """The timer of the (first) live group with this key."""
        for group in self._groups.values():
            if group.timer.group_key == group_key:
                return group.timer
        raise KeyError(group_key)

    # -- the clock ------------------------------------------------------------------------

    def _run_until(self, now_ns: int) -> None:
        if now_ns < self.now_ns:
            raise ValueError(f"time went backwards: {now_ns} < {self.now_ns}")
        while True:
            due = [g for g in self._groups.values() if g.timer.next_tick_ns <= now_ns]
            group = min(due, key=lambda g: (g.timer.next_tick_ns, g.seq), default=None)
            if group is not None and group.timer.next_tick_ns <= self._next_gc_ns:
                self.now_ns = group.timer.next_tick_ns
                self._flush(group, self.now_ns)
            elif self._next_gc_ns <= now_ns:
                self.now_ns = self._next_gc_ns
                self._next_gc_ns += self._gc_interval_ns
                # The dispatcher drops empty groups every 30s; a later alert starts afresh.
                self._groups = {k: g for k, g in self._groups.items() if g.alerts}
            else:
                break
        self.now_ns = now_ns

    # -- one flush ------------------------------------------------------------------------

    def _flush(self, group: _Group, tick_ns: int) -> None:
        on_tick(group.timer, tick_ns)
        if not group.alerts:
            return
        snapshot = snapshot_for_flush(group.alerts.values(), tick_ns)
        if self._pipeline(group, snapshot.alerts, tick_ns):
            for fp in after_flush(snapshot.resolved, group.alerts):
                del group.alerts[fp]

    def _pipeline(self, group: _Group, alerts: list[StoredAlert], now_ns: int) -> bool:
        """Inhibit, time, silence, then per integration dedup, send, log; False if a send failed."""
        route = group.route
        alerts = [a for a in alerts if self.inhibitor.mutes(a.labels, now_ns) is None]
        if not alerts or route_muted(route, self.config.time_intervals, now_ns):
            return True  # a stage that leaves nothing ends the pipeline with success
        alerts = [a for a in alerts if not self.silencer.mutes(a.labels, now_ns)]
        if not alerts:
            return True
        receiver = self._receivers[route.receiver]
        firing: set[int] = set()
        resolved: set[int] = set()
        for alert in alerts:
            (resolved if resolved_at(alert, now_ns) else firing).add(dedup_hash(alert.labels))
        ok = True
        for integration in receiver_integrations(receiver):
            key = nflog_key(
                group.timer.group_key, receiver.name, integration.kind, integration.index
            )
            entry = self.nflog.get(key)
            if entry is not None and entry.expired(now_ns):
                entry = None
            repeat = route.repeat_interval
            if not needs_update(entry, firing, resolved, integration.send_resolved, repeat, now_ns):
                continue
            sent = payload_alerts(alerts, integration.send_resolved, now_ns)
            if sent is not None:
                if integration.name in self.failing:
                    ok = False  # no nflog entry: the next tick tries again
                    continue
                self._outbox.append(self._notification(group, receiver, integration, sent, now_ns))
            self.nflog[key] = new_entry(firing, resolved, now_ns, repeat)
        return ok

    def _notification(
        self,
        group: _Group,
        receiver: Receiver,
        integration: Integration,
        sent: list[StoredAlert],
        now_ns: int,
    ) -> Notification:
        kept = sent[: integration.max_alerts] if integration.max_alerts else sent
        firing = any(not resolved_at(a, now_ns) for a in kept)
        return Notification(
            receiver=receiver.name,
            integration=integration.name,
            group_key=group.timer.group_key,
            group_labels=group.labels,
            status="firing" if firing else "resolved",
            alerts=kept,
            truncated_alerts=len(sent) - len(kept),
            at_ns=now_ns,
        )
