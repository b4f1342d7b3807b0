"""The contract every integration keeps, run against each one (FS tests/brokers/base style).

A subclass names its stand-in server (`serve`: a real HTTP or SMTP server on loopback whose
next answers a test scripts with `Outcome`s), builds the notifier pointed at a port (`open`),
lists the secrets its config holds, and says how to read the status of what arrived. The suite
then checks what the retry stage relies on: a success returns the provider's code; transient
failures (5xx, 429 with Retry-After, timeouts, refused connections) are retryable; rejections
are not; no secret reaches an error's message, repr or traceback; resolved notifications go
out as resolved.
"""

from __future__ import annotations

import asyncio
import enum
import traceback
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import pytest
from aiohttp import web

from schemas.group import Notification
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.job import Notifier
from services.runtime.embedded import free_port

__all__ = [
    "RETRY_AFTER",
    "TIMEOUT",
    "HttpStandIn",
    "NotifierContract",
    "Outcome",
    "StandIn",
    "notification",
]

TIMEOUT = 0.4
"""The notifiers' timeout in these tests; a stalled stand-in answers after STALL_FOR."""
STALL_FOR = 5.0
RETRY_AFTER = 7
"""The Retry-After (seconds) a stand-in sends with a rate-limit answer."""


class Outcome(enum.Enum):
    """How a stand-in answers one request."""

    OK = "ok"
    SERVER_ERROR = "server_error"  # HTTP 5xx, SMTP 4xx
    RATE_LIMITED = "rate_limited"  # HTTP 429 + Retry-After, SMTP 421/452
    CLIENT_ERROR = "client_error"  # HTTP 4xx, SMTP 5xx
    STALL = "stall"  # no answer before the notifier's timeout


class StandIn(Protocol):
    """A provider on loopback: scripted answers, and what it received."""

    port: int

    def script(self, *outcomes: Outcome) -> None:
        """Answer the next requests with these outcomes, then OK."""

    @property
    def count(self) -> int:
        """How many requests (messages) reached it."""


def _alert(instance: str, status: str) -> dict[str, Any]:
    resolved = status == "resolved"
    return {
        "status": status,
        "labels": {"alertname": "DiskFull", "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"disk of {instance} is full"},
        "startsAt": "2026-11-27T02:10:31.083842749Z",
        "endsAt": "2026-11-27T02:20:31.083842749Z" if resolved else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom/graph?g0.expr=up",
        "fingerprint": {"h1:9100": "26a1b4ba81a9a6a4", "h2:9100": "c13f7a2620dad38a"}[instance],
    }


def notification(status: str = "firing", **changes: Any) -> Notification:
    """A two-alert notification for receiver "team", all firing or all resolved."""
    data: dict[str, Any] = {
        "receiver": "team",
        "integration": "x[0]",
        "status": status,
        "alerts": [_alert("h1:9100", status), _alert("h2:9100", status)],
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://am.example:9093",
        "groupKey": '{}:{alertname="DiskFull"}',
        "routeKey": "{}",
        "repeatInterval": 14400.0,
        "sendResolved": True,
        "tick": "2026-11-27T02:10:31Z",
        "firingHashes": [],
        "resolvedHashes": [],
        "idempotencyKey": "k",
    }
    return Notification.model_validate(data | changes)


@dataclass
class Received:
    """One HTTP request as the stand-in saw it."""

    path: str
    headers: Mapping[str, str]
    body: bytes


@dataclass
class HttpStandIn:
    """An aiohttp app answering like a provider: `answers[outcome]` = (status, body, headers)."""

    answers: Mapping[Outcome, tuple[int, str, Mapping[str, str]]]
    content_type: str = "text/plain"
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _script: list[Outcome] = field(default_factory=list)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, *outcomes: Outcome) -> None:
        """Answer the next requests with these outcomes, then OK."""
        self._script.extend(outcomes)

    @property
    def count(self) -> int:
        """How many requests reached it."""
        return len(self.requests)

    def url(self, path: str = "/") -> str:
        """The stand-in's URL for `path`."""
        return f"http://127.0.0.1:{self.port}{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(request.path, dict(request.headers), await request.read()))
        outcome = self._script.pop(0) if self._script else Outcome.OK
        if outcome is Outcome.STALL:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), STALL_FOR)
            outcome = Outcome.OK
        status, text, headers = self.answers[outcome]
        return web.Response(
            status=status, text=text, headers=dict(headers), content_type=self.content_type
        )

    async def __aenter__(self) -> HttpStandIn:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        await self._runner.cleanup()


