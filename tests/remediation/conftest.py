"""Real Redis (db 14, flushed per test) and PostgreSQL, and a clock the test moves by hand."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import pytest
import redis.asyncio as aioredis

REDIS_URL = "redis://127.0.0.1:6379/14"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_ROLE = "tocsin_remediation_test"


FILL_VALUE = b"x" * 1024


async def fill(client: aioredis.Redis, prefix: str, count: int) -> None:
    """`count` keys `<prefix><i>` of 1 KiB each, in one pipeline."""
    async with client.pipeline(transaction=False) as pipe:
        for i in range(count):
            pipe.set(f"{prefix}{i}", FILL_VALUE)
        await pipe.execute()


async def ensure_login_role(conn: asyncpg.Connection, role: str) -> None:
    """Create the (non-superuser) login role unless it exists, safe against concurrent tests."""
    await conn.execute(
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE {role} LOGIN;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$"""
    )


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
def app_name() -> str:
    """A unique application_name, so that only this test's sessions match."""
    return f"tocsin-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def pg_admin() -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(PG_DSN, server_settings={"application_name": "tocsin-remediation"})
    try:
        await ensure_login_role(conn, PG_ROLE)
        yield conn
    finally:
        await conn.close()
