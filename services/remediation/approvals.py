"""Remediations in Redis, shared by every replica: records, state index, expiries, pending hints.

Under the Redis key prefix `P` (`router.redis_prefix`):

- `P remediation:r:<id>`: a hash, `state` and `json` (the `Remediation`); terminal ones expire
  after the retention;
- `P remediation:state:<state>`: a sorted set of ids per state, scored by creation time;
- `P remediation:expiry`: a sorted set of the pending ids, scored by their approval deadline;
- `pending_index_key(P, fingerprint)`: a hash, id -> `PendingHint` JSON, for the notifiers;
- `P remediation:alert:<fingerprint>`: the alert's latest status and end, for the envelope's
  "still firing" precondition;
- `P remediation:audit-outbox`: a hash, audit record id -> `PendingRecord` JSON: the records a
  creation or state change implies, written in the same script as the change and removed once
  Kafka acknowledged them (see `services.remediation.audit`).

The id is derived from (rule, fingerprint, startsAt), so a redelivered request or a re-sent
alert finds its remediation instead of creating another. Creation and every state change are
Lua scripts: a change applies only from the state the caller read (a retry: and the attempts it
read), and moves the indexes with it, so two replicas (or two approvers) can never both win.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from schemas.remediation_flow import (
    AuditEvent,
    PendingHint,
    Remediation,
    RemediationRequest,
    RemediationState,
    pending_index_key,
)
from schemas.timefmt import format_ns, parse_ns
from services.remediation.audit import PendingRecord
from services.remediation.clock import Clock

__all__ = ["TERMINAL", "Conflict", "NotFound", "RemediationStore", "remediation_id"]

#: States a remediation never leaves.
TERMINAL = frozenset(RemediationState) - {RemediationState.PENDING, RemediationState.RUNNING}

_NS = 1_000_000_000
_DAY = 86_400.0

# Appended to both scripts: the outbox is their last key, its entries (id, json) the arguments
# after their own. Written only when the change applies.
_OUTBOX = """
local function outbox(first)
    for i = first, #ARGV, 2 do
        redis.call('HSET', KEYS[#KEYS], ARGV[i], ARGV[i + 1])
    end
end
"""

# KEYS: record, state index, expiry set, pending index, outbox; ARGV: id, state, json, created
# score, expiry score ('' when not pending), hint json, pending index ttl ms, record ttl ms
# (0: none), outbox entries.
_CREATE = (
    _OUTBOX
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'json', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
if ARGV[5] ~= '' then
    redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
    redis.call('HSET', KEYS[4], ARGV[1], ARGV[6])
    redis.call('PEXPIRE', KEYS[4], ARGV[7])
end
if tonumber(ARGV[8]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[8])
end
outbox(9)
return 1
"""
)

# KEYS: record, old state index, new state index, expiry set, pending index, outbox;
# ARGV: id, expected state, new state, json, created score, record ttl ms (0: none, and a
# terminal record's expiry is removed), expected attempts ('': any), outbox entries.
# Returns 1 when applied, the current state when it is not the expected one, nil when absent,
# 0 when the state is the expected one but its attempts are not (retried and refused meanwhile).
# KEYS: outbox; ARGV: id, json. Replaces an entry only if it is still there.
_DEFER = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
return 1
"""

_TRANSITION = (
    _OUTBOX
    + """
local current = redis.call('HGET', KEYS[1], 'state')
if not current then
    return nil
end
if current ~= ARGV[2] then
    return current
end
if ARGV[7] ~= '' then
    local stored = cjson.decode(redis.call('HGET', KEYS[1], 'json'))
    if tostring(stored['attempts'] or 1) ~= ARGV[7] then
        return 0
    end
end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'json', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
if ARGV[3] ~= 'pending' then
    redis.call('ZREM', KEYS[4], ARGV[1])
    redis.call('HDEL', KEYS[5], ARGV[1])
end
if tonumber(ARGV[6]) > 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[6])
else
    redis.call('PERSIST', KEYS[1])
