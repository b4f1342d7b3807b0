"""The real Alertmanager 0.25 and Tocsin side by side: same config, same alerts, same notifications.

Both run `alertmanager.yml` with short timers (group_wait 1s, group_interval 2s). The same alert
sequence is posted to both at the same moments: alerts firing, more firing joining a group,
resolving, inhibition (and its end when the source resolves), silences made through each one's
own API (one expired half-way), `continue` to two receivers, and a receiver with
send_resolved false. Alertmanager's notifications are what its webhook posts to a recorder here;
Tocsin's are the messages its router publishes on `notifications.<receiver>`. Per (receiver,
group key) both must give the same sequence: same top-level status, same alerts (fingerprint and
status) in the same order. Groups tick relative to their creation on each side, so sequences are
compared per group, never absolute times; events land mid-way between ticks.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiokafka import AIOKafkaConsumer

from schemas.alert import fingerprint
from schemas.timefmt import format_ns, now_ns
from schemas.topics import notifications_topic
from services.ingest import IngestService
from services.notifiers.service import NotifierService
from services.router.service import RouterService
from services.runtime.auth import Authenticator
from services.runtime.embedded import free_port
from services.runtime.health import HealthRegistry
from services.runtime.kafka import KafkaFactory
from services.runtime.metrics import new_registry
from services.runtime.settings import load_settings
from tests.conftest import binary
from tests.helpers import run_alertmanager

pytestmark = pytest.mark.binaries

GROUP_INTERVAL = 2.0
EXTERNAL_URL = "http://alertmanager.example:9093"
#: A notification as compared: top-level status and (fingerprint, status) of each alert, in order.
Note = tuple[str, tuple[tuple[str, str], ...]]
#: Per (receiver, group key), the notifications in the order they were sent.
Sequences = dict[tuple[str, str], list[Note]]

CONFIG = """
route:
  receiver: void
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
  routes:
    - matchers: ['run="{run}"']
      receiver: team-{run}
      routes:
        - matchers: ['page="yes"']
          receiver: pager-{run}
          continue: true
        - matchers: ['team="ops"']
          receiver: ops-{run}
        - matchers: ['quiet="yes"']
          receiver: quiet-{run}
inhibit_rules:
  - source_matchers: ['severity="critical"', 'run="{run}"']
    target_matchers: ['severity="warning"']
    equal: [instance, run]
receivers:
  - name: void
  - name: team-{run}
    webhook_configs: [{{url: "{hook}"}}]
  - name: pager-{run}
    webhook_configs: [{{url: "{hook}"}}]
  - name: ops-{run}
    webhook_configs: [{{url: "{hook}"}}]
  - name: quiet-{run}
    webhook_configs: [{{url: "{hook}", send_resolved: false}}]
"""


@dataclass
class Recorder:
    """An HTTP server standing in for the webhook receiver: records every payload, answers 200.

    Tocsin's notifiers add an Idempotency-Key header; Alertmanager does not. That is how the
    recorder tells the two senders apart (their bodies must be the same bytes)."""

    url: str
    payloads: list[dict[str, Any]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    tocsin_raw: list[bytes] = field(default_factory=list)


@dataclass
class Pair:
    """Alertmanager and Tocsin on the same config, plus the recorder of Alertmanager's webhooks."""

    run: str
    am_url: str
    tocsin_url: str
    bootstrap: str
    recorder: Recorder
    receivers: tuple[str, ...]
    http: aiohttp.ClientSession


