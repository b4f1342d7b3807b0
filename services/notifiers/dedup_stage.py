"""Dedup stage: claim the notification before sending, skip what was already delivered.

Two checks, both in Redis. The idempotency key (the same for every router replica that flushed
the same tick) is claimed with SET NX for `claim_ttl`: a redelivered copy finds it "sent" and is
skipped; one whose sender died finds the claim expired and sends. The delivered notification
log then applies Alertmanager's dedup rule, so an unchanged group is not sent again before
repeat_interval even if the router published it twice.

Per consumed batch the claims and log reads of all its messages are one script call
(`admit_many`); the writes after the sends (log entry, claim marked sent) are queued by each
message and written together, one script call per round, each message waiting for its own
(`delivered`). A message whose claim another worker holds takes the one-at-a-time path
(`admit`), which waits that claim out.

What remains: a sender that dies after the provider accepted the message but before marking it
sent leaves a claim that expires, and the copy is sent again: at most one duplicate per
notification the dead worker had in flight (its per-receiver concurrency, plus the sends whose
marks were queued), each carrying the same idempotency key. No provider API offers a way to
close that window for every channel (PagerDuty's dedup_key does close it for PagerDuty).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence

from redis.commands.core import AsyncScript

from schemas.nflog import NflogEntry, needs_update, new_entry, nflog_key
from services.notifiers.job import Job
from services.runtime.nflog import RedisNflog
from services.runtime.redis import RedisClient

__all__ = ["DedupStage"]

_SENT = b"sent"
_SENT_TTL_MS = 48 * 3600 * 1000
_MAX_WRITES = 2000  # keys per write script call

# KEYS: claim 1, log 1, claim 2, log 2, ...; ARGV: claim ms, token 1, token 2, ...
# Per message: the claim's holder (nil when this call took it) and the log entry.
_ADMIT = """
local out = {}
for i = 1, #KEYS / 2 do
  local claim = KEYS[2 * i - 1]
  local holder = false
  if not redis.call('SET', claim, ARGV[i + 1], 'NX', 'PX', ARGV[1]) then
    holder = redis.call('GET', claim)
  end
  out[2 * i - 1] = holder
  out[2 * i] = redis.call('GET', KEYS[2 * i])
