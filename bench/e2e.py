"""End to end: POST /api/v2/alerts -> notification delivered to a webhook, Tocsin against a real
Alertmanager 0.25 delivering to the same recorder in the same run.

Run from the repository root (Redis on 127.0.0.1:6379 for the multi-process Tocsin):

    .venv/bin/python bench/e2e.py                         # 20,000 groups, about 2 minutes
    .venv/bin/python bench/e2e.py --json /tmp/e2e.json
    .venv/bin/python bench/e2e.py --targets tocsin --groups 5000
    .venv/bin/python bench/e2e.py --targets tocsin --tocsin-arg=--router.poll-interval=0.02

What it measures
----------------
`--groups` (20,000) distinct aggregation groups: one alert each, Prometheus-like (alertname,
instance, job, severity, team; summary and description annotations; startsAt now, endsAt an
hour out; generatorURL), every `instance` unique to the run. The routing config is the same for
every target: one route, `group_by: [alertname, instance]`, `group_wait: 0s`, `group_interval:
1m`, `repeat_interval: 24h`, and one receiver with a `webhook_configs` entry pointing at the
recorder. So every alert makes a new group that flushes at once, and every group must reach the
recorder exactly once. The alerts are POSTed to the target's /api/v2/alerts in batches of
`--batch` (100) over `--connections` (4) keep-alive connections by an aiohttp client in this
process (bodies serialized beforehand; its CPU time is reported).

Targets, one at a time, each freshly started (`--targets`, default all three):

- `alertmanager`: /usr/bin/prometheus-alertmanager with that config, a temporary storage path
  and gossip off (`--cluster.listen-address=`).
- `tocsin`: the services as separate processes, all against one embedded Tansu broker
  (`services.runtime.embedded.EmbeddedKafka`, real Kafka APIs, started by this script) and the
  local Redis under a unique `--router.redis-prefix`: `tocsin ingest --ingest.workers=2`,
  `--routers` (2) `tocsin router` replicas sharing one `--router.group-id`, `--notifiers` (2)
  `tocsin notifiers` workers sharing one `--notifiers.group-id` (both unique per run). Every
  process gets `--kafka.bootstrap-servers` and `--no-kafka.idempotence` (Tansu has no
  idempotent producer).
- `tocsin-run`: the single process `tocsin run --config.file=...` on embedded defaults (its own
  Tansu and Redis children).

Tocsin's notifiers rate-limit each receiver (`--notifiers.rate` 10/s, `--notifiers.burst` 20
per worker by default: a protection for real receivers, under which 20,000 notifications take
about 1,000 s). Alertmanager has no such limit, so the bench lifts it (`--notifier-rate`,
`--notifier-burst`, default 1,000,000). Nor does it limit the sends in flight (a goroutine per
group): the bench raises `--notifiers.concurrency` from Tocsin's default of 8 per receiver and
worker to 64 (`--notifier-concurrency`), the connections the notifiers keep per host.
Every Tocsin process runs without TOCSIN_* variables from this environment; `--tocsin-arg`
appends a flag to every Tocsin process (experiments).

The recorder is an aiohttp app in its own process (uvloop when installed, no access log): it
stamps each POST /hook/<run> with the monotonic clock (system-wide on Linux, the same clock the
poster uses) when its handler starts, keeps the raw body and answers 200 with an empty body,
keep-alive. Bodies are parsed only after the run. Before the runs, wrk checks what it can
take: 3 s of a 1 KB webhook body over 16 connections (wrk shares the CPUs, so a lower bound).

Per target: a warm-up first (batches of `--batch` new groups, delivered end to end; for Tocsin
repeated until every router replica has received alerts and every notifier worker delivered,
so that the consumer groups are settled and connections open; not counted). Then the measured
run: post everything, wait until the recorder holds as many webhooks as groups (or no new one
arrived for `--idle-timeout` s, or `--timeout` s after the first post), then `--settle` s more
to catch late duplicates. Reported:

- notifications/s: groups delivered / (last group's first delivery - first request sent);
- latency per group: its first delivery - when the request carrying its alert was sent (the
  first attempt, if a 5xx made the poster retry), p50 / p99 / max;
- lost: groups with no webhook by the end; duplicated: groups delivered more than once
  (extra webhooks reported too); webhooks for unknown groups (warm-up leftovers) or with other
  than one alert are reported as problems;
- posting: how long the poster took to have every alert acknowledged (for Tocsin: on the
  broker), and non-2xx answers;
- CPU per notification: the CPU seconds of the target's processes (for Tocsin its broker and
  Redis included; not the recorder, not this script) over the measured window, divided by the
  groups delivered. On a machine whose cores are all busy this, not any one process, sets the
  rate.

Where the time goes: a sampler thread reads /proc/<pid>/stat of every process of the target
(and its broker and Redis), the recorder and this script every `--sample-interval` (0.5 s), and
/proc/stat for the whole machine ("others" = the machine minus those: other jobs disturb the
run). For Tocsin it also scrapes each router and notifier process's /metrics at the same pace
(tocsin_router_alerts_received_total, tocsin_router_notifications_total,
tocsin_notifications_total{status="delivered"}): the timeline printed under Details shows per
interval how far each stage had got (acked by ingest, consumed by the routers, published by the
routers, delivered by the notifiers, recorded) and how many cores each process used; a process
near 1.0 core is CPU-bound (each is one Python event loop). The per-process table gives the
average cores over the measured window and the peak of any interval; the processes of other
jobs that used CPU meanwhile are named. Each process's warnings and errors are counted by
event (Tocsin's JSON log lines). --json also keeps every sample (per process CPU seconds and
counters), e.g. to see which router replica published in which interval.

Between targets Tocsin's processes get SIGTERM (then SIGKILL after 20 s) and every Redis key
under the run's prefix is deleted. Exit status: 0 when every run delivered every group exactly
once with only 2xx answers, 1 otherwise, 2 when something needed is missing. Nothing asserts a
time: the figures are printed, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import itertools
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from ingest import (
    ALERTMANAGER_BIN,
    alertmanager_argv,
    command_version,
    digest,
    fmt_ratio,
    free_port,
    http_get,
    metric_sum,
    proc_stats,
    stop_process,
    tail,
)
from ingest import ratio as _ratio

ALERTS_PATH = "/api/v2/alerts"
READY_TIMEOUT_S = 60.0
WARMUP_ROUNDS = 12
WARMUP_DELIVERY_S = 30.0
STOP_TIMEOUT_S = 20.0
TARGETS = ("alertmanager", "tocsin", "tocsin-run")
ALERTNAMES = (
    "HighCPUUsage", "DiskWillFillIn4Hours", "InstanceDown", "HighMemoryUsage",
    "KubePodCrashLooping", "HTTPErrorRateHigh", "NodeFilesystemAlmostFull",
)  # fmt: skip
ROUTE_CONFIG = """\
route:
  receiver: recorder
  group_by: [alertname, instance]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 24h
