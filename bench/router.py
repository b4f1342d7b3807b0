"""Router throughput and memory: Tocsin's dispatcher on Redis against a real Alertmanager 0.25.

Run from the repository root (Redis on 127.0.0.1:6379; its DB 15 must be empty, it is flushed
before it is given back):

    .venv/bin/python bench/router.py                      # 100k alerts, 2-3 minutes
    .venv/bin/python bench/router.py --json /tmp/router.json
    .venv/bin/python bench/router.py --million --skip-e2e --skip-alertmanager   # hold 1M
    .venv/bin/python bench/router.py --skip-dispatcher --skip-e2e --am-settle 330

What it measures
----------------
Everything uses the guide's routing config (tests/testdata/config/guide-alertmanager.yml: four
routes under the root, grouping by alertname, cluster and service; two inhibition rules) and one
deterministic alert population: Prometheus-like alerts (alertname, instance, job, severity,
category, cluster, service; summary and description annotations; startsAt, endsAt an hour out,
generatorURL) from 40 rules over 25 alertnames (warning/critical pairs, so that inhibition has
work), 8 alerts per instance, instances spread over 8 clusters and as many services as give about
10 alerts per aggregation group. Every route gets alerts. Alerts are fresh (startsAt = when they
are generated or posted): an alert older than its route's group_wait makes a new group flush at
once, in Alertmanager and in Tocsin alike, which would tie the figures to the run's timing.

1. Dispatcher alone: the per-process routing + grouping + Redis cost. `Dispatcher.receive` on
   batches of `--batch` alerts (2000, the router's max_records) against the real Redis, with a
   publisher that acknowledges at once and no silences. Only the `receive` calls are timed
   (building a batch's Alert models is not: the service does that while decoding Kafka records,
   which part 2 counts). Phases: insert N = `--alerts` new alerts into an empty store (its first
   N/10 reported apart as "start"), insert N/10 more new alerts with N held, re-send N/10 held
   alerts (Prometheus re-sends every firing alert each evaluation: the steady state), then flush
   every group with `Dispatcher.flush_due` on a clock frozen past the longest group_wait (each
   group flushes once; notifications and decisions go to the acknowledging publisher).
   `--million` sets N to 1,000,000 (the windows become 100k alerts).
2. End to end through Kafka: an embedded Tansu broker; `--e2e-alerts` messages are produced to
   `alerts` first (enveloped as ingest does, keyed by fingerprint; not timed), then a
   `RouterService` starts on its own Redis prefix and consumer group, and the bench polls
   `tocsin_router_alerts_received_total` every 20 ms until it counts them all. Reported: alerts/s
   from the first look that saw alerts to the last alert, and the time `start()` took (mostly the
   consumer group join). The service's flush loop runs meanwhile, as in production: groups whose
   10 s group_wait passes during the run flush and publish to the broker.
3. Alertmanager 0.25 (/usr/bin/prometheus-alertmanager) with the same routes and inhibition
   rules; the receivers keep their names but lose their integrations, so it spends nothing on
   failing sends. The same alerts (`--am-alerts`) are POSTed to /api/v2/alerts, `--am-batch` per
   request over `--am-connections` keep-alive connections from Python threads, bodies serialized
   beforehand (the client's CPU is reported: a few hundredths of a core, not the limit). Twice:
   new alerts, then the same again (re-send). Reported: alerts/s answered 2xx; when
   `alertmanager_dispatcher_aggregation_groups` showed every group (Alertmanager routes
   asynchronously, but its API blocks once the dispatcher is 200 alerts behind, so routing ends
   with the last answer; a scrape of Alertmanager holding 100k alerts takes about a second, so
   the time is "by the first scrape"); and `alertmanager_alerts` by state for `--am-settle`
   seconds. An alert is `active` (or `suppressed`) there only once its group's first flush ran
   the inhibit and silence stages, i.e. after group_wait: 10 s, 30 s and 5 min on the guide's
   routes, so `--am-settle 330` at least is needed to see them all (with the guide's inhibition
   rules Alertmanager 0.25 takes much longer: bench/README.md).
4. Redis bytes per active alert after the receive phases: `MEMORY USAGE key SAMPLES 0` summed
   over the bench prefix's keys (SCAN), by key kind, divided by the alerts held, and the server's
   `used_memory` delta (server-wide: other clients of the same Redis disturb it); again after
   the flush, which adds the notification log and the announced decisions. For Alertmanager,
   `go_memstats_heap_inuse_bytes` before and after, divided by the alerts.

Accounting: the dispatcher phase checks that Redis holds one `a:` key per alert, as many groups
as the bench computes with the config's own route matching, and that every group flushed once;
the end-to-end phase that the counter reached exactly the produced count; Alertmanager that every
answer was 2xx and `alertmanager_alerts_received_total` grew by exactly the alerts posted. Per
phase: CPU of this process, of Redis (INFO cpu) and of the broker's and Alertmanager's process
trees, CPU per 1,000 alerts, Redis commands per alert (INFO commandstats; like INFO cpu it is
server-wide, so other clients of the same Redis add to it), and the CPU that
*other* processes on the machine used meanwhile (from /proc/stat): everything shares the same
cores, so a phase where others used more than a tenth of a core or so is disturbed.
Exit status: 0 when every check passed, 1 otherwise, 2 when something needed is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from ingest import (
    ALERTMANAGER_BIN,
    alertmanager_argv,
    command_version,
    http_get,
    metric_sum,
    process_tree_cpu_s,
    stop_process,
)
from redis.exceptions import RedisError

from schemas.alert import Alert, fingerprint
from schemas.config import Config, load
from schemas.config.errors import format_path
from schemas.envelope import encode
from schemas.timefmt import format_ns
from schemas.topics import ALERTS
from services.router.dispatcher import Dispatcher
from services.router.service import RouterService
from services.router.store import RouterStore
from services.runtime.embedded import EmbeddedError, EmbeddedKafka, free_port
from services.runtime.kafka import KafkaFactory
from services.runtime.logging import configure_logging
from services.runtime.metrics import new_registry
from services.runtime.nflog import RedisNflog
from services.runtime.redis import RedisClient, connect
from services.runtime.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
CODE_UNDER_TEST = ("services/router", "services/runtime", "schemas")  # uncommitted changes noted
GUIDE_CONFIG = REPO / "tests" / "testdata" / "config" / "guide-alertmanager.yml"
GUIDE_ENV = {
    "SMTP_PASSWORD": "bench-password",
    "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/slack",
    "PAGERDUTY_WEBHOOK_URL": "http://127.0.0.1:9/pagerduty",
}
RECEIVED = "tocsin_router_alerts_received_total"
NS = 1_000_000_000
PERMUTE = 2_147_483_647  # prime: i -> i * P mod n is a bijection of range(n) for n < P
REQUEST_SIZE = 100  # alerts sharing one receivedAt, as one ingest request of 100 would
ALERTS_PER_INSTANCE = 8
ALERTS_PER_GROUP = 10
LEASE_MS = 30_000
READY_TIMEOUT_S = 60.0

# (alertname, category or "", job, severities): pairs are adjacent rules with the same alertname.
FAMILIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("BruteForceLoginAttempts", "security", "auth", ("warning", "critical")),
    ("SuspiciousOutboundTraffic", "security", "node", ("warning", "critical")),
    ("UnauthorizedAPIAccess", "security", "api", ("warning", "critical")),
    ("CertificateExpiringSoon", "security", "blackbox", ("warning", "critical")),
    ("PrivilegedContainerStarted", "security", "kubernetes", ("critical",)),
    ("HighCPUUsage", "performance", "node", ("warning", "critical")),
    ("HighMemoryUsage", "performance", "node", ("warning", "critical")),
    ("HighRequestLatency", "performance", "api", ("warning", "critical")),
    ("HighErrorRate", "performance", "api", ("warning", "critical")),
    ("SlowDatabaseQueries", "performance", "postgres", ("warning",)),
    ("ConnectionPoolSaturated", "performance", "postgres", ("warning", "critical")),
    ("DiskSpaceLow", "infrastructure", "node", ("warning", "critical")),
    ("InstanceDown", "infrastructure", "blackbox", ("critical",)),
    ("NodeFilesystemReadOnly", "infrastructure", "node", ("critical",)),
    ("NetworkInterfaceErrors", "infrastructure", "node", ("warning",)),
    ("KubePodCrashLooping", "infrastructure", "kubernetes", ("warning", "critical")),
    ("DiskWillFillIn4Hours", "infrastructure", "node", ("warning",)),
    ("ClockSkewDetected", "infrastructure", "node", ("warning",)),
    ("ReplicationLagHigh", "infrastructure", "postgres", ("warning", "critical")),
    ("TargetScrapeFailed", "", "prometheus", ("warning",)),
    ("PrometheusRuleFailures", "", "prometheus", ("warning", "critical")),
    ("ConfigReloadFailed", "", "prometheus", ("warning",)),
    ("BackupJobFailed", "", "cron", ("warning", "critical")),
    ("QueueBacklogGrowing", "", "worker", ("info", "warning")),
    ("DeploymentReplicasMismatch", "", "kubernetes", ("warning",)),
)
RULES: tuple[tuple[str, str, str, str], ...] = tuple(
    (name, category, job, severity)
    for name, category, job, severities in FAMILIES
    for severity in severities
)
# An instance fires rules base+0, base+1 (a warning/critical pair when base starts one) and
# base+8, +15, ...: all distinct modulo len(RULES).
OFFSETS = (0, 1, 8, 15, 22, 29, 36, 43)
CLUSTERS = (
    "prod-eu-1", "prod-eu-2", "prod-us-1", "prod-us-2",
    "prod-ap-1", "staging-eu", "staging-us", "dev",
)  # fmt: skip
ALERTNAMES = len({rule[0] for rule in RULES})
assert len({o % len(RULES) for o in OFFSETS}) == len(OFFSETS) == ALERTS_PER_INSTANCE


class BenchError(RuntimeError):
    """Something the benchmark needs failed (a service did not start, a count is off)."""


# --------------------------------------------------------------------------- the alerts


@dataclass(frozen=True)
class Workload:
    """The alert population: index k -> one alert, the same label set in every part."""

    services: int

    @classmethod
    def for_size(cls, alerts: int) -> Workload:
        """Enough services for about ALERTS_PER_GROUP alerts per group when `alerts` are held."""
        return cls(max(1, round(alerts / (ALERTNAMES * len(CLUSTERS) * ALERTS_PER_GROUP))))

    def labels(self, k: int) -> dict[str, str]:
        """The label set of alert `k` (instance k // 8, its (k % 8)th rule)."""
        inst, j = divmod(k, ALERTS_PER_INSTANCE)
        base = (inst * 2654435761 % 2**32) * len(RULES) >> 32  # mixed: not tied to the cluster
        name, category, job, severity = RULES[(base + OFFSETS[j]) % len(RULES)]
        cluster = CLUSTERS[inst % len(CLUSTERS)]
        labels = {
            "alertname": name,
            "instance": f"node-{inst:07d}.{cluster}.example.net:9100",
            "job": job,
            "severity": severity,
            "cluster": cluster,
            "service": f"svc-{(inst // len(CLUSTERS)) % self.services:04d}",
        }
        if category:
            labels["category"] = category
        return labels

    def postable(self, k: int, now_ns: int) -> dict[str, Any]:
        """The alert as Prometheus POSTs it, firing since `now_ns`.

        Fresh alerts: one older than its route's group_wait would make a new group flush at
        once (Alertmanager's rule, kept by Tocsin), whatever the run's timing. endsAt is an
        hour out, so nothing resolves during the run."""
        labels = self.labels(k)
        name, instance, cluster = labels["alertname"], labels["instance"], labels["cluster"]
        return {
            "labels": labels,
            "annotations": {
                "summary": f"{name} on {instance}",
                "description": (
                    f"{name} has been firing on {instance} ({cluster}/{labels['service']}) "
                    "for more than 5 minutes."
                ),
            },
            "startsAt": format_ns(now_ns),
            "endsAt": format_ns(now_ns + 3600 * NS),
            "generatorURL": (
                f"http://prometheus.{cluster}.example.net:9090/graph?g0.expr={name}&g0.tab=1"
            ),
        }

    def message(self, k: int, now_ns: int) -> dict[str, Any]:
        """The `alerts` topic payload ingest would produce for it, received at `now_ns`."""
        data = self.postable(k, now_ns)
        data.update(
            status="firing",
            fingerprint=fingerprint(data["labels"]),
            receivedAt=data["startsAt"],
            source="api.v2",
        )
        return data


def order(base: int, size: int) -> Iterator[int]:
    """range(base, base + size) in a fixed shuffled order (alerts reach Kafka interleaved)."""
    return (base + (i * PERMUTE) % size for i in range(size))


def chunked(indices: Iterator[int], size: int) -> Iterator[list[int]]:
    """Lists of `size` consecutive items (the last may be shorter)."""
    chunk: list[int] = []
    for k in indices:
        chunk.append(k)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def messages(workload: Workload, batch: Sequence[int]) -> list[dict[str, Any]]:
    """Payloads for a batch; one receivedAt per REQUEST_SIZE alerts, taken now."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(batch), REQUEST_SIZE):
        now = time.time_ns()
        out += [workload.message(k, now) for k in batch[start : start + REQUEST_SIZE]]
    return out


def expected_groups(config: Config, workload: Workload, indices: range) -> set[tuple[str, str]]:
    """(route path, group key) of every group these alerts make, by the config's own matching."""
    found: set[tuple[str, str]] = set()
    for k in indices:
        labels = workload.labels(k)
        for route in config.route.match(labels):
            found.add((format_path(route.path), route.group_key(labels)))
    return found


def load_guide() -> Config:
    """The guide's config with its $VARIABLES set (they must be valid URLs)."""
    for name, value in GUIDE_ENV.items():
        os.environ.setdefault(name, value)
    return load(GUIDE_CONFIG)


# --------------------------------------------------------------------------- results


@dataclass
class Phase:
    """One timed run of `receive` (or `flush_due`) calls."""

    name: str
    alerts: int
    seconds: float
    cpu_s: float
    redis_cpu_s: float
    others_cores: float = 0.0
    redis_commands: dict[str, int] = field(default_factory=dict)
    windows: list[dict[str, float]] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        """Alerts per second of time spent in the timed calls."""
        return self.alerts / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_1k(self) -> float:
        """CPU of this process in receive() and of Redis, per 1,000 alerts."""
        return (self.cpu_s + self.redis_cpu_s) / self.alerts * 1e6 if self.alerts else 0.0

    def document(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "alerts_per_s": round(self.per_s, 1),
            "cpu_ms_per_1k_alerts": round(self.cpu_ms_per_1k, 1),
        }


@dataclass
class Report:
    """Everything measured, as printed and written to --json."""

    meta: dict[str, Any]
    dispatcher: dict[str, Phase] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    flush: dict[str, Any] = field(default_factory=dict)
    e2e: dict[str, Any] = field(default_factory=dict)
    alertmanager: dict[str, Any] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> None:
        """Record an accounting check."""
        self.checks.append((name, ok, detail))

    @property
    def ok(self) -> bool:
        """Every check passed and nothing failed."""
        return not self.failures and all(ok for _, ok, _ in self.checks)

    def document(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "dispatcher": {k: v.document() for k, v in self.dispatcher.items()},
            "memory": self.memory,
            "flush": self.flush,
            "e2e": self.e2e,
            "alertmanager": self.alertmanager,
            "ratios": self.ratios(),
            "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in self.checks],
            "failures": self.failures,
        }

    def start_per_s(self) -> float | None:
        """Receive rate of the insert's first window (into an empty store)."""
        insert = self.dispatcher.get("insert")
        return insert.windows[0]["per_s"] if insert and insert.windows else None

    def ratios(self) -> dict[str, float | None]:
        """Tocsin / Alertmanager throughput, and the start / N-held receive rates."""
        am = self.alertmanager.get("first_pass", {}).get("alerts_per_s")
        am2 = self.alertmanager.get("second_pass", {}).get("alerts_per_s")
        insert = self.dispatcher.get("insert")
        resend = self.dispatcher.get("resend")
        after = self.dispatcher.get("after_held")
        return {
            "dispatcher_insert_over_am": _ratio(insert.per_s if insert else None, am),
            "e2e_over_am": _ratio(self.e2e.get("alerts_per_s"), am),
            "dispatcher_resend_over_am_resend": _ratio(resend.per_s if resend else None, am2),
            "start_over_after_held": _ratio(self.start_per_s(), after.per_s if after else None),
        }


def _ratio(num: float | None, den: float | None) -> float | None:
    return round(num / den, 3) if num and den else None


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Clocks:
    """Wall time, this process's CPU and the whole machine's busy CPU at one moment."""

    wall: float
    own_cpu: float
    machine_cpu: float

    @classmethod
    def now(cls) -> Clocks:
        # /proc/stat's first line: user nice system idle iowait irq softirq steal (clock ticks)
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = sum(ticks) - ticks[3] - ticks[4]
        return cls(time.perf_counter(), time.process_time(), busy / os.sysconf("SC_CLK_TCK"))

    def others_cores(self, end: Clocks, *accounted_s: float) -> float:
        """Cores that processes other than this one and `accounted_s` used since (noise)."""
        own = end.own_cpu - self.own_cpu
        other = end.machine_cpu - self.machine_cpu - own - sum(accounted_s)
        return round(max(other, 0.0) / (end.wall - self.wall), 3)


async def redis_cpu_s(redis: RedisClient) -> float:
    """The Redis server's user+system CPU seconds so far."""
    info = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def redis_calls(redis: RedisClient) -> Counter[str]:
    """Commands the Redis server executed so far, by command (INFO commandstats)."""
    stats = await redis.info("commandstats")
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})


