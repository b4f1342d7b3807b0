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
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    FlushSnapshot,
    GroupTimer,
    after_flush,
    on_insert,
    snapshot_for_flush,
)
from services.router.alerts import StoredAlert, dedup_hash, merge
from services.router.dedup import NflogEntry, needs_update, new_entry, nflog_key, payload_alerts
from services.router.inhibit import Inhibitor
from services.router.integrations import Integration, receiver_integrations
from services.router.store import FlushWrites, GroupRecord, RouterStore
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

    async def put_many(self, entries: Sequence[tuple[str, NflogEntry]]) -> None:
        """Store the entries (each expires by itself) in one round trip."""
        ...


def _group_id(route_path: str, group_key: str) -> str:
    return hashlib.sha1(f"{route_path}\x00{group_key}".encode(), usedforsecurity=False).hexdigest()[
        :20
    ]


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    if len(maps) == 1:  # the usual group of one alert
        return dict(first)
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
        stored = await self._store.get_alerts(fps)
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
            {fp: (a, a.ends_ns // 1_000_000) for fp, a in touched.items()},
            groups,
            {gid: {a.fingerprint for a in p[3]} for gid, p in placements.items()},
            early,
            sources,
        )

    # -- flushing ---------------------------------------------------------------------------

    async def flush_due(self, lease_ms: int, limit: int = 64) -> int:
        """Claim and flush the groups that are due now; returns how many were flushed.

        The groups of a page are flushed together: each step's reads and writes are one
        pipeline for the page, its notifications are all sent before any acknowledgement is
        awaited. Every 30 s (on the wall clock's half minutes, so all replicas agree) empty
        groups are collected first, as Alertmanager's dispatcher does."""
        now = self._clock()
        if now >= self._next_gc_ns:
            await self.collect_empty_groups()
            self._next_gc_ns = (now // _GC_NS + 1) * _GC_NS
        flushed = 0
        # Replicas see the same earliest groups: one that finds a page all leased by others
        # looks at the next page instead of idling (bounded, so a pass stays short).
        for page in range(8):
            due = await self._store.due_groups(now, limit, offset=page * limit)
            mine = await self._store.acquire_leases([gid for gid, _ in due], self._owner, lease_ms)
            flushes = [_Flush(gid, tick) for (gid, tick), ok in zip(due, mine, strict=True) if ok]
            if flushes:
                started = time.perf_counter()
                await self._flush_page(flushes)
                elapsed = time.perf_counter() - started
                for flush in flushes:
                    if flush.error is None:
                        flushed += 1
                        self.flush_seconds.observe(elapsed)
                        continue
                    # This group is retried at the next pass; the others went on regardless.
                    self.flush_failures.inc()
                    _log.error(
                        "flush_failed",
                        group=flush.gid,
                        error=f"{type(flush.error).__name__}: {flush.error}",
                    )
            if flushes or len(due) < limit:
                break
        return flushed

    async def _flush_page(self, flushes: list[_Flush]) -> None:
        """Flush leased groups at their ticks, then release the leases. A group whose flush
        failed (its `error`) keeps its tick and its alerts: the next pass retries it."""
        writes = FlushWrites(self._owner, leased=[f.gid for f in flushes])
        written = False
        try:
            await self._run_page(flushes, writes)
            written = True  # the leases were released with the writes
        except Exception as exc:  # noqa: BLE001 - Redis failed mid-page: every group is retried
            for flush in flushes:
                flush.error = flush.error or exc
        finally:
            if not written:
                await self._store.release_leases(writes.leased, self._owner)

    async def _run_page(self, flushes: list[_Flush], writes: FlushWrites) -> None:
        # Read: groups, their alerts, the inhibition sources of their targets.
        loaded = await self._store.load_groups([f.gid for f in flushes])
        live: list[tuple[_Flush, GroupRecord, Route, list[str]]] = []
        for flush in flushes:
            record, fps = loaded[flush.gid]
            route = self._routes.get(record.route_path) if record is not None else None
            if record is None or route is None:
                writes.deleted.append(flush.gid)  # gone, or its route left the config
            else:
                live.append((flush, record, route, fps))
        read = sorted({fp for *_, fps in live for fp in fps})
        alerts = await self._store.get_alerts(read)
        now = self._clock()
        groups: list[_Group] = []
        for flush, record, route, fps in live:
            gone = [fp for fp in fps if fp not in alerts]
            if gone:
                writes.forget_members[flush.gid] = gone
            try:
                current = {fp: alerts[fp] for fp in fps if fp in alerts}
                if not current:  # an empty group ticks on until the collection removes it
                    writes.empty.append(flush.gid)
                    flush.done = ([], self._next_tick(route, flush.tick_ns))
                    continue
                snapshot = snapshot_for_flush(current.values(), now)
                groups.append(_Group(flush, record, route, current, snapshot))
            except Exception as exc:  # noqa: BLE001 - this group fails, the others go on
                flush.error = exc
        await self._load_inhibitors(groups, alerts, set(read), writes)

        # Decide, then publish every decision and notification of the page.
        decisions: list[tuple[_Group, StoredAlert, str, list[str], str, int]] = []
        for group in groups:
            if group.flush.error is not None:
                continue
            try:
                for alert, decision, by in self._mute(group, now):
                    self.dropped.labels(decision).inc()
                    digest = _decision_digest(group, alert, decision, by)
                    ttl_ms = max(int(group.route.repeat_interval * 1000), 1000)
                    decisions.append((group, alert, decision, by, digest, ttl_ms))
            except Exception as exc:  # noqa: BLE001 - this group fails, the others go on
                group.flush.error = exc
        notifying = [g for g in groups if g.passing and g.flush.error is None]
        nflog_keys = [key for g in notifying for key in self._nflog_keys(g)]
        fresh, entries = await asyncio.gather(
            self._store.announce_once([(d[4], d[5]) for d in decisions]),
            self._nflog.get_many(nflog_keys, now),
        )
        # A decision is marked announced before it is sent, as one at a time did: a failed
        # send fails its group, and that decision is not announced again within its ttl.
        for (group, alert, decision, by, _, _), new in zip(decisions, fresh, strict=True):
            if new:
                await self._announce(group, alert, decision, by)
        for group in notifying:
            if group.flush.error is None:
                await self._notify(group, entries, now)

        # Await every acknowledgement, then write back the groups whose publishes all succeeded.
        puts: list[tuple[_Flush, str, NflogEntry]] = []
        for group in groups:
            await self._settle(group, puts)
        try:
            await self._nflog.put_many([(key, entry) for _, key, entry in puts])
        except Exception as exc:  # noqa: BLE001 - these groups are retried (acked ones are skipped)
            for flush, _, _ in puts:
                flush.error = flush.error or exc
        for group in groups:
            if group.flush.error is None:
                remove = after_flush(group.snapshot.resolved, group.current)
                if len(remove) == len(group.current):
                    writes.empty.append(group.flush.gid)
                group.flush.done = (remove, self._next_tick(group.route, group.flush.tick_ns))
        writes.finished = [
            (f.gid, *f.done, f.tick_ns) for f in flushes if f.done is not None and f.error is None
        ]
        await self._store.write_flushes(writes)

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

    async def _load_inhibitors(
        self,
        groups: list[_Group],
        alerts: dict[str, StoredAlert],
        read: set[str],
        writes: FlushWrites,
    ) -> None:
        """Each group's Inhibitor, with the sources indexed under its targets' keys. `alerts`
        (those found among the fingerprints `read`) gains the sources found."""
        rules = self.config.inhibit_rules
        for group in groups:
            group.inhibitor = Inhibitor(rules)
            group.inhibit_keys = {
                _inhibit_key(rule, a.labels)
                for a in group.snapshot.alerts
                for rule in rules
                if rule.is_target(a.labels)
            }
        keys = sorted({key for g in groups for key in g.inhibit_keys})
        if not keys:
            return
        members = await self._store.inhibition_sources(keys)
        unread = sorted({fp for found in members.values() for fp in found} - read)
        alerts.update(await self._store.get_alerts(unread))
        for group in groups:
            try:
                sources = {fp for key in group.inhibit_keys for fp in members[key]}
                for fp in sorted(sources):
                    if fp in alerts:
                        group.inhibitor.observe(alerts[fp])
            except Exception as exc:  # noqa: BLE001 - this group fails, the others go on
                group.flush.error = exc
        for key, found in members.items():
            gone = [fp for fp in found if fp not in alerts]
            if gone:
                writes.forget_sources[key] = gone

    def _mute(self, group: _Group, now: int) -> list[tuple[StoredAlert, str, list[str]]]:
        """The mute stages: sets the group's passing alerts, returns the dropped ones."""
        route = group.route
        decisions: list[tuple[StoredAlert, str, list[str]]] = []
        passing: list[StoredAlert] = []
        for alert in group.snapshot.alerts:
            by = group.inhibitor.mutes(alert.labels, now)
            if by is not None:
                decisions.append((alert, "inhibited", [by]))
                continue
            passing.append(alert)
        reason = mute_reason(route, self.config.time_intervals, group.flush.tick_ns)
        if reason is not None:
            names = list(
                route.active_time_intervals
                if reason == "active_time_interval"
                else route.mute_time_intervals
            )
            decisions += [(a, "muted", names) for a in passing]
            passing = []
        for alert in passing:
            ids = self._silencer.mutes(alert.labels, now)
            if ids:
                decisions.append((alert, "silenced", ids))
            else:
                group.passing.append(alert)
        return decisions

    async def _announce(
        self, group: _Group, alert: StoredAlert, decision: str, by: list[str]
    ) -> None:
        """Publish a decision on `alerts.decisions` (once per repeat_interval: the caller
        checked); a send that fails fails the group."""
        data = {
            "fingerprint": alert.fingerprint,
            "labels": alert.labels,
            "receiver": group.route.receiver,
            "groupKey": group.record.group_key,
            "decision": decision,
            "by": by,
            "at": format_ns(group.flush.tick_ns),
        }
        try:
            value = encode(DECISIONS.schema, self._producer_name, data)
            ack = await self._producer.send(DECISIONS.name, value, key=alert.fingerprint.encode())
        except Exception as exc:  # noqa: BLE001 - this group fails, the others go on
            group.flush.error = exc
        else:
            group.acks.append(ack)

    def _nflog_keys(self, group: _Group) -> list[str]:
        receiver = group.route.receiver
        return [
            nflog_key(group.record.group_key, receiver, i.kind, i.index)
            for i in self._integrations.get(receiver, [])
        ]

    async def _notify(self, group: _Group, entries: Mapping[str, NflogEntry], now: int) -> None:
        """Send the group's notifications that the notification log does not make redundant."""
        route, record, alerts = group.route, group.record, group.passing
        receiver = route.receiver
        integrations = self._integrations.get(receiver, [])
        if not integrations:
            return  # a receiver without integrations is a black hole, as in Alertmanager
        # Flush copies: a firing alert has endsAt zeroed, a resolved one keeps its end.
        group.firing = {dedup_hash(a.labels) for a in alerts if a.ends_ns == 0}
        group.resolved = {dedup_hash(a.labels) for a in alerts if a.ends_ns != 0}
        topic = notifications_topic(receiver)
        for integration, key in zip(integrations, self._nflog_keys(group), strict=True):
            if not needs_update(
                entries.get(key),
                group.firing,
                group.resolved,
                integration.send_resolved,
                route.repeat_interval,
                now,
            ):
                continue
            sent = payload_alerts(alerts, integration.send_resolved)
            if sent is None:  # nothing to send (all resolved, send_resolved off): log only
                group.pending.append((integration, key, None))
                continue
            try:
                data = self._notification(
                    route,
                    record,
                    integration,
                    sent,
                    group.firing,
                    group.resolved,
                    group.flush.tick_ns,
                )
                value = encode(NOTIFICATIONS.schema, self._producer_name, data)
                ack = await self._producer.send(topic, value, key=record.group_key.encode())
            except Exception as exc:  # noqa: BLE001 - this group fails, the others go on
                group.flush.error = exc
                return
            group.pending.append((integration, key, ack))

    async def _settle(self, group: _Group, puts: list[tuple[_Flush, str, NflogEntry]]) -> None:
        """Await the group's acknowledgements (every one, failed or not); each notification
        the broker acknowledged gets its notification log entry."""
        for ack in group.acks:
            try:
                await ack
            except Exception as exc:  # noqa: BLE001 - this group fails, the others go on
                group.flush.error = group.flush.error or exc
        route = group.route
        for integration, key, pending in group.pending:
            if pending is not None:
                try:
                    await pending  # acknowledged by the broker: only then is it logged
                except Exception as exc:  # noqa: BLE001 - this group fails, the others go on
                    group.flush.error = group.flush.error or exc
                    continue
                self.notifications.labels(route.receiver, integration.name).inc()
            entry = new_entry(group.firing, group.resolved, self._clock(), route.repeat_interval)
            puts.append((group.flush, key, entry))

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


@dataclass(slots=True)
class _Flush:
    """One leased group's flush in a page."""

    gid: str
    tick_ns: int
    error: BaseException | None = None
    """Why it failed: then nothing moves on and the next pass retries it."""
    done: tuple[list[str], int] | None = None
    """Once flushed: the resolved alerts to drop from the group and its next tick."""


@dataclass(slots=True)
class _Group:
    """A group being flushed: what was read, what the mute stages let through, what was sent."""

    flush: _Flush
    record: GroupRecord
    route: Route
    current: dict[str, StoredAlert]
    snapshot: FlushSnapshot
    inhibitor: Inhibitor = field(default_factory=lambda: Inhibitor(()))
    inhibit_keys: set[str] = field(default_factory=set)
    passing: list[StoredAlert] = field(default_factory=list)
    firing: set[int] = field(default_factory=set)
    resolved: set[int] = field(default_factory=set)
    acks: list[Awaitable[Any]] = field(default_factory=list)
    """Of the decisions published."""
    pending: list[tuple[Integration, str, Awaitable[Any] | None]] = field(default_factory=list)
    """Per integration to log: its nflog key and the acknowledgement (None: nothing sent)."""


def _decision_digest(group: _Group, alert: StoredAlert, decision: str, by: list[str]) -> str:
    key = [group.record.group_key, group.route.receiver, alert.fingerprint, decision, by]
    return hashlib.sha1(orjson.dumps(key), usedforsecurity=False).hexdigest()


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
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]


def _inhibit_key(rule: InhibitRule, labels: Mapping[str, str]) -> str:
    """The index key of a source or target: its rule and a digest of its `equal` values.

    Short (the key's bytes count per source): a collision only adds candidates, which the
    Inhibitor then checks against the labels themselves."""
    values = "\xff".join(labels.get(name, "") for name in rule.equal)
    digest = hashlib.sha1(values.encode(), usedforsecurity=False).hexdigest()[:12]
    return f"{_rule_id(rule)}:{digest}"
