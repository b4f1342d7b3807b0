"""The router publishes remediation requests for alert updates that match a remediation rule."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from schemas.alert import Alert, fingerprint
from schemas.remediation import parse_policy
from schemas.remediation_flow import RemediationRequest
from schemas.timefmt import format_ns, now_ns, parse_ns
from schemas.topics import REMEDIATION_REQUESTS
from services.router.remediation_tap import requests_for
from services.router.silence_store import SilenceStore
from services.router.silences import Silence
from tests.router.test_service import post, started_router

REDIS_URL = "redis://127.0.0.1:6379/0"
S = 1_000_000_000


def policy_data(run: str) -> dict[str, Any]:
    return {
        "targets": {"redis": {"cache": {"url": "redis://127.0.0.1:6379/14"}}},
        "rules": [
            {
                "name": "flush",
                "matchers": ['alertname="RedisMemoryHigh"', f'run="{run}"'],
                "action": "redis.cache_flush",
                "target": "cache",
                "params": {"patterns": ["cache:*"]},
            },
            {
                "name": "flush-critical",
                "matchers": ['severity="critical"', f'run="{run}"'],
                "action": "redis.cache_flush",
                "target": "cache",
                "mode": "auto",
                "params": {"patterns": ["tmp:*"]},
            },
        ],
    }


def alert(labels: dict[str, str], now: int, ends: int | None = None) -> Alert:
    return Alert(
        labels=labels,
        annotations={"summary": "s"},
        startsAt=format_ns(now - 60 * S),
        endsAt=None if ends is None else format_ns(ends),
        status="firing" if ends is None or ends > now else "resolved",
        fingerprint=fingerprint(labels),
        receivedAt=format_ns(now),
        source="api.v2",
    )


def test_matching_alerts_become_requests_naming_every_matching_rule() -> None:
    policy = parse_policy(policy_data("t"))
    now = now_ns()
    both = {"alertname": "RedisMemoryHigh", "severity": "critical", "run": "t"}
    one = {"alertname": "RedisMemoryHigh", "severity": "warning", "run": "t"}
    none = {"alertname": "Other", "severity": "warning", "run": "t"}
    got = requests_for(
        policy,
        [alert(both, now), alert(one, now), alert(none, now)],
        now_ns=now,
        resolve_timeout_s=300,
    )
    assert [(r.fingerprint, r.rules) for r in got] == [
        (fingerprint(both), ["flush", "flush-critical"]),
        (fingerprint(one), ["flush"]),
    ]
    first = got[0]
    assert first.status == "firing"
    assert first.labels == both
    # no endsAt from the sender: resolve_timeout from the receive time, as the router applies it
    assert parse_ns(first.endsAt) == now + 300 * S


def test_resolved_alerts_are_passed_on_and_silenced_firing_ones_are_not() -> None:
    policy = parse_policy(policy_data("t"))
    now = now_ns()
    labels = {"alertname": "RedisMemoryHigh", "run": "t"}

    class Muting(SilenceStore):
        def __init__(self) -> None:
            pass

        def mutes(self, labels: Any, now_ns: int) -> list[str]:
            return ["s1"]

    silences = Muting()
    firing = requests_for(
        policy, [alert(labels, now)], now_ns=now, resolve_timeout_s=300, silences=silences
    )
    assert firing == []
    resolved = requests_for(
        policy,
        [alert(labels, now, ends=now - S)],
        now_ns=now,
        resolve_timeout_s=300,
        silences=silences,
    )
    assert [r.status for r in resolved] == ["resolved"]


async def test_the_router_publishes_requests_before_it_commits(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = f"r{uuid.uuid4().hex[:8]}"
    policy = tmp_path / "remediation.yml"
    policy.write_text(orjson.dumps(policy_data(run)).decode())  # JSON is YAML
    async with started_router(
        kafka_bootstrap, tmp_path, run, **{"remediation.policy_file": str(policy)}
    ) as (service, producer):
        silenced = {"alertname": "RedisMemoryHigh", "instance": "muted", "run": run}
        await service.silences.save(_silence(silenced, now_ns()))
        firing = {"alertname": "RedisMemoryHigh", "instance": "a", "run": run}
        other = {"alertname": "Unrelated", "instance": "a", "run": run}
        await post(producer, firing)
        await post(producer, other)
        await post(producer, silenced)
        await post(producer, firing, ends_at=format_ns(now_ns() - S))
        got = await _requests(kafka_bootstrap, run, 2)
    assert [(r.fingerprint, r.status, r.rules) for r in got] == [
        (fingerprint(firing), "firing", ["flush"]),
        (fingerprint(firing), "resolved", ["flush"]),
    ]


def _silence(labels: dict[str, str], now: int) -> Silence:
    from schemas.config.matchers import parse_matchers

    matchers = tuple(m for k, v in labels.items() for m in parse_matchers(f'{k}="{v}"'))
    return Silence(
        id=str(uuid.uuid4()),
        matchers=matchers,
        starts_ns=now - S,
        ends_ns=now + 3600 * S,
        updated_ns=now,
        created_by="test",
        comment="maintenance",
    )


async def _requests(bootstrap: str, run: str, expected: int) -> list[RemediationRequest]:
    consumer = AIOKafkaConsumer(
        REMEDIATION_REQUESTS.name, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[RemediationRequest] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    settle: float | None = None
    try:
        while loop.time() < deadline and (settle is None or loop.time() < settle):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    data = orjson.loads(record.value)
                    assert data["schema"] == REMEDIATION_REQUESTS.schema
                    request = RemediationRequest.model_validate(data["data"])
                    if request.labels.get("run") == run:
                        assert record.key == request.fingerprint.encode()
                        found.append(request)
            if settle is None and len(found) >= expected:
                settle = loop.time() + 1.0  # extra copies would show up here
    finally:
        await consumer.stop()
    return found
