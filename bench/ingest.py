"""Ingest throughput: Tocsin's POST /api/v2/alerts against a real Alertmanager 0.25, same load.

Run from the repository root:

    .venv/bin/python bench/ingest.py                      # 10 s per run, both targets
    .venv/bin/python bench/ingest.py --duration 5 --json /tmp/ingest.json
    .venv/bin/python bench/ingest.py --skip-alertmanager --workers 4
    .venv/bin/python bench/ingest.py --tocsin-url http://127.0.0.1:9094 --workers 2

What it measures
----------------
One load generator, wrk (``bench/wrk/alerts.lua``), posts Alertmanager v2 API bodies (a JSON
array of alerts with 6 labels, 2 annotations, startsAt and generatorURL, like Prometheus sends)
to each target in turn, never both at once: on a small machine wrk, the target and (for Tocsin)
its broker share the CPUs, so the figures compare the targets under identical conditions, not
their absolute ceilings. Every alert carries a unique ``alert_id`` label (run tag, wrk thread
id, per-thread counter), so Alertmanager cannot merge them and both targets do the full work
for each alert.

Two modes: (a) 1 alert per request over 16 connections, (b) 100 alerts per request over 8
connections. Each (target, mode) pair gets a freshly started target, a warm-up run (default
2 s, not measured) and then the measured run. Reported per run: alerts/s (alerts in 2xx
responses divided by wrk's run time), request latency p50/p99 (wrk's, from send to complete
response; for Tocsin a 200 means the broker acknowledged every alert of the request), the
CPU used by the target's process tree and by wrk, and then the Tocsin/Alertmanager ratios.

Accounting: the Lua script counts 2xx and non-2xx responses (and keeps one error body). After
each run the target's own counter is read: Tocsin's
``tocsin_ingest_alerts_accepted_total{source="api.v2"}`` (incremented only after broker acks),
Alertmanager's ``alertmanager_alerts_received_total``. The increase must equal the alerts in
wrk's 2xx responses, except for the requests still in flight when wrk stopped (wrk abandons
them, the target still finishes them): at most connections x batch more. With several Tocsin
workers each process has its own /metrics behind one SO_REUSEPORT port; the benchmark scrapes
with a new connection each time until it has seen every process (told apart by the creation
timestamp of a process-wide metric) and sums them.

Tocsin is started as ``tocsin ingest --ingest.workers=N`` (its own embedded broker unless
TOCSIN_KAFKA__BOOTSTRAP_SERVERS is set); Alertmanager as
``prometheus-alertmanager`` with a null receiver, a temporary storage path and gossip off.
Exit status: 0 when every run finished with only 2xx responses and a matching count, else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "wrk" / "alerts.lua"
ALERTS_PATH = "/api/v2/alerts"
ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
WRK_TIMEOUT = "30s"  # well above Tocsin's 5 s publish timeout: slow answers count as latency
READY_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 20.0
MAX_SCRAPES = 200  # per counter reading, to find every worker behind SO_REUSEPORT
TOCSIN_ACCEPTED = "tocsin_ingest_alerts_accepted_total"
AM_RECEIVED = "alertmanager_alerts_received_total"
AM_CONFIG = "route: {receiver: 'null'}\nreceivers: [{name: 'null'}]\n"

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", re.MULTILINE)
_TIMESTAMP = re.compile(r',? ?"timestamp": "[^"]*"|\bts=\S+ ?')
_CREATED = re.compile(r"^tocsin_[a-z0-9_]+_created\s+(\S+)$", re.MULTILINE)


class BenchError(RuntimeError):
    """A target could not be started, answered wrongly, or wrk failed."""


@dataclass(frozen=True)
class Mode:
    """One load shape: alerts per request and concurrent connections."""

    key: str
    batch: int
    connections: int

    @property
    def label(self) -> str:
        unit = "alert" if self.batch == 1 else "alerts"
        return f"{self.batch} {unit}/req, {self.connections} conns"


MODES: tuple[Mode, ...] = (Mode("single", 1, 16), Mode("batch100", 100, 8))


@dataclass(frozen=True)
class CounterReading:
    """A target's accepted-alerts counter, summed over the processes seen."""

    total: int
    processes_seen: int
    processes_expected: int


