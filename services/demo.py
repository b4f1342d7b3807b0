"""`tocsin demo`: the whole pipeline on one machine, with the real Prometheus and Alertmanager.

It starts the demo app (deploy/demo-app/, on the machine's PostgreSQL and Redis), Prometheus and
Alertmanager from the Debian packages with demo copies of deploy/'s configs (short intervals,
local addresses), Tocsin itself (`tocsin run`, embedded Kafka and Redis) with the guide's routing
and a remediation policy, and local recorders standing in for the SMTP server, Slack and the
PagerDuty webhook. Then it trips faults in the demo app and follows each alert through every
stage, printing one line per step as it observes it:

    rule fires -> Alertmanager -> Tocsin ingest -> router -> receivers get their messages
    -> the remediation waits for approval, is approved and runs -> the alert resolves
    -> resolved notifications go out

`--check` prints the same steps without details and exits 1 unless every step was observed
within `--timeout` seconds. Nothing here is mocked: every stage is the real process; the
recorders only receive what Tocsin sends.

What the copies change, and why (each is printed with `--verbose`): Prometheus scrapes and
evaluates every second and each rule's `for` is at most 5 s; Alertmanager relays to the local
ingest; Tocsin's copy of the guide's alertmanager.yml has group_wait 1s / group_interval 3s and
the local SMTP recorder without TLS or auth (the guide's file is otherwise unchanged, `$VAR`s
included, taken from the environment the demo sets).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import functools
import inspect
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import yaml
from aiohttp import web

from schemas.config.duration import parse_duration
from services.runtime.embedded import free_port

__all__ = ["DemoOptions", "run_demo"]

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
DEMO_APP = DEPLOY / "demo-app" / "demo_app.py"
APP_NAME = "demo-app"
APP_ROLE = "tocsin_demo_app"
POOL_SIZE = 10
FOR_AT_MOST = 5.0  # seconds: each rule's `for` in the demo copy


@dataclass(frozen=True)
class DemoOptions:
    """What `tocsin demo` was asked to do."""

    check: bool = False
    timeout: float = 240.0
    pg_dsn: str = "postgresql://postgres@127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/12"
    workdir: Path | None = None
    keep: bool = False
    verbose: bool = False


class DemoError(Exception):
    """The demo could not start (a missing binary, a port, a component that did not come up)."""


# --- recorders -------------------------------------------------------------------------------


@dataclass
class Recorded:
    """Everything the stand-ins for the SMTP server, Slack and PagerDuty received."""

    emails: list[dict[str, Any]] = field(default_factory=list)
    slack: list[dict[str, Any]] = field(default_factory=list)
    pagerduty: list[dict[str, Any]] = field(default_factory=list)


class _SmtpHandler:
    def __init__(self, recorded: Recorded) -> None:
        self._recorded = recorded

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self._recorded.emails.append(
            {
                "to": list(envelope.rcpt_tos),
                "from": envelope.mail_from,
                "subject": str(message["Subject"]),
                "text": _text_part(message),
            }
        )
        return "250 OK"


def _text_part(message: Any) -> str:
    """The plain-text body, else the HTML body's <title> (Alertmanager's default email)."""
    part = message.get_body(preferencelist=("plain",))
    if part is not None and str(part.get_content()).strip():
        return str(part.get_content())
    html = message.get_body(preferencelist=("html",))
    if html is None:
        return ""
    title = re.search(r"<title>(.*?)</title>", str(html.get_content()), re.S)
    return f"(HTML) {title[1].strip()}" if title else "(HTML)"


@asynccontextmanager
async def _recorders(recorded: Recorded) -> AsyncIterator[tuple[str, int]]:
    """An HTTP recorder (Slack at /slack/..., PagerDuty at /pagerduty/...) and an SMTP one."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        raise DemoError("tocsin demo needs aiosmtpd: pip install 'tocsin[demo]'") from None

    async def slack(request: web.Request) -> web.Response:
        recorded.slack.append(await request.json())
        return web.Response(text="ok")

    async def pagerduty(request: web.Request) -> web.Response:
        recorded.pagerduty.append(await request.json())
        return web.json_response({"status": "success"}, status=202)

    app = web.Application()
    app.router.add_post("/slack/{tail:.*}", slack)
    app.router.add_post("/pagerduty/{tail:.*}", pagerduty)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    http_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    smtp_port = free_port()
    controller = Controller(_SmtpHandler(recorded), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        yield f"http://127.0.0.1:{http_port}", smtp_port
    finally:
        controller.stop()
        await runner.cleanup()


# --- configs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    """Where each component listens."""

    app: int
    prometheus: int
    alertmanager: int
    tocsin: int


def _short(text: str, at_most: float) -> str:
    return f"{min(parse_duration(text), at_most):g}s"


def demo_rules(source: Path, target: Path) -> list[str]:
    """Copy the alert rule files with every `for` cut to FOR_AT_MOST; the alert names."""
    names: list[str] = []
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group in data.get("groups", []):
            group["interval"] = "1s"
            for rule in group.get("rules", []):
                if "alert" in rule:
                    names.append(rule["alert"])
                    if "for" in rule:
                        rule["for"] = _short(str(rule["for"]), FOR_AT_MOST)
        (target / path.name).write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return names


def prometheus_config(ports: Ports, rules_dir: Path) -> dict[str, Any]:
    """The guide's Prometheus config reduced to what runs here: the demo app, 1 s intervals."""
    guide = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    app_job = next(j for j in guide["scrape_configs"] if j["job_name"] == "catalytic-saas")
    labels = app_job["static_configs"][0].get("labels", {})
    return {
        "global": {
            "scrape_interval": "1s",
            "evaluation_interval": "1s",
            "external_labels": guide["global"].get("external_labels", {}),
        },
        "rule_files": [str(rules_dir / "*.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{ports.alertmanager}"]}]}
            ]
        },
        "scrape_configs": [
            {
                "job_name": "catalytic-saas",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"127.0.0.1:{ports.app}"], "labels": labels}],
            },
            {
                "job_name": "tocsin",
                "static_configs": [{"targets": [f"127.0.0.1:{ports.tocsin}"]}],
            },
        ],
    }