async def used_memory(redis: RedisClient) -> int:
    """The server's used_memory (all databases, all clients)."""
    return int((await redis.info("memory"))["used_memory"])


async def footprint(redis: RedisClient, prefix: str) -> dict[str, dict[str, int]]:
    """Keys and exact MEMORY USAGE bytes under `prefix`, by key kind (a:, g:, m:, i:, sched ...)."""
    kinds: dict[str, dict[str, int]] = {}
    keys: list[bytes] = []

    async def measure(batch: list[bytes]) -> None:
        pipe = redis.pipeline(transaction=False)
        for key in batch:
            pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
        for key, size in zip(batch, await pipe.execute(), strict=True):
            rest = key.decode()[len(prefix) :].removeprefix("router:")
            kind = rest.split(":", 1)[0] + (":" if ":" in rest else "")
            entry = kinds.setdefault(kind, {"keys": 0, "bytes": 0})
            entry["keys"] += 1
            entry["bytes"] += int(size or 0)

    async for key in redis.scan_iter(match=f"{prefix}*", count=2000):
        keys.append(key)
        if len(keys) >= 2000:
            await measure(keys)
            keys = []
    if keys:
        await measure(keys)
    return kinds


# --------------------------------------------------------------------------- 1. dispatcher


class AckedPublisher:
    """A Publisher whose sends are acknowledged at once; counts messages and bytes per topic."""

    def __init__(self) -> None:
        self.messages: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self._done: asyncio.Future[None] | None = None

    async def send(self, topic: str, value: bytes, key: bytes) -> Awaitable[Any]:
        kind = "notifications" if topic.startswith("notifications.") else topic
        self.messages[kind] += 1
        self.bytes[kind] += len(value)
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
            self._done.set_result(None)
        return self._done