@dataclass
class WrkResult:
    """What wrk's done() callback reported for one run."""

    requests: int
    duration_s: float
    ok_responses: int
    bad_statuses: dict[str, int]
    error_sample: str | None
    socket_errors: dict[str, int]
    latency_us: dict[str, float]
    wrk_cpu_s: float


@dataclass
class RunResult:
    """One measured (target, mode) run, as printed and written to --json."""

    target: str
    mode: str
    mode_label: str
    batch: int
    connections: int
    threads: int
    duration_s: float
    requests: int
    ok_responses: int
    alerts_in_2xx: int
    alerts_per_s: float
    requests_per_s: float
    latency_ms: dict[str, float]
    bad_statuses: dict[str, int]
    socket_errors: dict[str, int]
    error_sample: str | None
    wrk_cpu_cores: float
    target_cpu_cores: float | None
    counter: str
    counter_delta: int | None
    verified: bool | None
    verdict: str
    target_info: dict[str, str] = field(default_factory=dict)
    warmup_problems: str | None = None
    log_digest: str | None = None

    @property
    def clean(self) -> bool:
        """Only 2xx answers, no socket errors, and the target's count matched."""
        return (
            not self.bad_statuses and not any(self.socket_errors.values()) and bool(self.verified)
        )


@dataclass
class Failure:
    """A (target, mode) pair that produced no measurement."""

    target: str
    mode: str
    error: str
    log_digest: str = ""