receivers:
  - name: recorder
    webhook_configs:
      - url: {url}
"""
TICKS = os.sysconf("SC_CLK_TCK")
# Counters scraped from Tocsin's router and notifier processes: short name -> (metric, filter).
TOCSIN_COUNTERS: dict[str, tuple[str, str]] = {
    "received": ("tocsin_router_alerts_received_total", ""),
    "published": ("tocsin_router_notifications_total", ""),
    "delivered": ("tocsin_notifications_total", 'status="delivered"'),
    "flush_count": ("tocsin_router_flush_seconds_count", ""),
    "flush_sum": ("tocsin_router_flush_seconds_sum", ""),
    "flush_failures": ("tocsin_router_flush_failures_total", ""),
    "attempt_count": ("tocsin_notifications_attempt_seconds_count", ""),
    "attempt_sum": ("tocsin_notifications_attempt_seconds_sum", ""),
    "duplicate": ("tocsin_notifications_total", 'status="duplicate"'),
    "deduplicated": ("tocsin_notifications_total", 'status="deduplicated"'),
    "dead_lettered": ("tocsin_notifications_total", 'status="dead_lettered"'),
}
TIMELINE_COUNTERS = ("received", "published", "delivered")
_PROBLEM = re.compile(r"level=(warn|error)|Traceback|Error|Exception")


class BenchError(RuntimeError):
    """A target could not be started, warmed up or measured."""


# --------------------------------------------------------------------------- the recorder


def recorder_main(port: int) -> None:
    """The recorder process: POST /hook/<run> is stamped, kept and answered 200 at once.

    GET /-/count/<run> answers how many webhooks <run> got; GET /-/dump/<run> answers them as
    lines "<monotonic seconds> <body>" and forgets them. SIGTERM stops it."""
    from aiohttp import web

    records: defaultdict[str, list[tuple[float, bytes]]] = defaultdict(list)

    async def hook(request: web.Request) -> web.Response:
        stamp = time.monotonic()
        body = await request.read()
        records[request.match_info["run"]].append((stamp, body))
        return web.Response()

    async def count(request: web.Request) -> web.Response:
        return web.Response(text=str(len(records.get(request.match_info["run"], ()))))

    async def dump(request: web.Request) -> web.Response:
        found = records.pop(request.match_info["run"], [])
        lines = [b"%r %s" % (stamp, body.strip()) for stamp, body in found]
        return web.Response(body=b"\n".join(lines))

    async def serve() -> None:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.add_routes(
            [
                web.post("/hook/{run}", hook),
                web.get("/-/count/{run}", count),
                web.get("/-/dump/{run}", dump),
            ]
        )
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    runner(serve())


class Recorder:
    """This script, run as `--internal-recorder PORT` in a child process."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._log = workdir / "recorder.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise BenchError("the recorder is not running")
        return self._proc.pid

    def hook_url(self, run: str) -> str:
        return f"{self.base_url}/hook/{run}"

    def start(self) -> None:
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, __file__, "--internal-recorder", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while True:
            if self._proc.poll() is not None:
                raise BenchError(f"the recorder exited: {tail(self._log)}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if http_get(self.base_url, "/-/count/none", timeout=1)[0] == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError("the recorder did not start")
            time.sleep(0.05)

    def count(self, run: str) -> int:
        status, body = http_get(self.base_url, f"/-/count/{run}")
        if status != 200:
            raise BenchError(f"recorder count answered {status}")
        return int(body)

    def dump(self, run: str) -> list[tuple[float, bytes]]:
        status, body = http_get(self.base_url, f"/-/dump/{run}", timeout=60)
        if status != 200:
            raise BenchError(f"recorder dump answered {status}")
        found = []
        for line in body.split(b"\n"):
            if line:
                stamp, _, data = line.partition(b" ")
                found.append((float(stamp), data))
        return found

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc, timeout=10)


SAMPLE_WEBHOOK = orjson.dumps(
    {
        "receiver": "recorder",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "HighCPUUsage",
                    "instance": "node-00001.capacity.example.net:9100",
                    "job": "node",
                    "severity": "critical",
                    "team": "sre",
                },
                "annotations": {
                    "summary": "HighCPUUsage on node-00001.capacity.example.net:9100",
                    "description": "HighCPUUsage has been firing on "
                    "node-00001.capacity.example.net:9100 for more than 5 minutes (value: 93%).",
                },
                "startsAt": "2026-11-27T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr=up&g0.tab=1",
                "fingerprint": "6f1b3c0c2a7d9e41",
            }
        ],
        "groupLabels": {
            "alertname": "HighCPUUsage",
            "instance": "node-00001.capacity.example.net:9100",
        },
        "commonLabels": {"alertname": "HighCPUUsage", "job": "node", "severity": "critical"},
        "commonAnnotations": {"summary": "HighCPUUsage on node-00001"},
        "externalURL": "http://alertmanager.example.net:9093",
        "version": "4",
        "groupKey": '{}:{alertname="HighCPUUsage", '
        'instance="node-00001.capacity.example.net:9100"}',
        "truncatedAlerts": 0,
    }
)


@dataclass
class RecorderCheck:
    """What wrk got out of the recorder alone."""

    requests_per_s: float
    body_bytes: int
    connections: int
    recorder_cpu_cores: float
    wrk_cpu_cores: float
    errors: str


