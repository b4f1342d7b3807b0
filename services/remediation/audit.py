"""The audit trail: every remediation decision and action, on Kafka and in PostgreSQL.

`AuditLog.record` returns once the record is acknowledged on `remediation.audit` (keyed by the
remediation id): the topic is the durable copy, and a caller whose record was not acknowledged
fails and does not go on. With an audit DSN, each record is also appended to the table
`tocsin_remediation_audit` by a background writer: while PostgreSQL is away the records wait in
memory and the writer retries with backoff (an insert of a record already there is skipped, so
a retry never duplicates). A record still waiting when the process stops is only on Kafka; the
log names how many. The table is created when missing, with a trigger that raises on UPDATE,
DELETE and TRUNCATE: append-only for every role that is not its owner's superuser.

Events that happen once per remediation (requested, approved, started, result...) get an id
derived from the remediation, its attempt (a retried auto run) and the event, so a redelivered
request writing them again is recognisable (and skipped by the table); the others get a random
one.

Records that go with a state change are not lost when the write fails or the process stops
between the change and the write: the change stores them in a Redis *outbox* in the same Lua
step (`RemediationStore`), the caller writes them with `AuditLog.write` and then removes them;
whatever is left is written again later (by a redelivered request, or the periodic check), with
the same id and time. So a record can be on `remediation.audit` twice: consumers deduplicate on
the record id (the table already does).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
import orjson
import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel

from schemas.envelope import encode
from schemas.remediation_flow import AuditEvent, AuditRecord, Remediation
from schemas.timefmt import format_ns, parse_ns
from schemas.topics import REMEDIATION_AUDIT
from services.remediation.clock import Clock

__all__ = ["TABLE", "AuditLog", "PendingRecord", "record_id"]

_log = structlog.get_logger("tocsin.remediation.audit")

TABLE = "tocsin_remediation_audit"
_NAMESPACE = uuid.UUID("5b0f1d2e-8c3a-4e57-9a1c-6f2d7e4b9c10")
_REPEATABLE = frozenset({AuditEvent.REVERTED, AuditEvent.CIRCUIT_OPENED})

_SCHEMA = f"""
SELECT pg_advisory_xact_lock(hashtext('{TABLE}'));
CREATE TABLE IF NOT EXISTS {TABLE} (
    id uuid PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY,
    at timestamptz NOT NULL,
    event text NOT NULL,
    remediation text,
    rule text,
    action text,
    target text,
    fingerprint text,
    actor text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{{}}'
);
CREATE INDEX IF NOT EXISTS {TABLE}_remediation ON {TABLE} (remediation, at, seq);
CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{TABLE} is append-only: % refused', TG_OP;
END
$$;
CREATE OR REPLACE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only();
CREATE OR REPLACE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only();
"""

_INSERT = """
INSERT INTO tocsin_remediation_audit
    (id, at, event, remediation, rule, action, target, fingerprint, actor, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb)
