"""The notifiers service: consume its receivers' `notifications.<receiver>` topics, deliver,
commit only what is done.

Each message runs dedup -> retry (the send) -> record. A notification is committed after it
was delivered, skipped as a duplicate, or dead-lettered, never before: offsets are committed
per partition up to the first message still in progress, so a crash redelivers exactly the
unfinished ones (and the dedup stage keeps those that did finish from being sent twice).

Per consumed batch (up to 500 messages) the dedup claims are taken in one Redis call; then each
message is its own task, sending within its receiver's concurrency and rate limits, and the
bookkeeping after the sends (delivered log, claims marked sent) and the receipts are written
for many messages at a time.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from schemas.config import Config, Receiver, load
from schemas.envelope import Envelope, producer_id
from schemas.group import Notification
from schemas.topics import FIXED_TOPICS, notifications_topic
from services.notifiers.dedup_stage import DedupStage
from services.notifiers.email import EmailNotifier
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.http import HttpSender
from services.notifiers.job import Job, Notifier
from services.notifiers.pagerduty import PagerdutyNotifier
from services.notifiers.ratelimit import ReceiverLimits
from services.notifiers.record_stage import RecordStage
from services.notifiers.remediation_hints import PendingHints
from services.notifiers.retry_stage import RetryStage
from services.notifiers.slack import SlackNotifier
from services.notifiers.template import TemplateSet
from services.notifiers.webhook import WebhookNotifier
from services.runtime.kafka import KafkaFactory
from services.runtime.nflog import RedisNflog
from services.runtime.redis import RedisClient
from services.runtime.settings import Settings

__all__ = ["NotifierService", "build_integrations"]

_log = structlog.get_logger("tocsin.notifiers")
_ENVELOPE = Envelope[Notification]
# Claim tokens: unique per process (random prefix) and message (counter), cheaper than uuid4.
_CLAIM_PREFIX = os.urandom(8).hex()
_CLAIMS = itertools.count()


class _Unknown:
    """An integration the config in force does not have (removed by a reload, or a message
    from another config): its notifications are dead-lettered, not lost."""

    async def notify(self, notification: Notification) -> int:
        raise NotifyError(
            Reason.CONFIG,
            f"receiver {notification.receiver!r} has no integration {notification.integration} "
            "in the config in force",
            retryable=False,
        )


class _Limited:
    """A notifier whose every attempt waits for its receiver's rate and concurrency."""

    def __init__(self, inner: Notifier, limits: ReceiverLimits, receiver: str) -> None:
        self._inner, self._limits, self._receiver = inner, limits, receiver

    async def notify(self, notification: Notification) -> int:
        # acquire/release rather than `async with limits.slot()`: a context manager's
        # generator machinery cost more than the limits themselves on every send.
        await self._limits.acquire(self._receiver)
        try:
            return await self._inner.notify(notification)
        finally:
            self._limits.release(self._receiver)


class _Offsets:
    """Per partition, the offsets in progress; commits stop at the first unfinished one."""

    def __init__(self) -> None:
        self._open: dict[TopicPartition, dict[int, bool]] = {}
        self._high: dict[TopicPartition, int] = {}

    def begin(self, tp: TopicPartition, offset: int) -> None:
        self._open.setdefault(tp, {})[offset] = False
        self._high[tp] = max(self._high.get(tp, -1), offset)

    def end(self, tp: TopicPartition, offset: int) -> None:
        self._open[tp][offset] = True

    def committable(self) -> dict[TopicPartition, int]:
        found = {}
        for tp, offsets in self._open.items():
            while offsets:
                first = next(iter(offsets))
                if not offsets[first]:
                    break
                del offsets[first]
            found[tp] = next(iter(offsets)) if offsets else self._high[tp] + 1
        return found

    def busy(self) -> int:
        return sum(1 for offsets in self._open.values() for done in offsets.values() if not done)


