"""The `tocsin` command: the only composition root (argv/env -> settings -> services)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import typing
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import structlog
from aiokafka.errors import KafkaError, UnknownError
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from schemas.config.errors import ConfigError
from services import __version__, config_commands
from services.remediation.commands import add_client_commands
from services.runtime.auth import Authenticator
from services.runtime.embedded import ChildProcess, EmbeddedError, EmbeddedKafka, EmbeddedRedis
from services.runtime.health import HealthRegistry
from services.runtime.kafka import KafkaFactory
from services.runtime.lifecycle import Lifecycle, tune_gc
from services.runtime.logging import configure_logging
from services.runtime.metrics import new_registry
from services.runtime.settings import Settings, SettingsError, load_settings

__all__ = ["main"]

_log = structlog.get_logger("tocsin")
_WORKER_FLAG = "--internal.worker"


def _leaves(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            yield from _leaves(ann, dotted + ".")
        else:
            yield dotted, field


def _is_bool(field: FieldInfo) -> bool:
    ann = field.annotation
    return ann is bool or (typing.get_origin(ann) is not None and bool in typing.get_args(ann))


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "settings (each also TOCSIN_<SECTION>__<NAME> in the environment)"
    )
    group.add_argument(
        "--settings.file", dest="settings_file", type=Path, default=argparse.SUPPRESS,
        help="YAML file with Tocsin settings (lower precedence than env and flags) "
        "[env: TOCSIN_SETTINGS_FILE]",
    )  # fmt: skip
    for dotted, field in _leaves(Settings):
        flag = "--" + dotted.replace("_", "-")
        env = "TOCSIN_" + dotted.upper().replace(".", "__")
        default = field.get_default(call_default_factory=True)
        shown = "(unset)" if default is None else default
        help_text = f"{field.description or ''} [env: {env}; default: {shown}]".strip()
        if _is_bool(field):
            group.add_argument(
                flag, dest=dotted, action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS, help=help_text,
            )  # fmt: skip
        else:
            group.add_argument(
                flag, dest=dotted, default=argparse.SUPPRESS, metavar="VALUE", help=help_text
            )
    parser.add_argument(_WORKER_FLAG, dest="worker", action="store_true", help=argparse.SUPPRESS)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tocsin",
        description="Tocsin: durable, Alertmanager-compatible alert processing on Kafka.",
    )
    parser.add_argument("--version", action="version", version=f"tocsin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run every service in one process (embedded Kafka and Redis unless configured)",
        description="Run every built service in one process: ingest, the router and "
        "notifiers when --config.file names an alertmanager.yml, and the remediation service "
        "when --remediation.policy-file names a policy. Without "
        "TOCSIN_KAFKA__BOOTSTRAP_SERVERS an embedded Kafka-protocol broker is started, without "
        "TOCSIN_REDIS__URL an embedded Redis; both stop with Tocsin.",
    )
    _add_settings_flags(run)
    ingest = commands.add_parser(
        "ingest",
        help="run the ingest service alone",
        description="Accept Alertmanager webhooks (POST /api/v1/alertmanager) and API pushes "
        "(POST /api/v2/alerts) and publish each alert to the `alerts` topic, answering 200 only "
        "after the broker acknowledged it.",
    )
    _add_settings_flags(ingest)
    router = commands.add_parser(
        "router",
        help="run the router alone (needs --config.file)",
        description="Consume the alerts topic, group, inhibit, silence and deduplicate exactly as "
        "Alertmanager 0.25 with the given alertmanager.yml, and publish one message per flushed "
        "group and integration on notifications.<receiver>. State lives in Redis; run as many "
        "replicas as you like. SIGHUP reloads the config.",
    )
    _add_settings_flags(router)
    notifiers = commands.add_parser(
        "notifiers",
        help="run the notifiers alone (needs --config.file)",
        description="Consume every notifications.<receiver> topic and deliver each notification "
        "to its integration (webhook; email, Slack, PagerDuty coming) with retries, a "
        "dead-letter topic, receipts and no double sends. Run as many as you like.",
    )
    _add_settings_flags(notifiers)
    remediation = commands.add_parser(
        "remediation",
        help="run the remediation service (needs --remediation.policy-file), or talk to it",
        description="Without a COMMAND: consume remediation.requests and run the policy's "
        "actions inside the safety envelope (auto), wait for an approval (approval) or record "
        "what would be done (dry-run); serve the approval API (/api/v1/remediations) and write "
        "the audit trail (remediation.audit, and PostgreSQL with --remediation.audit-dsn). "
        "With a COMMAND: list, show, approve or reject remediations, or reset the circuit, "
        "through that API (--remediation.url).",
    )
    _add_settings_flags(remediation)
    add_client_commands(remediation)
    dlq = commands.add_parser(
        "dlq",
        help="list or redrive dead-lettered notifications (needs a real Kafka)",
        description="Dead-lettered notifications are on the notifications.dlq topic with the "
        "reason and the original message. `list` shows them; `redrive` publishes them back to "
        "their topic once the cause is fixed (each entry at most once).",
    )
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    dlq_list = dlq_sub.add_parser("list", help="show the dead letters")
    dlq_list.add_argument("--limit", type=int, default=100, help="show the last N (default 100)")
    _add_settings_flags(dlq_list)
    dlq_redrive = dlq_sub.add_parser("redrive", help="publish dead letters back to their topic")
    dlq_redrive.add_argument("entries", nargs="*", metavar="ENTRY", help="entries (default: all)")
    dlq_redrive.add_argument("--reason", default=None, help="only those dead-lettered for this")
    _add_settings_flags(dlq_redrive)
    notify = commands.add_parser(
        "notify",
        help="send a test notification to a receiver",
        description="Send a synthetic firing alert group to every integration of a receiver "
        "(one attempt each, no retries). With --dry-run print the rendered messages instead.",
    )
    notify_sub = notify.add_subparsers(dest="notify_command", required=True, metavar="COMMAND")
    notify_test = notify_sub.add_parser("test", help="send a test notification")
    notify_test.add_argument("--receiver", required=True, help="the receiver's name")
    notify_test.add_argument(
        "--dry-run", action="store_true", help="print what would be sent, send nothing"
    )
    _add_settings_flags(notify_test)
    demo = commands.add_parser(
        "demo",
        help="the whole pipeline on this machine, with real Prometheus and Alertmanager",
        description="Start the demo app (on the local PostgreSQL and Redis), Prometheus and "
        "Alertmanager (Debian packages) on short-interval copies of deploy/'s configs, Tocsin "
        "(embedded Kafka and Redis, the guide's routing, a remediation policy) and recorders for "
        "email, Slack and PagerDuty; trip faults in the app and show each step of the alerts' "
        "way: rule fires, Alertmanager, ingest, router, receivers, approval, remediation, "
        "resolved notifications. Runs from a source checkout.",
    )
    demo.add_argument(
        "--check", action="store_true",
        help="print one line per observed step; exit 1 unless all were seen in --timeout",
    )  # fmt: skip
    demo.add_argument(
        "--timeout", type=float, default=240.0, help="seconds for every step (default 240)"
    )
    demo.add_argument(
        "--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test",
        help="PostgreSQL for the demo app (a role that may create roles; default %(default)s)",
    )  # fmt: skip
    demo.add_argument(
        "--redis-url", default="redis://127.0.0.1:6379/12",
        help="Redis for the demo app's cache (default %(default)s)",
    )  # fmt: skip
    demo.add_argument("--workdir", type=Path, help="keep configs and logs here (default: temp)")
    demo.add_argument(
        "--keep", action="store_true", help="leave everything running at the end until Ctrl-C"
    )
    config_commands.add_parser(commands)
    return parser


def _with_settings(args: argparse.Namespace) -> Settings | int:
    try:
        return _settings_from(args)
    except SettingsError as exc:
        print(f"tocsin: invalid settings:\n{exc}", file=sys.stderr)
        return 2


def _notify_main(args: argparse.Namespace) -> int:
    from services.notifiers.testsend import run_command

    settings = _with_settings(args)
    if isinstance(settings, int):
        return settings
    return asyncio.run(run_command(settings, args.receiver, dry_run=args.dry_run))


def _dlq_main(args: argparse.Namespace) -> int:
    from services.notifiers.dlq import run_command

    settings = _with_settings(args)
    if isinstance(settings, int):
        return settings
    options = {"limit": args.limit} if args.dlq_command == "list" else {
        "entries": args.entries, "reason": args.reason,
    }  # fmt: skip
    return asyncio.run(run_command(settings, args.dlq_command, **options))


def _settings_from(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in vars(args).items() if "." in k and k != "settings_file"}
    return load_settings(overrides, getattr(args, "settings_file", None))


def _banner(lines: Sequence[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in lines)
    text = "\n".join(f"  {k.ljust(width)}  {v}" for k, v in lines)
    print(f"tocsin {__version__}\n{text}", file=sys.stderr, flush=True)


async def _spawn_workers(
    stack: AsyncExitStack, count: int, env: dict[str, str], argv: Sequence[str]
) -> None:
    for i in range(count):
        argv_i = [sys.executable, "-m", "services.cli", *argv, _WORKER_FLAG]
        child = ChildProcess(f"ingest-worker-{i + 1}", argv_i, None, {**os.environ, **env})
        child.start()
        stack.push_async_callback(child.stop)


async def _infrastructure(
    stack: AsyncExitStack, settings: Settings, health: HealthRegistry, *, redis: bool
) -> tuple[str, bool, str | None, list[tuple[str, str]]]:
    """Kafka (and Redis when needed): the configured ones, or embedded children."""
    info: list[tuple[str, str]] = []
    bootstrap = settings.kafka.bootstrap_servers
    embedded_kafka = bootstrap is None
    if bootstrap is None:
        broker = EmbeddedKafka(settings.kafka.broker_bin)
        await broker.start()
        stack.push_async_callback(broker.stop)  # last out: after every client drained
        bootstrap = broker.bootstrap_servers
        info.append(("kafka", f"embedded Tansu at {bootstrap} (in memory: production uses Kafka)"))
    else:
        info.append(("kafka", bootstrap))
    redis_url: str | None = None
    if redis:
        if settings.redis.url is None:
            embedded = EmbeddedRedis()
            await embedded.start()
            stack.push_async_callback(embedded.stop)
            redis_url = embedded.url
            info.append(("redis", f"embedded Redis at {redis_url}"))
        else:
            redis_url = settings.redis.url.get_secret_value()
            info.append(("redis", "configured (TOCSIN_REDIS__URL)"))
        health.add("redis", _redis_check(stack, redis_url))
    return bootstrap, embedded_kafka, redis_url, info


async def _start(
    stack: AsyncExitStack,
    command: str,
    settings: Settings,
    argv: Sequence[str],
    worker: bool,
    health: HealthRegistry,
    lifecycle: Lifecycle,
) -> list[tuple[str, str]]:
    """Start what `command` needs, pushing each teardown on `stack`; the banner lines."""
    from schemas.topics import FIXED_TOPICS
    from services.ingest import IngestService

    configured = command == "run" and settings.config.file is not None
    routing = command == "router" or configured
    notifying = command == "notifiers" or configured
    remediating = command == "remediation" or (
        command == "run" and settings.remediation.policy_file is not None
    )
    bootstrap, embedded_kafka, redis_url, info = await _infrastructure(
        stack, settings, health, redis=command == "run" or routing or notifying or remediating
    )
    factory = KafkaFactory(settings.kafka, bootstrap, embedded=embedded_kafka or worker)
    if not worker:
        await factory.wait_ready()
        await factory.ensure_topics(t.name for t in FIXED_TOPICS)
    registry = new_registry()
    address = settings.web.listen_address
    auth = Authenticator.from_settings(settings.web.auth)
    api_routes: list[Any] = []
    if notifying and not worker and redis_url is not None:
        # Started before the router, stopped after it: its last notifications still go out.
        await _start_notifiers(stack, settings, factory, redis_url, registry)
        info.append(("notifiers", "email, Slack, PagerDuty and webhook delivery"))
    if remediating and not worker and redis_url is not None:
        # Started before the router, stopped after it: the router feeds it requests.
        # Its runs in flight get half the process's drain: the rest of the teardown (its own
        # producer and audit writer, the notifiers, the infrastructure) needs the other half.
        drain = lifecycle.drain_timeout / 2
        remediation = await _start_remediation(stack, settings, factory, redis_url, registry, drain)
        api_routes += remediation.api(auth).routes()
        rules = len(remediation.policy.rules)
        info.append(("remediation", f"{settings.remediation.policy_file} ({rules} rules)"))
    elif command == "run":
        info.append(("remediation", "off: no --remediation.policy-file given"))
    if routing and not worker and redis_url is not None:
        router = await _start_router(stack, settings, factory, redis_url, registry, lifecycle)
        api_routes += router.api(auth).routes()
        receivers = len(router.config.receivers)
        info.append(("router", f"{settings.config.file} ({receivers} receivers)"))
    elif command == "run":
        info.append(("router", "off: no --config.file (alertmanager.yml) given"))
    if command in ("router", "notifiers", "remediation"):
        await _serve_api(stack, settings, registry, health, api_routes)
        return [
            *info,
            ("api", f"http://{address}/api/v2/"),
            ("metrics", f"http://{address}/metrics"),
        ]
    workers = settings.ingest.workers
    if workers > 1 and not worker:
        env = {"TOCSIN_KAFKA__BOOTSTRAP_SERVERS": bootstrap}
        if embedded_kafka:
            env["TOCSIN_KAFKA__IDEMPOTENCE"] = "false"
        await _spawn_workers(stack, workers - 1, env, ["ingest", *argv])
    service = IngestService(
        settings, factory, registry, health, version=__version__, extra_routes=api_routes
    )
    await service.start()
    stack.push_async_callback(service.stop)  # first out: stop intake, drain the producer
    return [
        *info,
        ("ingest", f"http://{address}  (/api/v2/alerts, /api/v1/alertmanager)"),
        ("workers", f"{workers} processes sharing the port" if workers > 1 else "1 process"),
        ("external url", settings.web.external_url or f"http://{address}"),
        ("metrics", f"http://{address}/metrics"),
    ]


async def _serve_api(
    stack: AsyncExitStack,
    settings: Settings,
    registry: Any,
    health: HealthRegistry,
    routes: list[Any],
) -> None:
    """The HTTP server of a service without ingest: its API, health and metrics."""
    from aiohttp import web

    from services.runtime.http import HttpMetrics, make_app, start_site
    from services.runtime.metrics import metrics_handler

    app = make_app(HttpMetrics(registry), settings.ingest.max_body_bytes)
    app.add_routes([*routes, web.get("/metrics", metrics_handler(registry)), *health.routes()])
    host, port = settings.web.host_port()
    runner = await start_site(app, host, port)
    stack.push_async_callback(runner.cleanup)
    health.ready = True


async def _start_notifiers(
    stack: AsyncExitStack, settings: Settings, factory: KafkaFactory, redis_url: str, registry: Any
) -> None:
    from services.notifiers.service import NotifierService
    from services.runtime.redis import connect

    redis = connect(redis_url, name="tocsin-notifiers")
    stack.push_async_callback(redis.aclose)
    notifiers = NotifierService(settings, factory, redis, registry)
    await notifiers.start()
    stack.push_async_callback(notifiers.stop)


async def _start_remediation(
    stack: AsyncExitStack,
    settings: Settings,
    factory: KafkaFactory,
    redis_url: str,
    registry: Any,
    drain: float,
) -> Any:
    from services.remediation.service import RemediationService
    from services.runtime.redis import connect

    redis = connect(redis_url, name="tocsin-remediation")
    stack.push_async_callback(redis.aclose)
    remediation = RemediationService(settings, factory, redis, registry, drain=drain)
    await remediation.start()
    stack.push_async_callback(remediation.stop)
    return remediation


async def _start_router(
    stack: AsyncExitStack,
    settings: Settings,
    factory: KafkaFactory,
    redis_url: str,
    registry: Any,
    lifecycle: Lifecycle,
) -> Any:
    from services.router.service import RouterService
    from services.runtime.redis import connect

    redis = connect(redis_url, name="tocsin-router")
    stack.push_async_callback(redis.aclose)
    router = RouterService(settings, factory, redis, registry)
    await router.start()
    stack.push_async_callback(router.stop)

    async def reload() -> None:
        await router.reload()

    lifecycle.reload_hooks.append(reload)
    return router


async def _serve(command: str, settings: Settings, argv: Sequence[str], worker: bool) -> int:
    lifecycle = Lifecycle()
    lifecycle.install_signal_handlers()
    health = HealthRegistry(__version__)
    stack = AsyncExitStack()
    try:
        info = await _start(stack, command, settings, argv, worker, health, lifecycle)
        tune_gc()
        if not worker:
            _banner(info)
        await lifecycle.wait()
    finally:
        # LIFO teardown, bounded: what does not finish in time is abandoned, and the embedded
        # children still die with this process (parent-death signal).
        try:
            async with asyncio.timeout(lifecycle.drain_timeout):
                await stack.aclose()
        except TimeoutError:
            _log.warning("drain_timeout", seconds=lifecycle.drain_timeout)
    _log.info("stopped")
    return 0


def _redis_check(stack: AsyncExitStack, url: str) -> Any:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    stack.push_async_callback(client.aclose)

    async def check() -> None:
        await client.ping()

    return check


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tocsin` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.command == "config":
        return config_commands.run_command(args)
    if args.command == "dlq":
        return _dlq_main(args)
    if args.command == "notify":
        return _notify_main(args)
    if args.command == "demo":
        from services.demo import DemoOptions, run_demo

        return run_demo(
            DemoOptions(
                check=args.check,
                timeout=args.timeout,
                pg_dsn=args.pg_dsn,
                redis_url=args.redis_url,
                workdir=args.workdir,
                keep=args.keep,
            )
        )
    if args.command == "remediation" and args.remediation_command is not None:
        from services.remediation.commands import run_command

        return asyncio.run(run_command(args))
    try:
        settings = _settings_from(args)
    except SettingsError as exc:
        print(f"tocsin: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    if args.command == "remediation" and settings.remediation.policy_file is None:
        print("tocsin: remediation needs --remediation.policy-file", file=sys.stderr)
        return 2
    configure_logging(settings.log.level, settings.log.format)
    passthrough = [a for a in argv[1:] if a != _WORKER_FLAG]
    runner: Any = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        runner = uvloop.run
    try:
        return int(runner(_serve(args.command, settings, passthrough, args.worker)))
    except EmbeddedError as exc:
        print(f"tocsin: could not start an embedded service: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"tocsin: invalid configuration:\n{exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:
        hint = ""
        if "InitProducerId" in repr(exc) or isinstance(exc, UnknownError):
            hint = (
                "\nIf the broker lacks the idempotent producer (Tansu, some proxies), set "
                "TOCSIN_KAFKA__IDEMPOTENCE=false (--kafka.idempotence=false)."
            )
        print(f"tocsin: Kafka: {type(exc).__name__}: {exc}{hint}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
