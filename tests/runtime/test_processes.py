"""`tocsin run` as users start it: embedded children, clean stops, nothing left after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from services.runtime.embedded import free_port

TOCSIN = [sys.executable, "-m", "services.cli"]


def children_of(pid: int) -> set[int]:
    """Direct children of `pid`, from /proc."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(status.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited"
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:  # noqa: S310 - loopback
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("tocsin did not become ready")


@contextmanager
def tocsin(
    *args: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    proc = subprocess.Popen(
        [*TOCSIN, *args, f"--web.listen-address=127.0.0.1:{port}"],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


def wait_gone(pids: set[int], timeout: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return {p for p in pids if alive(p)}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_kill_9_leaves_no_embedded_child_running(workers: str) -> None:
    with tocsin("run", f"--ingest.workers={workers}") as (proc, url):
        wait_healthy(url, proc)
        kids = children_of(proc.pid)
        # broker + redis, plus the extra ingest workers
        assert len(kids) == 2 + int(workers) - 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert wait_gone(kids) == set()


def test_sigterm_stops_children_and_exits_zero() -> None:
    with tocsin("run") as (proc, url):
        wait_healthy(url, proc)
        kids = children_of(proc.pid)
        assert kids
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert wait_gone(kids, timeout=1) == set()


def test_nothing_is_spawned_with_real_kafka_and_redis(kafka_bootstrap: str) -> None:
    env = {
        "TOCSIN_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOCSIN_KAFKA__IDEMPOTENCE": "false",  # the session broker is Tansu, too
        "TOCSIN_REDIS__URL": "redis://127.0.0.1:6379/15",
    }
    with tocsin("run", env=env) as (proc, url):
        wait_healthy(url, proc)
        assert children_of(proc.pid) == set()
        with urllib.request.urlopen(f"{url}/health", timeout=5) as r:  # noqa: S310 - loopback
            assert json.loads(r.read())["services"] == {"kafka": "connected", "redis": "connected"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_secrets_never_reach_the_logs(kafka_bootstrap: str) -> None:
    secret = "s3cr3t-" + os.urandom(6).hex()
    env = {
        "TOCSIN_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
        "TOCSIN_KAFKA__IDEMPOTENCE": "false",
        "TOCSIN_WEB__AUTH__BEARER_TOKEN": secret,
        "TOCSIN_LOG__LEVEL": "debug",
    }
    bodies = []
    with tocsin("ingest", env=env) as (proc, url):
        wait_healthy(url, proc)
        for token in (secret, "wrong", secret + "x"):
            request = urllib.request.Request(  # noqa: S310 - loopback
                f"{url}/api/v2/alerts",
                data=b'[{"labels": {"alertname": "S"}}]',
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as r:  # noqa: S310 - loopback
                    r.read()
            except urllib.error.HTTPError as exc:
                bodies.append(exc.read().decode())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        logs = proc.stderr.read().decode()
    assert "ingest_listening" in logs  # the logs were captured at debug level
    assert secret not in logs
    assert len(bodies) == 2  # both wrong tokens got a 401 body
    assert all(secret not in body for body in bodies)


def test_sighup_reloads_the_routing_config(tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: a}\nreceivers: [{name: a}]\n")
    with tocsin("run", f"--config.file={config}") as (proc, url):
        wait_healthy(url, proc)

        def receivers() -> list[str]:
            with urllib.request.urlopen(f"{url}/api/v2/receivers", timeout=5) as r:  # noqa: S310 - loopback
                return [x["name"] for x in json.loads(r.read())]

        assert receivers() == ["a"]
        config.write_text("route: {receiver: b}\nreceivers: [{name: a}, {name: b}]\n")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while receivers() != ["a", "b"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receivers() == ["a", "b"]
        config.write_text("route: {receiver: nope}\n")  # invalid: the old config stays
        proc.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert receivers() == ["a", "b"]
        assert proc.poll() is None