def alertmanager_config(ports: Ports, token_file: Path) -> dict[str, Any]:
    """deploy/alertmanager/alertmanager.yml pointed at the local ingest, relaying quickly."""
    data = yaml.safe_load(
        (DEPLOY / "alertmanager" / "alertmanager.yml").read_text(encoding="utf-8")
    )
    data["route"]["group_interval"] = "2s"
    hook = data["receivers"][0]["webhook_configs"][0]
    hook["url"] = f"http://127.0.0.1:{ports.tocsin}/api/v1/alertmanager"
    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    return dict(data)


def tocsin_routing(smtp_port: int) -> str:
    """The guide's alertmanager.yml, timers shortened and SMTP local; `$VAR`s left as they are."""
    text = (DEPLOY / "tocsin" / "alertmanager.yml").read_text(encoding="utf-8")
    text = re.sub(r"smtp_smarthost: '[^']*'", f"smtp_smarthost: '127.0.0.1:{smtp_port}'", text)
    text = text.replace("smtp_require_tls: true", "smtp_require_tls: false")
    text = re.sub(r"\n\s*smtp_auth_username: '[^']*'", "", text)
    text = re.sub(r"\n\s*smtp_auth_password: '[^']*'", "", text)
    text = re.sub(r"group_wait: \S+", "group_wait: 1s", text)
    return re.sub(r"group_interval: \S+", "group_interval: 3s", text)


def remediation_policy(options: DemoOptions, ports: Ports, secret_file: Path) -> dict[str, Any]:
    """The runbooks' actions against the demo app's database, cache and agent."""
    return {
        "targets": {
            "postgres": {"main": {"dsn": options.pg_dsn}},
            "redis": {"cache": {"url": options.redis_url}},
            "apps": {
                "demo": {
                    "url": f"http://127.0.0.1:{ports.app}/tocsin-agent/",
                    "secret_file": str(secret_file),
                }
            },
        },
        "rules": [
            {
                "name": "db-pool-idle-sessions",
                "matchers": ['alertname="DatabaseConnectionPoolExhaustion"'],
                "action": "postgres.terminate_idle",
                "target": "main",
                "mode": "approval",
                "params": {
                    "idle_seconds": "2s",
                    "state": "idle in transaction",
                    "application_names": [APP_NAME],
                },
                "limits": {"cooldown": "30s"},
            },
            {
                "name": "redis-cache-flush",
                "matchers": ['alertname="RedisMemoryHigh"'],
                "action": "redis.cache_flush",
                "target": "cache",
                "mode": "auto",
                "params": {"patterns": ["cache:*"]},
            },
            {
                "name": "gpu-empty-cache",
                "matchers": ['alertname="GPUMemoryExhaustion"'],
                "action": "gpu.empty_cache",
                "target": "demo",
                "mode": "auto",
            },
        ],
    }


