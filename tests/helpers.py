"""Test helpers: start ingest in-process, read back what reached the `alerts` topic."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer

from schemas.alert import Alert
from schemas.envelope import Envelope
from services.ingest import IngestService
from services.runtime.embedded import free_port
from services.runtime.health import HealthRegistry
from services.runtime.kafka import KafkaFactory
from services.runtime.metrics import new_registry
from services.runtime.settings import load_settings

ENVELOPE = Envelope[Alert]


@asynccontextmanager
async def start_ingest(bootstrap: str, port: int, **overrides: Any) -> AsyncIterator[str]:
    """Run an IngestService against `bootstrap`; yields its base URL."""
    settings = load_settings(
        {
            "web.listen_address": f"127.0.0.1:{port}",
            "kafka.bootstrap_servers": bootstrap,
            **overrides,
        }
    )
    factory = KafkaFactory(settings.kafka, bootstrap, embedded=True)
    await factory.ensure_topics(["alerts"])
    service = IngestService(
        settings, factory, new_registry(), HealthRegistry("test"), version="test"
    )
    await service.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await service.stop()


async def read_alerts(
    bootstrap: str,
    predicate: Callable[[Envelope[Alert]], bool],
    expected: int,
    within: float = 15.0,
    settle: float = 0.5,
) -> list[tuple[bytes, Envelope[Alert]]]:
    """Every (key, envelope) on `alerts` matching `predicate`, waiting for `expected` of them.

    After `expected` arrived it keeps reading for `settle` seconds so that extra (duplicate)
    messages are seen too.
    """
    consumer = AIOKafkaConsumer(
        "alerts",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[tuple[bytes, Envelope[Alert]]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    settled_at: float | None = None
    try:
        while loop.time() < deadline and (settled_at is None or loop.time() < settled_at):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    env = ENVELOPE.model_validate(orjson.loads(record.value))
                    if predicate(env):
                        found.append((record.key, env))
            if settled_at is None and len(found) >= expected:
                settled_at = loop.time() + settle
    finally:
        await consumer.stop()
    return found


def start_tocsin(
    command: str, *flags: str, bootstrap: str, run: str
) -> tuple[subprocess.Popen[bytes], str]:
    """A `tocsin <command>` process on the session broker and local Redis, keys under `run`."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "services.cli", command,
            f"--kafka.bootstrap-servers={bootstrap}",
            "--no-kafka.idempotence",
            "--redis.url=redis://127.0.0.1:6379/0",
            f"--router.redis-prefix=test:{run}:",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=error",
            *flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return proc, f"http://127.0.0.1:{port}"


def wait_ready(url: str, proc: subprocess.Popen[bytes], within: float = 40) -> None:
    """Until `url`/-/ready answers 200; fails when the process exits first."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:  # noqa: S310 - loopback
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} not ready in {within}s")


def stop(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@asynccontextmanager
async def run_alertmanager(
    executable: str, config: Path, data: Path, *, external_url: str | None = None, path: str = ""
) -> AsyncIterator[str]:
    """The real Alertmanager alone (no cluster) on a free loopback port until it is ready.

    Yields its URL (with `path`, the route prefix an external URL with a path gives it)."""
    port = free_port()
    flags = [f"--web.external-url={external_url}"] if external_url else []
    proc = await asyncio.create_subprocess_exec(
        executable, f"--config.file={config}", f"--storage.path={data}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        "--log.level=warn", *flags,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}{path}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                if proc.returncode is not None:
                    raise AssertionError(f"alertmanager exited with {proc.returncode}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/-/ready") as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("alertmanager did not become ready")
        yield url
    finally:
        proc.terminate()
        await proc.wait()
