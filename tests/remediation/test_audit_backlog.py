"""The audit writer's PostgreSQL backlog, with stand-ins for Kafka and the pool (no broker)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CollectorRegistry

from schemas.remediation_flow import AuditEvent
from services.remediation.audit import AuditLog
from tests.remediation.conftest import FakeClock


class _Producer:
    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        return None


class _Conn:
    def __init__(self, pool: _Pool) -> None:
        self._pool = pool

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def execute(self, sql: str) -> None:
        return None

    async def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self._pool.calls += 1
        if self._pool.calls == 1:
            self._pool.first_started.set()
            await self._pool.release_first.wait()
        if self._pool.calls == 2 and self._pool.fail_second is not None:
            raise self._pool.fail_second
        self._pool.written += [row[0] for row in rows]


class _Pool:
    def __init__(self, fail_second: Exception | None = None) -> None:
        self.calls = 0
        self.written: list[Any] = []
        self.first_started = asyncio.Event()
        self.release_first = asyncio.Event()
        self.fail_second = fail_second

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Conn]:
        yield _Conn(self)

    async def close(self) -> None:
        return None


def _log(pool: _Pool, max_backlog: int) -> AuditLog:
    log = AuditLog(
        _Producer(),
        producer_name="test",
        clock=FakeClock(),
        registry=CollectorRegistry(),
        dsn="postgresql://unused",
        max_backlog=max_backlog,
        max_backoff=0.01,
    )
    log._pool = pool
    log._writer = asyncio.create_task(log._write_loop())
    return log


async def test_a_full_backlog_while_writing_loses_no_record_it_kept() -> None:
    pool = _Pool()
    log = _log(pool, max_backlog=2)
    first = await log.record(AuditEvent.REVERTED, actor="t")
    second = await log.record(AuditEvent.REVERTED, actor="t")
    await pool.first_started.wait()  # writing [first, second] now
    third = await log.record(AuditEvent.REVERTED, actor="t")  # drops first (full)
    fourth = await log.record(AuditEvent.REVERTED, actor="t")  # drops second
    pool.release_first.set()
    await log.flush(5)
    assert [str(i) for i in pool.written] == [first.id, second.id, third.id, fourth.id]
    await log.stop(1)


async def test_an_unexpected_write_error_is_retried_not_fatal() -> None:
    pool = _Pool(fail_second=RuntimeError("unexpected"))
    pool.release_first.set()
    log = _log(pool, max_backlog=10)
    first = await log.record(AuditEvent.REVERTED, actor="t")
    await log.flush(5)
    second = await log.record(AuditEvent.REVERTED, actor="t")
    await log.flush(5)
    assert [str(i) for i in pool.written] == [first.id, second.id]
    await log.stop(1)