@pytest.fixture
async def recorder() -> AsyncIterator[Recorder]:
    port = free_port()
    rec = Recorder(f"http://127.0.0.1:{port}/hook")

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        if "Idempotency-Key" in request.headers:
            rec.tocsin_raw.append(body)
        else:
            rec.raw.append(body)
            rec.payloads.append(orjson.loads(body))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield rec
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def run_tocsin(config: Path, run: str, bootstrap: str) -> AsyncIterator[str]:
    """Ingest, router and notifiers in one process (as `tocsin run`); yields the URL."""
    port = free_port()
    settings = load_settings(
        {
            "config.file": str(config),
            "web.listen_address": f"127.0.0.1:{port}",
            "router.group_id": f"router-{run}",
            "notifiers.group_id": f"notifiers-{run}",
            "web.external_url": EXTERNAL_URL,
            "router.redis_prefix": f"test:{run}:",
            "router.poll_interval": 0.05,
        }
    )
    factory = KafkaFactory(settings.kafka, bootstrap, embedded=True)
    await factory.ensure_topics(["alerts"])
    redis = aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    registry = new_registry()
    notifiers = NotifierService(settings, factory, redis, registry)
    await notifiers.start()
    router = RouterService(settings, factory, redis, registry)
    await router.start()
    ingest = IngestService(
        settings, factory, registry, HealthRegistry("t"), version="t",
        extra_routes=router.api(Authenticator(None, None, None)).routes(),
    )  # fmt: skip
    await ingest.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await ingest.stop()
        await router.stop()
        await notifiers.stop()
        async for key in redis.scan_iter(match=f"test:{run}:*"):
            await redis.delete(key)
        await redis.aclose()


@pytest.fixture
async def pair(kafka_bootstrap: str, recorder: Recorder, tmp_path: Path) -> AsyncIterator[Pair]:
    run = f"r{uuid.uuid4().hex[:8]}"
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(run=run, hook=recorder.url))
    receivers = tuple(f"{name}-{run}" for name in ("team", "pager", "ops", "quiet"))
    async with (
        run_alertmanager(
            binary("prometheus-alertmanager"),
            config,
            tmp_path / "am-data",
            external_url=EXTERNAL_URL,
        ) as am_url,  # fmt: skip
        run_tocsin(config, run, kafka_bootstrap) as tocsin_url,
        aiohttp.ClientSession() as http,
    ):
        p = Pair(run, am_url, tocsin_url, kafka_bootstrap, recorder, receivers, http)
        await wait_caught_up(p)
        yield p


async def post_json(http: aiohttp.ClientSession, url: str, body: Any) -> Any:
    async with http.post(url, json=body) as r:
        assert r.status == 200, (url, r.status, await r.text())
        return await r.json(content_type=None)


async def wait_caught_up(p: Pair) -> None:
    """The router replays the session's whole `alerts` topic first: wait until it is through.

    A marker alert without the run label (it routes to the black-hole root receiver) is posted
    to Tocsin only; once the router's API lists it, the scenario's alerts arrive without lag.
    """
    marker = {"alertname": "SideBySideReady", "ready": p.run}
    await post_json(p.http, f"{p.tocsin_url}/api/v2/alerts", [{"labels": marker}])
    for _ in range(300):
        async with p.http.get(
            f"{p.tocsin_url}/api/v2/alerts", params={"filter": f'ready="{p.run}"'}
        ) as r:
            if await r.json():
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the router never caught up with the alerts topic")


async def both(p: Pair, path: str, body: Any) -> tuple[Any, Any]:
    """POST the same body to Alertmanager and Tocsin at the same moment."""
    am, tocsin = await asyncio.gather(
        post_json(p.http, f"{p.am_url}{path}", body),
        post_json(p.http, f"{p.tocsin_url}{path}", body),
    )
    return am, tocsin


async def expire_both(p: Pair, ids: tuple[str, str]) -> None:
    async def delete(url: str) -> None:
        async with p.http.delete(url) as r:
            assert r.status == 200, (url, r.status, await r.text())

    await asyncio.gather(
        delete(f"{p.am_url}/api/v2/silence/{ids[0]}"),
        delete(f"{p.tocsin_url}/api/v2/silence/{ids[1]}"),
    )


def silence(run: str, **matchers: str) -> dict[str, Any]:
    """A one-hour silence of this run's alerts with the given labels."""
    equal = [{"name": k, "value": v, "isRegex": False} for k, v in matchers.items()]
    return {
        "matchers": [{"name": "run", "value": run, "isRegex": False}, *equal],
        "startsAt": format_ns(now_ns()),
        "endsAt": format_ns(now_ns() + 3600 * 1_000_000_000),
        "createdBy": "side-by-side",
        "comment": "test",
    }


def note(data: dict[str, Any]) -> tuple[tuple[str, str], Note]:
    """The part of a notification both sides must agree on, keyed by (receiver, group key)."""
    alerts = tuple((a["fingerprint"], a["status"]) for a in data["alerts"])
    return (data["receiver"], data["groupKey"]), (data["status"], alerts)