class NoSilences:
    """A Silencer without silences."""

    def mutes(self, labels: Mapping[str, str], now_ns: int) -> list[str]:
        return []


async def timed_receive(
    name: str,
    dispatcher: Dispatcher,
    redis: RedisClient,
    workload: Workload,
    indices: Iterator[int],
    batch: int,
    window: int = 0,
) -> Phase:
    """Feed `indices` to `receive` in batches; only the receive calls are timed."""
    phase = Phase(name, 0, 0.0, 0.0, 0.0)
    calls = await redis_calls(redis)
    redis_before, clocks = await redis_cpu_s(redis), Clocks.now()
    win_alerts, win_s = 0, 0.0
    for chunk in chunked(indices, batch):
        alerts = [Alert.model_validate(m) for m in messages(workload, chunk)]
        cpu0, t0 = time.process_time(), time.perf_counter()
        await dispatcher.receive(alerts)
        elapsed = time.perf_counter() - t0
        phase.cpu_s += time.process_time() - cpu0
        phase.seconds += elapsed
        phase.alerts += len(alerts)
        win_alerts, win_s = win_alerts + len(alerts), win_s + elapsed
        if window and win_alerts >= window:
            phase.windows.append(
                {"held_before": phase.alerts - win_alerts, "per_s": win_alerts / win_s}
            )
            win_alerts, win_s = 0, 0.0
    if window and win_alerts:
        phase.windows.append(
            {"held_before": phase.alerts - win_alerts, "per_s": win_alerts / win_s}
        )
    phase.redis_cpu_s = await redis_cpu_s(redis) - redis_before
    phase.others_cores = clocks.others_cores(Clocks.now(), phase.redis_cpu_s)
    phase.redis_commands = dict((await redis_calls(redis) - calls).most_common())
    print(
        f"  {name}: {phase.alerts:,} alerts in {phase.seconds:.2f} s = {phase.per_s:,.0f}/s",
        file=sys.stderr,
        flush=True,
    )
    return phase