ON CONFLICT (id) DO NOTHING
"""

_TRAIL = """
SELECT id, at, event, remediation, rule, action, target, fingerprint, actor, detail::text
FROM tocsin_remediation_audit WHERE remediation = $1 ORDER BY at, seq
"""


def record_id(event: AuditEvent, remediation: Remediation) -> str | None:
    """The deterministic id of `event` for `remediation` (its attempt), None if it repeats."""
    if event in _REPEATABLE:
        return None
    # a retried run (attempt 2 and on) is started, refused or done once per attempt
    attempt = f"/{remediation.attempts}" if remediation.attempts > 1 else ""
    return str(uuid.uuid5(_NAMESPACE, f"{remediation.id}{attempt}/{event.value}"))


class PendingRecord(BaseModel):
    """An audit record kept in the outbox until Kafka acknowledged it (see the module doc)."""

    id: str
    event: AuditEvent
    at: str
    actor: str
    remediation: Remediation
    detail: dict[str, Any] = {}
    #: Its write failed (so a redelivery repairs it at once, not only after a grace period).
    failed: bool = False


class AuditLog:
    """Appends audit records to `remediation.audit` and, with a DSN, to PostgreSQL."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        producer_name: str,
        clock: Clock,
        registry: CollectorRegistry,
        dsn: str | None = None,
        topic: str = REMEDIATION_AUDIT.name,
        max_backlog: int = 100_000,
        max_backoff: float = 30.0,
    ) -> None:
        self._producer = producer
        self._producer_name = producer_name
        self._clock = clock
        self._dsn = dsn
        self._topic = topic
        self._backlog: deque[AuditRecord] = deque()
        self._max_backlog = max_backlog
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer: asyncio.Task[None] | None = None
        self._pool: Any = None
        self._table_ready = False
        self._records = Counter(
            "tocsin_remediation_audit_records_total", "Audit records written, by event.",
            ["event"], registry=registry,
        )  # fmt: skip
        self._pg_backlog = Gauge(
            "tocsin_remediation_audit_pg_backlog",
            "Audit records waiting for PostgreSQL (they are on Kafka already).",
            registry=registry,
        )
        self._pg_failures = Counter(
            "tocsin_remediation_audit_pg_failures_total",
            "Failed attempts to append audit records to PostgreSQL (retried).",
            registry=registry,
        )

    @property
    def has_table(self) -> bool:
        """Whether records also go to PostgreSQL (an audit DSN is configured)."""
        return self._dsn is not None

    async def start(self) -> None:
        """Start the PostgreSQL writer (it connects, and creates the table, on first use)."""
        if self._dsn is None or self._writer is not None:
            return
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=2,
            server_settings={"application_name": "tocsin-remediation-audit"},
        )
        self._writer = asyncio.create_task(self._write_loop(), name="remediation-audit-pg")

    async def stop(self, drain: float = 5.0) -> None:
        """Give the writer up to `drain` seconds for the backlog, then stop; idempotent."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                async with asyncio.timeout(drain):
                    await self._idle.wait()
            except TimeoutError:
                pass
            writer.cancel()
            try:
                await writer
            except asyncio.CancelledError:
                if not writer.cancelled():
                    raise
            if self._backlog:
                _log.warning("audit_pg_backlog_abandoned", records=len(self._backlog))
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def record(
        self,
        event: AuditEvent,
        *,
        actor: str,
        remediation: Remediation | None = None,
        rule: str | None = None,
        action: str | None = None,
        target: str | None = None,
        fingerprint: str | None = None,
        detail: dict[str, Any] | None = None,
        at: str | None = None,
    ) -> AuditRecord:
        """Write one record; returns once Kafka acknowledged it (PostgreSQL follows)."""
        known = record_id(event, remediation) if remediation is not None else None
        record = AuditRecord(
            id=known or str(uuid.uuid4()),
            at=at or self.now(),
            event=event,
            remediation=remediation.id if remediation is not None else None,
            rule=remediation.rule if remediation is not None else rule,
            action=remediation.action if remediation is not None else action,
            target=(remediation.target or None) if remediation is not None else target,
            fingerprint=remediation.fingerprint if remediation is not None else fingerprint,
            actor=actor,
            detail=detail or {},
        )
        key = record.remediation or record.rule or "tocsin"
        value = encode(
            REMEDIATION_AUDIT.schema, self._producer_name, record.model_dump(mode="json")
        )
        await self._producer.send_and_wait(self._topic, value, key=key.encode())
        self._records.labels(event.value).inc()
        _log.info("audit", audit_event=event.value, remediation=record.remediation, actor=actor)
        if self._writer is not None:
            if len(self._backlog) >= self._max_backlog:
                dropped = self._backlog.popleft()
                _log.error("audit_pg_backlog_full", dropped=dropped.id)
            self._backlog.append(record)
            self._pg_backlog.set(len(self._backlog))
            self._idle.clear()
            self._wake.set()
        return record

    def now(self) -> str:
        """The clock's now as RFC 3339."""
        return format_ns(int(self._clock.now() * 1_000_000_000))

    def pending(
        self,
        event: AuditEvent,
        *,
        remediation: Remediation,
        actor: str,
        detail: dict[str, Any] | None = None,
    ) -> PendingRecord:
        """A record to put in the outbox with a state change, and to `write` after it."""
        known = record_id(event, remediation)
        if known is None:
            raise ValueError(f"{event.value} records repeat: they have no outbox id")
        return PendingRecord(
            id=known, event=event, at=self.now(), actor=actor, remediation=remediation,
            detail=detail or {},
        )  # fmt: skip

    async def write(self, pending: PendingRecord) -> AuditRecord:
        """Write an outbox record, with its id and time (Kafka acknowledged on return)."""
        return await self.record(
            pending.event, actor=pending.actor, remediation=pending.remediation,
            detail=pending.detail, at=pending.at,
        )  # fmt: skip

    async def flush(self, within: float = 10.0) -> None:
        """Wait until every record so far is in PostgreSQL (TimeoutError after `within`)."""
        async with asyncio.timeout(within):
            await self._idle.wait()

    async def trail(self, remediation_id: str) -> list[AuditRecord]:
        """The records of one remediation from PostgreSQL, oldest first."""
        if self._pool is None:
            return []
        async with self._pool.acquire() as conn:
            await self._ensure_table(conn)
            rows = await conn.fetch(_TRAIL, remediation_id)
        return [
            AuditRecord(
                id=str(row["id"]),
                at=format_ns(int(row["at"].timestamp() * 1_000_000) * 1000),
                event=AuditEvent(row["event"]),
                remediation=row["remediation"],
                rule=row["rule"],
                action=row["action"],
                target=row["target"],
                fingerprint=row["fingerprint"],
                actor=row["actor"],
                detail=orjson.loads(row["detail"]),
            )
            for row in rows
        ]

    async def _ensure_table(self, conn: Any) -> None:
        if not self._table_ready:
            async with conn.transaction():
                await conn.execute(_SCHEMA)
            self._table_ready = True

    async def _write_loop(self) -> None:
        backoff = 0.5
        while True:
            if not self._backlog:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = list(self._backlog)
            try:
                async with self._pool.acquire() as conn:
                    await self._ensure_table(conn)
                    await conn.executemany(_INSERT, [_row(r) for r in batch])
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any failure
                self._pg_failures.inc()
                _log.warning(
                    "audit_pg_write_failed",
                    records=len(batch),
                    error=f"{type(exc).__name__}: {exc}"[:200],
                    retry_in=backoff,
                )
                self._table_ready = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.5
            # what is left of the batch is the backlog's head: a full backlog may have dropped
            # some of it meanwhile, and records appended meanwhile are not written yet
            written = {id(r) for r in batch}
            while self._backlog and id(self._backlog[0]) in written:
                self._backlog.popleft()
            self._pg_backlog.set(len(self._backlog))


def _row(record: AuditRecord) -> tuple[Any, ...]:
    at = datetime.fromtimestamp(parse_ns(record.at) / 1_000_000_000, tz=UTC)
    return (
        uuid.UUID(record.id),
        at,
        record.event.value,
        record.remediation,
        record.rule,
        record.action,
        record.target,
        record.fingerprint,
        record.actor,
        orjson.dumps(record.detail).decode(),
    )
