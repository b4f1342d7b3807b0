"""The approval API over HTTP: auth, listing, approve (202, runs), reject, errors, circuit reset."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from schemas.remediation_flow import RemediationState
from services.runtime.auth import Authenticator
from services.runtime.http import HttpMetrics, make_app
from services.runtime.metrics import new_registry
from tests.remediation.conftest import PG_DSN, FakeClock
from tests.remediation.flow import Flow, flow_redis, redis_target_policy, start_flow


@pytest.fixture
async def redis_db() -> AsyncIterator[aioredis.Redis]:
    async with flow_redis() as client:
        yield client


@dataclass
class Api:
    flow: Flow
    url: str
    http: aiohttp.ClientSession


@pytest.fixture
async def api(
    kafka_bootstrap: str, redis_db: aioredis.Redis, clock: FakeClock
) -> AsyncIterator[Api]:
    policy = redis_target_policy(mode="approval")
    async with start_flow(
        kafka_bootstrap, redis_db, clock, policy, settings={"remediation.audit_dsn": PG_DSN}
    ) as flow:
        app = make_app(HttpMetrics(new_registry()), 1024 * 1024)
        auth = Authenticator("s3cret", "ops", "pw")
        app.add_routes(flow.service.api(auth).routes())
        server = TestServer(app)
        await server.start_server()
        headers = {"Authorization": "Bearer s3cret"}
        async with aiohttp.ClientSession(headers=headers) as http:
            try:
                yield Api(flow, str(server.make_url("/api/v1/remediations")), http)
            finally:
                await server.close()


async def test_credentials_are_required(api: Api) -> None:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(api.url) as r:
        assert r.status == 401
        assert (await r.json()) == {"error": "authentication required"}
    async with api.http.get(api.url) as r:
        assert r.status == 200
        assert await r.json() == []


async def test_list_get_approve_and_conflicts(api: Api) -> None:
    [pending] = await api.flow.service.handle(api.flow.request({"alertname": "RedisMemoryHigh"}))
    async with api.http.get(api.url, params={"state": "pending"}) as r:
        assert r.status == 200
        assert [x["id"] for x in await r.json()] == [pending.id]
    async with api.http.get(api.url, params={"state": "bogus"}) as r:
        assert r.status == 400
        assert "unknown state 'bogus'" in (await r.json())["error"]
    async with api.http.get(f"{api.url}/{'0' * 24}") as r:
        assert r.status == 404
        assert (await r.json())["error"] == f"remediation {'0' * 24} not found"

    basic = {"Authorization": "Basic " + base64.b64encode(b"ops:pw").decode()}
    async with (
        aiohttp.ClientSession() as as_ops,
        as_ops.post(
            f"{api.url}/{pending.id}/approve",
            json={"by": "ignored", "comment": "ok"},
            headers=basic,
        ) as r,
    ):
        assert r.status == 202
        body = await r.json()
        assert body["state"] == "running"
        assert body["decidedBy"] == "ops"  # the authenticated user, not the body's `by`
    await api.flow.service.wait_runs()

    async with api.http.post(f"{api.url}/{pending.id}/approve") as r:
        assert r.status == 409
        assert await r.json() == {
            "error": f"remediation {pending.id} is done, not pending",
            "state": "done",
        }
    await api.flow.service.audit.flush()
    async with api.http.get(f"{api.url}/{pending.id}") as r:
        assert r.status == 200
        body = await r.json()
    assert body["state"] == "done"
    assert [a["event"] for a in body["audit"]] == [
        "requested", "approval_requested", "approved", "started", "result", "verified",
    ]  # fmt: skip
    assert body["audit"][2]["actor"] == "ops"


async def test_reject_with_by_and_bad_bodies(api: Api) -> None:
    [pending] = await api.flow.service.handle(api.flow.request({"alertname": "RedisMemoryHigh"}))
    for body, message in [
        (b"{", "body is not JSON"),
        (b"[]", "body must be a JSON object"),
        (b'{"who": "x"}', "unknown field(s): who"),
        (b'{"by": 3}', "by and comment must be strings"),
    ]:
        async with api.http.post(f"{api.url}/{pending.id}/reject", data=body) as r:
            assert r.status == 400, body
            assert message in (await r.json())["error"]
    async with api.http.post(
        f"{api.url}/{pending.id}/reject", json={"by": "erin", "comment": "flaky alert"}
    ) as r:
        assert r.status == 200
        body = await r.json()
    assert body["state"] == "rejected"
    assert body["decidedBy"] == "erin"
    stored = await api.flow.service.store.get(pending.id)
    assert stored is not None
    assert stored.state is RemediationState.REJECTED


async def test_circuit_state_and_reset(api: Api) -> None:
    async with api.http.get(f"{api.url}/circuit") as r:
        assert await r.json() == {"open": False}
    await api.flow.service.envelope.open_circuit("max 5 runs per hour reached (global)")
    async with api.http.get(f"{api.url}/circuit") as r:
        body = await r.json()
        assert body["open"] is True
        assert body["reason"] == "max 5 runs per hour reached (global)"
    async with api.http.post(f"{api.url}/circuit/reset", json={"by": "frank"}) as r:
        assert r.status == 200
        body = await r.json()
    assert body["open"] is False
    assert body["was"]["reason"] == "max 5 runs per hour reached (global)"
    assert await api.flow.service.circuit() is None
    trail = await api.flow.audit(count=1)
    assert [(r.event.value, r.actor) for r in trail] == [("circuit_reset", "frank")]