# --------------------------------------------------------------------------- small helpers


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(base_url: str, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET over a new connection (so SO_REUSEPORT may pick another process each time)."""
    parts = urlsplit(base_url)
    host = parts.hostname or "127.0.0.1"
    conn_cls = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = conn_cls(host, parts.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def metric_sum(text: str, name: str, label_filter: str = "") -> float:
    """Sum of the samples of `name` whose label set contains `label_filter`."""
    total = 0.0
    for match in _SAMPLE.finditer(text):
        if match.group(1) == name and label_filter in (match.group(2) or ""):
            total += float(match.group(3))
    return total


def proc_stats() -> list[tuple[int, str, list[str]]]:
    """(pid, comm, the fields after "pid (comm)": state ppid ... utime stime ...) of every
    process on the machine (Linux /proc/<pid>/stat)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        found.append((int(entry.name), comm, raw.rsplit(")", 1)[1].split()))
    return found


def process_tree_cpu_s(root: int) -> float:
    """User+system CPU seconds of `root` and all its descendants (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    cpu: dict[int, int] = {}
    for pid, _, fields in proc_stats():
        cpu[pid] = int(fields[11]) + int(fields[12])
        children.setdefault(int(fields[1]), []).append(pid)
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0)
        stack.extend(children.get(pid, ()))
    return total / ticks


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `timeout` seconds."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def alertmanager_argv(config: Path, workdir: Path, port: int) -> list[str]:
    """Alertmanager as every bench runs it: temporary storage, no gossip, warnings only."""
    return [
        ALERTMANAGER_BIN,
        f"--config.file={config}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]


def command_version(argv: Sequence[str], pattern: str) -> str:
    """The first group of `pattern` in a command's output, or 'unknown'."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else "unknown"


def digest(log: str, limit: int = 12) -> str:
    """A target's output with repeats folded: the most frequent lines, each with its count.

    Timestamps are blanked first so that a warning logged for every failed request (Tocsin's
    structured JSON lines, Alertmanager's logfmt) shows up once with "(xN)".
    """
    counts: Counter[str] = Counter()
    for line in log.splitlines():
        line = _TIMESTAMP.sub("", line).strip()
        if line:
            counts[line[:400]] += 1
    shown = [f"{line} (x{n})" if n > 1 else line for line, n in counts.most_common(limit)]
    hidden = len(counts) - len(shown)
    return "\n".join(shown + ([f"... and {hidden} other distinct lines"] if hidden > 0 else []))


def tail(path: Path, limit: int = 2000) -> str:
    """The end of a log file."""
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


# --------------------------------------------------------------------------- targets


class Target(Protocol):
    """Something that serves POST /api/v2/alerts and counts what it accepted."""

    name: str
    counter: str

    @property
    def base_url(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def read_counter(self) -> CounterReading: ...

    def cpu_seconds(self) -> float | None: ...

    def problem(self) -> str | None: ...

    def log_digest(self) -> str: ...

    def info(self) -> dict[str, str]: ...


class _LocalProcess:
    """A target started here: a process with its log in a temporary directory."""

    name = "process"
    counter = ""

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))
        self.log_path = self.workdir / "output.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            problem = self.problem()
            if problem is not None:
                raise BenchError(f"{self.name} did not start: {problem}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = http_get(self.base_url, "/-/ready", timeout=2.0)
                if status == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} not ready within {READY_TIMEOUT_S:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def cpu_seconds(self) -> float | None:
        return None if self._proc is None else process_tree_cpu_s(self._proc.pid)

    def problem(self) -> str | None:
        if self._proc is None:
            return "not started"
        code = self._proc.poll()
        return None if code is None else f"exited with status {code}"

    def log_digest(self) -> str:
        return digest(tail(self.log_path, 4_000_000))

    def info(self) -> dict[str, str]:
        return {"command": " ".join(self.argv())}


def _tocsin_reading(base_url: str, processes: int) -> CounterReading:
    """Sum the accepted counter over every ingest process behind one SO_REUSEPORT port."""
    per_process: dict[str, int] = {}
    for _ in range(MAX_SCRAPES):
        status, body = http_get(base_url, "/metrics")
        if status != 200:
            raise BenchError(f"GET {base_url}/metrics answered {status}")
        text = body.decode()
        created = _CREATED.search(text)  # a process-wide metric's creation time tells them apart
        if created is None:
            raise BenchError("cannot tell Tocsin's processes apart: no tocsin_*_created metric")
        per_process[created.group(1)] = int(metric_sum(text, TOCSIN_ACCEPTED, 'source="api.v2"'))
        if len(per_process) >= processes:
            break
    return CounterReading(sum(per_process.values()), len(per_process), processes)


class TocsinTarget(_LocalProcess):
    """`tocsin ingest` with N workers and (unless configured) its embedded broker."""

    counter = f'{TOCSIN_ACCEPTED}{{source="api.v2"}}'

    def __init__(self, workers: int) -> None:
        super().__init__()
        self.workers = workers
        self.name = "Tocsin"

    def argv(self) -> list[str]:
        exe = Path(sys.executable).with_name("tocsin")
        binary = str(exe) if exe.exists() else shutil.which("tocsin") or "tocsin"
        return [
            binary,
            "ingest",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--ingest.workers={self.workers}",
            "--log.level=warning",
        ]

    def read_counter(self) -> CounterReading:
        return _tocsin_reading(self.base_url, self.workers)

    def info(self) -> dict[str, str]:
        """The command line and the broker line of Tocsin's start banner."""
        match = re.search(r"^\s*kafka\s+(.+)$", tail(self.log_path, 100_000), re.MULTILINE)
        return {**super().info(), "kafka": match.group(1).strip() if match else "unknown"}


class ExternalTocsin:
    """A Tocsin ingest someone else started (--tocsin-url): measured, not managed."""

    name = "Tocsin"
    counter = f'{TOCSIN_ACCEPTED}{{source="api.v2"}}'

    def __init__(self, url: str, workers: int) -> None:
        self._url = url.rstrip("/")
        self.workers = workers

    @property
    def base_url(self) -> str:
        return self._url

    def start(self) -> None:
        try:
            status, _ = http_get(self._url, "/-/ready")
        except (OSError, http.client.HTTPException) as exc:
            raise BenchError(f"Tocsin at {self._url}: {exc}") from exc
        if status != 200:
            raise BenchError(f"Tocsin at {self._url}/-/ready answered {status}")

    def stop(self) -> None:
        return None

    def read_counter(self) -> CounterReading:
        return _tocsin_reading(self._url, self.workers)

    def cpu_seconds(self) -> float | None:
        return None

    def problem(self) -> str | None:
        return None

    def log_digest(self) -> str:
        return ""

    def info(self) -> dict[str, str]:
        return {"url": self._url, "kafka": "external instance (not known here)"}


class AlertmanagerTarget(_LocalProcess):
    """prometheus-alertmanager with a null receiver, temporary storage and no gossip."""

    counter = AM_RECEIVED

    def __init__(self, version: str) -> None:
        super().__init__()
        self.name = f"Alertmanager {version}"
        (self.workdir / "alertmanager.yml").write_text(AM_CONFIG)

    def argv(self) -> list[str]:
        return alertmanager_argv(self.workdir / "alertmanager.yml", self.workdir, self.port)

    def read_counter(self) -> CounterReading:
        status, body = http_get(self.base_url, "/metrics")
        if status != 200:
            raise BenchError(f"Alertmanager /metrics answered {status}")
        return CounterReading(int(metric_sum(body.decode(), AM_RECEIVED)), 1, 1)


# --------------------------------------------------------------------------- running wrk


def run_wrk(url: str, mode: Mode, *, duration: int, threads: int, tag: str) -> WrkResult:
    """One wrk run with the alerts script; parses the BENCH_RESULT line of done()."""
    argv = [
        "wrk",
        "-t",
        str(min(threads, mode.connections)),
        "-c",
        str(mode.connections),
        "-d",
        f"{duration}s",
        "--timeout",
        WRK_TIMEOUT,
        "-s",
        str(LUA_SCRIPT),
        url + ALERTS_PATH,
        "--",
        str(mode.batch),
        tag,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 120, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish: {exc}") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise BenchError(
            f"wrk failed (status {out.returncode}): {out.stderr.strip() or out.stdout}"
        )
    data: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        ok_responses=data["ok_responses"],
        bad_statuses=data["bad_statuses"],
        error_sample=data["error_sample"],
        socket_errors=data["errors"],
        latency_us=data["latency_us"],
        wrk_cpu_s=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    )


