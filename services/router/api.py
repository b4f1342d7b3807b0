"""Alertmanager's v2 API for what the router holds: silences, alerts, groups, receivers, status.

Answers as Alertmanager 0.25 answers (shapes, orders, error bodies), so `amtool silence
add|query|expire` and `amtool alert query` work against Tocsin. Everything is read from Redis,
so any replica (or an ingest process mounting these routes) can serve it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
import yaml
from aiohttp import web

from schemas.config import Config, MatcherError, parse_matchers
from schemas.config.matchers import Matcher, compile_anchored, matches_all
from services import __version__
from services.router.alerts import StoredAlert, from_json, resolved_at
from services.router.inhibit import Inhibitor
from services.router.silence_store import SilenceStore
from services.router.silences import (
    NOT_FOUND,
    SilenceError,
    api_sort,
    api_time,
    expire,
    parse_silence_id,
    to_api,
    validate_postable,
)
from services.router.store import RouterStore
from services.runtime.auth import Authenticator

__all__ = ["RouterAPI"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Router(Protocol):
    """What the API needs of the router: its config and a way to reload it."""

    @property
    def config(self) -> Config: ...

    async def reload(self) -> str | None: ...


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


def _error(exc: SilenceError) -> web.Response:
    return web.Response(body=exc.body(), status=exc.status, content_type="application/json")


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "true").lower() != "false"


class RouterAPI:
    """The routes; mount them on any aiohttp application."""

    def __init__(
        self,
        router: _Router,
        store: RouterStore,
        silences: SilenceStore,
        auth: Authenticator,
        *,
        clock: Callable[[], int] = time.time_ns,
        started_ns: int | None = None,
    ) -> None:
        self._router = router
        self._store = store
        self._silences = silences
        self._auth = auth
        self._clock = clock
        self._started = started_ns or clock()

    def routes(self) -> list[web.RouteDef]:
        """Every route of the API."""
        guard = self._guarded
        return [
            web.get("/api/v2/alerts", guard(self.get_alerts)),
            web.get("/api/v2/alerts/groups", guard(self.get_groups)),
            web.get("/api/v2/silences", guard(self.get_silences)),
            web.post("/api/v2/silences", guard(self.post_silence)),
            web.get("/api/v2/silence/{id}", guard(self.get_silence)),
            web.delete("/api/v2/silence/{id}", guard(self.delete_silence)),
            web.get("/api/v2/receivers", guard(self.get_receivers)),
            web.get("/api/v2/status", guard(self.get_status)),
            web.post("/-/reload", guard(self.reload)),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            denied = self._auth.check(request)
            return denied if denied is not None else await handler(request)

        return guarded

    # -- silences ---------------------------------------------------------------------------

    async def post_silence(self, request: web.Request) -> web.Response:
        """Create or update a silence (`amtool silence add`)."""
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            return _error(SilenceError(400, f'parsing silence body from "" failed: {exc}'))
        now = self._clock()
        await self._silences.refresh()
        existing = self._silences.all()
        try:
            silence, replaced = validate_postable(body, now, existing)
        except SilenceError as exc:
            if exc.expired_id is not None:  # Alertmanager 0.25 expires it even so
                await self._silences.save(expire(existing[exc.expired_id], now))
            return _error(exc)
        changed = [silence]
        if replaced is not None:
            changed.insert(0, expire(existing[replaced], now))
        await self._silences.save(*changed)
        return _json({"silenceID": silence.id})

    async def get_silences(self, request: web.Request) -> web.Response:
        """List silences, Alertmanager's order; `filter` keeps those with an identical matcher."""
        try:
            wanted = self._filters(request)
        except MatcherError as exc:
            return _json(str(exc), 400)
        await self._silences.refresh()
        now = self._clock()
        found = [
            s
            for s in self._silences.all().values()
            if all(any(_same(m, w) for m in s.matchers) for w in wanted)
        ]
        return _json([to_api(s, now) for s in api_sort(found, now)])

    async def get_silence(self, request: web.Request) -> web.Response:
        """One silence by id."""
        try:
            silence_id = parse_silence_id(request.match_info["id"])
        except SilenceError as exc:
            return _error(exc)
        await self._silences.refresh()
        silence = self._silences.all().get(silence_id)
        if silence is None:
            return web.Response(status=404)
        return _json(to_api(silence, self._clock()))

    async def delete_silence(self, request: web.Request) -> web.Response:
        """Expire a silence (`amtool silence expire`)."""
        try:
            silence_id = parse_silence_id(request.match_info["id"])
        except SilenceError as exc:
            return _error(exc)
        await self._silences.refresh()
        silence = self._silences.all().get(silence_id)
        if silence is None:
            return _error(SilenceError(500, NOT_FOUND))  # sic: Alertmanager 0.25 answers 500
        await self._silences.save(expire(silence, self._clock()))
        return web.Response(status=200)

    # -- alerts -----------------------------------------------------------------------------

    async def _alerts(self) -> tuple[list[StoredAlert], Inhibitor, int]:
        now = self._clock()
        alerts = [from_json(a) for a in await self._store.scan_alerts()]
        inhibitor = Inhibitor(self._router.config.inhibit_rules)
        for alert in alerts:
            inhibitor.observe(alert)
        await self._silences.refresh()
        return [a for a in alerts if not resolved_at(a, now)], inhibitor, now

    def _filters(self, request: web.Request) -> list[Matcher]:
        found: list[Matcher] = []
        for text in request.query.getall("filter", []):
            found += parse_matchers(text)
        return found

    def _receivers_of(self, alert: StoredAlert) -> list[str]:
        names: list[str] = []
        for route in self._router.config.route.match(alert.labels):
            if route.receiver not in names:
                names.append(route.receiver)
        return names

    def _alert_json(
        self, alert: StoredAlert, inhibitor: Inhibitor, now: int
    ) -> tuple[dict[str, Any], bool, bool]:
        by = inhibitor.mutes(alert.labels, now)
        inhibited_by = [by] if by is not None else []
        silenced_by = self._silences.mutes(alert.labels, now)
        body: dict[str, Any] = {
            "annotations": alert.annotations,
            "endsAt": api_time(alert.ends_ns),
            "fingerprint": alert.fingerprint,
            "receivers": [{"name": n} for n in self._receivers_of(alert)],
            "startsAt": api_time(alert.starts_ns),
            "status": {
                "inhibitedBy": inhibited_by,
                "silencedBy": silenced_by,
                "state": "suppressed" if inhibited_by or silenced_by else "active",
            },
            "updatedAt": api_time(alert.updated_ns),
        }
        if alert.generator_url:
            body["generatorURL"] = alert.generator_url
        body["labels"] = alert.labels
        return body, bool(silenced_by), bool(inhibited_by)

    async def _selected(
        self, request: web.Request
    ) -> list[tuple[StoredAlert, dict[str, Any]]] | web.Response:
        try:
            wanted = self._filters(request)
            receiver = request.query.get("receiver")
            receiver_re = compile_anchored(receiver) if receiver else None
        except MatcherError as exc:
            return _json(str(exc), 400)
        show_active, show_silenced = _flag(request, "active"), _flag(request, "silenced")
        show_inhibited = _flag(request, "inhibited")
        alerts, inhibitor, now = await self._alerts()
        chosen = []
        for alert in alerts:
            if not matches_all(wanted, alert.labels):
                continue
            body, silenced, inhibited = self._alert_json(alert, inhibitor, now)
            if receiver_re is not None and not any(
                receiver_re.match(r["name"]) for r in body["receivers"]
            ):
                continue
            if (silenced and not show_silenced) or (inhibited and not show_inhibited):
                continue
            if not silenced and not inhibited and not show_active:
                continue
            chosen.append((alert, body))
        chosen.sort(key=lambda pair: pair[0].fingerprint)
        return chosen

    async def get_alerts(self, request: web.Request) -> web.Response:
        """The firing alerts with their receivers and state (`amtool alert query`)."""
        chosen = await self._selected(request)
        if isinstance(chosen, web.Response):
            return chosen
        return _json([body for _, body in chosen])

    async def get_groups(self, request: web.Request) -> web.Response:
        """The alerts by aggregation group (route, group labels)."""
        chosen = await self._selected(request)
        if isinstance(chosen, web.Response):
            return chosen
        groups: dict[tuple[int, str], dict[str, Any]] = {}
        for alert, body in chosen:
            for route in self._router.config.route.match(alert.labels):
                key = route.group_key(alert.labels)
                group = groups.setdefault(
                    (id(route), key),
                    {"alerts": [], "labels": route.group_labels(alert.labels),
                     "receiver": {"name": route.receiver}},
                )  # fmt: skip
                group["alerts"].append(body)
        return _json(list(groups.values()))

    # -- the rest ---------------------------------------------------------------------------

    async def get_receivers(self, _: web.Request) -> web.Response:
        """Every receiver name."""
        return _json([{"name": r.name} for r in self._router.config.receivers])

    async def get_status(self, _: web.Request) -> web.Response:
        """Version, uptime and the config in force (`amtool config show`)."""
        dumped = self._router.config.model_dump(mode="json", by_alias=True, exclude={"source"})
        original = yaml.safe_dump(_masked(dumped), sort_keys=False, allow_unicode=True)
        return _json(
            {
                "cluster": {"peers": [], "status": "disabled"},
                "config": {"original": original},
                "uptime": api_time(self._started),
                # `version` is the Alertmanager release whose API and semantics Tocsin serves
                # (amtool compares it with its own); Tocsin's own version is the revision.
                "versionInfo": {
                    "branch": "tocsin",
                    "buildDate": "",
                    "buildUser": "",
                    "goVersion": "",
                    "revision": f"tocsin-{__version__}",
                    "version": "0.25.0",
                },
            }
        )

    async def reload(self, _: web.Request) -> web.Response:
        """Reload the config file; 500 with the error when it is invalid (the old one stays)."""
        error = await self._router.reload()
        if error is None:
            return web.Response(status=200)
        return web.Response(status=500, text=f"failed to reload config: {error}")


def _same(a: Matcher, b: Matcher) -> bool:
    return (a.name, a.type, a.value) == (b.name, b.type, b.value)


def _masked(value: Any) -> Any:
    """The dumped config with secrets shown as Alertmanager shows them."""
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return "<secret>" if value == "**********" else value
