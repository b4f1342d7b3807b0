"""Ingest end to end on the real broker: what is posted is what a consumer reads."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from schemas.alert import fingerprint
from schemas.timefmt import parse_ns
from tests.conftest import Ingest
from tests.helpers import read_alerts

JSON = {"Content-Type": "application/json"}


async def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=data, headers=headers or JSON) as r,
    ):
        text = await r.text()
        parsed = json.loads(text) if text and r.content_type == "application/json" else text
        return r.status, parsed, r.headers


async def test_posted_alerts_reach_the_topic_keyed_by_fingerprint(ingest: Ingest) -> None:
    alerts = [
        {
            "labels": {"alertname": "HighCPU", "instance": f"h{i}:9100", "run": ingest.run_id},
            "annotations": {"summary": f"cpu {i}"},
            "startsAt": "2026-11-27T02:10:31.083842749Z",
            "generatorURL": "http://prom/graph",
        }
        for i in range(5)
    ]
    status, body, _ = await post(f"{ingest.url}/api/v2/alerts", alerts)
    assert (status, body) == (200, "")
    got = await read_alerts(
        ingest.bootstrap, lambda e: e.data.labels.get("run") == ingest.run_id, 5
    )
    assert len(got) == 5
    by_instance = {env.data.labels["instance"]: (key, env) for key, env in got}
    for i, sent in enumerate(alerts):
        key, env = by_instance[f"h{i}:9100"]
        assert key == fingerprint(env.data.labels).encode()
        assert env.data.labels == sent["labels"]
        assert env.data.fingerprint == key.decode()
        assert env.data.labels == sent["labels"]
        assert env.data.annotations == sent["annotations"]
        assert env.data.startsAt == sent["startsAt"]  # nanoseconds kept
        assert env.data.endsAt is None
        assert env.data.status == "firing"
        assert env.data.source == "api.v2"
        assert env.schema_ == "tocsin.alert/v1"
        assert env.version == 1
    assert len({env.id for _, env in got}) == 5


async def test_alertmanager_defaults_are_applied(ingest: Ingest) -> None:
    """No startsAt -> endsAt (or now); empty labels vanish; a past endsAt means resolved."""
    alerts = [
        {"labels": {"alertname": "A", "run": ingest.run_id, "empty": ""}},
        {"labels": {"alertname": "B", "run": ingest.run_id}, "endsAt": "2020-01-01T00:00:00Z"},
    ]
    status, _, _ = await post(f"{ingest.url}/api/v2/alerts", alerts)
    assert status == 200
    got = {e.data.labels["alertname"]: e.data for _, e in await read_alerts(
        ingest.bootstrap, lambda e: e.data.labels.get("run") == ingest.run_id, 2)}  # fmt: skip
    assert got["A"].labels == {"alertname": "A", "run": ingest.run_id}
    assert got["A"].fingerprint == fingerprint({"alertname": "A", "run": ingest.run_id})
    assert got["A"].status == "firing"
    assert abs(parse_ns(got["A"].startsAt) - parse_ns(got["A"].receivedAt)) == 0
    assert got["B"].startsAt == "2020-01-01T00:00:00Z"
    assert got["B"].status == "resolved"


async def test_webhook_payload_v4_is_split_into_alerts(ingest: Ingest) -> None:
    payload = {
        "receiver": "tocsin",
        "status": "firing",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "W", "i": "1", "run": ingest.run_id},
             "annotations": {}, "startsAt": "2026-11-27T02:10:31.1Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "", "fingerprint": "ignored"},
            {"status": "resolved", "labels": {"alertname": "W", "i": "2", "run": ingest.run_id},
             "annotations": {}, "startsAt": "2026-11-27T02:10:31.1Z", "endsAt": "2026-11-27T02:11:00Z",
             "generatorURL": "", "fingerprint": ""},
        ],
        "groupLabels": {"alertname": "W"},
        "commonLabels": {"alertname": "W"},
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "version": "4",
        "groupKey": '{}:{alertname="W"}',
        "truncatedAlerts": 0,
    }  # fmt: skip
    status, body, _ = await post(f"{ingest.url}/api/v1/alertmanager", payload)
    assert (status, body) == (200, {"accepted": 2})
    got = {e.data.labels["i"]: e.data for _, e in await read_alerts(
        ingest.bootstrap, lambda e: e.data.labels.get("run") == ingest.run_id, 2)}  # fmt: skip
    assert got["1"].status == "firing"
    assert got["1"].endsAt is None
    assert got["2"].status == "resolved"
    assert got["2"].endsAt == "2026-11-27T02:11:00Z"
    assert got["1"].fingerprint == fingerprint(payload["alerts"][0]["labels"])  # type: ignore[index]
    assert {d.source for d in got.values()} == {"webhook"}


async def test_partially_invalid_batch_keeps_the_valid_alerts(ingest: Ingest) -> None:
    """As Alertmanager: 400 naming each bad alert, the valid ones are still accepted."""
    alerts = [
        {"labels": {"alertname": "Good", "run": ingest.run_id}},
        {"labels": {"alertname": "Bad", "bad-name": "x"}},
        {
            "labels": {"alertname": "Late"},
            "startsAt": "2026-01-02T00:00:00Z",
            "endsAt": "2026-01-01T00:00:00Z",
        },
        {"labels": {"empty": ""}},
    ]
    status, body, _ = await post(f"{ingest.url}/api/v2/alerts", alerts)
    assert status == 400
    assert body["accepted"] == 1
    assert body["errors"] == [
        {"path": "/1/labels/bad-name", "message": 'invalid label set: invalid name "bad-name"'},
        {"path": "/2/endsAt", "message": "start time must be before end time"},
        {"path": "/3/labels", "message": "at least one label pair required"},
    ]
    got = await read_alerts(
        ingest.bootstrap, lambda e: e.data.labels.get("run") == ingest.run_id, 1
    )
    assert [e.data.labels["alertname"] for _, e in got] == ["Good"]


BAD_INPUT = [
    # (id, path, body, content type, status, expected error paths)
    ("malformed-json", "/api/v2/alerts", b"[{", "application/json", 400, [""]),
    ("not-a-list", "/api/v2/alerts", b'{"labels": {}}', "application/json", 400, [""]),
    ("labels-missing", "/api/v2/alerts", b'[{"annotations": {}}]', "application/json", 400, ["/0/labels"]),
    ("labels-wrong-type", "/api/v2/alerts", b'[{"labels": ["a"]}]', "application/json", 400, ["/0/labels"]),
    ("label-value-not-string", "/api/v2/alerts", b'[{"labels": {"a": 1}}]', "application/json", 400, ["/0/labels/a"]),
    ("bad-timestamp", "/api/v2/alerts", b'[{"labels": {"a": "1"}, "startsAt": "yesterday"}]', "application/json", 400, ["/0/startsAt"]),
    ("webhook-version", "/api/v1/alertmanager", b'{"receiver": "r", "status": "firing", "alerts": [], "version": "3", "groupKey": "k"}', "application/json", 400, ["/version"]),
    ("webhook-alerts-missing", "/api/v1/alertmanager", b'{"receiver": "r", "status": "firing", "version": "4", "groupKey": "k"}', "application/json", 400, ["/alerts"]),
    ("wrong-content-type", "/api/v2/alerts", b"[]", "text/plain", 415, None),
    ("form-content-type", "/api/v1/alertmanager", b"a=b", "application/x-www-form-urlencoded", 415, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "ctype", "status", "error_paths"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
async def test_bad_input_gets_a_4xx_json_answer(
    ingest: Ingest, path: str, body: bytes, ctype: str, status: int, error_paths: list[str] | None
) -> None:
    got_status, got, _ = await post(f"{ingest.url}{path}", body, {"Content-Type": ctype})
    assert got_status == status
    assert isinstance(got, dict)
    assert got["error"]
    if error_paths is not None:
        assert [e["path"] for e in got["errors"]] == error_paths
        assert all(e["message"] for e in got["errors"])


async def test_empty_batch_is_fine(ingest: Ingest) -> None:
    assert (await post(f"{ingest.url}/api/v2/alerts", []))[0] == 200


async def test_unknown_path_and_wrong_method_are_json(ingest: Ingest) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{ingest.url}/api/v2/nothing") as r:
            assert r.status == 404
            assert (await r.json())["error"]
        async with http.put(f"{ingest.url}/api/v2/alerts", data=b"[]") as r:
            assert r.status == 405
            assert "POST" in r.headers["Allow"]
            assert (await r.json())["error"]


async def test_body_over_the_limit_is_413_without_reading_it_all(kafka_bootstrap: str) -> None:
    from services.runtime.embedded import free_port
    from tests.helpers import start_ingest

    async with start_ingest(kafka_bootstrap, free_port(), **{"ingest.max_body_bytes": 4096}) as url:
        big = b"[" + b",".join([b'{"labels": {"a": "1"}}'] * 1000) + b"]"
        status, body, _ = await post(f"{url}/api/v2/alerts", big)
        assert status == 413
        assert body["max_bytes"] == 4096

        sent = 0

        async def endless() -> Any:  # chunked: no Content-Length to refuse up front
            nonlocal sent
            for _ in range(10_000):
                sent += 1024
                yield b" " * 1024

        async with aiohttp.ClientSession() as http:
            try:
                async with http.post(f"{url}/api/v2/alerts", data=endless(), headers=JSON) as r:
                    assert r.status == 413
            except aiohttp.ClientOSError:
                pass  # the server may close the connection while we are still sending
        assert sent < 10_000 * 1024


async def test_health_metrics_and_openapi(ingest: Ingest) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{ingest.url}/health") as r:
            assert r.status == 200
            body = await r.json()
            assert body["status"] == "healthy"
            assert body["services"] == {"kafka": "connected"}
            assert {"timestamp", "version"} <= body.keys()
        for path in ("/-/healthy", "/-/ready"):
            async with http.get(f"{ingest.url}{path}") as r:
                assert r.status == 200
        await post(
            f"{ingest.url}/api/v2/alerts", [{"labels": {"alertname": "M", "run": ingest.run_id}}]
        )
        async with http.get(f"{ingest.url}/metrics") as r:
            text = await r.text()
        assert 'tocsin_ingest_alerts_accepted_total{source="api.v2"} 1.0' in text
        assert (
            'tocsin_http_requests_total{method="POST",path="/api/v2/alerts",status="200"} 1.0'
            in text
        )
        assert "tocsin_ingest_publish_seconds_bucket" in text
        assert "tocsin_http_request_size_bytes_bucket" in text
        async with http.get(f"{ingest.url}/openapi.json") as r:
            doc = await r.json()
        assert "/api/v2/alerts" in doc["paths"]