def settled(target: Target) -> CounterReading:
    """The counter once it stopped moving (requests abandoned by wrk have finished)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    previous = target.read_counter()
    while True:
        time.sleep(0.5)
        current = target.read_counter()
        if current.total == previous.total or time.monotonic() > deadline:
            return current
        previous = current


def verdict(
    mode: Mode, expected: int, before: CounterReading, after: CounterReading
) -> tuple[bool, str]:
    """Compare the counter's increase with the alerts wrk saw answered 2xx."""
    seen = min(before.processes_seen, after.processes_seen)
    if seen < after.processes_expected:
        return False, (
            f"not verified: found only {seen} of {after.processes_expected} processes' /metrics"
        )
    summed = f" (summed over {seen} processes)" if seen > 1 else ""
    delta = after.total - before.total
    slack = mode.connections * mode.batch
    if delta == expected:
        return True, f"matches the alerts in 2xx responses exactly{summed}"
    if expected < delta <= expected + slack:
        return True, (
            f"= alerts in 2xx responses +{delta - expected} from requests in flight when wrk "
            f"stopped (at most {slack}){summed}"
        )
    return False, f"MISMATCH: counter +{delta}, alerts in 2xx responses {expected}{summed}"


def describe_problems(wrk: WrkResult) -> str | None:
    """Non-2xx statuses and socket errors of a run, or None."""
    bits = [f"HTTP {status} x{n}" for status, n in sorted(wrk.bad_statuses.items())]
    bits += [
        f"{kind} errors x{n}" for kind, n in wrk.socket_errors.items() if n and kind != "status"
    ]
    if not bits:
        return None
    sample = f"; first error body: {wrk.error_sample!r}" if wrk.error_sample else ""
    return ", ".join(bits) + sample