async def bench_dispatcher(
    args: argparse.Namespace, report: Report, config: Config, workload: Workload, redis: RedisClient
) -> None:
    """Parts 1a, 3 and 4: receive, memory, flush on the bench's own prefix."""
    prefix = f"bench-router-{uuid.uuid4().hex[:8]}:"
    frozen: list[int] = []  # the flush runs on a frozen clock: one tick per group, no repeats

    def clock() -> int:
        return frozen[0] if frozen else time.time_ns()

    publisher = AckedPublisher()
    registry = new_registry()
    dispatcher = Dispatcher(
        config,
        RouterStore(redis, prefix=f"{prefix}router:"),
        RedisNflog(redis, "published", prefix=f"{prefix}nflog:"),
        publisher,
        NoSilences(),
        registry,
        clock=clock,
        owner="bench",
        external_url="http://bench.invalid:9095",
        producer_name="router/bench",
    )
    held, window = args.alerts, max(args.batch, args.alerts // 10)
    mem_before = await used_memory(redis)

    insert = await timed_receive(
        "insert", dispatcher, redis, workload, order(0, held), args.batch, window
    )
    report.dispatcher["insert"] = insert
    report.dispatcher["after_held"] = await timed_receive(
        "new alerts, N held", dispatcher, redis, workload, order(held, window), args.batch
    )
    report.dispatcher["resend"] = await timed_receive(
        "re-send, N held", dispatcher, redis, workload, order(0, window), args.batch
    )
    total = held + window

    print("  memory: MEMORY USAGE over the prefix ...", file=sys.stderr, flush=True)
    mem_after = await used_memory(redis)
    kinds = await footprint(redis, prefix)
    summed = sum(k["bytes"] for k in kinds.values())
    groups = expected_groups(config, workload, range(total))
    report.memory = {
        "alerts_held": total,
        "groups": len(groups),
        "by_kind": kinds,
        "memory_usage_bytes": summed,
        "memory_usage_per_alert": round(summed / total, 1),
        "used_memory_delta_bytes": mem_after - mem_before,
        "used_memory_delta_per_alert": round((mem_after - mem_before) / total, 1),
    }
    stored = await count_keys(redis, f"{prefix}router:a:*")
    stored_groups = await count_keys(redis, f"{prefix}router:g:*")
    report.check(
        "dispatcher alerts stored", stored == total, f"{stored:,} a: keys for {total:,} alerts"
    )
    report.check(
        "dispatcher groups",
        stored_groups == len(groups),
        f"{stored_groups:,} g: keys, {len(groups):,} groups by the config's matching",
    )

    if args.skip_flush:
        return
    longest_wait = max(r.group_wait for r in config.route.walk())
    frozen.append(time.time_ns() + round((longest_wait + 1) * NS))  # every first tick is due
    print(f"  flush: {len(groups):,} due groups ...", file=sys.stderr, flush=True)
    calls = await redis_calls(redis)
    redis_before, clocks = await redis_cpu_s(redis), Clocks.now()
    flushed = 0
    while n := await dispatcher.flush_due(LEASE_MS):
        flushed += n
    end = Clocks.now()
    seconds, cpu = end.wall - clocks.wall, end.own_cpu - clocks.own_cpu
    redis_cpu = await redis_cpu_s(redis) - redis_before
    dropped = {
        reason: registry.get_sample_value("tocsin_router_alerts_dropped_total", {"reason": reason})
        or 0.0
        for reason in ("inhibited", "silenced", "muted")
    }
    report.flush = {
        "groups": flushed,
        "alerts": total,
        "seconds": round(seconds, 3),
        "groups_per_s": round(flushed / seconds, 1),
        "alerts_per_s": round(total / seconds, 1),
        "messages": dict(publisher.messages),
        "message_bytes": dict(publisher.bytes),
        "dropped": dropped,
        "cpu_s": round(cpu, 3),
        "redis_cpu_s": round(redis_cpu, 3),
        "others_cores": clocks.others_cores(end, redis_cpu),
        "redis_commands": dict((await redis_calls(redis) - calls).most_common()),
    }
    report.check(
        "flush", flushed == len(groups), f"{flushed:,} groups flushed of {len(groups):,} due"
    )
    print(
        f"  flush: {flushed:,} groups in {seconds:.2f} s = {flushed / seconds:,.0f} groups/s",
        file=sys.stderr,
        flush=True,
    )
    # After the first flush the notification log and the announced decisions hold keys too.
    kinds = await footprint(redis, prefix)
    summed = sum(k["bytes"] for k in kinds.values())
    report.memory["after_flush"] = {
        "by_kind": kinds,
        "memory_usage_bytes": summed,
        "memory_usage_per_alert": round(summed / total, 1),
        "used_memory_delta_per_alert": round((await used_memory(redis) - mem_before) / total, 1),
    }


async def count_keys(redis: RedisClient, pattern: str) -> int:
    """Keys matching `pattern` (SCAN, never KEYS)."""
    n = 0
    async for _ in redis.scan_iter(match=pattern, count=5000):
        n += 1
    return n


# --------------------------------------------------------------------------- 2. end to end


async def produce(bootstrap: str, workload: Workload, count: int) -> float:
    """Put `count` alert messages on `alerts`; returns the seconds it took (not a figure)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    t0 = time.perf_counter()
    try:
        for chunk in chunked(order(0, count), 5000):
            acks = []
            for data in messages(workload, chunk):
                value = encode(ALERTS.schema, "ingest/bench", data)
                acks.append(
                    await producer.send(ALERTS.name, value, key=data["fingerprint"].encode())
                )
            await asyncio.gather(*acks)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


async def bench_e2e(
    args: argparse.Namespace, report: Report, workload: Workload, redis_url: str
) -> None:
    """Part 1b: a RouterService consuming pre-produced messages from an embedded broker."""
    run = uuid.uuid4().hex[:8]
    count = args.e2e_alerts
    broker = EmbeddedKafka()
    redis = connect(redis_url, name="tocsin-router-bench")
    prefix = f"bench-router-e2e-{run}:"
    service: RouterService | None = None
    try:
        await broker.start()
        settings = load_settings(
            {
                "config.file": str(GUIDE_CONFIG),
                "router.group_id": f"bench-router-{run}",
                "router.redis_prefix": prefix,
            }
        )
        factory = KafkaFactory(settings.kafka, broker.bootstrap_servers, embedded=True)
        await factory.ensure_topics([ALERTS.name])
        print(f"  e2e: producing {count:,} messages ...", file=sys.stderr, flush=True)
        produce_s = await produce(broker.bootstrap_servers, workload, count)
        registry = new_registry()
        service = RouterService(settings, factory, redis, registry)
        pid = broker.child.pid if broker.child else None

        def broker_cpu() -> float:
            return process_tree_cpu_s(pid) if pid else 0.0

        start = Clocks.now()
        await service.start()
        started = Clocks.now()
        first: tuple[Clocks, float, float, float] | None = None  # clocks, count, broker, redis
        received = 0.0
        while received < count and time.perf_counter() < start.wall + args.e2e_timeout:
            await asyncio.sleep(0.02)
            received = registry.get_sample_value(RECEIVED) or 0.0
            if first is None and received > 0:
                first = (Clocks.now(), received, broker_cpu(), await redis_cpu_s(redis))
        end = Clocks.now()
        if first is None:
            raise BenchError("the router received nothing")
        at, received_first, broker0, redis0 = first
        broker_s, redis_s = broker_cpu() - broker0, await redis_cpu_s(redis) - redis0
        notifications = sum(
            s.value
            for metric in registry.collect()
            if metric.name == "tocsin_router_notifications"
            for s in metric.samples
            if s.name.endswith("_total")
        )
        flushes = registry.get_sample_value("tocsin_router_flush_seconds_count") or 0.0
        steady = end.wall - at.wall
        total = end.wall - start.wall
        if count - received_first <= 0 or steady <= 0:
            raise BenchError(
                f"all {count:,} alerts arrived in the first batch seen: nothing left to time "
                "(raise --e2e-alerts)"
            )
        report.e2e = {
            "alerts": count,
            "received": int(received),
            "produce_s": round(produce_s, 3),
            "start_s": round(started.wall - start.wall, 3),
            "first_to_last_s": round(steady, 3),
            "start_to_last_s": round(total, 3),
            # from the first look that saw alerts (those not counted) to the last alert
            "alerts_per_s": round((count - received_first) / steady, 1),
            "alerts_per_s_incl_start": round(count / total, 1),
            "groups_flushed_meanwhile": int(flushes),
            "notifications_meanwhile": int(notifications),
            # CPU from the first received batch to the last
            "router_cpu_cores": round((end.own_cpu - at.own_cpu) / steady, 3),
            "broker_cpu_cores": round(broker_s / steady, 3),
            "redis_cpu_cores": round(redis_s / steady, 3),
            "others_cores": at.others_cores(end, broker_s, redis_s),
            "cpu_ms_per_1k_alerts": round(
                ((end.own_cpu - at.own_cpu) + broker_s + redis_s) / (count - received_first) * 1e6,
                1,
            ),
            "broker": broker.bootstrap_servers,
        }
        report.check(
            "e2e count",
            int(received) == count,
            f"{RECEIVED} = {int(received):,} for {count:,} produced",
        )
        print(
            f"  e2e: {int(received):,} alerts in {steady:.2f} s after the first batch "
            f"({total:.2f} s from start())",
            file=sys.stderr,
            flush=True,
        )
    finally:
        if service is not None:
            await service.stop()
        await broker.stop()
        await delete_prefix(redis, prefix)
        await redis.aclose()


async def delete_prefix(redis: RedisClient, prefix: str) -> None:
    """UNLINK every key under `prefix`."""
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            await redis.unlink(*batch)
            batch = []
    if batch:
        await redis.unlink(*batch)


# --------------------------------------------------------------------------- 3. Alertmanager


class Alertmanager:
    """prometheus-alertmanager with the guide's routes and integration-less receivers."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="tocsin-bench-am-"))
        self.config_path = self.workdir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        self.log_path = self.workdir / "output.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        argv = alertmanager_argv(self.config_path, self.workdir, self.port)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self._proc.poll() is not None:
                raise BenchError(f"Alertmanager exited: {self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_get(self.base_url, "/-/ready", timeout=2.0)[0] == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError("Alertmanager not ready in time")
            time.sleep(0.1)

    def metrics(self) -> str:
        """The text of one /metrics scrape."""
        # Generous: with 100k alerts and thousands of groups flushing, a scrape can take seconds.
        status, body = http_get(self.base_url, "/metrics", timeout=120.0)
        if status != 200:
            raise BenchError(f"Alertmanager /metrics answered {status}")
        return body.decode()

    def cpu_s(self) -> float:
        return process_tree_cpu_s(self._proc.pid) if self._proc else 0.0

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-1500:]
        return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc)
        shutil.rmtree(self.workdir, ignore_errors=True)