async def app_role_dsn(admin_dsn: str) -> str:
    """Create (if missing) the demo app's login role and return its DSN.

    The app must not connect as a superuser: `postgres.terminate_idle` never ends superuser
    sessions. The role gets no password, so this suits trust (or peer) authentication, as on
    the machines the demo targets; elsewhere pass `--pg-dsn` of a role that may create roles.
    """
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", APP_ROLE)
        if not exists:
            await conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")
    finally:
        await conn.close()
    parts = urlsplit(admin_dsn)
    host = parts.hostname or "127.0.0.1"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{APP_ROLE}@{host}{port}", parts.path, parts.query, ""))


# --- processes -------------------------------------------------------------------------------


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise DemoError(
        f"{names[0]} not found: install the Debian package ({' or '.join(names)} on PATH)"
    )


class Processes:
    """Child processes, stopped (TERM, then KILL) in reverse order of start."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._procs: list[tuple[str, asyncio.subprocess.Process]] = []

    async def start(self, name: str, *argv: str, env: dict[str, str] | None = None) -> None:
        """Start `argv`, its output in `<logs>/<name>.log`."""
        log = (self._logs / f"{name}.log").open("ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )
        finally:
            log.close()
        self._procs.append((name, proc))

    def exited(self) -> str | None:
        """The name of a child that has exited, if any."""
        for name, proc in self._procs:
            if proc.returncode is not None:
                return f"{name} exited with {proc.returncode} (see {self._logs / name}.log)"
        return None

    async def stop(self) -> None:
        """Stop every child, last started first."""
        for _, proc in reversed(self._procs):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._procs.clear()


# --- observing -------------------------------------------------------------------------------


class Demo:
    """One demo run: components, recorders, and the step-by-step observer."""

    def __init__(self, options: DemoOptions, work: Path, out: Callable[[str], None]) -> None:
        self.options = options
        self.work = work
        self.out = out
        self.recorded = Recorded()
        self.started = time.monotonic()
        self.deadline = self.started + options.timeout
        self.steps_ok = 0
        self.http: aiohttp.ClientSession | None = None
        self.procs = Processes(work)
        self.token = secrets.token_urlsafe(24)
        self.ports = Ports(free_port(), free_port(), free_port(), free_port())

    def url(self, component: str) -> str:
        """The base URL of a component."""
        return f"http://127.0.0.1:{getattr(self.ports, component)}"

    def say(self, text: str, detail: str = "") -> None:
        """Print one observed step (and its detail unless --check)."""
        self.steps_ok += 1
        self.out(f"[{time.monotonic() - self.started:6.1f}s] ok  {text}")
        if detail and not self.options.check:
            for line in detail.splitlines():
                self.out(f"            {line}")

    async def get_json(self, url: str, **kwargs: Any) -> Any:
        """GET url as JSON, or None when it does not answer 200."""
        assert self.http is not None
        try:
            async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=5), **kwargs) as r:
                if r.status != 200:
                    return None
                return await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def post(self, url: str, **kwargs: Any) -> tuple[int, Any]:
        """POST; (status, JSON body or text)."""
        assert self.http is not None
        async with self.http.post(url, timeout=aiohttp.ClientTimeout(total=10), **kwargs) as r:
            text = await r.text()
            try:
                return r.status, await r.json(content_type=None)
            except ValueError:
                return r.status, text

    async def until(self, what: str, probe: Callable[[], Awaitable[Any] | Any]) -> Any:
        """Poll `probe` until it returns something truthy; DemoError after the deadline."""
        while True:
            crashed = self.procs.exited()
            if crashed:
                raise DemoError(f"while waiting for {what}: {crashed}")
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            if time.monotonic() > self.deadline:
                raise DemoError(f"not observed within {self.options.timeout:g}s: {what}")
            await asyncio.sleep(0.25)

    # --- start-up ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Write the configs, start the recorders and every component, wait until ready."""
        if not DEMO_APP.exists():
            raise DemoError(f"{DEMO_APP} not found: tocsin demo runs from a source checkout")
        prometheus = _binary("prometheus")
        alertmanager = _binary("prometheus-alertmanager", "alertmanager")
        token_file = self.work / "ingest-token"
        token_file.write_text(self.token)
        secret_file = self.work / "agent-secret"
        secret_file.write_text(secrets.token_hex(32))
        rules = demo_rules(DEPLOY / "prometheus" / "rules", self.work / "rules")
        (self.work / "prometheus.yml").write_text(
            yaml.safe_dump(prometheus_config(self.ports, self.work / "rules"), sort_keys=False)
        )
        (self.work / "alertmanager.yml").write_text(
            yaml.safe_dump(alertmanager_config(self.ports, token_file), sort_keys=False)
        )
        policy = remediation_policy(self.options, self.ports, secret_file)
        (self.work / "remediation.yml").write_text(yaml.safe_dump(policy, sort_keys=False))
        http_recorder, smtp_port = self.recorder_addresses
        (self.work / "tocsin-routing.yml").write_text(tocsin_routing(smtp_port))

        await self.procs.start(
            "demo-app", sys.executable, str(DEMO_APP),
            "--listen", f"127.0.0.1:{self.ports.app}",
            "--pg-dsn", await app_role_dsn(self.options.pg_dsn),
            "--redis-url", self.options.redis_url,
            "--pool-size", str(POOL_SIZE),
            "--application-name", APP_NAME,
            "--redis-memory-budget", str(1 << 30),  # RedisMemoryHigh stays quiet in this story
            "--agent-secret-file", str(secret_file),
        )  # fmt: skip
        health = await self.until(
            "demo app /health", lambda: self.get_json(self.url("app") + "/health")
        )
        self.say(
            f"demo app up at {self.url('app')} (PostgreSQL pool of {POOL_SIZE}, Redis cache, "
            "remediation agent at /tocsin-agent/)",
            f"/health: {health}",
        )
        await self.procs.start(
            "tocsin", sys.executable, "-m", "services.cli", "run",
            f"--config.file={self.work / 'tocsin-routing.yml'}",
            f"--remediation.policy-file={self.work / 'remediation.yml'}",
            f"--remediation.audit-dsn={self.options.pg_dsn}",
            "--remediation.check-interval=1",
            f"--web.listen-address=127.0.0.1:{self.ports.tocsin}",
            f"--web.external-url={self.url('tocsin')}",
            f"--web.auth.bearer-token-file={token_file}",
            "--router.poll-interval=0.1",
            "--log.format=json",
            env={
                "SLACK_WEBHOOK_URL": f"{http_recorder}/slack/T000/B000/demo",
                "PAGERDUTY_WEBHOOK_URL": f"{http_recorder}/pagerduty/integration/demo",
                "SMTP_PASSWORD": "unused-in-the-demo",
            },
        )  # fmt: skip
        await self.procs.start(
            "alertmanager", alertmanager,
            f"--config.file={self.work / 'alertmanager.yml'}",
            f"--storage.path={self.work / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports.alertmanager}",
            "--cluster.listen-address=",
        )  # fmt: skip
        await self.procs.start(
            "prometheus", prometheus,
            f"--config.file={self.work / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.work / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.ports.prometheus}",
        )  # fmt: skip
        for component in ("tocsin", "alertmanager", "prometheus"):
            await self.until(f"{component} ready", functools.partial(self._ready, component))
        self.say(
            f"Prometheus {self.url('prometheus')} ({len(rules)} alert rules, `for` <= "
            f"{FOR_AT_MOST:g}s), Alertmanager {self.url('alertmanager')} relaying to Tocsin "
            f"{self.url('tocsin')} (ingest, router, notifiers, remediation) ready",
            f"configs and logs in {self.work}",
        )

    recorder_addresses: tuple[str, int] = ("", 0)

    async def _ready(self, component: str) -> bool:
        assert self.http is not None
        try:
            async with self.http.get(self.url(component) + "/-/ready") as r:
                return r.status == 200
        except aiohttp.ClientError:
            return False

    # --- the story ---------------------------------------------------------------------------

    async def prometheus_alert(self, name: str, state: str = "firing") -> dict[str, Any] | None:
        """The alert `name` in Prometheus in `state`, or None."""
        data = await self.get_json(self.url("prometheus") + "/api/v1/alerts")
        for alert in (data or {}).get("data", {}).get("alerts", []):
            if alert["labels"].get("alertname") == name and alert["state"] == state:
                return dict(alert)
        return None

    async def alertmanager_alert(self, name: str) -> dict[str, Any] | None:
        """The active alert `name` as Alertmanager holds it, or None."""
        data = await self.get_json(self.url("alertmanager") + "/api/v2/alerts")
        for alert in data or []:
            if alert["labels"].get("alertname") == name:
                return dict(alert)
        return None

    async def tocsin_group(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        """(receiver, group) for each of Tocsin's groups holding the alert `name`."""
        groups = await self.get_json(
            self.url("tocsin") + "/api/v2/alerts/groups",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        found = []
        for group in groups or []:
            if any(a["labels"].get("alertname") == name for a in group.get("alerts", [])):
                found.append((group["receiver"]["name"], group))
        return found

    def emails(self, subject: str) -> list[dict[str, Any]]:
        """Emails recorded whose Subject is `subject`."""
        return [m for m in self.recorded.emails if m["subject"] == subject]

    async def remediation(self, rule: str, state: str) -> dict[str, Any] | None:
        """The remediation of `rule` in `state`, as Tocsin's API lists it."""
        listed = await self.get_json(
            self.url("tocsin") + "/api/v1/remediations",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        items = listed.get("remediations", []) if isinstance(listed, dict) else listed or []
        for item in items:
            if item.get("rule") == rule and item.get("state") == state:
                return dict(item)
        return None

    async def database_story(self) -> None:
        """Leak connections -> DatabaseConnectionPoolExhaustion -> email -> approval -> resolved."""
        alert = "DatabaseConnectionPoolExhaustion"
        status, body = await self.post(
            self.url("app") + f"/fault/leak-connections?count={POOL_SIZE}"
        )
        if status >= 300:
            raise DemoError(f"demo app refused the fault: {status} {body}")
        self.say(
            f"fault: the demo app leaked {POOL_SIZE} of its {POOL_SIZE} database connections, "
            "left idle in transaction"
        )
        fired = await self.until(f"Prometheus firing {alert}", lambda: self.prometheus_alert(alert))
        labels = fired["labels"]
        self.say(
            f"Prometheus: {alert} firing (pool utilisation {float(fired['value']):.0%}, "
            f"severity {labels.get('severity')}, category {labels.get('category')})"
        )
        await self.until(f"Alertmanager holding {alert}", lambda: self.alertmanager_alert(alert))
        self.say(f"Alertmanager: received {alert} and relayed it to Tocsin's ingest")
        groups = await self.until(f"Tocsin routing {alert}", lambda: self.tocsin_group(alert))
        receivers = sorted({receiver for receiver, _ in groups})
        self.say(
            f"Tocsin ingest -> Kafka -> router: {alert} grouped for {', '.join(receivers)}",
            "\n".join(f"group {g['labels']} -> {r}" for r, g in groups),
        )
        subject = f"[PERFORMANCE] {alert}"
        mail = (await self.until(f"email {subject!r}", lambda: self.emails(subject)))[0]
        self.say(
            f'email to {", ".join(mail["to"])}: "{mail["subject"]}"',
            mail["text"][:600],
        )
        pending = await self.until(
            "remediation waiting for approval",
            lambda: self.remediation("db-pool-idle-sessions", "pending"),
        )
        self.say(
            f"remediation {pending['action']} on {pending['target']} waiting for approval "
            f"(id {pending['id']})",
            f"approve with: tocsin remediation approve {pending['id']}",
        )
        status, body = await self.post(
            self.url("tocsin") + f"/api/v1/remediations/{pending['id']}/approve",
            json={"by": "demo", "comment": "runbook: end the leaked idle transactions"},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        if status >= 300:
            raise DemoError(f"approval refused: {status} {body}")
        self.say(f"approved by demo through POST /api/v1/remediations/{pending['id']}/approve")
        done = await self.until(
            "remediation done", lambda: self.remediation("db-pool-idle-sessions", "done")
        )
        result = done.get("result") or {}
        ended = len(result.get("terminated", []))
        self.say(
            f"remediation ran: {ended} idle-in-transaction sessions of {APP_NAME} terminated, "
            f"{result.get('remaining', '?')} left",
        )
        await self.until(f"Prometheus no longer firing {alert}", lambda: self._gone(alert))
        self.say(f"Prometheus: {alert} resolved (the pool recovered)")
        resolved = await self.until(
            f"resolved email {subject!r}",
            lambda: [m for m in self.emails(subject) if "RESOLVED" in m["text"].upper()],
        )
        self.say(f'resolved email to {", ".join(resolved[0]["to"])}: "{resolved[0]["subject"]}"')

    async def security_story(self) -> None:
        """Failed logins -> CriticalFailedLoginRate -> Slack, PagerDuty webhook and email."""
        alert = "CriticalFailedLoginRate"
        attack = asyncio.create_task(self._failed_logins(clients=8))
        try:
            self.say("fault: 8 clients hammer the demo app's /auth/login with bad passwords")
            fired = await self.until(
                f"Prometheus firing {alert}", lambda: self.prometheus_alert(alert)
            )
            self.say(
                f"Prometheus: {alert} firing ({float(fired['value']):.0f} failed logins/s, "
                f"severity {fired['labels'].get('severity')}, "
                f"category {fired['labels'].get('category')})"
            )
            groups = await self.until(f"Tocsin routing {alert}", lambda: self.tocsin_group(alert))
            receivers = sorted({receiver for receiver, _ in groups})
            self.say(f"Alertmanager -> Tocsin: {alert} grouped for {', '.join(receivers)}")
            slack = await self.until(
                "Slack message in #security-critical",
                lambda: [
                    m for m in self.recorded.slack if m.get("channel") == "#security-critical"
                ],
            )
            attachment = slack[0]["attachments"][0]
            self.say(
                f'Slack #security-critical: "{attachment.get("title")}"',
                attachment.get("text", ""),
            )
            page = await self.until(
                "PagerDuty webhook",
                lambda: [
                    m
                    for m in self.recorded.pagerduty
                    if m.get("commonLabels", {}).get("alertname") == alert
                ],
            )
            self.say(
                f"PagerDuty webhook: {page[0]['status']} group {page[0]['groupKey']} "
                f"({len(page[0]['alerts'])} alert)"
            )
            subject = f"[CRITICAL SECURITY] {alert}"
            mail = (await self.until(f"email {subject!r}", lambda: self.emails(subject)))[0]
            self.say(f'email to {", ".join(mail["to"])}: "{mail["subject"]}"')
        finally:
            attack.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await attack

    async def _failed_logins(self, clients: int) -> None:
        """`clients` attackers, each posting bad credentials as fast as the app answers."""

        async def attacker() -> None:
            assert self.http is not None
            body = {"username": "admin", "password": "guess"}
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with self.http.post(self.url("app") + "/auth/login", json=body) as r:
                        await r.read()

        await asyncio.gather(*(attacker() for _ in range(clients)))

    async def _gone(self, name: str) -> bool:
        data = await self.get_json(self.url("prometheus") + "/api/v1/alerts")
        if data is None:
            return False
        alerts = data.get("data", {}).get("alerts", [])
        return not any(a["labels"].get("alertname") == name for a in alerts)


async def _run(options: DemoOptions, out: Callable[[str], None]) -> int:
    async with AsyncExitStack() as stack:
        if options.workdir is not None:
            work = options.workdir
            work.mkdir(parents=True, exist_ok=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tocsin-demo-")))
        demo = Demo(options, work, out)
        demo.http = await stack.enter_async_context(aiohttp.ClientSession())
        demo.recorder_addresses = await stack.enter_async_context(_recorders(demo.recorded))
        stack.push_async_callback(demo.procs.stop)
        try:
            await demo.start()
            await demo.database_story()
            await demo.security_story()
        except DemoError as exc:
            out(f"[{time.monotonic() - demo.started:6.1f}s] FAILED  {exc}")
            return 1
        out(f"all {demo.steps_ok} steps observed in {time.monotonic() - demo.started:.1f}s")
        if options.keep:
            out("everything keeps running; Ctrl-C to stop")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        return 0
    return 1  # pragma: no cover - the stack does not swallow exceptions


def run_demo(options: DemoOptions, out: Callable[[str], None] = print) -> int:
    """Run the demo; the exit status (0 when every step was observed)."""
    try:
        return asyncio.run(_run(options, out))
    except DemoError as exc:
        out(f"FAILED  {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
