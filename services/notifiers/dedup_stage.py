"""Dedup stage: claim the notification before sending, skip what was already delivered.

Two checks, both in Redis. The idempotency key (the same for every router replica that flushed
the same tick) is claimed with SET NX for `claim_ttl`: a redelivered copy finds it "sent" and is
skipped; one whose sender died finds the claim expired and sends. The delivered notification
log then applies Alertmanager's dedup rule, so an unchanged group is not sent again before
repeat_interval even if the router published it twice.

What remains: a sender that dies after the provider accepted the message but before marking it
sent leaves a claim that expires, and the copy is sent again: at most one duplicate per
notification the dead worker had in flight (its per-receiver concurrency), each carrying the
same idempotency key. No provider API offers a way to close that window for every channel
(PagerDuty's dedup_key does close it for PagerDuty).
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid

from schemas.nflog import NflogEntry, needs_update, new_entry, nflog_key
from services.notifiers.job import Job
from services.runtime.nflog import RedisNflog
from services.runtime.redis import RedisClient

__all__ = ["DedupStage"]

_SENT = b"sent"
_SENT_TTL_MS = 48 * 3600 * 1000


class DedupStage:
    """Claims, checks and finally records a notification's delivery."""

    def __init__(
        self, redis: RedisClient, nflog: RedisNflog, claim_ttl: float, prefix: str
    ) -> None:
        self._redis = redis
        self._nflog = nflog
        self._claim_ms = int(claim_ttl * 1000)
        self._prefix = f"{prefix}notify:claim:"

    def _claim_key(self, job: Job) -> str:
        digest = hashlib.sha1(job.notification.idempotencyKey.encode(), usedforsecurity=False)
        return self._prefix + digest.hexdigest()

    @staticmethod
    def _log_key(job: Job) -> str:
        n = job.notification
        kind, _, index = n.integration.partition("[")
        return nflog_key(n.groupKey, n.receiver, kind, int(index.rstrip("]") or 0))

    async def admit(self, job: Job, now_ns: int) -> bool:
        """True when this worker should send; sets `job.outcome` when it should not.

        A claim held by another worker is waited on, never taken as delivered: that worker may
        have died before sending (its partition then comes here, its claim still running), so
        the copy is sent once the claim is marked sent (skip) or expires (send)."""
        key = self._claim_key(job)
        token = job.extra.setdefault("claim", uuid.uuid4().hex).encode()
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
        n = job.notification
        log_key = self._log_key(job)
        entry: NflogEntry | None = (await self._nflog.get_many([log_key], now_ns)).get(log_key)
        firing = {int(h) for h in n.firingHashes}
        resolved = {int(h) for h in n.resolvedHashes}
        if entry is not None and not needs_update(
            entry, firing, resolved, n.sendResolved, n.repeatInterval, now_ns
        ):
            job.outcome = "deduplicated"
            await self._redis.set(key, _SENT, px=_SENT_TTL_MS)
            return False
        return True

    async def delivered(self, job: Job, now_ns: int) -> None:
        """After a successful send: mark it sent and write the delivered log."""
        n = job.notification
        firing = {int(h) for h in n.firingHashes}
        resolved = {int(h) for h in n.resolvedHashes}
        await self._nflog.put(
            self._log_key(job), new_entry(firing, resolved, now_ns, n.repeatInterval)
        )
        await self._redis.set(self._claim_key(job), _SENT, px=_SENT_TTL_MS)

    async def release(self, job: Job) -> None:
        """After giving up (dead-lettered): free the claim so a redrive can send it."""
        await self._redis.delete(self._claim_key(job))