def check_recorder(recorder: Recorder, workdir: Path, seconds: int = 3) -> RecorderCheck:
    """wrk posting a 1 KB webhook body to the recorder: what it can take here."""
    script = workdir / "webhook.lua"
    body = SAMPLE_WEBHOOK.decode()
    script.write_text(
        f'wrk.method = "POST"\nwrk.body = {json.dumps(body)}\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    connections = 16
    cpu_before = pid_cpu_s(recorder.pid) or 0.0
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script)]
    out = subprocess.run(
        [*argv, recorder.hook_url("capacity")],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    elapsed = time.monotonic() - started
    usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_after = pid_cpu_s(recorder.pid) or 0.0
    recorder.dump("capacity")  # frees the recorder's memory
    match = re.search(r"Requests/sec:\s+([\d.]+)", out.stdout)
    if out.returncode != 0 or match is None:
        raise BenchError(f"wrk against the recorder failed: {out.stderr or out.stdout}")
    errors = re.search(r"Socket errors:.*|Non-2xx.*", out.stdout)
    wrk_cpu = (usage_after.ru_utime - usage_before.ru_utime) + (
        usage_after.ru_stime - usage_before.ru_stime
    )
    return RecorderCheck(
        requests_per_s=float(match.group(1)),
        body_bytes=len(SAMPLE_WEBHOOK),
        connections=connections,
        recorder_cpu_cores=round((cpu_after - cpu_before) / elapsed, 3),
        wrk_cpu_cores=round(wrk_cpu / elapsed, 3),
        errors=errors.group(0) if errors else "",
    )


# --------------------------------------------------------------------------- /proc sampling


def pid_cpu_s(pid: int) -> float | None:
    """User+system CPU seconds of one process (all its threads), None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid ... utime stime
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy_s() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / TICKS


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, comm) of the direct children of `pid`."""
    return [(p, comm) for p, comm, fields in proc_stats() if int(fields[1]) == pid]


def all_processes_cpu() -> dict[int, tuple[str, float]]:
    """(comm, CPU seconds) of every process on the machine."""
    return {
        pid: (comm, (int(fields[11]) + int(fields[12])) / TICKS)
        for pid, comm, fields in proc_stats()
    }


@dataclass
class Sample:
    """One look at every process's CPU, the machine's, and Tocsin's counters."""

    t: float
    cpu: dict[str, float]
    machine: float
    counters: dict[str, float]


class Sampler(threading.Thread):
    """Samples every `interval` seconds until stopped (and once more then)."""

    def __init__(
        self,
        pids: dict[str, int],
        scrape: Callable[[], dict[str, float]],
        interval: float,
    ) -> None:
        super().__init__(name="sampler", daemon=True)
        self._pids = pids
        self._scrape = scrape
        self._interval = interval
        self._stop_event = threading.Event()
        self.samples: list[Sample] = []
        self.scrape_errors = 0
        self.everyone: list[tuple[float, dict[int, tuple[str, float]]]] = []

    def take(self) -> Sample:
        counters: dict[str, float] = {}
        try:
            counters = self._scrape()
        except (OSError, http.client.HTTPException, BenchError):
            self.scrape_errors += 1
        cpu = {name: pid_cpu_s(pid) for name, pid in self._pids.items()}
        return Sample(
            time.monotonic(),
            {k: v for k, v in cpu.items() if v is not None},
            machine_busy_s(),
            counters,
        )

    def run(self) -> None:
        self.everyone.append((time.monotonic(), all_processes_cpu()))
        self.samples.append(self.take())
        while not self._stop_event.wait(self._interval):
            self.samples.append(self.take())
        self.samples.append(self.take())
        self.everyone.append((time.monotonic(), all_processes_cpu()))

    def top_others(self, limit: int = 4) -> list[str]:
        """The other processes that used the most CPU while sampling ("comm pid: cores")."""
        if len(self.everyone) < 2:
            return []
        (t1, before), (t2, after) = self.everyone[0], self.everyone[-1]
        mine = set(self._pids.values())
        used = []
        for pid, (comm, cpu) in after.items():
            if pid not in mine:
                delta = cpu - before.get(pid, (comm, 0.0))[1]
                if delta > 0:
                    used.append((delta / (t2 - t1), f"{comm} {pid}"))
        return [f"{name}: {cores:.2f}" for cores, name in sorted(used, reverse=True)[:limit]]

    def finish(self) -> list[Sample]:
        self._stop_event.set()
        self.join()
        return self.samples


# --------------------------------------------------------------------------- targets


def notifier_flags(args: argparse.Namespace) -> list[str]:
    """The notifiers' limits for the bench (the rate limit lifted, see the docstring)."""
    flags = [f"--notifiers.rate={args.notifier_rate:g}", f"--notifiers.burst={args.notifier_burst}"]
    if args.notifier_concurrency is not None:
        flags.append(f"--notifiers.concurrency={args.notifier_concurrency}")
    return flags


def git_state() -> dict[str, Any]:
    """The commit measured and the files of Tocsin's code that differ from it (others may be
    editing the working tree while a benchmark runs)."""
    repo = Path(__file__).resolve().parent.parent
    git = shutil.which("git")
    if git is None:
        return {"commit": "unknown", "modified": []}

    def run(*argv: str) -> str:
        out = subprocess.run(
            [git, "-C", str(repo), *argv], capture_output=True, text=True, check=False
        )
        return out.stdout.strip()

    modified = run("status", "--porcelain", "--", "services", "schemas", "pyproject.toml")
    return {
        "commit": run("rev-parse", "--short", "HEAD") or "unknown",
        "modified": [line[3:] for line in modified.splitlines()],
    }


def tocsin_bin() -> str:
    exe = Path(sys.executable).with_name("tocsin")
    return str(exe) if exe.exists() else shutil.which("tocsin") or "tocsin"


def clean_env() -> dict[str, str]:
    """This environment without TOCSIN_* settings, so that only the flags configure Tocsin."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}


def log_events(path: Path) -> Counter[str]:
    """Warnings and errors in a process's output, counted by kind.

    Tocsin's JSON lines at warning and above count by level, event and (for a traceback) the
    exception's last line; other lines that look like a problem (Alertmanager's logfmt
    warnings, a bare traceback) by their text without the timestamp."""
    counts: Counter[str] = Counter()
    for line in tail(path, 50_000_000).splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            if data.get("level") not in ("warning", "error", "critical"):
                continue
            key = f"{data.get('level')} {data.get('event', '?')}"
            exception = str(data.get("exception", "")).strip()
            if exception:
                key += f" ({exception.splitlines()[-1][:120]})"
            counts[key] += 1
        elif _PROBLEM.search(line):  # not Tocsin's start banner
            counts[re.sub(r'ts=\S+ ?|,? ?"timestamp": "[^"]*"', "", line)[:160]] += 1
    return counts


def wait_ready(name: str, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until GET <url>/-/ready answers 200."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        code = proc.poll()
        if code is not None:
            raise BenchError(f"{name} exited with status {code}:\n{digest(tail(log, 20_000))}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if http_get(url, "/-/ready", timeout=2.0)[0] == 200:
                return
        if time.monotonic() > deadline:
            raise BenchError(f"{name} not ready within {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.1)


@dataclass
class Proc:
    """One process a target started, with its log and, for Tocsin, its metrics URL."""

    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    metrics: bool = False


class Target:
    """Something with POST /api/v2/alerts that delivers webhooks to the recorder."""

    key = ""
    label = ""

    def __init__(self, hook_url: str, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="tocsin-e2e-"))
        self.config = self.workdir / "alertmanager.yml"
        self.config.write_text(ROUTE_CONFIG.format(url=hook_url))
        self.procs: list[Proc] = []
        self.alerts_url = ""

    def start(self) -> None:
        raise NotImplementedError

    def spawn(self, name: str, argv: list[str], port: int, *, metrics: bool = False) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=clean_env(),
            )  # fmt: skip
        entry = Proc(name, proc, f"http://127.0.0.1:{port}", log, metrics)
        self.procs.append(entry)
        return entry

    def pids(self) -> dict[str, int]:
        """Every process to sample, by name."""
        return {p.name: p.proc.pid for p in self.procs}

    def scrape(self) -> dict[str, float]:
        """Counters per process ("router-1/received"), for the timeline."""
        found: dict[str, float] = {}
        for p in self.procs:
            if not p.metrics:
                continue
            status, body = http_get(p.url, "/metrics", timeout=5)
            if status != 200:
                raise BenchError(f"{p.name} /metrics answered {status}")
            text = body.decode()
            for short, (metric, label_filter) in TOCSIN_COUNTERS.items():
                found[f"{p.name}/{short}"] = metric_sum(text, metric, label_filter)
        return found

    def all_busy(self, counters: dict[str, float]) -> list[str]:
        """The processes that have not handled warm-up traffic yet."""
        return []

    def problem(self) -> str | None:
        for p in self.procs:
            code = p.proc.poll()
            if code is not None:
                return f"{p.name} exited with status {code}"
        return None

    def stop(self) -> None:
        """SIGTERM to every process at once, SIGKILL after 20 s."""
        for p in self.procs:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()

    def cleanup(self) -> str:
        shutil.rmtree(self.workdir, ignore_errors=True)
        return ""

    def log_events(self) -> dict[str, dict[str, int]]:
        """Per process, its warnings and errors by event (the most frequent first)."""
        found = {}
        for p in self.procs:
            events = log_events(p.log)
            if events:
                found[p.name] = dict(events.most_common(6))
        return found

    def log_digest(self) -> str:
        parts = []
        for p in self.procs:
            text = digest(tail(p.log, 2_000_000), limit=6)
            if text:
                parts.append(f"[{p.name}]\n{text}")
        return "\n".join(parts)


class AlertmanagerTarget(Target):
    key = "alertmanager"

    def __init__(self, hook_url: str, args: argparse.Namespace, version: str) -> None:
        super().__init__(hook_url, args)
        self.label = f"Alertmanager {version}"

    def start(self) -> None:
        port = free_port()
        p = self.spawn("alertmanager", alertmanager_argv(self.config, self.workdir, port), port)
        self.alerts_url = p.url + ALERTS_PATH
        wait_ready(p.name, p.url, p.proc, p.log)


class TocsinTarget(Target):
    """Tocsin's services as separate processes on one embedded broker and the local Redis."""

    key = "tocsin"

    def __init__(self, hook_url: str, args: argparse.Namespace, run: str) -> None:
        super().__init__(hook_url, args)
        self.run = run
        self.prefix = f"bench-e2e:{run}:"
        self.label = (
            f"Tocsin: {args.ingest_workers} ingest, {args.routers} routers, "
            f"{args.notifiers} notifiers"
        )
        self._broker: Any = None
        self.bootstrap = ""

    def start(self) -> None:
        from services.runtime.embedded import EmbeddedKafka

        self._broker = broker = EmbeddedKafka(workdir=self.workdir / "kafka")
        asyncio.run(broker.start())
        self.bootstrap = broker.bootstrap_servers
        common = [
            f"--kafka.bootstrap-servers={self.bootstrap}",
            "--no-kafka.idempotence",
            "--log.level=warning",
            "--log.format=json",
        ]
        state = [
            f"--config.file={self.config}",
            f"--redis.url={self.args.redis_url}",
            f"--router.redis-prefix={self.prefix}",
        ]
        extra = list(self.args.tocsin_arg)
        port = free_port()
        ingest = self.spawn(
            "ingest",
            [tocsin_bin(), "ingest", f"--web.listen-address=127.0.0.1:{port}",
             f"--ingest.workers={self.args.ingest_workers}", *common, *extra],
            port,
        )  # fmt: skip
        self.alerts_url = ingest.url + ALERTS_PATH
        wait_ready(ingest.name, ingest.url, ingest.proc, ingest.log)  # it creates the topics
        started = [ingest]
        for i in range(self.args.routers):
            port = free_port()
            started.append(
                self.spawn(
                    f"router-{i + 1}",
                    [
                        tocsin_bin(),
                        "router",
                        f"--web.listen-address=127.0.0.1:{port}",
                        f"--router.group-id=bench-e2e-router-{self.run}",
                        *common,
                        *state,
                        *extra,
                    ],
                    port,
                    metrics=True,
                )
            )
        for i in range(self.args.notifiers):
            port = free_port()
            started.append(
                self.spawn(
                    f"notifiers-{i + 1}",
                    [
                        tocsin_bin(),
                        "notifiers",
                        f"--web.listen-address=127.0.0.1:{port}",
                        f"--notifiers.group-id=bench-e2e-notifiers-{self.run}",
                        *notifier_flags(self.args),
                        *common,
                        *state,
                        *extra,
                    ],
                    port,
                    metrics=True,
                )
            )
        for p in started[1:]:
            wait_ready(p.name, p.url, p.proc, p.log)

    def pids(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for p in self.procs:
            found[p.name if p.name != "ingest" else "ingest-1"] = p.proc.pid
            if p.name == "ingest":
                workers = [pid for pid, comm in children(p.proc.pid) if "python" in comm]
                for i, pid in enumerate(sorted(workers)):
                    found[f"ingest-{i + 2}"] = pid
        if self._broker is not None and self._broker.child is not None:
            found["broker"] = self._broker.child.pid
        redis_pid = local_redis_pid(self.args.redis_url)
        if redis_pid is not None:
            found["redis"] = redis_pid
        return found

    def all_busy(self, counters: dict[str, float]) -> list[str]:
        idle = []
        for p in self.procs:
            if p.name.startswith("router") and not counters.get(f"{p.name}/received"):
                idle.append(p.name)
            if p.name.startswith("notifiers") and not counters.get(f"{p.name}/delivered"):
                idle.append(p.name)
        return idle

    def stop(self) -> None:
        super().stop()
        if self._broker is not None:
            asyncio.run(self._broker.stop())
            self._broker = None

    def cleanup(self) -> str:
        """Delete every Redis key under the run's prefix."""
        import redis

        client = redis.Redis.from_url(self.args.redis_url)
        deleted = 0
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{self.prefix}*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    deleted += int(client.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(client.unlink(*batch))
        finally:
            client.close()
        super().cleanup()
        return f"deleted {deleted:,} Redis keys under {self.prefix}"


class TocsinRunTarget(Target):
    """`tocsin run --config.file=...`: every service in one process, embedded Kafka and Redis."""

    key = "tocsin-run"
    label = "Tocsin run: 1 process, embedded"

    def start(self) -> None:
        port = free_port()
        flags = notifier_flags(self.args)
        argv = [
            tocsin_bin(), "run", f"--config.file={self.config}",
            f"--web.listen-address=127.0.0.1:{port}", *flags,
            "--log.level=warning", "--log.format=json", *self.args.tocsin_arg,
        ]  # fmt: skip
        p = self.spawn("tocsin", argv, port, metrics=True)
        self.alerts_url = p.url + ALERTS_PATH
        wait_ready(p.name, p.url, p.proc, p.log)

    def pids(self) -> dict[str, int]:
        found = super().pids()
        for pid, comm in children(self.procs[0].proc.pid):
            name = "redis" if "redis" in comm else "broker" if "tansu" in comm else comm
            found[name] = pid
        return found

    def all_busy(self, counters: dict[str, float]) -> list[str]:
        return [] if counters.get("tocsin/delivered") else ["tocsin"]


def local_redis_pid(url: str) -> int | None:
    """The pid of the Redis server behind `url` if it runs on this machine."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        info = client.info("server")
    except redis.RedisError:
        return None
    finally:
        client.close()
    pid = int(info.get("process_id", 0))
    return pid if pid and Path(f"/proc/{pid}").exists() else None


# --------------------------------------------------------------------------- load


def fmt_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_batches(run: str, groups: int, batch: int) -> tuple[list[bytes], list[list[str]]]:
    """Request bodies and, per body, the group (instance label) of each of its alerts."""
    now = datetime.now(UTC)
    starts, ends = fmt_time(now), fmt_time(now + timedelta(hours=1))
    bodies, members = [], []
    for first in range(0, groups, batch):
        alerts, instances = [], []
        for n in range(first, min(first + batch, groups)):
            alertname = ALERTNAMES[n % len(ALERTNAMES)]
            instance = f"node-{n:05d}.{run}.example.net:9100"
            alerts.append(
                {
                    "labels": {
                        "alertname": alertname,
                        "instance": instance,
                        "job": "node",
                        "severity": ("warning", "critical", "info")[n % 3],
                        "team": ("sre", "platform", "storage", "web")[n % 4],
                    },
                    "annotations": {
                        "summary": f"{alertname} on {instance}",
                        "description": f"{alertname} has been firing on {instance} for more "
                        f"than 5 minutes (value: {80 + n % 20}%).",
                    },
                    "startsAt": starts,
                    "endsAt": ends,
                    "generatorURL": "http://prometheus.example.net:9090/graph?g0.expr="
                    f"instance%3A{alertname}%3Aratio+%3E+0.9&g0.tab=1",
                }
            )
            instances.append(instance)
        bodies.append(orjson.dumps(alerts))
        members.append(instances)
    return bodies, members


@dataclass
class Posted:
    """What the poster did: per request when it was first sent and when it was acknowledged."""

    sent: list[float]
    acked: list[float]
    statuses: Counter[int]
    retries: int
    error_sample: str
    cpu_s: float

    @property
    def first(self) -> float:
        return min(self.sent)

    @property
    def last_ack(self) -> float:
        return max(self.acked)


async def post_all(url: str, bodies: Sequence[bytes], connections: int) -> Posted:
    """POST every body, `connections` at a time over keep-alive connections; retry non-2xx."""
    sent = [0.0] * len(bodies)
    acked = [0.0] * len(bodies)
    statuses: Counter[int] = Counter()
    retries = 0
    error_sample = ""
    cpu_before = time.thread_time()
    pending = iter(range(len(bodies)))
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=60)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal retries, error_sample
        for i in pending:
            sent[i] = time.monotonic()
            for attempt in range(20):
                try:
                    async with session.post(url, data=bodies[i], headers=headers) as response:
                        text = await response.read()
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, text = 0, repr(exc).encode()
                statuses[status] += 1
                if 200 <= status < 300:
                    acked[i] = time.monotonic()
                    break
                retries += 1
                error_sample = error_sample or f"{status}: {text[:300].decode(errors='replace')}"
                await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
            else:
                raise BenchError(f"request {i} refused 20 times: {error_sample}")

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(connections)))
    return Posted(sent, acked, statuses, retries, error_sample, time.thread_time() - cpu_before)


def wait_deliveries(
    recorder: Recorder, run: str, expected: int, start: float, args: argparse.Namespace
) -> str:
    """Until the recorder holds `expected` webhooks for `run`, or it stalls, or time is up."""
    last, changed = -1, time.monotonic()
    while True:
        count = recorder.count(run)
        now = time.monotonic()
        if count != last:
            last, changed = count, now
        if count >= expected:
            return "all arrived"
        if now - changed > args.idle_timeout:
            return f"stopped waiting: nothing new for {args.idle_timeout:g} s"
        if now - start > args.timeout:
            return f"stopped waiting: {args.timeout:g} s after the first post"
        time.sleep(0.1)


# --------------------------------------------------------------------------- one run


@dataclass
class ProcessCpu:
    """One process's CPU in the measured window."""

    name: str
    cpu_s: float
    cores: float
    peak_cores: float


@dataclass
class RunResult:
    """One measured run of one target, as printed and written to --json."""

    target: str
    label: str
    round: int
    groups: int
    delivered: int
    lost: int
    duplicated: int
    extra_webhooks: int
    bad_webhooks: int
    stray_webhooks: int
    window_s: float
    notifications_per_s: float
    latency_s: dict[str, float]
    posting_s: float
    posted_alerts_per_s: float
    non_2xx: dict[str, int]
    retries: int
    error_sample: str
    poster_cpu_s: float
    wait: str
    cpu: list[ProcessCpu]
    cpu_ms_per_notification: float
    machine_cores: float
    others_cores: float
    timeline: list[dict[str, float]]
    final_counters: dict[str, float]
    warmup_rounds: int
    scrape_errors: int
    top_others: list[str] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    log_events: dict[str, dict[str, int]] = field(default_factory=dict)
    cleanup: str = ""
    log_digest: str = ""

    @property
    def clean(self) -> bool:
        return not (
            self.lost or self.duplicated or self.bad_webhooks or self.non_2xx or self.retries
        )


@dataclass
class Failure:
    """A run that produced no measurement."""

    target: str
    label: str
    round: int
    error: str
    log_digest: str = ""
    cleanup: str = ""


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(pct / 100 * len(sorted_values) + 0.4999))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def warm_up(target: Target, recorder: Recorder, run: str, args: argparse.Namespace) -> int:
    """Deliver warm-up groups until every process of the target has handled some; the rounds."""
    delivered = 0
    for attempt in range(1, WARMUP_ROUNDS + 1):
        bodies, _ = make_batches(f"{run}w{attempt}", args.batch, args.batch)
        asyncio.run(post_all(target.alerts_url, bodies, 1))
        delivered += args.batch
        deadline = time.monotonic() + WARMUP_DELIVERY_S
        while recorder.count(run) < delivered:
            if time.monotonic() > deadline:
                raise BenchError(
                    f"warm-up: {recorder.count(run)} of {delivered} webhooks arrived within "
                    f"{WARMUP_DELIVERY_S:.0f} s"
                )
            problem = target.problem()
            if problem is not None:
                raise BenchError(f"warm-up: {problem}")
            time.sleep(0.1)
        idle = target.all_busy(target.scrape())
        if not idle:
            return attempt
        time.sleep(1.0)  # consumer group rebalancing: give it a moment
    raise BenchError(f"warm-up: {', '.join(idle)} got no work after {WARMUP_ROUNDS} rounds")


def cpu_window(samples: Sequence[Sample], start: float, end: float) -> tuple[Sample, Sample]:
    """The samples around [start, end]: the last at or before start, the first at or after end."""
    before = [s for s in samples if s.t <= start] or samples[:1]
    after = [s for s in samples if s.t >= end] or samples[-1:]
    return before[-1], after[0]


def timeline(
    samples: Sequence[Sample],
    baseline: dict[str, float],
    t0: float,
    end: float,
    posted: Posted,
    members: Sequence[Sequence[str]],
    arrivals: Sequence[float],
) -> list[dict[str, float]]:
    """Per sampling interval up to `end`: stage progress (cumulative) and cores per process."""
    acked = sorted((posted.acked[i], len(m)) for i, m in enumerate(members))
    rows = []
    for prev, cur in itertools.pairwise(samples):
        if cur.t < t0:
            continue
        span = cur.t - prev.t
        row: dict[str, float] = {"t": round(cur.t - t0, 2)}
        row["acked"] = sum(n for t, n in acked if t <= cur.t)
        for short in TIMELINE_COUNTERS:
            values = [
                v - baseline.get(k, 0.0) for k, v in cur.counters.items() if k.endswith(f"/{short}")
            ]
            if values:
                row[short] = sum(values)
        row["recorded"] = sum(1 for t in arrivals if t <= cur.t)
        for name, value in cur.cpu.items():
            if name in prev.cpu and span > 0:
                row[f"cpu:{name}"] = round((value - prev.cpu[name]) / span, 2)
        if span > 0:
            row["cpu:machine"] = round((cur.machine - prev.machine) / span, 2)
        rows.append(row)
        if cur.t >= end:
            break
    return rows


def measure(
    target: Target, recorder: Recorder, run: str, args: argparse.Namespace, round_no: int
) -> RunResult:
    """Warm up, then the measured run; the target is started."""
    rounds = warm_up(target, recorder, run, args)
    recorder.dump(run)  # forget the warm-up's webhooks
    bodies, members = make_batches(f"{run}m", args.groups, args.batch)
    group_of: dict[str, int] = {inst: i for i, batch in enumerate(members) for inst in batch}
    pids = {**target.pids(), "recorder": recorder.pid, "bench": os.getpid()}
    baseline = target.scrape()
    sampler = Sampler(pids, target.scrape, args.sample_interval)
    sampler.start()
    time.sleep(min(args.sample_interval, 0.2))
    posted = asyncio.run(post_all(target.alerts_url, bodies, args.connections))
    wait = wait_deliveries(recorder, run, args.groups, posted.first, args)
    time.sleep(args.settle)
    samples = sampler.finish()
    problem = target.problem()
    if problem is not None:
        raise BenchError(f"during the run: {problem}")
    records = recorder.dump(run)

    first: dict[str, float] = {}
    deliveries: Counter[str] = Counter()
    bad = stray = 0
    for stamp, body in records:
        data = orjson.loads(body)
        instance = data.get("groupLabels", {}).get("instance", "")
        if instance not in group_of:
            stray += 1
            continue
        deliveries[instance] += 1
        first[instance] = min(first.get(instance, stamp), stamp)
        alerts = data.get("alerts", [])
        if len(alerts) != 1 or alerts[0].get("labels", {}).get("instance") != instance:
            bad += 1
    t0 = posted.first
    latencies = sorted(t - posted.sent[group_of[inst]] for inst, t in first.items())
    end = max(first.values()) if first else t0
    window = end - t0
    a, b = cpu_window(samples, t0, end)
    span = b.t - a.t
    cpu = []
    for name in dict.fromkeys([*pids, *b.cpu]):
        if name in a.cpu and name in b.cpu:
            used = b.cpu[name] - a.cpu[name]
            peak = 0.0
            for prev, cur in itertools.pairwise(samples):
                if a.t <= prev.t and cur.t <= b.t and name in prev.cpu and name in cur.cpu:
                    peak = max(peak, (cur.cpu[name] - prev.cpu[name]) / (cur.t - prev.t))
            cpu.append(ProcessCpu(name, round(used, 2), round(used / span, 2), round(peak, 2)))
    machine = (b.machine - a.machine) / span if span > 0 else 0.0
    named = sum(c.cores for c in cpu)
    target_cpu = sum(c.cpu_s for c in cpu if c.name not in ("recorder", "bench"))
    final = {k: v - baseline.get(k, 0.0) for k, v in (samples[-1].counters or {}).items()}
    non_2xx = {str(k): v for k, v in posted.statuses.items() if not 200 <= k < 300}
    return RunResult(
        target=target.key,
        label=target.label,
        round=round_no,
        groups=args.groups,
        delivered=len(first),
        lost=args.groups - len(first),
        duplicated=sum(1 for n in deliveries.values() if n > 1),
        extra_webhooks=sum(n - 1 for n in deliveries.values() if n > 1),
        bad_webhooks=bad,
        stray_webhooks=stray,
        window_s=round(window, 3),
        notifications_per_s=round(len(first) / window, 1) if window > 0 else 0.0,
        latency_s={
            "p50": round(percentile(latencies, 50), 4),
            "p99": round(percentile(latencies, 99), 4),
            "max": round(latencies[-1], 4) if latencies else float("nan"),
        },
        posting_s=round(posted.last_ack - t0, 3),
        posted_alerts_per_s=round(args.groups / (posted.last_ack - t0), 1),
        non_2xx=non_2xx,
        retries=posted.retries,
        error_sample=posted.error_sample,
        poster_cpu_s=round(posted.cpu_s, 3),
        wait=wait,
        cpu=sorted(cpu, key=lambda c: -c.cores),
        cpu_ms_per_notification=round(1000 * target_cpu / len(first), 3) if first else 0.0,
        machine_cores=round(machine, 2),
        others_cores=round(max(machine - named, 0.0), 2),
        timeline=timeline(samples, baseline, t0, end, posted, members, sorted(first.values())),
        final_counters=final,
        warmup_rounds=rounds,
        scrape_errors=sampler.scrape_errors,
        top_others=sampler.top_others(),
        samples=[
            {"t": round(x.t - t0, 3), "cpu_s": x.cpu, "counters": x.counters} for x in samples
        ],
    )


def bench_one(
    make: Callable[[str, str], Target],
    recorder: Recorder,
    args: argparse.Namespace,
    round_no: int,
) -> RunResult | Failure:
    """One target, freshly started, measured, stopped and cleaned up."""
    run = uuid.uuid4().hex[:8]
    target = make(recorder.hook_url(run), run)
    print(f"  {target.label} (round {round_no}) ...", file=sys.stderr, flush=True)
    outcome: RunResult | Failure
    cleanup = ""
    try:
        target.start()
        outcome = measure(target, recorder, run, args, round_no)
        outcome.log_events = target.log_events()
        if not outcome.clean:
            outcome.log_digest = target.log_digest()
    except (BenchError, OSError, http.client.HTTPException) as exc:
        outcome = Failure(target.key, target.label, round_no, str(exc), target.log_digest())
    finally:
        target.stop()
        try:
            cleanup = target.cleanup()
        except Exception as exc:  # noqa: BLE001 - reported, the next target still runs
            cleanup = f"FAILED: {type(exc).__name__}: {exc}"
    outcome.cleanup = cleanup
    recorder.dump(run)
    time.sleep(1.0)  # let the CPUs go quiet before the next start
    return outcome


# --------------------------------------------------------------------------- report


def fmt_s(value: float) -> str:
    """Seconds as ms below one second."""
    if value != value:  # NaN
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def ratio(num: float, den: float) -> float | None:
    return _ratio(num, den, 3)


@dataclass
class Report:
    meta: dict[str, Any]
    outcomes: list[RunResult | Failure] = field(default_factory=list)
    recorder: RecorderCheck | None = None

    def baseline(self, round_no: int) -> RunResult | None:
        for o in self.outcomes:
            if isinstance(o, RunResult) and o.target == "alertmanager" and o.round == round_no:
                return o
        return None

    def ratios(self) -> list[dict[str, Any]]:
        found = []
        for o in self.outcomes:
            am = self.baseline(o.round)
            if not isinstance(o, RunResult) or am is None or o is am:
                continue
            found.append(
                {
                    "target": o.target,
                    "label": o.label,
                    "round": o.round,
                    "notifications_per_s": ratio(o.notifications_per_s, am.notifications_per_s),
                    "p50": ratio(o.latency_s["p50"], am.latency_s["p50"]),
                    "p99": ratio(o.latency_s["p99"], am.latency_s["p99"]),
                    "cpu_per_notification": ratio(
                        o.cpu_ms_per_notification, am.cpu_ms_per_notification
                    ),
                }
            )
        return found

    def table(self) -> str:
        rounds = len({o.round for o in self.outcomes}) > 1
        suffix = len(" / AM (round 10)") if rounds else len(" / AM")
        name_w = max([40, *(len(o.label) + suffix + 1 for o in self.outcomes)])
        head = (
            f"{'target'.ljust(name_w)}|{'notif/s':>9} |{'p50':>9} |{'p99':>9} |{'max':>9} |"
            f"{'lost':>6} |{'dup':>5} |{'posting':>9} |{'CPU/notif':>10} | errors"
        )
        lines = [head, "-" * len(head)]
        for o in self.outcomes:
            name = o.label + (f" (round {o.round})" if rounds else "")
            if isinstance(o, Failure):
                lines.append(f"{name.ljust(name_w)}| FAILED (see details)")
                continue
            errors = ", ".join(f"HTTP {k} x{v}" for k, v in o.non_2xx.items()) or "none"
            lines.append(
                f"{name.ljust(name_w)}|{o.notifications_per_s:>9,.0f} |"
                f"{fmt_s(o.latency_s['p50']):>9} |{fmt_s(o.latency_s['p99']):>9} |"
                f"{fmt_s(o.latency_s['max']):>9} |{o.lost:>6,} |{o.duplicated:>5,} |"
                f"{fmt_s(o.posting_s):>9} |{o.cpu_ms_per_notification:>7.2f} ms | {errors}"
            )
        for r in self.ratios():
            name = f"{r['label']} / AM" + (f" (round {r['round']})" if rounds else "")
            lines.append(
                f"{name.ljust(name_w)}|{fmt_ratio(r['notifications_per_s']):>9} |"
                f"{fmt_ratio(r['p50']):>9} |{fmt_ratio(r['p99']):>9} |{'':>9} |{'':>6} |"
                f"{'':>5} |{'':>9} |{fmt_ratio(r['cpu_per_notification']):>10} |"
            )
        notes = [
            "notif/s: groups delivered / (last first-delivery - first request sent). p50/p99/max:"
            " per group, first delivery at the recorder - its request sent.",
            "posting: until the last request was answered 2xx. CPU/notif: CPU of the target's "
            "processes (broker and Redis included; not the recorder, not this script) in the "
            "window / groups delivered.",
            "Ratios above 1: Tocsin delivers more per second / takes longer / uses more CPU.",
        ]
        return "\n".join([*lines, "", *notes])

    def details(self) -> str:
        out: list[str] = []
        if self.recorder is not None:
            r = self.recorder
            out.append(
                f"Recorder alone (wrk 1 thread, {r.connections} connections, {r.body_bytes} B "
                f"webhook body, 3 s): {r.requests_per_s:,.0f} requests/s, recorder "
                f"{r.recorder_cpu_cores:.2f} cores, wrk {r.wrk_cpu_cores:.2f} cores"
                + (f"; {r.errors}" if r.errors else "")
            )
        for o in self.outcomes:
            out.append("")
            if isinstance(o, Failure):
                out.append(f"{o.label} (round {o.round}): FAILED: {o.error}")
                if o.log_digest:
                    out.append("  output:\n    " + o.log_digest.replace("\n", "\n    "))
                if o.cleanup:
                    out.append(f"  cleanup: {o.cleanup}")
                continue
            out.append(
                f"{o.label} (round {o.round}): {o.delivered:,} of {o.groups:,} groups delivered "
                f"in {o.window_s:.2f} s; {o.wait}; warm-up rounds {o.warmup_rounds}"
            )
            out.append(
                f"  posting: {o.groups:,} alerts acknowledged in {o.posting_s:.2f} s "
                f"({o.posted_alerts_per_s:,.0f} alerts/s), retries {o.retries}, poster CPU "
                f"{o.poster_cpu_s:.2f} s"
                + (f"; first error: {o.error_sample}" if o.retries else "")
            )
            out.append(
                f"  webhooks: lost {o.lost}, duplicated groups {o.duplicated} (+{o.extra_webhooks} "
                f"webhooks), not 1 alert of the group {o.bad_webhooks}, unknown groups "
                f"{o.stray_webhooks}"
            )
            out.append(
                f"  CPU in the window (cores; machine {o.machine_cores:.2f} of "
                f"{self.meta['cpus']}, others {o.others_cores:.2f}):"
            )
            if o.top_others:
                out.append(f"    (others, over the whole sampling: {', '.join(o.top_others)})")
            for c in o.cpu:
                out.append(
                    f"    {c.name:<14}{c.cores:>6.2f} avg  {c.peak_cores:>5.2f} peak  "
                    f"{c.cpu_s:>7.2f} s"
                )
            if o.final_counters:
                out.append("  counters (increase over the run, per process):")
                by_proc: defaultdict[str, list[str]] = defaultdict(list)
                for k, v in sorted(o.final_counters.items()):
                    proc, _, short = k.partition("/")
                    if v:
                        by_proc[proc].append(f"{short}={v:,.3f}".rstrip("0").rstrip("."))
                for proc, items in by_proc.items():
                    out.append(f"    {proc:<14}{' '.join(items)}")
            if o.log_events:
                out.append("  warnings and errors logged (whole run, warm-up included):")
                for proc, events in o.log_events.items():
                    for event, n in events.items():
                        out.append(f"    {proc:<14}{n:>6,} x {event}")
            if o.scrape_errors:
                out.append(f"  /metrics scrapes that failed: {o.scrape_errors}")
            out.append("  timeline (stages cumulative; cpu:<process> in cores over the interval):")
            out += ["    " + line for line in format_timeline(o.timeline)]
            if o.cleanup:
                out.append(f"  cleanup: {o.cleanup}")
            if o.log_digest:
                out.append("  output:\n    " + o.log_digest.replace("\n", "\n    "))
        return "\n".join(out)

    def document(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "recorder_check": asdict(self.recorder) if self.recorder else None,
            "runs": [{"ok": isinstance(o, RunResult), **asdict(o)} for o in self.outcomes],
            "ratios_tocsin_over_alertmanager": self.ratios(),
        }


def format_timeline(rows: Sequence[dict[str, float]]) -> list[str]:
    if not rows:
        return ["(no samples)"]
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    stages = [k for k in keys if not k.startswith("cpu:")]
    cpus = [k for k in keys if k.startswith("cpu:")]
    short = {k: k.removeprefix("cpu:") for k in cpus}
    widths = {k: max(len(short.get(k, k)), 6) + 1 for k in stages + cpus}
    lines = ["".join(short.get(k, k).rjust(widths[k]) for k in stages + cpus)]
    for row in rows:
        cells = []
        for k in stages + cpus:
            v = row.get(k)
            text = "" if v is None else (f"{v:.2f}" if k.startswith("cpu:") else f"{v:,.0f}")
            if k == "t" and v is not None:
                text = f"{v:.1f}"
            cells.append(text.rjust(widths[k]))
        lines.append("".join(cells))
    return lines


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="End to end: alerts posted -> webhooks delivered, Tocsin against "
        "Alertmanager 0.25 to the same recorder.",
    )
    parser.add_argument("--groups", type=int, default=20_000, help="distinct groups (alerts)")
    parser.add_argument("--batch", type=int, default=100, help="alerts per request")
    parser.add_argument("--connections", type=int, default=4, help="poster connections")
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated, in this order: {', '.join(TARGETS)} (default all)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="run every target this many times")
    parser.add_argument("--ingest-workers", type=int, default=2, help="tocsin ingest processes")
    parser.add_argument("--routers", type=int, default=2, help="tocsin router replicas")
    parser.add_argument("--notifiers", type=int, default=2, help="tocsin notifiers workers")
    parser.add_argument("--notifier-rate", type=float, default=1e6, help="--notifiers.rate")
    parser.add_argument("--notifier-burst", type=int, default=1_000_000, help="--notifiers.burst")
    parser.add_argument(
        "--notifier-concurrency", type=int, default=64, help="--notifiers.concurrency (Tocsin's"
        " default: 8)"
    )  # fmt: skip
    parser.add_argument(
        "--tocsin-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra flag for every Tocsin process, e.g. --tocsin-arg=--router.poll-interval=0.02",
    )
    parser.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/0", help="Redis of the multi-process Tocsin"
    )
    parser.add_argument("--timeout", type=float, default=150, help="s after the first post")
    parser.add_argument("--idle-timeout", type=float, default=20, help="s without a new webhook")
    parser.add_argument("--settle", type=float, default=3, help="s to wait for late duplicates")
    parser.add_argument("--sample-interval", type=float, default=0.5, help="s between samples")
    parser.add_argument(
        "--skip-recorder-check", action="store_true", help="do not measure the recorder alone"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument("--internal-recorder", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(targets) - set(TARGETS)
    if unknown or not targets:
        parser.error(f"--targets: unknown {', '.join(sorted(unknown))}; know {', '.join(TARGETS)}")
    args.targets = [t for t in TARGETS if t in targets]
    if min(args.groups, args.batch, args.connections, args.rounds) < 1:
        parser.error("--groups, --batch, --connections and --rounds must be at least 1")
    if min(args.ingest_workers, args.routers, args.notifiers) < 1:
        parser.error("--ingest-workers, --routers and --notifiers must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.internal_recorder is not None:
        recorder_main(args.internal_recorder)
        return 0
    if "alertmanager" in args.targets and not Path(ALERTMANAGER_BIN).exists():
        print(f"bench: {ALERTMANAGER_BIN} missing; use --targets", file=sys.stderr)
        return 2
    if not args.skip_recorder_check and shutil.which("wrk") is None:
        print("bench: wrk is not installed; use --skip-recorder-check", file=sys.stderr)
        return 2
    am_version = command_version([ALERTMANAGER_BIN, "--version"], r"version (\S+)")
    meta: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "groups": args.groups,
        "batch": args.batch,
        "connections": args.connections,
        "targets": args.targets,
        "rounds": args.rounds,
        "alertmanager_version": am_version,
        "tocsin_version": command_version([tocsin_bin(), "--version"], r"tocsin (\S+)"),
        "git": git_state(),
        "tocsin": {
            "ingest_workers": args.ingest_workers,
            "routers": args.routers,
            "notifiers": args.notifiers,
            "notifier_rate": args.notifier_rate,
            "notifier_burst": args.notifier_burst,
            "notifier_concurrency": args.notifier_concurrency,
            "extra_flags": args.tocsin_arg,
        },
        "route": ROUTE_CONFIG.format(url="<recorder>/hook/<run>"),
    }
    report = Report(meta)
    from services.runtime.logging import configure_logging

    configure_logging("warning", "console")  # the embedded broker's start and stop: not news
    workdir = Path(tempfile.mkdtemp(prefix="tocsin-e2e-bench-"))
    recorder = Recorder(workdir)
    makers: dict[str, Callable[[str, str], Target]] = {
        "alertmanager": lambda url, run: AlertmanagerTarget(url, args, am_version),
        "tocsin": lambda url, run: TocsinTarget(url, args, run),
        "tocsin-run": lambda url, run: TocsinRunTarget(url, args),
    }
    try:
        recorder.start()
        if not args.skip_recorder_check:
            print("bench: the recorder alone, 3 s of wrk ...", file=sys.stderr, flush=True)
            report.recorder = check_recorder(recorder, workdir)
        print(
            f"bench: {args.groups:,} groups x {len(args.targets)} targets x {args.rounds} round(s)",
            file=sys.stderr,
        )
        for round_no in range(1, args.rounds + 1):
            for key in args.targets:
                report.outcomes.append(bench_one(makers[key], recorder, args, round_no))
    finally:
        recorder.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\nEnd to end: {args.groups:,} groups (group_by [alertname, instance], group_wait 0s), "
        f"POST {ALERTS_PATH} {args.batch} alerts/request over {args.connections} connections, "
        f"webhooks to one recorder; one target at a time on {os.cpu_count()} CPUs\n"
        f"Tocsin {meta['tocsin_version']} at commit {meta['git']['commit']}"
        + (
            f", uncommitted changes in: {', '.join(meta['git']['modified'])}"
            if meta["git"]["modified"]
            else ""
        )
        + "\n"
    )
    print(report.table())
    print("\nDetails\n" + report.details())
    if args.json:
        args.json.write_text(json.dumps(report.document(), indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    ok = all(isinstance(o, RunResult) and o.clean for o in report.outcomes)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