end
return out
"""
# KEYS: k 1, k 2, ...; ARGV: value 1, PX|PXAT, ms 1, value 2, ...
_WRITE = """
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i])
end
return #KEYS
"""

_Write = tuple[str, bytes, str, int]  # key, value, "PX" | "PXAT", milliseconds


class _GroupWriter:
    """SETs queued by many tasks, written one script call per round: whatever was queued while
    the previous call ran goes in the next. A caller's writes are done when its await returns;
    a failed call raises in every caller it carried (each retries its own)."""

    def __init__(self, script: AsyncScript) -> None:
        self._script = script
        self._queue: list[tuple[Sequence[_Write], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, writes: Sequence[_Write]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((writes, done))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="dedup-writes")
        await done

    async def _drain(self) -> None:
        try:
            while self._queue:
                taken, count = 0, 0
                while taken < len(self._queue) and count < _MAX_WRITES:
                    count += len(self._queue[taken][0])
                    taken += 1
                batch, self._queue = self._queue[:taken], self._queue[taken:]
                keys: list[str] = []
                args: list[bytes | str | int] = []
                for writes, _ in batch:
                    for key, value, unit, ms in writes:
                        keys.append(key)
                        args += (value, unit, ms)
                try:
                    await self._script(keys=keys, args=args)
                except Exception as exc:  # noqa: BLE001 - handed to every waiter, who retries
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._task = None


class DedupStage:
    """Claims, checks and finally records a notification's delivery."""

    def __init__(
        self, redis: RedisClient, nflog: RedisNflog, claim_ttl: float, prefix: str
    ) -> None:
        self._redis = redis
        self._nflog = nflog
        self._claim_ms = int(claim_ttl * 1000)
        self._prefix = f"{prefix}notify:claim:"
        self._admit_script = redis.register_script(_ADMIT)
        self._writes = _GroupWriter(redis.register_script(_WRITE))

    def _claim_key(self, job: Job) -> str:
        digest = hashlib.sha1(job.notification.idempotencyKey.encode(), usedforsecurity=False)
        return self._prefix + digest.hexdigest()

    @staticmethod
    def _log_key(job: Job) -> str:
        n = job.notification
        kind, _, index = n.integration.partition("[")
        return nflog_key(n.groupKey, n.receiver, kind, int(index.rstrip("]") or 0))

    @staticmethod
    def _token(job: Job) -> bytes:
        token: str | None = job.extra.get("claim")
        if token is None:  # not setdefault: that would make a uuid4 on every call
            token = job.extra["claim"] = uuid.uuid4().hex
        return token.encode()

    @staticmethod
    def _due(job: Job, entry: NflogEntry | None, now_ns: int) -> bool:
        """Alertmanager's rule against the delivered log; sets the outcome when not due."""
        n = job.notification
        if entry is None and n.firingHashes:
            return True  # the common case: never delivered
        firing = {int(h) for h in n.firingHashes}
        resolved = {int(h) for h in n.resolvedHashes}
        if entry is not None and not needs_update(
            entry, firing, resolved, n.sendResolved, n.repeatInterval, now_ns
        ):
            job.outcome = "deduplicated"
            return False
        return True

    async def admit(self, job: Job, now_ns: int) -> bool:
        """True when this worker should send; sets `job.outcome` when it should not.

        A claim held by another worker is waited on, never taken as delivered: that worker may
        have died before sending (its partition then comes here, its claim still running), so
        the copy is sent once the claim is marked sent (skip) or expires (send)."""
        key = self._claim_key(job)
        token = self._token(job)
        while not await self._redis.set(key, token, nx=True, px=self._claim_ms):
            holder = await self._redis.get(key)
            if holder == _SENT:
                job.outcome = "duplicate"
                return False
            if holder == token:
                break  # our own claim, from an attempt that failed before sending
            if holder is not None:
                wait = await self._redis.pttl(key)
                await asyncio.sleep(min(max(wait, 50), 1000) / 1000)
        log_key = self._log_key(job)
        entry = (await self._nflog.get_many([log_key], now_ns)).get(log_key)
        if not self._due(job, entry, now_ns):
            await self._redis.set(key, _SENT, px=_SENT_TTL_MS)
            return False
        return True

    async def admit_many(self, jobs: Sequence[Job], now_ns: int) -> list[bool | None]:
        """`admit` for a batch in one script call: per job True (send), False (not: outcome
        set, as `admit`), or None when another worker holds its claim (use `admit`, which
        waits)."""
        if not jobs:
            return []
        keys: list[str] = []
        args: list[bytes | int] = [self._claim_ms]
        tokens = []
        for job in jobs:
            keys += (self._claim_key(job), self._nflog.redis_key(self._log_key(job)))
            token = self._token(job)
            tokens.append(token)
            args.append(token)
        found = await self._admit_script(keys=keys, args=args)
        decisions: list[bool | None] = []
        skipped: list[_Write] = []
        for i, job in enumerate(jobs):
            holder = found[2 * i]
            if holder == _SENT:
                job.outcome = "duplicate"
                decisions.append(False)
            elif holder is not None and holder != tokens[i]:
                decisions.append(None)
            elif self._due(job, self._nflog.decode(found[2 * i + 1], now_ns), now_ns):
                decisions.append(True)
            else:
                decisions.append(False)
                skipped.append((keys[2 * i], _SENT, "PX", _SENT_TTL_MS))
        if skipped:
            await self._writes.write(skipped)
        return decisions

    async def delivered(self, job: Job, now_ns: int) -> None:
        """After a successful send: write the delivered log and mark it sent (batched with the
        other messages' marks; done when this returns)."""
        n = job.notification
        entry = new_entry(
            {int(h) for h in n.firingHashes},
            {int(h) for h in n.resolvedHashes},
            now_ns,
            n.repeatInterval,
        )
        value, pxat = self._nflog.encode(entry)
        await self._writes.write(
            [
                (self._nflog.redis_key(self._log_key(job)), value, "PXAT", pxat),
                (self._claim_key(job), _SENT, "PX", _SENT_TTL_MS),
            ]
        )

    async def release(self, job: Job) -> None:
        """After giving up (dead-lettered): free the claim so a redrive can send it."""
        await self._redis.delete(self._claim_key(job))