def sequences(notifications: list[dict[str, Any]]) -> Sequences:
    found: Sequences = {}
    for data in notifications:
        key, value = note(data)
        found.setdefault(key, []).append(value)
    return found


async def published(bootstrap: str, topics: list[str]) -> list[dict[str, Any]]:
    """Every message the router published on `topics` (unique to this run), in offset order."""
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False,
    )  # fmt: skip
    await consumer.start()
    found: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(15):
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=100)  # no group: assigns every partition
            assigned = list(consumer.assignment())
            ends = await consumer.end_offsets(assigned)
            await consumer.seek_to_beginning(*assigned)
            while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found += [orjson.loads(r.value)["data"] for r in records]
    finally:
        await consumer.stop()
    return found


def cast(run: str) -> dict[str, dict[str, str]]:
    """The scenario's alerts by short name; all carry the run label that routes them."""

    def labels(name: str, **extra: str) -> dict[str, str]:
        return {"alertname": name, "run": run, **extra}

    return {
        "g1": labels("Grp", i="1"),
        "g2": labels("Grp", i="2"),
        "hot": labels("Hot", severity="critical", instance="x"),
        "warm": labels("Warm", severity="warning", instance="x"),
        "hush": labels("Hush"),
        "part1": labels("Part", i="1"),
        "part2": labels("Part", i="2"),
        "page1": labels("Page", page="yes", team="ops"),
        "page2": labels("Page", page="yes", team="ops", i="2"),
        **{f"q{i}": labels("Quiet", quiet="yes", i=str(i)) for i in (1, 2, 3)},
    }


class Player:
    """Posts to both sides at offsets from t=0; remembers each alert's startsAt for resolving."""

    def __init__(self, p: Pair) -> None:
        self.p = p
        self.alerts = cast(p.run)
        self._starts: dict[str, str] = {}
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()

    async def at(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, self._t0 + seconds - self._loop.time()))

    async def post(self, fire: tuple[str, ...] = (), resolve: tuple[str, ...] = ()) -> None:
        """Fire (startsAt now, explicit, so neither side flushes early) and resolve (endsAt now)."""
        now = format_ns(now_ns())
        body: list[dict[str, Any]] = []
        for name in fire:
            self._starts[name] = now
            body.append({"labels": self.alerts[name], "startsAt": now})
        for name in resolve:
            body.append(
                {"labels": self.alerts[name], "startsAt": self._starts[name], "endsAt": now}
            )
        await both(self.p, "/api/v2/alerts", body)


async def play(p: Pair) -> None:
    """The scenario. Every group is created at t=0, so both sides tick at t = 1, 3, 5, 7 s;
    events land half-way between ticks (a side's group timers may start up to ~1 s later than
    the other's and still see each event between the same two ticks). The comments say what
    each tick notifies."""
    hush = await both(p, "/api/v2/silences", silence(p.run, alertname="Hush"))
    await both(p, "/api/v2/silences", silence(p.run, alertname="Part", i="2"))
    player = Player(p)
    await player.post(fire=("g1", "hot", "warm", "hush", "part1", "part2", "page1", "q1", "q2"))
    # t=1: Grp [g1], Hot [hot], Part [part1], Page [page1] to pager and ops, Quiet [q1 q2];
    #      Warm inhibited by Hot, Hush and part2 silenced
    await player.at(2)
    await asyncio.gather(
        player.post(fire=("g2", "page2"), resolve=("q1",)),
        expire_both(p, (hush[0]["silenceID"], hush[1]["silenceID"])),
    )
    # t=3: Grp [g1 g2], Page [page1 page2] twice, Hush [hush]; Quiet nothing (q2 was sent)
    await player.at(4)
    await player.post(fire=("q3",), resolve=("g1", "hot", "part1", "page1"))
    # t=5: Grp [g1- g2], Hot [hot-], Warm [warm] (its source resolved), Part [part1-] (part2
    #      fires but is silenced), Page [page1- page2] twice, Quiet [q2 q3]
    await player.at(6)
    await player.post(resolve=("g2", "warm", "hush", "part2", "page2", "q2", "q3"))
    # t=7: Grp [g2-], Warm [warm-], Hush [hush-], Page [page2-] twice; Part nothing (part2
    #      silenced), Quiet nothing (all resolved, send_resolved false)
    await player.at(7 + 2.5 * GROUP_INTERVAL)


