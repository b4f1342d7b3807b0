"""The durable dispatcher: received alerts into Redis-held groups, due groups flushed to Kafka.

The decisions are Alertmanager's (aggregation.py, dedup.py, inhibit.py, timemute.py, silences);
this module only moves state between Kafka, Redis and those pure functions, so that any number
of replicas can share the work: Kafka partitions split the alerts, a Redis lease per group makes
exactly one replica flush it, and a group's tick moves on only after its notifications were
acknowledged by the broker, so a replica killed mid-flush leaves the flush to the next one.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from schemas.alert import Alert
from schemas.config import Config, InhibitRule, Route
from schemas.config.errors import format_path
from schemas.envelope import encode
from schemas.timefmt import GO_ZERO_TIME, format_ns, parse_ns
from schemas.topics import DECISIONS, NOTIFICATIONS, notifications_topic
from services.router.aggregation import (
    GroupTimer,
    after_flush,
    on_insert,
    snapshot_for_flush,
)
from services.router.alerts import StoredAlert, dedup_hash, from_json, merge, to_json
from services.router.dedup import NflogEntry, needs_update, new_entry, nflog_key, payload_alerts
from services.router.inhibit import Inhibitor
from services.router.integrations import Integration, receiver_integrations
from services.router.store import GroupRecord, RouterStore
from services.router.timemute import mute_reason

__all__ = ["Dispatcher", "Silencer"]

_log = structlog.get_logger("tocsin.router")
_NS = 1_000_000_000
_GC_NS = 30 * _NS


class Silencer(Protocol):
    """What the dispatcher needs of silences: the active ones matching a label set."""

    def mutes(self, labels: Mapping[str, str], now_ns: int) -> list[str]:
        """Ids of the active silences that match `labels`."""
        ...


class Publisher(Protocol):
    """Where notifications and decisions go (an AIOKafkaProducer in production)."""

    async def send(self, topic: str, value: bytes, key: bytes) -> Awaitable[Any]:
        """Queue a message; the returned awaitable completes when the broker acknowledged it."""
        ...


class NflogStore(Protocol):
    """Where notification log entries live (the router's "published" log)."""

    async def get_many(self, keys: Sequence[str], now_ns: int) -> dict[str, NflogEntry]:
        """The live entries among `keys`."""
        ...

    async def put(self, key: str, entry: NflogEntry) -> None:
        """Store `entry` (it expires by itself)."""
        ...


def _group_id(route_path: str, group_key: str) -> str:
    return hashlib.sha1(f"{route_path}\x00{group_key}".encode(), usedforsecurity=False).hexdigest()[
        :20
    ]


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


class Dispatcher:
    """Receives alert batches and flushes due groups; one per router replica."""

    def __init__(
        self,
        config: Config,
        store: RouterStore,
        nflog: NflogStore,
        producer: Publisher,
        silencer: Silencer,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], int],
        owner: str,
        external_url: str,
        producer_name: str,
    ) -> None:
        self._store = store
        self._nflog = nflog
        self._producer = producer
        self._silencer = silencer
        self._clock = clock
        self._owner = owner
        self._external_url = external_url.rstrip("/")
        self._producer_name = producer_name
        self.use_config(config)
        self._next_gc_ns = (clock() // _GC_NS + 1) * _GC_NS
        self.received = Counter(
            "tocsin_router_alerts_received_total",
            "Alerts consumed from the alerts topic.",
            registry=registry,
        )
        self.notifications = Counter(
            "tocsin_router_notifications_total",
            "Notifications published per receiver and integration.",
            ["receiver", "integration"],
            registry=registry,
        )
        self.dropped = Counter(
            "tocsin_router_alerts_dropped_total",
            "Alerts a flush did not pass on, by reason.",
            ["reason"],
            registry=registry,
        )
        self.flush_failures = Counter(
            "tocsin_router_flush_failures_total",
            "Group flushes that failed (retried at the next pass).",
            registry=registry,
        )
        self.flush_seconds = Histogram(
            "tocsin_router_flush_seconds", "Time to flush one group.", registry=registry
        )

    def use_config(self, config: Config) -> None:
        """Switch to a new config (reload): routes are found by their YAML path."""
        self.config = config
        self._routes = {format_path(r.path): r for r in config.route.walk()}
        self._integrations = {r.name: receiver_integrations(r) for r in config.receivers}

    # -- receiving --------------------------------------------------------------------------

    async def receive(self, alerts: Sequence[Alert]) -> None:
        """Merge a consumed batch into the store and its groups (Alertmanager's insert path)."""
        if not alerts:
            return
        now = self._clock()
        resolve_timeout = self.config.global_.resolve_timeout
        fps = list(dict.fromkeys(a.fingerprint for a in alerts))
        stored = {fp: from_json(v) for fp, v in (await self._store.get_alerts(fps)).items()}
        for message in alerts:
            # Received at ingest: resolve_timeout counts from there, and a redelivered message
            # merges to the very same state.
            received = parse_ns(message.receivedAt)
            new = StoredAlert.from_message(message, received, resolve_timeout)
            stored[new.fingerprint] = merge(stored.get(new.fingerprint), new, received)
        touched = {fp: stored[fp] for fp in fps}
        self.received.inc(len(alerts))

        placements: dict[str, tuple[Route, str, dict[str, str], list[StoredAlert]]] = {}
        sources: dict[str, set[str]] = {}
        for alert in touched.values():
            for route in self.config.route.match(alert.labels):
                path = format_path(route.path)
                key = route.group_key(alert.labels)
                gid = _group_id(path, key)
                if gid not in placements:
                    placements[gid] = (route, key, route.group_labels(alert.labels), [])
                placements[gid][3].append(alert)
            for rule in self.config.inhibit_rules:
                if rule.is_source(alert.labels):
                    sources.setdefault(_inhibit_key(rule, alert.labels), set()).add(
                        alert.fingerprint
                    )

        existing = await self._store.get_groups(list(placements))
        groups: list[GroupRecord] = []
        early: dict[str, int] = {}
        for gid, (route, key, labels, members) in placements.items():
            record = existing.get(gid)
            timer = GroupTimer.new(now, route.group_wait, route.group_interval, key)
            if record is not None:
                timer.created_ns, timer.flushed_once = record.created_ns, record.flushed
                timer.next_tick_ns = record.next_tick_ns
            before = timer.next_tick_ns
            for alert in members:
                on_insert(timer, alert, now)
            if record is None:
                record = GroupRecord(
                    gid, key, format_path(route.path), labels, now, False, timer.next_tick_ns
                )
            elif timer.next_tick_ns < before:
                early[gid] = timer.next_tick_ns
            groups.append(record)
        await self._store.write_batch(
            {fp: (to_json(a), a.ends_ns // 1_000_000) for fp, a in touched.items()},
            groups,
            {gid: {a.fingerprint for a in p[3]} for gid, p in placements.items()},
            early,
            sources,
        )

    # -- flushing ---------------------------------------------------------------------------

    async def flush_due(self, lease_ms: int, limit: int = 64) -> int:
        """Claim and flush the groups that are due now; returns how many were flushed.

        Every 30 s (on the wall clock's half minutes, so all replicas agree) empty groups are
        collected first, as Alertmanager's dispatcher does."""
        now = self._clock()
        if now >= self._next_gc_ns:
            await self.collect_empty_groups()
            self._next_gc_ns = (now // _GC_NS + 1) * _GC_NS
        flushed = 0
        # Replicas see the same earliest groups: one that finds a page all leased by others
        # looks at the next page instead of idling (bounded, so a pass stays short).
        for page in range(8):
            due = await self._store.due_groups(now, limit, offset=page * limit)
            results = await asyncio.gather(
                *(self._flush_leased(gid, tick, lease_ms) for gid, tick in due),
                return_exceptions=True,
            )
            attempted = 0
            for (gid, _), result in zip(due, results, strict=True):
                if isinstance(result, BaseException):
                    # This group is retried at the next pass; the others went on regardless.
                    self.flush_failures.inc()
                    attempted += 1
                    _log.error(
                        "flush_failed", group=gid, error=f"{type(result).__name__}: {result}"
                    )
                else:
                    flushed += result
                    attempted += result
            if attempted or len(due) < limit:
                break
        return flushed

    async def _flush_leased(self, gid: str, tick: int, lease_ms: int) -> int:
        if not await self._store.acquire_lease(gid, self._owner, lease_ms):
            return 0  # another replica has it
        try:
            with self.flush_seconds.time():
                await self.flush(gid, tick)
            return 1
        finally:
            await self._store.release_lease(gid, self._owner)

    async def flush(self, gid: str, tick_ns: int) -> None:
        """Flush one group at its tick: mute stages, dedup, publish, then clean up and move on."""
        record, fps = await self._store.load_group(gid)
        route = self._routes.get(record.route_path) if record is not None else None
        if record is None or route is None:
            await self._store.delete_group(gid)  # gone, or its route left the config
            return
        raw = await self._store.get_alerts(fps)
        await self._store.forget_members(gid, (fp for fp in fps if fp not in raw))
        if not raw:  # an empty group ticks on until the collection removes it
            await self._store.maybe_empty(gid)
            await self._store.finish_flush(gid, (), self._next_tick(route, tick_ns), tick_ns)
            return
        now = self._clock()
        current = {fp: from_json(v) for fp, v in raw.items()}
        snapshot = snapshot_for_flush(current.values(), now)
        passing = await self._mute(route, record, snapshot.alerts, tick_ns, now)
        if passing:
            await self._notify(route, record, passing, tick_ns, now)
        remove = after_flush(snapshot.resolved, current)
        if len(remove) == len(current):
            await self._store.maybe_empty(gid)
        await self._store.finish_flush(gid, remove, self._next_tick(route, tick_ns), tick_ns)

    def _next_tick(self, route: Route, tick_ns: int) -> int:
        interval = round(route.group_interval * _NS)
        next_tick = tick_ns + interval
        now = self._clock()
        if next_tick <= now:  # ticks were missed (no replica ran): the next aligned one
            next_tick += ((now - next_tick) // interval + 1) * interval
        return next_tick

    async def collect_empty_groups(self) -> int:
        """Delete groups left without alerts (the next alert starts a new group, group_wait and
        all), as Alertmanager's dispatcher does every 30 s."""
        return await self._store.collect_empty()

    async def _mute(
        self,
        route: Route,
        record: GroupRecord,
        alerts: list[StoredAlert],
        tick_ns: int,
        now: int,
    ) -> list[StoredAlert]:
        decisions: list[tuple[StoredAlert, str, list[str]]] = []
        inhibitor = await self._inhibitor_for(alerts)
        passing: list[StoredAlert] = []
        for alert in alerts:
            by = inhibitor.mutes(alert.labels, now)
            if by is not None:
                decisions.append((alert, "inhibited", [by]))
                continue
            passing.append(alert)
        reason = mute_reason(route, self.config.time_intervals, tick_ns)
        if reason is not None:
            names = list(
                route.active_time_intervals
                if reason == "active_time_interval"
                else route.mute_time_intervals
            )
            decisions += [(a, "muted", names) for a in passing]
            passing = []
        still: list[StoredAlert] = []
        for alert in passing:
            ids = self._silencer.mutes(alert.labels, now)
            if ids:
                decisions.append((alert, "silenced", ids))
            else:
                still.append(alert)
        await self._announce(route, record, decisions, tick_ns)
        return still

    async def _inhibitor_for(self, alerts: Iterable[StoredAlert]) -> Inhibitor:
        rules = self.config.inhibit_rules
        inhibitor = Inhibitor(rules)
        keys = {
            _inhibit_key(rule, a.labels)
            for a in alerts
            for rule in rules
            if rule.is_target(a.labels)
        }
        if not keys:
            return inhibitor
        members = await self._store.inhibition_sources(sorted(keys))
        fps = sorted({fp for found in members.values() for fp in found})
        stored = await self._store.get_alerts(fps)
        for data in stored.values():
            inhibitor.observe(from_json(data))
        gone = {k: [fp for fp in found if fp not in stored] for k, found in members.items()}
        if any(gone.values()):
            await self._store.forget_sources(gone)
        return inhibitor

    async def _announce(
        self,
        route: Route,
        record: GroupRecord,
        decisions: list[tuple[StoredAlert, str, list[str]]],
        tick_ns: int,
    ) -> None:
        """Publish each decision once per repeat_interval on `alerts.decisions`."""
        if not decisions:
            return
        ttl_ms = max(int(route.repeat_interval * 1000), 1000)
        at = format_ns(tick_ns)
        sends = []
        for alert, decision, by in decisions:
            self.dropped.labels(decision).inc()
            digest = hashlib.sha1(
                orjson.dumps([record.group_key, route.receiver, alert.fingerprint, decision, by]),
                usedforsecurity=False,
            ).hexdigest()
            if not await self._store.announce_once(digest, ttl_ms):
                continue
            data = {
                "fingerprint": alert.fingerprint,
                "labels": alert.labels,
                "receiver": route.receiver,
                "groupKey": record.group_key,
                "decision": decision,
                "by": by,
                "at": at,
            }
            value = encode(DECISIONS.schema, self._producer_name, data)
            sends.append(
                await self._producer.send(DECISIONS.name, value, key=alert.fingerprint.encode())
            )
        for ack in sends:
            await ack

    async def _notify(
        self,
        route: Route,
        record: GroupRecord,
        alerts: list[StoredAlert],
        tick_ns: int,
        now: int,
    ) -> None:
        receiver = route.receiver
        integrations = self._integrations.get(receiver, [])
        if not integrations:
            return  # a receiver without integrations is a black hole, as in Alertmanager
        # Flush copies: a firing alert has endsAt zeroed, a resolved one keeps its end.
        firing = {dedup_hash(a.labels) for a in alerts if a.ends_ns == 0}
        resolved = {dedup_hash(a.labels) for a in alerts if a.ends_ns != 0}
        keys = [nflog_key(record.group_key, receiver, i.kind, i.index) for i in integrations]
        entries = await self._nflog.get_many(keys, now)
        topic = notifications_topic(receiver)
        pending: list[tuple[Integration, str, Awaitable[Any] | None]] = []
        for integration, key in zip(integrations, keys, strict=True):
            entry = entries.get(key)
            if not needs_update(
                entry, firing, resolved, integration.send_resolved, route.repeat_interval, now
            ):
                continue
            sent = payload_alerts(alerts, integration.send_resolved)
            if sent is None:  # nothing to send (all resolved, send_resolved off): log only
                pending.append((integration, key, None))
                continue
            data = self._notification(route, record, integration, sent, firing, resolved, tick_ns)
            value = encode(NOTIFICATIONS.schema, self._producer_name, data)
            pending.append(
                (
                    integration,
                    key,
                    await self._producer.send(topic, value, key=record.group_key.encode()),
                )
            )
        for integration, key, ack in pending:
            if ack is not None:
                await ack  # acknowledged by the broker: only then is the flush done
                self.notifications.labels(receiver, integration.name).inc()
            await self._nflog.put(
                key, new_entry(firing, resolved, self._clock(), route.repeat_interval)
            )

    def _notification(
        self,
        route: Route,
        record: GroupRecord,
        integration: Integration,
        alerts: list[StoredAlert],
        firing: set[int],
        resolved: set[int],
        tick_ns: int,
    ) -> dict[str, Any]:
        kept = alerts[: integration.max_alerts] if integration.max_alerts else alerts
        body = [_alert_data(a) for a in kept]  # already without resolved ones if not sent
        status = "firing" if any(a["status"] == "firing" for a in body) else "resolved"
        tick = format_ns(tick_ns)
        idempotency = f"{record.group_key}\x00{route.receiver}\x00{integration.name}\x00{tick}"
        return {
            "receiver": route.receiver,
            "integration": integration.name,
            "status": status,
            "alerts": body,
            "truncatedAlerts": len(alerts) - len(kept),
            "groupLabels": record.labels,
            "commonLabels": _common([a.labels for a in kept]),
            "commonAnnotations": _common([a.annotations for a in kept]),
            "externalURL": self._external_url,
            "groupKey": record.group_key,
            "routeKey": route.key(),
            "repeatInterval": route.repeat_interval,
            "sendResolved": integration.send_resolved,
            "tick": tick,
            "firingHashes": [str(h) for h in sorted(firing)],
            "resolvedHashes": [str(h) for h in sorted(resolved)],
            "idempotencyKey": hashlib.sha256(idempotency.encode()).hexdigest(),
        }


def _alert_data(alert: StoredAlert) -> dict[str, Any]:
    firing = alert.ends_ns == 0
    return {
        "status": "firing" if firing else "resolved",
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": format_ns(alert.starts_ns),
        "endsAt": GO_ZERO_TIME if firing else format_ns(alert.ends_ns),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }


def _rule_id(rule: InhibitRule) -> str:
    """A rule's identity in the index: its content, so a reload that keeps it keeps its sources."""
    text = "\x00".join([str(m) for m in rule.source_matchers] + ["|"] + list(rule.equal))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


def _inhibit_key(rule: InhibitRule, labels: Mapping[str, str]) -> str:
    values = "\xff".join(labels.get(name, "") for name in rule.equal)
    digest = hashlib.sha1(values.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{_rule_id(rule)}:{digest}"
