"""The remediation service: remediation requests in, policy-bounded actions out, all audited.

Per replica: a consumer of `remediation.requests` (manual commits after each batch is handled;
a redelivered request finds the remediation its incident already has, by id, and only repairs
its audit trail, below),
a check loop (expired approvals, due reverts, the circuit alert, runs a crash left behind) and,
mounted on the HTTP server, the approval API. All state is in Redis, so any replica may serve an
approval, and the action then runs in that replica, through its executor and envelope.

For a firing request, each rule matching the labels gives one remediation: `auto` runs at once,
`approval` waits (until `approval_ttl`) for a person, `dry-run` records what it would do. A
resolved request cancels the alert's pending approvals. An auto run the envelope refused for a
passing reason (busy, locked, cooldown) is tried again when its alert is re-sent still firing,
at most `max_attempts` times in all; other refusals, and approvals, are final.

Audit trail, complete under failures: every creation and state change stores the records it
implies (requested, approval requested, dry run, retried, approved, rejected, expired,
cancelled, result) in the Redis audit outbox in the same Lua step (`RemediationStore`); they are
then written (`AuditLog.write`, deterministic id, the time of the change) and removed from it.
If a write fails, or the process stops in between, the records wait in the outbox and are
written again, with the same ids, by

- the redelivered request: a failed write in the consumer raises, the batch is not committed
  and is handled again (Alertmanager also re-sends firing alerts every minute), and a request
  for an existing remediation writes that remediation's waiting records first;
- the periodic check, for records older than `_OUTBOX_GRACE` (resolved alerts, decisions).

A decision (approve, reject, expiry, cancel) whose record could not be written yet still
stands (approve still starts the run); its record follows. An auto run starts only after its
`requested` (or `retried`) record was written, by whoever removes that record from the outbox
(the handler, a redelivery or the check): exactly one starts it, and until then the check does
not fail it as interrupted. Duplicates on `remediation.audit` are possible and carry the same
id (consumers deduplicate on it); the PostgreSQL table skips ids it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import Sequence
from typing import Any

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import ValidationError

from schemas.envelope import Envelope as Message
from schemas.envelope import producer_id
from schemas.remediation import Mode, Policy, Rule, load_policy
from schemas.remediation_flow import (
    AuditEvent,
    Remediation,
    RemediationRequest,
    RemediationState,
)
from schemas.timefmt import format_ns, parse_ns
from schemas.topics import ALERTS, FIXED_TOPICS, REMEDIATION_AUDIT, REMEDIATION_REQUESTS
from services.remediation.actions.app_agent import RevertedPool
from services.remediation.actions.redis_flush import Reverted
from services.remediation.alarm import CircuitAlarm
from services.remediation.approvals import Conflict, NotFound, RemediationStore, remediation_id
from services.remediation.audit import AuditLog, PendingRecord, record_id
from services.remediation.clock import Clock, SystemClock
from services.remediation.executor import Executor
from services.remediation.safety import (
    CircuitState,
    Done,
    Envelope,
    Failed,
    Outcome,
    RefusalReason,
    Refused,
)
from services.remediation.verify import verify
from services.runtime.auth import Authenticator
from services.runtime.kafka import KafkaFactory, consume_batches
from services.runtime.redis import RedisClient
from services.runtime.settings import Settings

__all__ = ["RemediationService"]

_log = structlog.get_logger("tocsin.remediation")
_MESSAGE = Message[RemediationRequest]
_NS = 1_000_000_000
# A run still "running" this long past its timeout lost its process (the lock has expired too).
_INTERRUPTED_AFTER = 120.0
#: Outbox records this old are repaired even if no failure was seen (their writer died);
#: younger ones may still be being written.
_OUTBOX_GRACE = 30.0
_STATE_OF: dict[str, RemediationState] = {
    "done": RemediationState.DONE,
    "failed": RemediationState.FAILED,
    "timed_out": RemediationState.TIMED_OUT,
    "refused": RemediationState.REFUSED,
}
#: Refusals that pass by themselves: the run is tried again on a later re-send of the alert.
#: The others need a person (circuit, rate limit, allow-list) or mean there is nothing to do.
_TRANSIENT = frozenset({RefusalReason.BUSY, RefusalReason.LOCKED, RefusalReason.COOLDOWN})


class RemediationService:
    """One remediation replica."""

    def __init__(
        self,
        settings: Settings,
        kafka: KafkaFactory,
        redis: RedisClient,
        registry: CollectorRegistry,
        *,
        policy: Policy | None = None,
        clock: Clock | None = None,
        requests_topic: str = REMEDIATION_REQUESTS.name,
        audit_topic: str = REMEDIATION_AUDIT.name,
        alerts_topic: str = ALERTS.name,
        max_attempts: int = 10,
        drain: float = 5.0,
    ) -> None:
        if policy is None:
            if settings.remediation.policy_file is None:
                raise ValueError("remediation needs a policy: --remediation.policy-file")
            policy = load_policy(settings.remediation.policy_file)
        self.policy = policy
        self._settings = settings
        self._kafka = kafka
        self._redis = redis
        self._registry = registry
        self._clock: Clock = clock or SystemClock()
        self._topics = (requests_topic, audit_topic, alerts_topic)
        self._max_attempts = max_attempts
        self._drain = drain
        prefix = settings.router.redis_prefix
        self.store = RemediationStore(redis, clock=self._clock, prefix=prefix)
        self.envelope = Envelope(
            redis, clock=self._clock, limits=policy.limits, prefix=f"{prefix}remediation:"
        )
        self.executor = Executor(
            policy, self.envelope, state=redis, clock=self._clock, prefix=f"{prefix}remediation:"
        )
        self._check_lock = f"{prefix}remediation:check-lock"
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._audit: AuditLog | None = None
        self._alarm: CircuitAlarm | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._runs: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._remediations = Counter(
            "tocsin_remediation_remediations_total",
            "Remediations entering each state, by action.", ["action", "state"],
            registry=registry,
        )  # fmt: skip
        self._pending_gauge = Gauge(
            "tocsin_remediation_pending", "Remediations waiting for an approval.",
            registry=registry,
        )  # fmt: skip
        self._circuit_open = Gauge(
            "tocsin_remediation_circuit_open",
            "Whether the circuit is open (1): auto-remediation stopped until a reset.",
            registry=registry,
        )
        self._bad_messages = Counter(
            "tocsin_remediation_bad_messages_total",
            "Messages on remediation.requests that did not parse (skipped).",
            registry=registry,
        )

    @property
    def audit(self) -> AuditLog:
        """The audit log (the service must be started)."""
        if self._audit is None:
            raise RuntimeError("the remediation service is not started")
        return self._audit

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, *, consume: bool = True, periodic: bool = True) -> None:
        """Connect, start the audit writer, the consumer and the check loop (each optional)."""
        requests_topic, audit_topic, alerts_topic = self._topics
        topics = {t.name for t in FIXED_TOPICS} | set(self._topics)
        await self._kafka.ensure_topics(sorted(topics))
        self._producer = producer = self._kafka.producer("remediation")
        await producer.start()
        name = producer_id("remediation")
        dsn = self._settings.remediation.audit_dsn
        self._audit = AuditLog(
            producer, producer_name=name, clock=self._clock, registry=self._registry,
            dsn=dsn.get_secret_value() if dsn is not None else None, topic=audit_topic,
        )  # fmt: skip
        await self._audit.start()
        self._alarm = CircuitAlarm(
            self._redis, producer, clock=self._clock, producer_name=name,
            prefix=self._settings.router.redis_prefix, topic=alerts_topic,
        )  # fmt: skip
        if consume:
            group = self._settings.remediation.group_id
            self._consumer = self._kafka.consumer("remediation", group, [requests_topic])
            await self._consumer.start()
            self._loops.append(asyncio.create_task(self._consume(), name="remediation-consume"))
        if periodic:
            self._loops.append(asyncio.create_task(self._check_loop(), name="remediation-check"))
        _log.info("remediation_started", rules=len(self.policy.rules))

    async def stop(self) -> None:
        """Stop intake, let runs in flight finish (bounded), close everything; idempotent.

        The loops (an auto run happens inside the consumer's) and the approved runs get
        `drain` seconds in all, then are cancelled: the process's whole teardown is bounded
        too (`Lifecycle.drain_timeout`, 10 s, that the deployments' grace periods follow), and
        the consumer, the audit writer and the producer must still close within it. A run
        cancelled mid-way stays running until the check fails it as interrupted.
        """
        self._stopping.set()
        loops, self._loops = self._loops, []
        deadline = asyncio.get_running_loop().time() + self._drain
        for task in loops:
            try:
                async with asyncio.timeout_at(deadline):
                    await task
            except TimeoutError:
                task.cancel()
            except Exception:  # noqa: BLE001 - a loop that died is reported, teardown goes on
                _log.exception("remediation_loop_failed", loop=task.get_name())
        if self._runs:
            left = max(0.0, deadline - asyncio.get_running_loop().time())
            _, late = await asyncio.wait(self._runs, timeout=left)
            for run in late:
                run.cancel()
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        await self.executor.close()
        if self._audit is not None:
            await self._audit.stop()
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    def api(self, auth: Authenticator) -> Any:
        """The approval API over this service, to mount on an HTTP server."""
        from services.remediation.api import RemediationAPI

        return RemediationAPI(self, auth)

    # -- requests ---------------------------------------------------------------------------

    async def _consume(self) -> None:
        consumer = self._consumer
        assert consumer is not None

        async def handle(records: list[Any]) -> None:  # every request handled, then the commit
            for record in records:
                request = self._parse(record)
                if request is not None:
                    await self.handle(request)

        await consume_batches(consumer, handle, self._stopping, max_records=100, name="remediation")

    def _parse(self, record: Any) -> RemediationRequest | None:
        try:
            return _MESSAGE.model_validate(orjson.loads(record.value)).data
        except (ValueError, ValidationError) as exc:
            self._bad_messages.inc()
            _log.warning("bad_request_message", offset=record.offset, error=str(exc)[:200])
            return None

    async def handle(self, request: RemediationRequest) -> list[Remediation]:
        """Act on one request; the remediations it created or retried (none for a resolve)."""
        await self.store.record_alert(request)
        if request.status == "resolved":
            await self._cancel(request.fingerprint)
            return []
        created = []
        for rule in self.policy.matching(request.labels):
            remediation = await self._open(rule, request)
            if remediation is not None:
                created.append(remediation)
        return created

    async def _open(self, rule: Rule, request: RemediationRequest) -> Remediation | None:
        target = self.policy.target_for(rule, request.labels)
        now = self._clock.now()
        state = {
            Mode.AUTO: RemediationState.RUNNING,
            Mode.APPROVAL: RemediationState.PENDING,
            Mode.DRY_RUN: RemediationState.DRY_RUN,
        }[rule.mode]
        plan = self.executor.plan(rule, target or "")
        detail = ""
        if target is None:
            state = RemediationState.REFUSED
            named = request.labels.get(rule.target_label or "", "")
            detail = f"no configured target (label {rule.target_label}={named!r})"
        elif state is RemediationState.DRY_RUN:
            detail = f"would run {rule.action.value} on {target}"
        expires = now + self._settings.remediation.approval_ttl
        remediation = Remediation(
            id=remediation_id(rule.name, request.fingerprint, request.startsAt),
            rule=rule.name,
            action=rule.action.value,
            target=target or "",
            mode=rule.mode.value,
            fingerprint=request.fingerprint,
            alertname=request.labels.get("alertname", ""),
            labels=request.labels,
            startsAt=request.startsAt,
            state=state,
            createdAt=_rfc3339(now),
            updatedAt=_rfc3339(now),
            expiresAt=_rfc3339(expires) if state is RemediationState.PENDING else None,
            detail=detail,
        )
        audit = self.audit
        requested = audit.pending(
            AuditEvent.REQUESTED, remediation=remediation, actor="tocsin",
            detail={"mode": rule.mode.value, "alert": {"labels": request.labels,
                    "startsAt": request.startsAt, "endsAt": request.endsAt}},
        )  # fmt: skip
        records = [requested]
        if target is None:
            records.append(audit.pending(
                AuditEvent.RESULT, remediation=remediation, actor="tocsin",
                detail={"status": "refused", "reason": "no_target", "detail": detail},
            ))  # fmt: skip
        elif rule.mode is Mode.APPROVAL:
            records.append(audit.pending(
                AuditEvent.APPROVAL_REQUESTED, remediation=remediation, actor="policy",
                detail={"expiresAt": remediation.expiresAt, "plan": plan.detail()},
            ))  # fmt: skip
        elif rule.mode is Mode.DRY_RUN:
            records.append(audit.pending(
                AuditEvent.DRY_RUN, remediation=remediation, actor="policy", detail=plan.detail()
            ))  # fmt: skip
        if not await self.store.create(remediation, outbox=records):
            # this incident has its remediation already (a copy, or a re-send)
            return await self._again(remediation.id, rule if target is not None else None)
        self._count(remediation)
        written = await self._deliver(records, strict=True)  # raises: the request comes again
        if rule.mode is Mode.AUTO and target is not None:
            if requested.id not in written:
                return None  # a redelivery or the check wrote it first, and starts the run
            return await self._execute(remediation, rule, auto=True, actor="policy")
        return remediation

    async def _again(self, remediation_id_: str, rule: Rule | None) -> Remediation | None:
        """A request for an existing remediation: write its waiting audit records, and run it
        if it is an auto run that was never started (its start record was still waiting), or
        retry it if its refusal has passed (`rule`: None when there is no target)."""
        current = await self.store.get(remediation_id_)
        if current is None:
            return None
        events = (
            AuditEvent.REQUESTED, AuditEvent.RETRIED, AuditEvent.APPROVAL_REQUESTED,
            AuditEvent.DRY_RUN, AuditEvent.APPROVED, AuditEvent.REJECTED, AuditEvent.EXPIRED,
            AuditEvent.CANCELLED, AuditEvent.RESULT,
        )  # fmt: skip
        ids = {
            known
            for attempt in range(1, current.attempts + 1)
            for event in events
            if (known := record_id(event, current.model_copy(update={"attempts": attempt})))
        }
        # records whose write failed, or whose writer is gone (older than the grace): not
        # those a concurrent handler is writing right now
        now = self._clock.now()
        waiting = [
            pending
            for pending in await self.store.outbox(sorted(ids))
            if pending.failed or now - parse_ns(pending.at) / _NS >= _OUTBOX_GRACE
        ]
        written = await self._deliver(waiting, strict=True)
        if rule is None or current.mode != Mode.AUTO.value:
            return None
        if current.state is RemediationState.RUNNING and _start_id(current) in written:
            return await self._start_late(current, rule)
        return await self._retry(remediation_id_, rule)

    async def _start_late(self, remediation: Remediation, rule: Rule) -> Remediation | None:
        """Run an auto remediation whose start record was written late (by a repair)."""
        try:  # a fresh updatedAt: the check must not take it for an interrupted run
            remediation = await self.store.change(remediation, RemediationState.RUNNING)
        except Conflict:
            return None
        return await self._execute(remediation, rule, auto=True, actor="policy")

    async def _deliver(self, records: Sequence[PendingRecord], *, strict: bool) -> set[str]:
        """Write outbox records in order and remove them; the ids this call removed.

        A failed write raises if `strict`; otherwise it is logged and it and the records after
        it stay in the outbox for the repair (a redelivery, the check).
        """
        removed: set[str] = set()
        for i, pending in enumerate(records):
            try:
                await self.audit.write(pending)
            except Exception:
                with contextlib.suppress(Exception):  # a hint only: the grace covers it
                    for left in records[i:]:
                        await self.store.defer(left)
                if strict:
                    raise
                _log.warning(
                    "audit_deferred", remediation=pending.remediation.id,
                    audit_event=pending.event.value, exc_info=True,
                )  # fmt: skip
                break
            if await self.store.written(pending.id):
                removed.add(pending.id)
        return removed

    async def _retry(self, remediation_id_: str, rule: Rule) -> Remediation | None:
        """Run a refused auto remediation again if its refusal has passed; None if not."""
        remediation = await self.store.get(remediation_id_)
        if (
            remediation is None
            or remediation.mode != Mode.AUTO.value
            or remediation.state is not RemediationState.REFUSED
            or remediation.refusal not in _TRANSIENT
            or remediation.attempts >= self._max_attempts
            or not await self.store.still_firing(remediation.fingerprint)
        ):
            return None
        previous = remediation.refusal
        attempt = remediation.attempts + 1
        retried = self.audit.pending(
            AuditEvent.RETRIED, remediation=remediation.model_copy(update={"attempts": attempt}),
            actor="tocsin", detail={"previous_reason": previous, "attempt": attempt},
        )  # fmt: skip
        try:
            remediation = await self.store.retry(remediation, outbox=[retried])
        except Conflict:
            return None  # another replica retries it (or did, and it was refused again)
        self._count(remediation)
        if retried.id not in await self._deliver([retried], strict=True):
            return None  # a redelivery or the check wrote it first, and starts the run
        return await self._execute(remediation, rule, auto=True, actor="policy")

    async def _execute(
        self, remediation: Remediation, rule: Rule, *, auto: bool, actor: str
    ) -> Remediation:
        audit = self.audit
        plan = self.executor.plan(rule, remediation.target)

        async def started() -> None:
            await audit.record(
                AuditEvent.STARTED, remediation=remediation, actor=actor,
                detail={"auto": auto, **plan.detail()},
            )  # fmt: skip

        async def still_firing() -> bool:
            return await self.store.still_firing(remediation.fingerprint)

        log = _log.bind(remediation=remediation.id, rule=rule.name, target=remediation.target)
        outcome = await self.executor.run(
            rule, remediation.target, auto=auto, still_firing=still_firing, on_start=started
        )
        log.info("remediation_outcome", status=outcome.status)
        state = _STATE_OF[outcome.status]
        result = outcome.result.model_dump(mode="json") if isinstance(outcome, Done) else None
        refusal = outcome.reason.value if isinstance(outcome, Refused) else None
        remediation = await self._move(
            remediation, state, AuditEvent.RESULT, _result_detail(outcome), strict=True,
            detail=_describe(outcome), result=result, refusal=refusal,
        )  # fmt: skip
        if isinstance(outcome, Refused) and outcome.reason is RefusalReason.RATE_LIMITED:
            await self._circuit_opened(outcome, remediation)
        if isinstance(outcome, Done):
            verification = verify(outcome.result)
            await audit.record(
                AuditEvent.VERIFIED, remediation=remediation, actor="tocsin",
                detail=verification.detail(),
            )  # fmt: skip
        return remediation

    async def _circuit_opened(self, outcome: Refused, remediation: Remediation) -> None:
        assert self._alarm is not None
        labels = await self._alarm.raise_once(outcome.detail, outcome.scope or "global")
        if labels is None:
            return  # opened before: its alert is up already
        self._circuit_open.set(1)
        _log.warning("circuit_opened", reason=outcome.detail)
        await self.audit.record(
            AuditEvent.CIRCUIT_OPENED, remediation=remediation, actor="tocsin",
            detail={"reason": outcome.detail, "scope": outcome.scope, "alert": labels},
        )  # fmt: skip

    async def _cancel(self, fingerprint: str) -> None:
        for remediation_id_ in await self.store.pending_ids(fingerprint):
            remediation = await self.store.get(remediation_id_)
            if remediation is None or remediation.state is not RemediationState.PENDING:
                continue
            with contextlib.suppress(Conflict):  # decided meanwhile: nothing to cancel
                await self._move(
                    remediation, RemediationState.CANCELLED, AuditEvent.CANCELLED,
                    {"reason": "alert resolved"}, detail="the alert resolved",
                )  # fmt: skip

    # -- decisions --------------------------------------------------------------------------

    async def _pending(self, remediation_id_: str) -> Remediation:
        remediation = await self.store.get(remediation_id_)
        if remediation is None:
            raise NotFound(remediation_id_)
        if remediation.state is not RemediationState.PENDING:
            raise Conflict(
                remediation.id,
                remediation.state,
                f"remediation {remediation.id} is {remediation.state.value}, not pending",
            )
        assert remediation.expiresAt is not None
        if parse_ns(remediation.expiresAt) <= int(self._clock.now() * _NS):
            with contextlib.suppress(Conflict):
                await self._expire(remediation)
            raise Conflict(
                remediation.id,
                RemediationState.EXPIRED,
                f"remediation {remediation.id} expired at {remediation.expiresAt}",
            )
        return remediation

    async def approve(self, remediation_id_: str, actor: str, comment: str = "") -> Remediation:
        """Approve a pending remediation and start its action (NotFound, Conflict)."""
        remediation = await self._pending(remediation_id_)
        rule = self.executor.rule(remediation.rule)
        # the decision stands even if its record is not written yet (the check writes it)
        remediation = await self._move(
            remediation, RemediationState.RUNNING, AuditEvent.APPROVED, {"comment": comment},
            actor=actor, decidedBy=actor, detail=comment,
        )  # fmt: skip
        if rule is None:
            detail = f"rule {remediation.rule} is no longer in the policy"
            return await self._move(
                remediation, RemediationState.REFUSED, AuditEvent.RESULT,
                {"status": "refused", "reason": "no_rule", "detail": detail}, detail=detail,
            )  # fmt: skip
        run = asyncio.create_task(
            self._run_approved(remediation, rule, actor), name=f"remediation-{remediation.id}"
        )
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)
        return remediation

    async def _run_approved(self, remediation: Remediation, rule: Rule, actor: str) -> Remediation:
        try:
            return await self._execute(remediation, rule, auto=False, actor=actor)
        except Exception:
            _log.exception("approved_run_failed", remediation=remediation.id)
            raise

    async def wait_runs(self) -> None:
        """Wait for the approved runs in flight (tests, shutdown)."""
        while self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)

    async def reject(self, remediation_id_: str, actor: str, comment: str = "") -> Remediation:
        """Reject a pending remediation (NotFound, Conflict)."""
        remediation = await self._pending(remediation_id_)
        return await self._move(  # it stands; the check writes its record if need be
            remediation, RemediationState.REJECTED, AuditEvent.REJECTED, {"comment": comment},
            actor=actor, decidedBy=actor, detail=comment,
        )  # fmt: skip

    async def circuit(self) -> CircuitState | None:
        """The open circuit, or None."""
        return await self.envelope.circuit()

    async def reset_circuit(self, actor: str) -> CircuitState | None:
        """Close the circuit, resolve its alert; the state it had (None: it was closed)."""
        assert self._alarm is not None
        state = await self.envelope.circuit()
        await self.envelope.reset_circuit()
        await self._alarm.resolve()
        self._circuit_open.set(0)
        if state is not None:
            await self.audit.record(
                AuditEvent.CIRCUIT_RESET, actor=actor,
                detail={"reason": state.reason, "openedAt": _rfc3339(state.opened_at)},
            )  # fmt: skip
        return state

    # -- periodic checks --------------------------------------------------------------------

    async def _expire(self, remediation: Remediation) -> None:
        await self._move(
            remediation, RemediationState.EXPIRED, AuditEvent.EXPIRED,
            {"expiredAt": _rfc3339(self._clock.now())}, detail="no decision before the expiry",
        )  # fmt: skip

    async def check(self) -> None:
        """One pass: expire approvals, revert what is due, keep the circuit alert, tidy up."""
        for remediation_id_ in await self.store.due_expiries():
            remediation = await self.store.get(remediation_id_)
            if remediation is not None and remediation.state is RemediationState.PENDING:
                with contextlib.suppress(Conflict):  # approved or expired by another replica
                    await self._expire(remediation)
            else:  # the record expired away or left pending elsewhere: stop looking at it
                await self.store.forget_expiry(remediation_id_)
        token = secrets.token_hex(8)
        interval_ms = int(self._settings.remediation.check_interval * 1000)
        if await self._redis.set(self._check_lock, token, nx=True, px=max(interval_ms, 1000)):
            for reverted in await self.executor.revert_due():
                await self.audit.record(
                    AuditEvent.REVERTED, actor="tocsin", target=reverted.target,
                    detail={"kind": type(reverted).__name__, **_fields(reverted)},
                )  # fmt: skip
            await self._repair_outbox()
            await self._fail_interrupted()
            await self.store.trim()
        circuit = await self.envelope.circuit()
        self._circuit_open.set(0 if circuit is None else 1)
        if self._alarm is not None:
            if circuit is not None:
                await self._alarm.keep_alive()
            else:  # closed some other way (another replica, the envelope): resolve its alert
                await self._alarm.resolve()
        self._pending_gauge.set(await self.store.count(RemediationState.PENDING))

    async def _repair_outbox(self) -> None:
        """Write the outbox records older than `_OUTBOX_GRACE` (their writer failed or died);
        start the auto runs whose start record this removes. Stops at the first failed write."""
        now = self._clock.now()
        for pending in await self.store.outbox():
            if now - parse_ns(pending.at) / _NS < _OUTBOX_GRACE:
                continue
            try:
                written = await self._deliver([pending], strict=True)
            except Exception:  # noqa: BLE001 - Kafka still away: the next check tries again
                _log.warning("audit_repair_failed", remediation=pending.remediation.id,
                             exc_info=True)  # fmt: skip
                return
            _log.info("audit_repaired", remediation=pending.remediation.id,
                      audit_event=pending.event.value)  # fmt: skip
            if pending.id not in written or pending.id != _start_id(pending.remediation):
                continue
            current = await self.store.get(pending.remediation.id)
            rule = self.executor.rule(pending.remediation.rule)
            if (
                current is None
                or rule is None
                or current.mode != Mode.AUTO.value
                or current.state is not RemediationState.RUNNING
                or current.attempts != pending.remediation.attempts
            ):
                continue
            try:  # now, not in the task: the interrupted-run check comes next
                current = await self.store.change(current, RemediationState.RUNNING)
            except Conflict:
                continue
            run = asyncio.create_task(
                self._execute(current, rule, auto=True, actor="policy"),
                name=f"remediation-{current.id}",
            )
            self._runs.add(run)
            run.add_done_callback(self._runs.discard)

    async def _fail_interrupted(self) -> None:
        """Close runs whose process stopped mid-way (well past their timeout, no result).

        An auto run whose start record still waits in the outbox never started: it is left for
        the repair, which starts it.
        """
        now = self._clock.now()
        for remediation in await self.store.find(RemediationState.RUNNING):
            rule = self.executor.rule(remediation.rule)
            timeout = rule.limits.timeout if rule is not None else 0.0
            if now - parse_ns(remediation.updatedAt) / _NS < timeout + _INTERRUPTED_AFTER:
                continue
            if (
                rule is not None
                and remediation.mode == Mode.AUTO.value
                and await self.store.in_outbox(_start_id(remediation))
            ):
                continue
            detail = "interrupted: no result was recorded (its process stopped)"
            with contextlib.suppress(Conflict):  # it finished meanwhile
                await self._move(
                    remediation, RemediationState.FAILED, AuditEvent.RESULT,
                    {"status": "failed", "error": detail}, strict=True, detail=detail,
                )  # fmt: skip

    async def _check_loop(self) -> None:
        interval = self._settings.remediation.check_interval
        while not self._stopping.is_set():
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - log, keep the loop alive
                _log.exception("check_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)

    async def _move(
        self,
        remediation: Remediation,
        state: RemediationState,
        event: AuditEvent,
        audit_detail: dict[str, Any],
        *,
        actor: str = "tocsin",
        strict: bool = False,
        **changes: Any,
    ) -> Remediation:
        """Move `remediation` to `state` with its audit record stored in the same write (Conflict
        if it moved first), count it, then write the record (`_deliver`, `strict` as there)."""
        record = self.audit.pending(
            event, remediation=remediation, actor=actor, detail=audit_detail
        )
        remediation = await self.store.change(remediation, state, outbox=[record], **changes)
        self._count(remediation)
        await self._deliver([record], strict=strict)
        return remediation

    def _count(self, remediation: Remediation) -> None:
        self._remediations.labels(remediation.action, remediation.state.value).inc()


def _start_id(remediation: Remediation) -> str:
    """The id of the record that starts an auto run: `requested`, or `retried` for a retry."""
    event = AuditEvent.REQUESTED if remediation.attempts <= 1 else AuditEvent.RETRIED
    known = record_id(event, remediation)
    assert known is not None
    return known


def _rfc3339(seconds: float) -> str:
    return format_ns(int(seconds * _NS))


def _fields(value: Reverted | RevertedPool) -> dict[str, Any]:
    return dataclasses.asdict(value)


def _describe(outcome: Outcome) -> str:
    if isinstance(outcome, Done):
        return "done"
    if isinstance(outcome, Failed):
        return outcome.error
    if isinstance(outcome, Refused):
        return f"{outcome.reason.value}: {outcome.detail}"
    return f"timed out after {outcome.timeout:g}s"


def _result_detail(outcome: Outcome) -> dict[str, Any]:
    if isinstance(outcome, Done):
        return {"status": "done", "result": outcome.result.model_dump(mode="json")}
    if isinstance(outcome, Failed):
        return {"status": "failed", "error": outcome.error}
    if isinstance(outcome, Refused):
        return {"status": "refused", "reason": outcome.reason.value, "detail": outcome.detail}
    return {"status": "timed_out", "timeout": outcome.timeout}