def alertmanager_config(guide: Path) -> dict[str, Any]:
    """The guide's config with $VARIABLES substituted and receivers without integrations."""
    text = guide.read_text()
    for name, value in GUIDE_ENV.items():
        text = text.replace(f"${name}", value)
    document: dict[str, Any] = yaml.safe_load(text)
    document["receivers"] = [{"name": r["name"]} for r in document["receivers"]]
    return document


def post_all(
    base_url: str, bodies: Sequence[bytes], connections: int
) -> tuple[float, Counter[int]]:
    """POST every body over `connections` keep-alive connections; (seconds, status counts)."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    pending = iter(range(len(bodies)))
    port = int(base_url.rsplit(":", 1)[1])
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            while True:
                with lock:
                    i = next(pending, None)
                if i is None:
                    return
                conn.request(
                    "POST", "/api/v2/alerts", bodies[i], {"Content-Type": "application/json"}
                )
                response = conn.getresponse()
                response.read()
                with lock:
                    statuses[response.status] += 1
        except (OSError, http.client.HTTPException) as exc:
            errors.append(str(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise BenchError(f"posting to Alertmanager failed: {errors[0]}")
    return seconds, statuses


def am_states(text: str) -> dict[str, int]:
    """alertmanager_alerts by state and the aggregation group count from one scrape."""
    return {
        **{
            s: int(metric_sum(text, "alertmanager_alerts", f'state="{s}"'))
            for s in ("active", "suppressed", "unprocessed")
        },
        "groups": int(metric_sum(text, "alertmanager_dispatcher_aggregation_groups")),
    }


def bench_alertmanager(
    args: argparse.Namespace, report: Report, config: Config, workload: Workload
) -> None:
    """Part 2: the same alerts POSTed to Alertmanager 0.25, acceptance and routing timed."""
    count = args.am_alerts
    groups = len(expected_groups(config, workload, range(count)))
    bodies = [
        orjson.dumps([workload.postable(k, time.time_ns()) for k in chunk])
        for chunk in chunked(order(0, count), args.am_batch)
    ]
    am = Alertmanager(alertmanager_config(GUIDE_CONFIG))
    report.alertmanager = {
        "expected_groups": groups,
        "settle_s": args.am_settle,
        "version": args.am_version,
    }
    try:
        am.start()
        heap0 = metric_sum(am.metrics(), "go_memstats_heap_inuse_bytes")
        watcher: Watcher | None = None
        for name in ("first_pass", "second_pass"):
            received0 = metric_sum(am.metrics(), "alertmanager_alerts_received_total")
            print(f"  Alertmanager {name}: POST {count:,} alerts ...", file=sys.stderr, flush=True)
            cpu_am0, clocks = am.cpu_s(), Clocks.now()
            watcher = watcher or Watcher(am, clocks.wall)
            seconds, statuses = post_all(am.base_url, bodies, args.am_connections)
            end = Clocks.now()
            cpu_am, cpu_me = am.cpu_s() - cpu_am0, end.own_cpu - clocks.own_cpu
            _, text = watcher.look()  # right after the last answer: are the groups all there?
            received = metric_sum(text, "alertmanager_alerts_received_total") - received0
            ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
            report.alertmanager[name] = {
                "alerts": count,
                "requests": len(bodies),
                "seconds": round(seconds, 3),
                "alerts_per_s": round(count / seconds, 1),
                "statuses": {str(s): n for s, n in statuses.items()},
                "received_counter_delta": int(received),
                "am_cpu_cores": round(cpu_am / seconds, 3),
                "client_cpu_cores": round(cpu_me / seconds, 3),
                "others_cores": clocks.others_cores(end, cpu_am),
                "cpu_ms_per_1k_alerts": round(cpu_am / count * 1e6, 1),
            }
            report.check(
                f"Alertmanager {name}",
                ok == len(bodies) and int(received) == count,
                f"{ok}/{len(bodies)} requests 2xx, alertmanager_alerts_received_total "
                f"+{int(received):,} for {count:,} posted",
            )
        # Both passes end before the first group_wait (10 s) here: measured before any group
        # flushed. Then watch the flushes.
        heap1 = metric_sum(am.metrics(), "go_memstats_heap_inuse_bytes")
        report.alertmanager["heap_inuse_delta_per_alert"] = round((heap1 - heap0) / count, 1)
        assert watcher is not None
        watcher.settle(count, args.am_settle)
        report.alertmanager["timeline"] = watcher.timeline
        report.alertmanager.update(summarize_timeline(watcher.timeline, count, groups))
    finally:
        am.stop()


class Watcher:
    """Scrapes Alertmanager's gauges; times from `start` (the first POST).

    A scrape of an Alertmanager holding many alerts takes a while (the alertmanager_alerts
    gauges walk every alert, once per state), and much longer while groups flush: `asked` is
    when it was sent, `t` when it was answered, and `am_cpu_cores` what Alertmanager used since
    the previous look."""

    def __init__(self, am: Alertmanager, start: float) -> None:
        self.am, self.start = am, start
        self.timeline: list[dict[str, float]] = []
        self._cpu, self._at = am.cpu_s(), start

    def look(self) -> tuple[dict[str, float], str]:
        """One scrape: the timeline entry and the scrape's text."""
        asked = time.perf_counter()
        text = self.am.metrics()
        now, cpu = time.perf_counter(), self.am.cpu_s()
        entry = {
            "asked": round(asked - self.start, 2),
            "t": round(now - self.start, 2),
            **am_states(text),
            "am_cpu_cores": round((cpu - self._cpu) / (now - self._at), 2),
        }
        self._cpu, self._at = cpu, now
        self.timeline.append(entry)
        return entry, text

    def settle(self, count: int, within: float) -> None:
        """Look each second until every alert is active or suppressed, or `within` s passed."""
        while True:
            entry, _ = self.look()
            if entry["active"] + entry["suppressed"] >= count or entry["t"] > within:
                return
            time.sleep(1.0)


