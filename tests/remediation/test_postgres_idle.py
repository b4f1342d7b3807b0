"""`postgres.terminate_idle` against the real PostgreSQL, on sessions the test opens itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest

from schemas.remediation import TerminateIdleParams
from services.remediation.actions.postgres_idle import terminate_idle
from tests.remediation.conftest import PG_DSN, PG_ROLE

_USER_DSN = f"postgresql://{PG_ROLE}@127.0.0.1:5432/test"


@pytest.fixture
async def sessions() -> AsyncIterator[list[asyncpg.Connection]]:
    """Connections opened by the test, closed (or found closed) afterwards."""
    opened: list[asyncpg.Connection] = []
    try:
        yield opened
    finally:
        for conn in opened:
            conn.terminate()


async def _open(
    sessions: list[asyncpg.Connection], dsn: str, application_name: str
) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, server_settings={"application_name": application_name})
    sessions.append(conn)
    return conn


async def _idle_in_transaction(
    sessions: list[asyncpg.Connection], dsn: str, application_name: str
) -> tuple[asyncpg.Connection, int]:
    conn = await _open(sessions, dsn, application_name)
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    await conn.execute("BEGIN")
    await conn.fetchval("SELECT 1")
    return conn, int(pid)


async def _state(admin: asyncpg.Connection, pid: int) -> str | None:
    state = await admin.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
    return None if state is None else str(state)


async def test_only_the_idle_in_transaction_session_is_terminated(
    pg_admin: asyncpg.Connection, sessions: list[asyncpg.Connection], app_name: str
) -> None:
    victim, victim_pid = await _idle_in_transaction(sessions, _USER_DSN, app_name)
    _, other_app_pid = await _idle_in_transaction(sessions, _USER_DSN, app_name + "-other")
    _, superuser_pid = await _idle_in_transaction(sessions, PG_DSN, app_name)
    busy = await _open(sessions, _USER_DSN, app_name)
    busy_pid = int(await busy.fetchval("SELECT pg_backend_pid()"))
    sleeping = asyncio.create_task(busy.execute("SELECT pg_sleep(3)"))
    young, young_pid = await _idle_in_transaction(sessions, _USER_DSN, app_name)
    await asyncio.sleep(1.2)  # past idle_seconds for all but `young`
    young_pid_started = await young.fetchval("SELECT 1")  # resets young's state_change
    assert young_pid_started == 1

    params = TerminateIdleParams(idle_seconds=1, application_names=[app_name])
    result = await terminate_idle(pg_admin, params, target="main")

    assert [s.pid for s in result.terminated] == [victim_pid]
    ended = result.terminated[0]
    assert ended.user == PG_ROLE
    assert ended.application == app_name
    assert ended.state == "idle in transaction"
    assert ended.database == "test"
    assert ended.idle_seconds >= 1
    assert result.remaining == 0

    assert await _state(pg_admin, victim_pid) is None
    with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
        await victim.fetchval("SELECT 1")
    assert victim.is_closed()

    assert await _state(pg_admin, other_app_pid) == "idle in transaction"
    assert await _state(pg_admin, superuser_pid) == "idle in transaction"
    assert await _state(pg_admin, young_pid) == "idle in transaction"
    assert await _state(pg_admin, busy_pid) == "active"
    sleeping.cancel()
    with pytest.raises((asyncio.CancelledError, asyncpg.PostgresError)):
        await sleeping


async def test_idle_state_and_user_filter(
    pg_admin: asyncpg.Connection, sessions: list[asyncpg.Connection], app_name: str
) -> None:
    idle = await _open(sessions, _USER_DSN, app_name)
    idle_pid = int(await idle.fetchval("SELECT pg_backend_pid()"))
    _, in_tx_pid = await _idle_in_transaction(sessions, _USER_DSN, app_name)
    await asyncio.sleep(1.1)

    params = TerminateIdleParams(
        idle_seconds=1, state="idle", application_names=[app_name], users=[PG_ROLE]
    )
    result = await terminate_idle(pg_admin, params, target="main")
    assert [s.pid for s in result.terminated] == [idle_pid]
    assert await _state(pg_admin, in_tx_pid) == "idle in transaction"

    nobody = TerminateIdleParams(idle_seconds=1, application_names=[app_name], users=["nobody"])
    assert (await terminate_idle(pg_admin, nobody, target="main")).terminated == []
    assert await _state(pg_admin, in_tx_pid) == "idle in transaction"