end
outbox(8)
return 1
"""
)


class Conflict(Exception):
    """A state change that does not apply: the remediation is not in the state it needs."""

    def __init__(self, remediation_id: str, state: RemediationState | None, message: str) -> None:
        super().__init__(message)
        self.remediation_id = remediation_id
        self.state = state
        self.message = message


class NotFound(LookupError):
    """No remediation has that id (never created, or past its retention)."""

    def __init__(self, remediation_id: str) -> None:
        super().__init__(f"remediation {remediation_id} not found")
        self.remediation_id = remediation_id


def remediation_id(rule: str, fingerprint: str, starts_at: str) -> str:
    """The stable id of one incident's remediation by one rule (24 hex digits).

    `startsAt` is normalised (to UTC nanoseconds), so the same instant written differently by
    another sender still names the same incident.
    """
    try:
        starts = str(parse_ns(starts_at))
    except ValueError:
        starts = starts_at
    digest = hashlib.sha256(f"{rule}\x00{fingerprint}\x00{starts}".encode()).hexdigest()
    return digest[:24]


def _entries(outbox: Sequence[PendingRecord]) -> list[str]:
    return [part for pending in outbox for part in (pending.id, pending.model_dump_json())]


def _seconds(rfc3339: str) -> float:
    return parse_ns(rfc3339) / _NS


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RemediationStore:
    """Remediations and their indexes in Redis (see the module docstring for the keys)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        clock: Clock,
        prefix: str = "tocsin:",
        retention: float = 7 * _DAY,
    ) -> None:
        self._redis = redis
        self._clock = clock
        self.prefix = prefix
        self._base = f"{prefix}remediation:"
        self._retention_ms = int(retention * 1000)
        self.retention = retention
        self._create = redis.register_script(_CREATE)
        self._transition = redis.register_script(_TRANSITION)
        self._defer = redis.register_script(_DEFER)

    # -- keys -------------------------------------------------------------------------------

    def _record(self, remediation_id: str) -> str:
        return f"{self._base}r:{remediation_id}"

    def _index(self, state: RemediationState) -> str:
        return f"{self._base}state:{state.value}"

    @property
    def _expiry(self) -> str:
        return f"{self._base}expiry"

    @property
    def _outbox(self) -> str:
        return f"{self._base}audit-outbox"

    def _alert(self, fingerprint: str) -> str:
        return f"{self._base}alert:{fingerprint}"

    def now_text(self) -> str:
        """The clock's now as RFC 3339."""
        return format_ns(int(self._clock.now() * _NS))

    # -- remediations -----------------------------------------------------------------------

    async def create(self, remediation: Remediation, outbox: Sequence[PendingRecord] = ()) -> bool:
        """Store a new remediation with its indexes and `outbox`; False when its id exists."""
        pending = remediation.state is RemediationState.PENDING
        expiry = ""
        hint = ""
        if pending:
            if remediation.expiresAt is None:
                raise ValueError("a pending remediation needs expiresAt")
            expiry = repr(_seconds(remediation.expiresAt))
            hint = PendingHint(
                id=remediation.id,
                rule=remediation.rule,
                action=remediation.action,
                target=remediation.target,
                expiresAt=remediation.expiresAt,
            ).model_dump_json()
        ttl = max(0.0, float(expiry or 0) - self._clock.now()) + _DAY if pending else 0.0
        created = await self._create(
            keys=[
                self._record(remediation.id),
                self._index(remediation.state),
                self._expiry,
                pending_index_key(self.prefix, remediation.fingerprint),
                self._outbox,
            ],
            args=[
                remediation.id,
                remediation.state.value,
                remediation.model_dump_json(),
                repr(_seconds(remediation.createdAt)),
                expiry,
                hint,
                int(ttl * 1000),
                self._retention_ms if remediation.state in TERMINAL else 0,
                *_entries(outbox),
            ],
        )
        return bool(created)

    async def get(self, remediation_id: str) -> Remediation | None:
        """One remediation by id, or None."""
        raw = await self._redis.hget(self._record(remediation_id), "json")
        return None if raw is None else Remediation.model_validate_json(raw)

    async def change(
        self,
        remediation: Remediation,
        state: RemediationState,
        *,
        outbox: Sequence[PendingRecord] = (),
        **changes: Any,
    ) -> Remediation:
        """Move `remediation` (as read) to `state`, with `changes`; Conflict if it moved first.

        `outbox`: the audit records the change implies, stored with it (only if it applies).
        """
        return await self._change(remediation, state, "", changes, outbox)

    async def retry(
        self, remediation: Remediation, outbox: Sequence[PendingRecord] = ()
    ) -> Remediation:
        """Move a refused remediation (as read) back to running, as its next attempt.

        Conflict unless it is still refused with the attempts it was read with: of the replicas
        handling re-sends of its alert at once, one wins, and a retry that was refused again
        meanwhile is not retried a second time by a reader that saw the earlier refusal.
        """
        if remediation.state is not RemediationState.REFUSED:
            raise ValueError("only a refused remediation is retried")
        changes = {"attempts": remediation.attempts + 1, "detail": "", "refusal": None}
        return await self._change(
            remediation, RemediationState.RUNNING, str(remediation.attempts), changes, outbox
        )

    async def _change(
        self,
        remediation: Remediation,
        state: RemediationState,
        attempts: str,
        changes: dict[str, Any],
        outbox: Sequence[PendingRecord] = (),
    ) -> Remediation:
        updated = remediation.model_copy(
            update={"state": state, "updatedAt": self.now_text(), **changes}
        )
        if state is not RemediationState.PENDING:
            updated = updated.model_copy(update={"expiresAt": None})
        # model_copy skips validation: round-trip once so a bad change fails here, not on read
        updated = Remediation.model_validate(updated.model_dump())
        answer = await self._transition(
            keys=[
                self._record(remediation.id),
                self._index(remediation.state),
                self._index(state),
                self._expiry,
                pending_index_key(self.prefix, remediation.fingerprint),
                self._outbox,
            ],
            args=[
                remediation.id,
                remediation.state.value,
                state.value,
                updated.model_dump_json(),
                repr(_seconds(remediation.createdAt)),
                self._retention_ms if state in TERMINAL else 0,
                attempts,
                *_entries(outbox),
            ],
        )
        if answer is None:
            raise Conflict(remediation.id, None, f"remediation {remediation.id} not found")
        if answer == 0:
            raise Conflict(
                remediation.id,
                remediation.state,
                f"remediation {remediation.id} was retried meanwhile",
            )
        if answer != 1:
            current = RemediationState(_text(answer))
            raise Conflict(
                remediation.id,
                current,
                f"remediation {remediation.id} is {current.value}, not {remediation.state.value}",
            )
        return updated

    async def find(
        self, state: RemediationState | None = None, limit: int = 500
    ) -> list[Remediation]:
        """Remediations (of one state, or all), newest first, at most `limit`."""
        states: Sequence[RemediationState] = (
            [state] if state is not None else list(RemediationState)
        )
        ids: list[tuple[float, str]] = []
        for one in states:
            found = await self._redis.zrevrange(self._index(one), 0, limit - 1, withscores=True)
            ids += [(float(pair[1]), _text(pair[0])) for pair in found]
        ids.sort(reverse=True)
        ids = ids[:limit]
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, remediation_id in ids:
                pipe.hget(self._record(remediation_id), "json")
            raws = await pipe.execute()
        return [Remediation.model_validate_json(raw) for raw in raws if raw is not None]

    async def count(self, state: RemediationState) -> int:
        """How many remediations are in `state`."""
        return int(await self._redis.zcard(self._index(state)))

    async def pending_ids(self, fingerprint: str) -> list[str]:
        """The ids of the pending remediations of one alert."""
        ids = await self._redis.hkeys(pending_index_key(self.prefix, fingerprint))
        return sorted(_text(i) for i in ids)

    async def due_expiries(self) -> list[str]:
        """The pending ids whose approval deadline has passed."""
        due = await self._redis.zrangebyscore(self._expiry, "-inf", self._clock.now())
        return [_text(i) for i in due]

    async def forget_expiry(self, remediation_id: str) -> None:
        """Drop an id from the expiry set (its record is gone or no longer pending)."""
        await self._redis.zrem(self._expiry, remediation_id)

    async def trim(self) -> None:
        """Drop index entries of terminal remediations older than the retention."""
        cutoff = self._clock.now() - self.retention
        async with self._redis.pipeline(transaction=False) as pipe:
            for state in TERMINAL:
                pipe.zremrangebyscore(self._index(state), "-inf", cutoff)
            await pipe.execute()

    # -- audit outbox ----------------------------------------------------------------------

    async def outbox(self, ids: Sequence[str] | None = None) -> list[PendingRecord]:
        """The outbox records (those of `ids`, or all), oldest first."""
        if ids is None:
            raws = list((await self._redis.hgetall(self._outbox)).values())
        elif ids:
            raws = [raw for raw in await self._redis.hmget(self._outbox, list(ids)) if raw]
        else:
            raws = []
        found = [PendingRecord.model_validate_json(raw) for raw in raws]
        order = list(AuditEvent)
        return sorted(found, key=lambda p: (parse_ns(p.at), order.index(p.event)))

    async def written(self, record_id: str) -> bool:
        """Remove a written record from the outbox; False if another writer removed it first."""
        return bool(await self._redis.hdel(self._outbox, record_id))

    async def defer(self, pending: PendingRecord) -> None:
        """Mark an outbox record whose write failed (if it is still there)."""
        failed = pending.model_copy(update={"failed": True})
        await self._defer(keys=[self._outbox], args=[pending.id, failed.model_dump_json()])

    async def in_outbox(self, record_id: str) -> bool:
        """Whether a record is still waiting in the outbox."""
        return bool(await self._redis.hexists(self._outbox, record_id))

    # -- alert status -----------------------------------------------------------------------

    async def record_alert(self, request: RemediationRequest) -> None:
        """Remember the alert's latest status and end (kept a day past its end)."""
        ends_ns = parse_ns(request.endsAt)
        ttl = max(0.0, ends_ns / _NS - self._clock.now()) + _DAY
        key = self._alert(request.fingerprint)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"status": request.status, "ends": str(ends_ns)})
            pipe.pexpire(key, int(ttl * 1000))
            await pipe.execute()

    async def still_firing(self, fingerprint: str) -> bool:
        """Whether the alert's latest update was firing and its end is still ahead."""
        raw = await self._redis.hgetall(self._alert(fingerprint))
        fields = {_text(k): _text(v) for k, v in raw.items()}
        if fields.get("status") != "firing":
            return False
        return int(fields.get("ends", "0")) > int(self._clock.now() * _NS)