def summarize_timeline(
    timeline: Sequence[Mapping[str, float]], count: int, groups: int
) -> dict[str, Any]:
    """When the groups were all there and when the alerts were all active or suppressed."""
    first_scrape = next((p for p in timeline if p["groups"] >= groups), {})
    t_groups = first_scrape.get("t")
    t_all = next((p["t"] for p in timeline if p["active"] + p["suppressed"] >= count), None)
    last = timeline[-1] if timeline else {}
    return {
        "groups_complete_after_s": t_groups,
        "all_active_or_suppressed_after_s": t_all,
        "groups_complete_scrape": dict(first_scrape),
        "at_end": dict(last),
        "slowest_scrape_s": max((p["t"] - p["asked"] for p in timeline), default=None),
    }


# --------------------------------------------------------------------------- report


def table(report: Report) -> str:
    """The side-by-side table."""
    d, e, a = report.dispatcher, report.e2e, report.alertmanager
    first, second = a.get("first_pass", {}), a.get("second_pass", {})
    r = report.ratios()
    n = report.meta["alerts"]
    rows: list[tuple[str, str, str, str, str]] = [
        ("", "Tocsin dispatcher", "Tocsin via Kafka", report.meta["am_name"], "ratio"),
        (
            "new alerts routed+grouped",
            _rate(d["insert"].per_s) if "insert" in d else "-",
            _rate(e.get("alerts_per_s")),
            _rate(first.get("alerts_per_s")) + (" accepted" if first else ""),
            f"{_x(r['dispatcher_insert_over_am'])} / {_x(r['e2e_over_am'])}",
        ),
        (
            "re-sent alerts (steady state)",
            _rate(d["resend"].per_s) if "resend" in d else "-",
            "-",
            _rate(second.get("alerts_per_s")) + (" accepted" if second else ""),
            _x(r["dispatcher_resend_over_am_resend"]),
        ),
        (
            "CPU per 1k new alerts",
            f"{d['insert'].cpu_ms_per_1k:,.0f} ms (+Redis)" if "insert" in d else "-",
            f"{e['cpu_ms_per_1k_alerts']:,.0f} ms (+broker, Redis)" if e else "-",
            f"{first['cpu_ms_per_1k_alerts']:,.0f} ms" if first else "-",
            "",
        ),
        (
            "all groups formed after",
            "(when receive returns)",
            f"{e['first_to_last_s']:.1f} s (+{e['start_s']:.1f} s start)" if e else "-",
            _groups_formed(a),
            "",
        ),
        (
            "all alerts active/suppressed",
            "(at once, in Redis)",
            "",
            _secs(a.get("all_active_or_suppressed_after_s"), a.get("settle_s")),
            "",
        ),
        (
            "bytes per active alert",
            _bytes(report.memory.get("memory_usage_per_alert"), "MEMORY USAGE"),
            _bytes(report.memory.get("used_memory_delta_per_alert"), "used_memory"),
            _bytes(a.get("heap_inuse_delta_per_alert"), "Go heap"),
            "",
        ),
    ]
    if "after_held" in d:
        rows.append(
            (
                f"new alerts: start / {n:,} held",
                f"{_rate(report.start_per_s())} / {_rate(d['after_held'].per_s)}",
                "",
                "",
                _x(r["start_over_after_held"]),
            )
        )
    if report.flush:
        f = report.flush
        rows.append(
            (
                "flush_due, all groups due",
                f"{f['groups_per_s']:,.0f} groups/s",
                f"= {f['alerts_per_s']:,.0f} alerts/s",
                "(per-group timers)",
                "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    notes = [
        "ratio: Tocsin / Alertmanager (dispatcher / via Kafka); above 1 = Tocsin faster.",
        "Targets: >= 5,000 alerts/s per router process; <= 1 KiB per active alert; "
        "<= 2x slower with many alerts held.",
    ]
    return "\n".join([*lines, "", *notes])


def _groups_formed(a: Mapping[str, Any]) -> str:
    scrape = a.get("groups_complete_scrape")
    if scrape:
        return f"by {scrape['t']:.1f} s (scrape sent at {scrape['asked']:.1f} s)"
    return _secs(None, a.get("settle_s"))


def _secs(value: float | None, settle: float | None) -> str:
    if value is not None:
        return f"{value:.1f} s after the first POST"
    return "-" if settle is None else f"not within {settle:.0f} s (see below)"


def _bytes(value: float | None, what: str) -> str:
    return "-" if value is None else f"{value:,.0f} B ({what})"


def details(report: Report) -> str:
    """The figures behind the table."""
    out: list[str] = []
    for phase in report.dispatcher.values():
        cores = f"bench CPU {phase.cpu_s / phase.seconds:.2f} cores, " if phase.seconds else ""
        out.append(
            f"dispatcher {phase.name}: {phase.alerts:,} alerts, {phase.seconds:.2f} s in receive() "
            f"= {phase.per_s:,.0f}/s; {cores}Redis CPU {phase.redis_cpu_s:.2f} s; other "
            f"processes {phase.others_cores:.2f} cores"
        )
        commands = sum(phase.redis_commands.values())
        top = ", ".join(
            f"{k} {v / phase.alerts:.2f}" for k, v in list(phase.redis_commands.items())[:6]
        )
        out.append(f"  Redis commands per alert: {commands / phase.alerts:.2f} ({top})")
        if len(phase.windows) > 1:
            rates = ", ".join(f"{w['per_s']:,.0f}" for w in phase.windows)
            out.append(f"  per window of {report.meta['window']:,} alerts: {rates} /s")
    m = report.memory
    if m:
        kinds = ", ".join(
            f"{k} {v['keys']:,} keys {v['bytes'] / m['alerts_held']:,.0f} B/alert"
            for k, v in sorted(m["by_kind"].items(), key=lambda kv: -kv[1]["bytes"])
        )
        out.append(
            f"Redis: {m['alerts_held']:,} alerts in {m['groups']:,} groups: MEMORY USAGE "
            f"{m['memory_usage_bytes'] / 2**20:,.1f} MiB = {m['memory_usage_per_alert']:,.0f} "
            f"B/alert; used_memory +{m['used_memory_delta_bytes'] / 2**20:,.1f} MiB = "
            f"{m['used_memory_delta_per_alert']:,.0f} B/alert\n  by kind: {kinds}"
        )
    f = report.flush
    if f:
        sent = ", ".join(
            f"{n:,} on {topic} ({f['message_bytes'][topic] / 2**20:,.1f} MiB)"
            for topic, n in f["messages"].items()
        )
        out.append(
            f"flush: {f['groups']:,} groups ({f['alerts']:,} alerts) in {f['seconds']:.2f} s = "
            f"{f['groups_per_s']:,.0f} groups/s; published {sent}; dropped "
            f"{ {k: int(v) for k, v in f['dropped'].items() if v} }; bench CPU "
            f"{f['cpu_s']:.2f} s, Redis CPU {f['redis_cpu_s']:.2f} s, other processes "
            f"{f['others_cores']:.2f} cores"
        )
        calls = f["redis_commands"]
        top = ", ".join(f"{k} {v / f['groups']:.1f}" for k, v in list(calls.items())[:8])
        out.append(f"  Redis commands per group: {sum(calls.values()) / f['groups']:.1f} ({top})")
        after = m.get("after_flush")
        if after:
            out.append(
                f"Redis after the flush: MEMORY USAGE {after['memory_usage_per_alert']:,.0f} "
                f"B/alert, used_memory {after['used_memory_delta_per_alert']:,.0f} B/alert "
                "(+ notification log, announced decisions)"
            )
    e = report.e2e
    if e:
        out.append(
            f"via Kafka: {e['received']:,} of {e['alerts']:,} alerts ({e['produce_s']:.1f} s to "
            f"produce, not timed); start() {e['start_s']:.2f} s, first batch to last "
            f"{e['first_to_last_s']:.2f} s; {e['alerts_per_s_incl_start']:,.0f}/s from start(); "
            f"CPU cores: router {e['router_cpu_cores']:.2f}, broker {e['broker_cpu_cores']:.2f}, "
            f"Redis {e['redis_cpu_cores']:.2f}, other processes {e['others_cores']:.2f}; "
            f"meanwhile {e['groups_flushed_meanwhile']:,} "
            f"groups flushed, {e['notifications_meanwhile']:,} notifications"
        )
    a = report.alertmanager
    for name in ("first_pass", "second_pass"):
        p = a.get(name)
        if p:
            out.append(
                f"Alertmanager {name.replace('_', ' ')}: {p['requests']} requests of "
                f"{report.meta['am_batch']} alerts over {report.meta['am_connections']} "
                f"connections in {p['seconds']:.2f} s, statuses {p['statuses']}; CPU cores: "
                f"Alertmanager {p['am_cpu_cores']:.2f}, client {p['client_cpu_cores']:.2f}, "
                f"other processes {p['others_cores']:.2f}"
            )
    if a.get("timeline"):
        out.append(
            f"Alertmanager scrapes after the first POST ({a['expected_groups']:,} groups "
            "expected; times: scrape sent-answered):"
        )
        timeline = a["timeline"]
        shown = timeline if len(timeline) <= 12 else [*timeline[:6], *timeline[-6:]]
        for p in shown:
            out.append(
                f"  {p['asked']:6.1f}-{p['t']:6.1f} s: active {p['active']:>7,} suppressed "
                f"{p['suppressed']:>7,} unprocessed {p['unprocessed']:>7,} groups "
                f"{p['groups']:>6,}; Alertmanager {p['am_cpu_cores']:.2f} cores"
            )
    for name, ok, detail in report.checks:
        out.append(f"check {name}: {'ok' if ok else 'FAILED'}: {detail}")
    out += [f"FAILED: {failure}" for failure in report.failures]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark Tocsin's router (dispatcher, Kafka, Redis) against Alertmanager.",
    )
    parser.add_argument("--alerts", type=int, default=100_000, help="alerts held by the dispatcher")
    parser.add_argument(
        "--million", action="store_true", help="hold 1,000,000 alerts (sets --alerts; slow)"
    )
    parser.add_argument("--batch", type=int, default=2000, help="alerts per receive() call")
    parser.add_argument("--e2e-alerts", type=int, default=100_000, help="alerts through Kafka")
    parser.add_argument("--e2e-timeout", type=float, default=600, help="seconds to wait for them")
    parser.add_argument("--am-alerts", type=int, default=100_000, help="alerts to Alertmanager")
    parser.add_argument("--am-batch", type=int, default=1000, help="alerts per POST (100-1000)")
    parser.add_argument("--am-connections", type=int, default=4, help="concurrent POSTs")
    parser.add_argument(
        "--am-settle",
        type=float,
        default=20.0,
        help="seconds to watch alertmanager_alerts after posting (330 to see 5m group_waits)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379", help="Redis server")
    parser.add_argument(
        "--redis-db", type=int, default=15, help="a database for the bench alone (empty)"
    )
    parser.add_argument("--skip-e2e", action="store_true", help="no Kafka part")
    parser.add_argument("--skip-alertmanager", action="store_true", help="no Alertmanager part")
    parser.add_argument("--skip-dispatcher", action="store_true", help="no dispatcher part")
    parser.add_argument("--skip-flush", action="store_true", help="no flush_due part")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    if args.million:
        args.alerts = 1_000_000
    if min(args.alerts, args.batch, args.e2e_alerts, args.am_alerts, args.am_batch) < 1:
        parser.error("counts must be at least 1")
    if args.am_connections < 1 or args.am_settle < 0:
        parser.error("--am-connections must be at least 1, --am-settle at least 0")
    return args