class NotifierContract:
    """Base class of every integration's contract tests (collected through `Test*` subclasses)."""

    #: Strings from the config that must never appear in an error.
    secrets: ClassVar[tuple[str, ...]] = ()
    #: The reason a rate-limit answer gives (SMTP has no 429).
    rate_limited_reason: ClassVar[Reason] = Reason.RATE_LIMITED
    #: Whether the protocol carries Retry-After.
    retry_after: ClassVar[bool] = True
    #: The code a successful send returns.
    success_code: ClassVar[int] = 200

    def serve(self) -> AbstractAsyncContextManager[StandIn]:
        """A running stand-in for the provider."""
        raise NotImplementedError

    async def open(self, port: int, stack: AsyncExitStack) -> Notifier:
        """The notifier under test, pointed at `port` with a TIMEOUT-second timeout."""
        raise NotImplementedError

    def sent_status(self, stand_in: StandIn) -> str:
        """The status ("firing" or "resolved") of the last message the stand-in received."""
        raise NotImplementedError

    @pytest.fixture
    async def stand_in(self) -> AsyncIterator[StandIn]:
        async with self.serve() as stand_in:
            yield stand_in

    @pytest.fixture
    async def stack(self) -> AsyncIterator[AsyncExitStack]:
        async with AsyncExitStack() as stack:
            yield stack

    async def _failure(
        self, stand_in: StandIn | None, stack: AsyncExitStack, outcome: Outcome
    ) -> tuple[Notifier, NotifyError]:
        """Send against the stand-in answering `outcome` (None: a port nobody listens on)."""
        if stand_in is None:
            notifier = await self.open(free_port(), stack)
        else:
            stand_in.script(outcome)
            notifier = await self.open(stand_in.port, stack)
        with pytest.raises(NotifyError) as caught:
            await notifier.notify(notification())
        return notifier, caught.value

    async def test_delivers_and_returns_the_providers_code(
        self, stand_in: StandIn, stack: AsyncExitStack
    ) -> None:
        notifier = await self.open(stand_in.port, stack)
        assert await notifier.notify(notification()) == self.success_code
        assert stand_in.count == 1
        assert self.sent_status(stand_in) == "firing"

    async def test_resolved_is_sent_as_resolved(
        self, stand_in: StandIn, stack: AsyncExitStack
    ) -> None:
        notifier = await self.open(stand_in.port, stack)
        await notifier.notify(notification("resolved"))
        assert self.sent_status(stand_in) == "resolved"

    async def test_server_error_is_retryable(
        self, stand_in: StandIn, stack: AsyncExitStack
    ) -> None:
        _, error = await self._failure(stand_in, stack, Outcome.SERVER_ERROR)
        assert (error.retryable, error.reason) == (True, Reason.SERVER_ERROR)

    async def test_rate_limited_is_retryable(
        self, stand_in: StandIn, stack: AsyncExitStack
    ) -> None:
        _, error = await self._failure(stand_in, stack, Outcome.RATE_LIMITED)
        assert (error.retryable, error.reason) == (True, self.rate_limited_reason)
        assert error.retry_after == (RETRY_AFTER if self.retry_after else None)

    async def test_client_error_is_not_retryable(
        self, stand_in: StandIn, stack: AsyncExitStack
    ) -> None:
        _, error = await self._failure(stand_in, stack, Outcome.CLIENT_ERROR)
        assert (error.retryable, error.reason) == (False, Reason.CLIENT_ERROR)

    async def test_timeout_is_retryable(self, stand_in: StandIn, stack: AsyncExitStack) -> None:
        started = asyncio.get_running_loop().time()
        _, error = await self._failure(stand_in, stack, Outcome.STALL)
        assert (error.retryable, error.reason) == (True, Reason.TIMEOUT)
        assert asyncio.get_running_loop().time() - started < STALL_FOR

    async def test_connection_refused_is_retryable(self, stack: AsyncExitStack) -> None:
        _, error = await self._failure(None, stack, Outcome.OK)
        assert (error.retryable, error.reason) == (True, Reason.CONNECTION)

    @pytest.mark.parametrize(
        "outcome",
        [Outcome.SERVER_ERROR, Outcome.RATE_LIMITED, Outcome.CLIENT_ERROR, Outcome.STALL, None],
        ids=["server-error", "rate-limited", "client-error", "timeout", "refused"],
    )
    async def test_secrets_are_absent_from_errors(
        self, stand_in: StandIn, stack: AsyncExitStack, outcome: Outcome | None
    ) -> None:
        assert self.secrets, "a contract names the secrets of its config"
        if outcome is None:
            notifier, error = await self._failure(None, stack, Outcome.OK)
        else:
            notifier, error = await self._failure(stand_in, stack, outcome)
        shown = [
            str(error),
            repr(error),
            "".join(traceback.format_exception(error)),
            repr(notifier),
        ]
        for secret in self.secrets:
            assert not [text for text in shown if secret in text], secret