def measure(target: Target, mode: Mode, args: argparse.Namespace) -> RunResult:
    """Warm up, then one measured run; the target is already started."""
    run_id = uuid.uuid4().hex[:6]
    warmup_problems = None
    if args.warmup > 0:
        warm = run_wrk(
            target.base_url, mode, duration=args.warmup, threads=args.threads, tag=f"w{run_id}"
        )
        warmup_problems = describe_problems(warm)
    before = settled(target)
    cpu_before = target.cpu_seconds()
    wrk = run_wrk(
        target.base_url, mode, duration=args.duration, threads=args.threads, tag=f"m{run_id}"
    )
    cpu_after = target.cpu_seconds()
    problem = target.problem()
    if problem is not None:
        raise BenchError(f"{target.name} died during the run: {problem}")
    after = settled(target)
    expected = wrk.ok_responses * mode.batch
    ok, text = verdict(mode, expected, before, after)
    secs = wrk.duration_s
    target_cpu = None
    if cpu_before is not None and cpu_after is not None:
        target_cpu = round((cpu_after - cpu_before) / secs, 3)
    result = RunResult(
        target=target.name,
        mode=mode.key,
        mode_label=mode.label,
        batch=mode.batch,
        connections=mode.connections,
        threads=min(args.threads, mode.connections),
        duration_s=round(secs, 3),
        requests=wrk.requests,
        ok_responses=wrk.ok_responses,
        alerts_in_2xx=expected,
        alerts_per_s=round(expected / secs, 1),
        requests_per_s=round(wrk.requests / secs, 1),
        latency_ms={k: round(v / 1000, 3) for k, v in wrk.latency_us.items()},
        bad_statuses=wrk.bad_statuses,
        socket_errors={k: v for k, v in wrk.socket_errors.items() if k != "status"},
        error_sample=wrk.error_sample,
        wrk_cpu_cores=round(wrk.wrk_cpu_s / secs, 3),
        target_cpu_cores=target_cpu,
        counter=target.counter,
        counter_delta=after.total - before.total,
        verified=ok,
        verdict=text,
        target_info=target.info(),
        warmup_problems=warmup_problems,
    )
    if not result.clean or warmup_problems:
        result.log_digest = target.log_digest() or None
    return result


def bench_one(
    make: Callable[[], Target], mode: Mode, args: argparse.Namespace
) -> RunResult | Failure:
    """One mode on a freshly started target (an external one is only checked), then stopped."""
    target = make()
    print(f"  {target.name}: {mode.label} ...", file=sys.stderr, flush=True)
    try:
        target.start()
        return measure(target, mode, args)
    except (BenchError, OSError, http.client.HTTPException) as exc:
        return Failure(target.name, mode.key, str(exc), target.log_digest())
    finally:
        target.stop()
        time.sleep(1.0)  # let the CPUs go quiet before the next start


# --------------------------------------------------------------------------- report


def fmt_ms(value: float) -> str:
    """Milliseconds with a sensible number of digits."""
    return f"{value:.2f} ms" if value < 100 else f"{value:.0f} ms"


def fmt_ratio(value: float | None) -> str:
    """A ratio like 0.42x, or a dash."""
    return "-" if value is None else f"{value:.2f}x"


def ratio(num: float, den: float, digits: int = 4) -> float | None:
    """num/den rounded, or None when den is zero."""
    return round(num / den, digits) if den else None