def expected(run: str) -> Sequences:
    """What Alertmanager 0.25 sends for `play` (its own documented semantics, §6-§10)."""
    alerts = cast(run)
    team, pager, ops, quiet = (f"{n}-{run}" for n in ("team", "pager", "ops", "quiet"))
    f, r = "firing", "resolved"

    def key(receiver: str, route: str, name: str) -> tuple[str, str]:
        return receiver, f'{{}}/{{run="{run}"}}{route}:{{alertname="{name}"}}'

    def n(status: str, *members: tuple[str, str]) -> Note:
        return status, tuple((fingerprint(alerts[a]), s) for a, s in members)

    page = [n(f, ("page1", f)), n(f, ("page1", f), ("page2", f)),
            n(f, ("page1", r), ("page2", f)), n(r, ("page2", r))]  # fmt: skip
    return {
        key(team, "", "Grp"): [
            n(f, ("g1", f)),
            n(f, ("g1", f), ("g2", f)),
            n(f, ("g1", r), ("g2", f)),
            n(r, ("g2", r)),
        ],
        key(team, "", "Hot"): [n(f, ("hot", f)), n(r, ("hot", r))],
        key(team, "", "Warm"): [n(f, ("warm", f)), n(r, ("warm", r))],
        key(team, "", "Hush"): [n(f, ("hush", f)), n(r, ("hush", r))],
        key(team, "", "Part"): [n(f, ("part1", f)), n(r, ("part1", r))],
        key(pager, '/{page="yes"}', "Page"): page,
        key(ops, '/{team="ops"}', "Page"): page,
        key(quiet, '/{quiet="yes"}', "Quiet"): [
            n(f, ("q1", f), ("q2", f)),
            n(f, ("q2", f), ("q3", f)),
        ],
    }


def readable(run: str, found: Sequences) -> dict[str, list[str]]:
    """Sequences with alert names for fingerprints, for assertion messages."""
    names = {fingerprint(labels): name for name, labels in cast(run).items()}
    mark = {"firing": "", "resolved": "-"}
    return {
        f"{receiver.removesuffix(f'-{run}')} {key.split(':', 1)[1]}": [
            f"{status}: " + " ".join(names.get(fp, fp) + mark[s] for fp, s in alerts)
            for status, alerts in notes
        ]
        for (receiver, key), notes in sorted(found.items())
    }


async def test_tocsin_notifies_as_alertmanager_does(pair: Pair) -> None:
    await play(pair)
    topics = [notifications_topic(r) for r in pair.receivers]
    tocsin = await published(pair.bootstrap, topics)
    am = list(pair.recorder.payloads)
    assert {n["version"] for n in am} == {"4"}
    # one webhook per receiver: one message per flushed group (Tocsin publishes per integration)
    assert {n["integration"] for n in tocsin} == {"webhook[0]"}
    assert readable(pair.run, sequences(tocsin)) == readable(pair.run, sequences(am))
    assert sequences(tocsin) == sequences(am)
    # and the scenario did what it says (guards against both sides sending nothing alike)
    assert readable(pair.run, sequences(am)) == readable(pair.run, expected(pair.run))
    # Through Tocsin's notifiers, the webhook bodies are Alertmanager's, byte for byte, in the
    # same order per group (start and end times were posted explicitly, the same to both).
    for _ in range(100):
        if len(pair.recorder.tocsin_raw) >= len(pair.recorder.raw):
            break
        await asyncio.sleep(0.1)
    assert by_group(pair.recorder.tocsin_raw) == by_group(pair.recorder.raw)


def by_group(bodies: list[bytes]) -> dict[tuple[str, str], list[bytes]]:
    """Webhook bodies in arrival order per (receiver, group key)."""
    found: dict[tuple[str, str], list[bytes]] = {}
    for body in bodies:
        data = orjson.loads(body)
        found.setdefault((data["receiver"], data["groupKey"]), []).append(body)
    return found
