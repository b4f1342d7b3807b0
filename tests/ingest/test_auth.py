"""Optional authentication: Bearer and/or basic, 401 with a challenge otherwise."""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp
import pytest

from services.runtime.embedded import free_port
from tests.helpers import start_ingest

BODY = b'[{"labels": {"alertname": "Auth"}}]'


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def status_of(url: str, authorization: str | None) -> tuple[int, str | None, str]:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with aiohttp.ClientSession() as http, http.post(url, data=BODY, headers=headers) as r:
        return r.status, r.headers.get("WWW-Authenticate"), await r.text()


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (None, 401),
        ("Bearer s3cret-token", 200),
        ("bearer s3cret-token", 200),
        ("Bearer wrong", 401),
        ("Bearer s3cret-token-longer", 401),
        (basic("prom", "pa:ss"), 200),
        (basic("prom", "wrong"), 401),
        (basic("other", "pa:ss"), 401),
        ("Basic !!!notbase64", 401),
        ("Digest x", 401),
    ],
    ids=["none", "bearer", "bearer-lowercase", "bearer-wrong", "bearer-prefix", "basic", "basic-wrong",
         "basic-user", "basic-garbage", "other-scheme"],
)  # fmt: skip
async def test_bearer_or_basic(
    kafka_bootstrap: str, tmp_path: Path, authorization: str | None, expected: int
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("pa:ss\n")  # trailing newline trimmed, as Alertmanager's *_file
    settings = {
        "web.auth.bearer_token": "s3cret-token",
        "web.auth.basic_username": "prom",
        "web.auth.basic_password_file": str(password_file),
    }
    async with start_ingest(kafka_bootstrap, free_port(), **settings) as url:
        status, challenge, text = await status_of(f"{url}/api/v2/alerts", authorization)
        assert status == expected
        if expected == 401:
            assert challenge == 'Bearer realm="tocsin", Basic realm="tocsin"'
            assert "s3cret" not in text
            assert "pa:ss" not in text
        # Probes and metrics stay open for the orchestrator and Prometheus.
        async with aiohttp.ClientSession() as http, http.get(f"{url}/-/healthy") as r:
            assert r.status == 200


async def test_bearer_token_from_file(kafka_bootstrap: str, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    async with start_ingest(
        kafka_bootstrap, free_port(), **{"web.auth.bearer_token_file": str(token_file)}
    ) as url:
        assert (await status_of(f"{url}/api/v2/alerts", "Bearer from-file"))[0] == 200
        assert (await status_of(f"{url}/api/v1/alertmanager", None))[0] == 401