@dataclass
class Report:
    """Everything a run produced: the table, the details and the JSON document."""

    meta: dict[str, Any]
    tocsin: dict[str, RunResult | Failure] = field(default_factory=dict)
    alertmanager: dict[str, RunResult | Failure] = field(default_factory=dict)
    am_name: str = "Alertmanager"

    def ratios(self, mode: Mode) -> dict[str, float | None] | None:
        t, a = self.tocsin.get(mode.key), self.alertmanager.get(mode.key)
        if not isinstance(t, RunResult) or not isinstance(a, RunResult):
            return None
        return {
            "alerts_per_s": ratio(t.alerts_per_s, a.alerts_per_s),
            "p50": ratio(t.latency_ms["p50"], a.latency_ms["p50"]),
            "p99": ratio(t.latency_ms["p99"], a.latency_ms["p99"]),
        }

    def table(self) -> str:
        with_am = bool(self.alertmanager)
        cell_w, mode_w = 32, 24

        def cell(outcome: RunResult | Failure | None) -> str:
            if outcome is None:
                return "-".center(cell_w)
            if isinstance(outcome, Failure):
                return "FAILED (see below)".center(cell_w)
            flag = "" if outcome.clean else " !"
            return (
                f"{outcome.alerts_per_s:>10,.0f}{flag:<2}"
                f"{fmt_ms(outcome.latency_ms['p50']):>10}{fmt_ms(outcome.latency_ms['p99']):>10}"
            )

        workers = self.meta["tocsin"]["workers"]
        heads = [f"Tocsin ({workers} worker{'s' if workers != 1 else ''})".center(cell_w)]
        subs = [f"{'alerts/s':>12}{'p50':>10}{'p99':>10}"]
        if with_am:
            heads += [self.am_name.center(cell_w), "Tocsin / Alertmanager".center(cell_w)]
            subs += [subs[0], f"{'alerts/s':>12}{'p50':>10}{'p99':>10}"]
        lines = [
            " " * mode_w + " |" + " |".join(heads),
            "mode".ljust(mode_w) + " |" + " |".join(subs),
            "-" * mode_w + "-+" + "-+".join("-" * cell_w for _ in heads),
        ]
        for mode in MODES:
            cells = [cell(self.tocsin.get(mode.key))]
            if with_am:
                cells.append(cell(self.alertmanager.get(mode.key)))
                r = self.ratios(mode)
                cells.append(
                    f"{fmt_ratio(r['alerts_per_s']):>12}{fmt_ratio(r['p50']):>10}"
                    f"{fmt_ratio(r['p99']):>10}"
                    if r
                    else "-".center(cell_w)
                )
            lines.append(mode.label.ljust(mode_w) + " |" + " |".join(cells))
        notes = ["p50/p99: request latency as wrk measures it (send to complete response)."]
        if with_am:
            notes.append(
                "Ratios: alerts/s above 1 = Tocsin accepts more; latency above 1 = Tocsin slower."
            )
        if any(isinstance(o, RunResult) and not o.clean for o in self.outcomes()):
            notes.append("! = errors or an unverified count in that run, see the details.")
        return "\n".join([*lines, "", *notes])

    def outcomes(self) -> list[RunResult | Failure]:
        return [*self.tocsin.values(), *self.alertmanager.values()]

    def details(self) -> str:
        out: list[str] = []
        for o in self.outcomes():
            if isinstance(o, Failure):
                out.append(f"{o.target}, {o.mode}: FAILED: {o.error}")
                if o.log_digest:
                    out.append("  target output:\n    " + o.log_digest.replace("\n", "\n    "))
                continue
            cpu = (
                f"target {o.target_cpu_cores:.2f} cores, " if o.target_cpu_cores is not None else ""
            )
            out.append(
                f"{o.target}, {o.mode_label}: {o.requests:,} requests in {o.duration_s:.1f} s "
                f"({o.requests_per_s:,.0f} req/s), {o.ok_responses:,} answered 2xx = "
                f"{o.alerts_in_2xx:,} alerts; CPU {cpu}wrk {o.wrk_cpu_cores:.2f} cores"
            )
            errors = describe_problems(
                WrkResult(
                    o.requests,
                    o.duration_s,
                    o.ok_responses,
                    o.bad_statuses,
                    o.error_sample,
                    o.socket_errors,
                    {},
                    0.0,
                )
            )
            out.append(f"  errors: {errors or 'none (every response 2xx)'}")
            if o.warmup_problems:
                out.append(f"  warm-up errors: {o.warmup_problems}")
            out.append(f"  count:  {o.counter} +{o.counter_delta:,}: {o.verdict}")
            if o.log_digest:
                out.append("  target output:\n    " + o.log_digest.replace("\n", "\n    "))
        return "\n".join(out)

    def document(self) -> dict[str, Any]:
        def dump(outcomes: dict[str, RunResult | Failure]) -> dict[str, Any]:
            return {k: {"ok": isinstance(v, RunResult), **asdict(v)} for k, v in outcomes.items()}

        return {
            "meta": self.meta,
            "modes": [asdict(m) for m in MODES],
            "tocsin": dump(self.tocsin),
            "alertmanager": dump(self.alertmanager),
            "ratios_tocsin_over_alertmanager": {
                m.key: self.ratios(m) for m in MODES if self.ratios(m) is not None
            },
        }


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark Tocsin's POST /api/v2/alerts against Alertmanager 0.25 with wrk.",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each run")
    parser.add_argument("--workers", type=int, default=2, help="Tocsin ingest processes")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--skip-alertmanager", action="store_true", help="only benchmark Tocsin")
    parser.add_argument(
        "--tocsin-url",
        metavar="URL",
        help="benchmark an already running Tocsin ingest (set --workers to its process count)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    if args.duration < 1 or args.warmup < 0 or args.workers < 1 or args.threads < 1:
        parser.error("--duration, --workers and --threads must be at least 1, --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    if not args.skip_alertmanager and not Path(ALERTMANAGER_BIN).exists():
        print(f"bench: {ALERTMANAGER_BIN} missing; use --skip-alertmanager", file=sys.stderr)
        return 2
    am_version = (
        ""
        if args.skip_alertmanager
        else command_version([ALERTMANAGER_BIN, "--version"], r"version (\S+)")
    )
    tocsin_bin = Path(sys.executable).with_name("tocsin")
    meta: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "wrk": command_version(["wrk", "-v"], r"wrk (\S+)"),
        "wrk_threads": args.threads,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "alertmanager_version": am_version or None,
        "tocsin": {
            "version": command_version([str(tocsin_bin), "--version"], r"tocsin (\S+)"),
            "workers": args.workers,
            "url": args.tocsin_url,
            "kafka": None,
        },
    }
    report = Report(meta, am_name=f"Alertmanager {am_version}")

    def make_tocsin() -> Target:
        if args.tocsin_url:
            return ExternalTocsin(args.tocsin_url, args.workers)
        return TocsinTarget(args.workers)

    def make_alertmanager() -> Target:
        return AlertmanagerTarget(am_version)

    print(
        f"bench: {len(MODES)} modes x {1 if args.skip_alertmanager else 2} targets, "
        f"{args.warmup} s warm-up + {args.duration} s each",
        file=sys.stderr,
    )
    for mode in MODES:
        report.tocsin[mode.key] = bench_one(make_tocsin, mode, args)
        if not args.skip_alertmanager:
            report.alertmanager[mode.key] = bench_one(make_alertmanager, mode, args)
    kafka = [o.target_info.get("kafka") for o in report.tocsin.values() if isinstance(o, RunResult)]
    meta["tocsin"]["kafka"] = kafka[0] if kafka else "unknown"

    title = "Tocsin ingest" + ("" if args.skip_alertmanager else f" vs {report.am_name}")
    print(
        f"\n{title}: POST {ALERTS_PATH}, every alert unique; wrk {args.threads} threads, "
        f"{args.duration} s per run after {args.warmup} s warm-up, one target at a time "
        f"on {os.cpu_count()} CPUs\nTocsin kafka: {meta['tocsin']['kafka']}\n"
    )
    print(report.table())
    print("\nDetails\n" + report.details())
    if args.json:
        args.json.write_text(json.dumps(report.document(), indent=2) + "\n")
        print(f"\nJSON written to {args.json}")
    outcomes = report.outcomes()
    all_clean = all(
        isinstance(o, RunResult) and o.clean and not o.warmup_problems for o in outcomes
    )
    return 0 if all_clean else 1


if __name__ == "__main__":
    sys.exit(main())