class NotifierService:
    """One notifier worker (run as many as you like: one consumer group)."""

    def __init__(
        self,
        settings: Settings,
        kafka: KafkaFactory,
        redis: RedisClient,
        registry: CollectorRegistry,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if settings.config.file is None:
            raise ValueError("the notifiers need the routing config: --config.file")
        self._settings = settings
        self._config_path = Path(settings.config.file)
        self._kafka = kafka
        self._redis = redis
        self._registry = registry
        self._clock = clock
        self._http = HttpSender(timeout=settings.notifiers.http_timeout)
        s = settings.notifiers
        self._limits = ReceiverLimits(s.rate, s.burst, s.concurrency)
        self._slack_limits = ReceiverLimits(s.slack_rate, s.slack_burst, 1)
        prefix = settings.router.redis_prefix
        self._dedup = DedupStage(
            redis, RedisNflog(redis, "delivered", prefix=f"{prefix}nflog:"), s.claim_ttl, prefix
        )
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._record: RecordStage | None = None
        self._retry: RetryStage | None = None
        self._notifiers: dict[tuple[str, str], Notifier] = {}
        self._offsets = _Offsets()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._slots = asyncio.Semaphore(512)  # messages in progress per worker

    def use_config(self, config: Config) -> None:
        """Build the integrations of every receiver (reload: swap them).

        The config's `templates:` files are parsed over the defaults, so they can redefine
        them, as in Alertmanager; a template that does not parse fails the load here."""
        templates = TemplateSet.default()
        templates.parse_files(config.templates)
        notifiers: dict[tuple[str, str], Notifier] = {}
        hints = PendingHints(self._redis, prefix=self._settings.router.redis_prefix)
        for receiver in config.receivers:
            for name, notifier in build_integrations(receiver, self._http, templates, hints):
                limited: Notifier = _Limited(notifier, self._limits, receiver.name)
                if name.startswith("slack["):
                    # Slack takes about one message per second per channel: one bucket per
                    # webhook URL and channel, shared by every receiver posting there.
                    slack = receiver.slack_configs[int(name[6:-1])]
                    target = hashlib.sha1(
                        f"{slack.api_url.get_secret_value()}{slack.api_url_file}{slack.channel}".encode(),
                        usedforsecurity=False,
                    ).hexdigest()
                    limited = _Limited(limited, self._slack_limits, target)
                notifiers[(receiver.name, name)] = limited
        self._notifiers = notifiers

    async def start(self) -> None:
        """Connect and start consuming every receiver's topic."""
        config = load(self._config_path)
        self.use_config(config)
        topics = [notifications_topic(r.name) for r in config.receivers]
        await self._kafka.ensure_topics([t.name for t in FIXED_TOPICS] + topics)
        # The notifiers' producer carries receipts, many per second and none awaited on the
        # send path: its own, longer linger puts more of them in each produce request.
        self._producer = self._kafka.producer(
            "notifiers", linger_ms=self._settings.notifiers.linger_ms
        )
        await self._producer.start()
        self._record = RecordStage(self._producer, self._registry, producer_id("notifiers"))
        self._retry = RetryStage(self._settings.notifiers.deadline, self._record.attempt)
        # The topics of this config's receivers: another notifier fleet with another config may
        # serve other receivers from the same cluster.
        consumer = self._kafka.consumer("notifiers", self._settings.notifiers.group_id, topics)
        await consumer.start()
        self._consumer = consumer
        self._loop_task = asyncio.create_task(self._consume(consumer), name="notifiers-consume")
        _log.info("notifiers_started", integrations=len(self._notifiers))

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            try:
                batch = await consumer.getmany(timeout_ms=200, max_records=500)
            except KafkaError:  # the client retries what it can; log and poll again
                _log.exception("poll_failed")
                await asyncio.sleep(1.0)
                continue
            taken: list[tuple[TopicPartition, int, bytes]] = []
            for tp, records in batch.items():
                for record in records:
                    await self._slots.acquire()
                    self._offsets.begin(tp, record.offset)
                    taken.append((tp, record.offset, record.value))
            if taken:
                self._spawn(self._admit_batch(taken))
            await self._commit()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _commit(self) -> None:
        if self._consumer is None:
            return
        offsets = self._offsets.committable()
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            # A rebalance took partitions away (CommitFailedError) or the broker is away: the
            # new owner starts from the last committed offset and the dedup stage keeps what
            # was already sent from going out twice. The loop must live on either way.
            _log.warning("commit_failed", error=str(exc)[:200])

    def _done(self, tp: TopicPartition, offset: int) -> None:
        self._slots.release()
        self._offsets.end(tp, offset)

    async def _admit_batch(self, taken: list[tuple[TopicPartition, int, bytes]]) -> None:
        """Parse a consumed batch, claim all of it in one call, then one task per message."""
        jobs: list[Job] = []
        places: list[tuple[TopicPartition, int]] = []
        for tp, offset, value in taken:
            job = self._job(tp.topic, value)
            if job is None:
                self._done(tp, offset)  # not a notification: nothing to deliver or redrive
                continue
            job.extra["claim"] = f"{_CLAIM_PREFIX}{next(_CLAIMS):x}"  # kept across retries
            jobs.append(job)
            places.append((tp, offset))
        decisions: list[bool | None]
        try:
            decisions = await self._dedup.admit_many(jobs, self._clock())
        except Exception:  # noqa: BLE001 - Redis away: each message admits itself, with retries
            _log.exception("admit_batch_failed", messages=len(jobs))
            decisions = [None] * len(jobs)
        for (tp, offset), job, admitted in zip(places, jobs, decisions, strict=True):
            self._spawn(self._handle(tp, offset, job, admitted))

    async def _handle(
        self, tp: TopicPartition, offset: int, job: Job, admitted: bool | None
    ) -> None:
        try:
            wait = 0.5
            while True:
                try:
                    await self._run(job, admitted)
                    break
                except Exception:  # noqa: BLE001 - Redis or the broker away: try again
                    _log.exception("deliver_failed", topic=tp.topic, offset=offset)
                    if self._stopping.is_set():
                        return  # left uncommitted: redelivered after the restart
                    await asyncio.sleep(wait)
                    wait = min(wait * 2, 30.0)
                    admitted = None  # admit again: our own claim is recognised by its token
        finally:
            self._slots.release()
        self._offsets.end(tp, offset)

    def _job(self, topic: str, value: bytes) -> Job | None:
        """The message as a job; None (logged) when it is not a notification."""
        try:
            notification = _ENVELOPE.model_validate_json(value).data
        except ValidationError as exc:  # not JSON, or not a notification
            _log.error("bad_notification_message", topic=topic, error=str(exc)[:300])
            return None
        notifier = self._notifiers.get((notification.receiver, notification.integration))
        if notifier is None:
            notifier = _Unknown()
        # The envelope as a dict only if it is dead-lettered (Job.original).
        return Job(notification, topic, {}, notifier, self._clock(), raw=value)

    async def deliver(self, topic: str, value: bytes, claim: str | None = None) -> str:
        """Run one message through the stages; returns the outcome."""
        job = self._job(topic, value)
        if job is None:
            return "malformed"
        if claim is not None:
            job.extra["claim"] = claim
        return await self._run(job, None)

    async def _run(self, job: Job, admitted: bool | None) -> str:
        """dedup (unless `admitted` says its outcome) -> retry -> record; the outcome once its
        bookkeeping and receipts are done."""
        record, retry = self._record, self._retry
        if record is None or retry is None:
            raise RuntimeError("the notifiers are not started")
        if admitted is None:
            admitted = await self._dedup.admit(job, self._clock())
        if not admitted:
            await record.receipt(job, job.outcome, 0)
        elif await retry.run(job):
            # Sent: from here on only bookkeeping, retried until it works, never a resend.
            await _until_done(lambda: self._dedup.delivered(job, self._clock()), self._stopping)
            job.outcome = "delivered"
        else:
            await _until_done(lambda: record.dead_letter(job), self._stopping)
            await _until_done(lambda: self._dedup.release(job), self._stopping)
            job.outcome = "dead-lettered"
        await _until_done(lambda: record.settle(job), self._stopping)
        return job.outcome

    async def stop(self) -> None:
        """Stop taking messages, let those in progress finish (bounded), commit, close."""
        self._stopping.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        deadline = time.monotonic() + 10
        while self._tasks and (left := deadline - time.monotonic()) > 0:
            await asyncio.wait(set(self._tasks), timeout=left)  # a batch's tasks start more
        await self._commit()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        await self._http.close()


async def _until_done(step: Callable[[], Awaitable[None]], stopping: asyncio.Event) -> None:
    """Run `step` until it succeeds (Redis or the broker may be away for a while)."""
    wait = 0.2
    while True:
        try:
            await step()
            return
        except Exception:  # logged and retried; the send is not repeated
            _log.exception("bookkeeping_failed")
            if stopping.is_set():
                raise
            await asyncio.sleep(wait)
            wait = min(wait * 2, 10.0)


def build_integrations(
    receiver: Receiver,
    http: HttpSender,
    templates: TemplateSet | None = None,
    hints: PendingHints | None = None,
) -> list[tuple[str, Notifier]]:
    """The receiver's notifiers, named `<type>[<index>]` as Alertmanager names them.

    `templates` defaults to the built-in ones; pass the config's `templates:` files parsed on
    top of them (`TemplateSet.default()` then `parse_files`) to honour user definitions.
    `hints` lets Slack messages name the remediations waiting for approval.
    """
    found: list[tuple[str, Notifier]] = []
    for i, webhook in enumerate(receiver.webhook_configs):
        found.append((f"webhook[{i}]", WebhookNotifier(webhook, http)))
    if not (receiver.email_configs or receiver.pagerduty_configs or receiver.slack_configs):
        return found
    if templates is None:
        templates = TemplateSet.default()
    for i, email in enumerate(receiver.email_configs):
        found.append((f"email[{i}]", EmailNotifier(email, templates)))
    for i, pagerduty in enumerate(receiver.pagerduty_configs):
        found.append((f"pagerduty[{i}]", PagerdutyNotifier(pagerduty, http, templates)))
    for i, slack in enumerate(receiver.slack_configs):
        found.append((f"slack[{i}]", SlackNotifier(slack, http, templates, hints)))
    return found
