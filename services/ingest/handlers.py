"""The ingest endpoints: validate like Alertmanager, publish, answer only after broker acks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from pydantic import TypeAdapter, ValidationError

from schemas.alert import (
    AlertProblem,
    PostableAlert,
    fingerprint,
    parse_time_field,
    validate_alert,
)
from schemas.envelope import encode
from schemas.timefmt import format_ns, now_ns
from schemas.topics import ALERTS
from schemas.webhook import WebhookMessage
from services.ingest.publisher import AlertPublisher
from services.runtime.auth import Authenticator
from services.runtime.http import json_error
from services.runtime.kafka import PublishError

__all__ = ["IngestHandlers"]

_log = structlog.get_logger("tocsin.ingest")
# The core validators, called directly: TypeAdapter's wrapper costs more than a 1-alert body.
_POSTABLE = TypeAdapter(list[PostableAlert]).validator
_WEBHOOK = TypeAdapter(WebhookMessage).validator
# Go's zero time: what Alertmanager writes for "no endsAt"; Tocsin reads it as absent.
_GO_ZERO_PREFIX = "0001-01-01T00:00:00"
Source = Literal["api.v2", "webhook"]
# (JSON Pointer parts, labels, annotations, startsAt, endsAt, generatorURL) of one posted alert
_Incoming = tuple[
    tuple[int | str, ...], Mapping[str, str], Mapping[str, str], str | None, str | None, str
]


def _pointer(loc: tuple[int | str, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in loc)


def _schema_problems(
    exc: ValidationError, prefix: tuple[int | str, ...] = ()
) -> list[dict[str, str]]:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        if err["type"] == "json_invalid":
            message = f"malformed JSON: {err['ctx'].get('error', err['msg'])}"
            problems.append({"path": "", "message": message})
        else:
            problems.append({"path": _pointer(prefix + tuple(err["loc"])), "message": err["msg"]})
    return problems


def _time_or_none(value: str | None) -> str | None:
    if value is None or value == "" or value.startswith(_GO_ZERO_PREFIX):
        return None
    return value


class IngestHandlers:
    """Request handlers bound to a publisher, an authenticator and a metrics registry."""

    def __init__(
        self,
        publisher: AlertPublisher,
        auth: Authenticator,
        registry: CollectorRegistry,
        producer_name: str,
    ) -> None:
        self._publisher = publisher
        self._auth = auth
        self._producer_name = producer_name
        accepted = Counter(
            "tocsin_ingest_alerts_accepted_total",
            "Alerts published to the alerts topic and acknowledged by the broker.",
            ["source"],
            registry=registry,
        )
        rejected = Counter(
            "tocsin_ingest_alerts_rejected_total",
            "Alerts refused as invalid (the request got a 400).",
            ["source"],
            registry=registry,
        )
        sources: tuple[Source, ...] = ("api.v2", "webhook")
        self._accepted = {s: accepted.labels(s) for s in sources}
        self._rejected = {s: rejected.labels(s) for s in sources}

    async def _body(self, request: web.Request) -> bytes | web.Response:
        denied = self._auth.check(request)
        if denied is not None:
            return denied
        if request.content_type != "application/json":
            return json_error(
                415, f"content type {request.content_type!r} is not supported: use application/json"
            )
        return await request.read()  # aiohttp stops reading at client_max_size (413)

    def _message(
        self,
        source: Source,
        where: tuple[int | str, ...],
        labels: Mapping[str, str],
        annotations: Mapping[str, str],
        starts_at: str | None,
        ends_at: str | None,
        generator_url: str,
        now: int,
        now_text: str,
    ) -> tuple[bytes, bytes] | AlertProblem:
        """One accepted alert as (key, enveloped value), or the reason it is refused."""
        starts = parse_time_field(starts_at, where, "startsAt")
        if isinstance(starts, AlertProblem):
            return starts
        ends = parse_time_field(ends_at, where, "endsAt")
        if isinstance(ends, AlertProblem):
            return ends
        if starts is None:  # Alertmanager: startsAt defaults to endsAt, else to now
            starts, starts_at = (ends, ends_at) if ends is not None else (now, now_text)
        # Alertmanager drops labels with empty values before anything else looks at them.
        if "" in labels.values():
            labels = {k: v for k, v in labels.items() if v != ""}
        problem = validate_alert(labels, annotations, starts, ends, where)
        if problem is not None:
            return problem
        fp = fingerprint(labels)
        data: dict[str, Any] = {
            "labels": labels,
            "annotations": annotations,
            "startsAt": starts_at,
            "endsAt": ends_at if ends is not None else None,
            "generatorURL": generator_url,
            "status": "resolved" if ends is not None and ends <= now else "firing",
            "fingerprint": fp,
            "receivedAt": now_text,
            "source": source,
        }
        return fp.encode(), encode(ALERTS.schema, self._producer_name, data, now_text)

    async def _publish(
        self,
        source: Source,
        messages: list[tuple[bytes, bytes]],
        problems: list[AlertProblem],
        ok_body: bytes | None,
    ) -> web.Response:
        try:
            await self._publisher.publish(messages)
        except PublishError as exc:
            _log.warning("publish_failed", source=source, alerts=len(messages), error=str(exc))
            return json_error(503, f"alerts not accepted: {exc}; retry", {"Retry-After": "5"})
        self._accepted[source].inc(len(messages))
        if problems:
            self._rejected[source].inc(len(problems))
            return json_error(
                400,
                f"{len(problems)} invalid alert(s) refused; {len(messages)} valid one(s) accepted",
                errors=[p.model_dump() for p in problems],
                accepted=len(messages),
            )
        if ok_body is None:
            return web.Response(status=200)
        return web.Response(status=200, body=ok_body, content_type="application/json")

    async def _accept(self, source: Source, alerts: list[_Incoming]) -> web.Response:
        now = now_ns()
        now_text = format_ns(now)
        messages: list[tuple[bytes, bytes]] = []
        problems: list[AlertProblem] = []
        for where, labels, annots, starts_at, ends_at, generator_url in alerts:
            out = self._message(
                source, where, labels, annots, starts_at, ends_at, generator_url, now, now_text
            )
            if isinstance(out, AlertProblem):
                problems.append(out)
            else:
                messages.append(out)
        ok_body = orjson.dumps({"accepted": len(messages)}) if source == "webhook" else None
        return await self._publish(source, messages, problems, ok_body)

    async def post_alerts(self, request: web.Request) -> web.Response:
        """POST /api/v2/alerts: Alertmanager's API push (Prometheus, amtool)."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            alerts = _POSTABLE.validate_json(body)
        except ValidationError as exc:
            return json_error(400, "invalid body", errors=_schema_problems(exc))
        return await self._accept(
            "api.v2",
            [
                (
                    (i,),
                    a.labels,
                    a.annotations,
                    _time_or_none(a.startsAt),
                    _time_or_none(a.endsAt),
                    a.generatorURL,
                )
                for i, a in enumerate(alerts)
            ],
        )

    async def post_webhook(self, request: web.Request) -> web.Response:
        """POST /api/v1/alertmanager: the target of an Alertmanager webhook_config (version 4)."""
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            message = _WEBHOOK.validate_json(body)
        except ValidationError as exc:
            return json_error(400, "invalid webhook payload", errors=_schema_problems(exc))
        # A firing alert's endsAt is the upstream's estimate: the router applies its own.
        return await self._accept(
            "webhook",
            [
                (
                    ("alerts", i),
                    a.labels,
                    a.annotations,
                    _time_or_none(a.startsAt),
                    None if a.status == "firing" else _time_or_none(a.endsAt),
                    a.generatorURL,
                )
                for i, a in enumerate(message.alerts)
            ],
        )
