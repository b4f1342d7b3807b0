"""`tocsin remediation`: the service command, and list/approve/reject/circuit-reset against an API."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis
import yaml

from services.runtime.auth import Authenticator
from services.runtime.embedded import free_port
from services.runtime.http import HttpMetrics, make_app, start_site
from services.runtime.metrics import new_registry
from tests.helpers import start_tocsin, stop, wait_ready
from tests.remediation.conftest import FakeClock
from tests.remediation.flow import Flow, flow_redis, redis_target_policy, start_flow


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    async with flow_redis() as client:
        yield client


async def tocsin(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `tocsin ARGS` without blocking the loop that serves the API."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def served(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> AsyncIterator[tuple[Flow, str]]:
    policy = redis_target_policy(mode="approval")
    async with start_flow(kafka_bootstrap, redis_db, clock, policy) as flow:
        app = make_app(HttpMetrics(new_registry()), 1024 * 1024)
        app.add_routes(flow.service.api(Authenticator("tok", None, None)).routes())
        port = free_port()
        runner = await start_site(app, "127.0.0.1", port)
        try:
            yield flow, f"http://127.0.0.1:{port}"
        finally:
            await runner.cleanup()


async def test_list_approve_reject_and_reset_through_the_api(served: tuple[Flow, str]) -> None:
    flow, url = served
    [first] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh"}))
    [second] = await flow.service.handle(flow.request({"alertname": "RedisMemoryHigh", "n": "2"}))
    token = {"TOCSIN_API_TOKEN": "tok"}

    code, _, err = await tocsin("remediation", "list", f"--remediation.url={url}")
    assert code == 1
    assert "401: authentication required" in err

    code, out, _ = await tocsin("remediation", "list", "--state", "pending",
                                f"--remediation.url={url}", env=token)  # fmt: skip
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "STATE", "MODE", "RULE", "ACTION", "TARGET", "ALERT",
                              "CREATED", "EXPIRES/BY"]  # fmt: skip
    assert sorted(row.split()[0] for row in rows) == sorted([first.id, second.id])
    assert all(row.split()[1:3] == ["pending", "approval"] for row in rows)

    code, out, _ = await tocsin("remediation", "approve", first.id, "--by", "grace",
                                "--comment", "cache is full", f"--remediation.url={url}",
                                env=token)  # fmt: skip
    assert code == 0, out
    assert out.strip() == f"approved {first.id} (redis.cache_flush on cache): running"
    await flow.service.wait_runs()

    code, _, err = await tocsin("remediation", "approve", first.id,
                                f"--remediation.url={url}", env=token)  # fmt: skip
    assert code == 1
    assert f"409: remediation {first.id} is done, not pending" in err

    code, out, _ = await tocsin("remediation", "reject", second.id, "-o", "json",
                                f"--remediation.url={url}", env=token)  # fmt: skip
    assert code == 0
    assert orjson.loads(out)["state"] == "rejected"
    assert orjson.loads(out)["decidedBy"] == "api"

    code, out, _ = await tocsin("remediation", "list", "-o", "json",
                                f"--remediation.url={url}", env=token)  # fmt: skip
    assert {r["id"]: r["state"] for r in orjson.loads(out)} == {
        first.id: "done",
        second.id: "rejected",
    }

    await flow.service.envelope.open_circuit("max 1 runs per hour reached (global)")
    code, out, _ = await tocsin("remediation", "circuit-reset", f"--remediation.url={url}",
                                env=token)  # fmt: skip
    assert code == 0
    assert out.strip() == "circuit closed (was open: max 1 runs per hour reached (global))"


async def test_the_service_command_needs_a_policy_and_serves_the_api(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    code, _, err = await tocsin("remediation", "--log.level=error")
    assert code == 2
    assert "needs --remediation.policy-file" in err

    policy = tmp_path / "policy.yml"
    policy.write_text(yaml.safe_dump(redis_target_policy(mode="approval")))
    run = uuid.uuid4().hex[:10]
    proc, url = start_tocsin(
        "remediation", f"--remediation.policy-file={policy}",
        f"--remediation.group-id=remediation-{run}",
        bootstrap=kafka_bootstrap, run=run,
    )  # fmt: skip
    try:
        await asyncio.to_thread(wait_ready, url, proc)
        code, out, err = await tocsin("remediation", "list", f"--remediation.url={url}")
        assert code == 0, err
        assert out.split() == ["ID", "STATE", "MODE", "RULE", "ACTION", "TARGET", "ALERT",
                               "CREATED", "EXPIRES/BY"]  # fmt: skip
    finally:
        await asyncio.to_thread(stop, [proc])
    assert proc.returncode == 0


async def test_help_lists_the_commands() -> None:
    code, out, _ = await tocsin("remediation", "--help")
    assert code == 0
    for word in ["list", "show", "approve", "reject", "circuit-reset",
                 "--remediation.policy-file", "TOCSIN_REMEDIATION__AUDIT_DSN"]:  # fmt: skip
        assert word in out