async def tocsin_parts(args: argparse.Namespace, report: Report, workload: Workload) -> None:
    """Parts 1a, 1b, 3, 4 on one event loop, in the dedicated Redis database."""
    config = load_guide()
    url = f"{args.redis_url.rstrip('/')}/{args.redis_db}"
    redis = connect(url, name="tocsin-router-bench")
    try:
        size = await redis.dbsize()
        if size:
            raise BenchError(
                f"Redis database {args.redis_db} holds {size} keys; the bench needs an empty one "
                "(pick another with --redis-db)"
            )
        report.meta["redis"] = (await redis.info("server"))["redis_version"]
        try:  # the database was empty: everything in it now is the bench's
            if not args.skip_dispatcher:
                print("Tocsin dispatcher ...", file=sys.stderr, flush=True)
                await bench_dispatcher(args, report, config, workload, redis)
                await redis.flushdb(asynchronous=True)
            if not args.skip_e2e:
                print("Tocsin router via Kafka ...", file=sys.stderr, flush=True)
                await bench_e2e(args, report, workload, url)
        finally:
            await redis.flushdb(asynchronous=True)
    finally:
        await redis.aclose()


def run_async(coro: Coroutine[Any, Any, None]) -> str:
    """Run `coro` on uvloop when installed (as `tocsin` itself does), else asyncio; the loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return "asyncio"
    uvloop.run(coro)
    return f"uvloop {importlib.metadata.version('uvloop')}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected parts, print the table and the details; the exit status."""
    args = parse_args(argv)
    if not args.skip_alertmanager and not Path(ALERTMANAGER_BIN).exists():
        print(f"bench: {ALERTMANAGER_BIN} missing; use --skip-alertmanager", file=sys.stderr)
        return 2
    configure_logging("warning", "console")
    args.am_version = (
        None
        if args.skip_alertmanager
        else command_version([ALERTMANAGER_BIN, "--version"], r"version (\S+)")
    )
    workload = Workload.for_size(args.alerts)
    report = Report(
        {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "event_loop": None,
            "alerts": args.alerts,
            "window": max(args.batch, args.alerts // 10),
            "batch": args.batch,
            "services": workload.services,
            "rules": len(RULES),
            "e2e_alerts": args.e2e_alerts,
            "am_alerts": args.am_alerts,
            "am_batch": args.am_batch,
            "am_connections": args.am_connections,
            "am_name": f"Alertmanager {args.am_version or ''}".strip(),
            "config": str(GUIDE_CONFIG.relative_to(REPO)),
            "commit": command_version(["git", "-C", str(REPO), "rev-parse", "HEAD"], r"(\S+)"),
            "router_code_modified": bool(
                command_version(
                    ["git", "-C", str(REPO), "status", "--porcelain", *CODE_UNDER_TEST],
                    r"(\S+)",
                )
                != "unknown"
            ),
        }
    )
    if not (args.skip_dispatcher and args.skip_e2e):
        try:
            report.meta["event_loop"] = run_async(tocsin_parts(args, report, workload))
        except (BenchError, OSError, RedisError, KafkaError, EmbeddedError) as exc:
            report.failures.append(f"Tocsin: {type(exc).__name__}: {exc}")
    if not args.skip_alertmanager:
        print("Alertmanager ...", file=sys.stderr, flush=True)
        try:
            bench_alertmanager(args, report, load_guide(), workload)
        except (BenchError, OSError, http.client.HTTPException) as exc:
            report.failures.append(f"Alertmanager: {type(exc).__name__}: {exc}")

    print(
        f"\nTocsin router vs {report.meta['am_name']}: guide config, {args.alerts:,} alerts held "
        f"({len(RULES)} rules x {workload.services} services x {len(CLUSTERS)} clusters), "
        f"batches of {args.batch}, {report.meta['event_loop'] or '-'}, {os.cpu_count()} CPUs "
        "shared by every party\n"
    )
    print(table(report))
    print("\nDetails\n" + details(report))
    if args.json:
        args.json.write_text(json.dumps(report.document(), indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
