"""The notifiers' small HTTP/1.1 client against scripted servers: framing, reuse, failures.

Each test serves raw bytes from an asyncio server, so every way a server may frame or end its
answer is exercised exactly; `HttpSender` tests check what it hands to aiohttp instead.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from schemas.config.http import HTTPConfig
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.http import HttpSender
from services.notifiers.keepalive import KeepAlivePool, ProtocolError

BODY = b'{"status":"firing"}'


@dataclass
class Served:
    """What the scripted server saw."""

    port: int = 0
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    requests: list[bytes] = field(default_factory=list)


Answer = Callable[[int, asyncio.StreamWriter], "asyncio.Future[None] | None"]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


@asynccontextmanager
async def scripted(
    answers: list[bytes] | Callable[[int], bytes],
    *,
    close_after: bool = False,
    delay: float = 0.0,
    chunked_writes: bool = False,
) -> AsyncIterator[Served]:
    """A server answering the n-th request with `answers[n]` (or `answers(n)`)."""
    served = Served()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.connections += 1
        served.open_now += 1
        served.most_open = max(served.most_open, served.open_now)
        try:
            while (request := await _read_request(reader)) is not None:
                n = len(served.requests)
                served.requests.append(request)
                if delay:
                    await asyncio.sleep(delay)
                answer = answers(n) if callable(answers) else answers[n]
                if chunked_writes:
                    for i in range(len(answer)):
                        writer.write(answer[i : i + 1])
                        await writer.drain()
                        await asyncio.sleep(0)
                else:
                    writer.write(answer)
                await writer.drain()
                if close_after:
                    break
        finally:
            served.open_now -= 1
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    served.port = server.sockets[0].getsockname()[1]
    try:
        yield served
    finally:
        server.close()


def ok(body: bytes = b"ok", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def test_a_request_carries_host_agent_headers_and_body() -> None:
    pool = KeepAlivePool(user_agent="Alertmanager/0.25.0")
    async with scripted([ok()]) as served:
        url = f"http://127.0.0.1:{served.port}/hook/a?x=1#frag"
        response = await pool.post(url, BODY, {"Content-Type": "application/json"}, 5)
    pool.close()
    assert (response.status, response.body, response.text()) == (200, b"ok", "ok")
    head, _, body = served.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hook/a?x=1 HTTP/1.1"
    assert set(lines[1:]) == {
        b"Host: 127.0.0.1:%d" % served.port,
        b"User-Agent: Alertmanager/0.25.0",
        b"Content-Type: application/json",
        b"Content-Length: %d" % len(BODY),
    }
    assert body == BODY


async def test_connections_are_kept_alive_and_reused() -> None:
    pool = KeepAlivePool()
    async with scripted(lambda n: ok(b"%d" % n)) as served:
        url = f"http://127.0.0.1:{served.port}/"
        bodies = [(await pool.post(url, BODY, {}, 5)).body for _ in range(20)]
    pool.close()
    assert bodies == [b"%d" % n for n in range(20)]
    assert served.connections == 1


async def test_chunked_bodies_with_extensions_and_trailers_arrive_byte_by_byte() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    pool = KeepAlivePool()
    async with scripted([answer, ok(b"next")], chunked_writes=True) as served:
        url = f"http://127.0.0.1:{served.port}/"
        first = await pool.post(url, BODY, {}, 5)
        second = await pool.post(url, BODY, {}, 5)
    pool.close()
    assert (first.status, first.body) == (200, b"hello world")
    assert second.body == b"next"
    assert served.connections == 1


async def test_interim_1xx_answers_are_skipped() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"done")
    pool = KeepAlivePool()
    async with scripted([answer]) as served:
        response = await pool.post(f"http://127.0.0.1:{served.port}/", BODY, {}, 5)
    pool.close()
    assert (response.status, response.body) == (200, b"done")


async def test_a_body_without_length_ends_with_the_connection() -> None:
    answer = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n\r\ndown for now"
    pool = KeepAlivePool()
    async with scripted([answer, ok()], close_after=True) as served:
        url = f"http://127.0.0.1:{served.port}/"
        first = await pool.post(url, BODY, {}, 5)
        second = await pool.post(url, BODY, {}, 5)
    pool.close()
    assert (first.status, first.body, first.headers["retry-after"]) == (503, b"down for now", "7")
    assert second.status == 200
    assert served.connections == 2  # the first could not be reused


@pytest.mark.parametrize(
    "answer",
    [
        ok(extra=b"Connection: close\r\n"),
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_connections_the_server_will_close_are_not_reused(answer: bytes) -> None:
    pool = KeepAlivePool()
    async with scripted([answer, answer]) as served:
        url = f"http://127.0.0.1:{served.port}/"
        for _ in range(2):
            assert (await pool.post(url, BODY, {}, 5)).body == b"ok"
    pool.close()
    assert served.connections == 2


async def test_no_content_statuses_have_no_body() -> None:
    pool = KeepAlivePool()
    async with scripted([b"HTTP/1.1 204 No Content\r\n\r\n", ok(b"after")]) as served:
        url = f"http://127.0.0.1:{served.port}/"
        first = await pool.post(url, BODY, {}, 5)
        second = await pool.post(url, BODY, {}, 5)
    pool.close()
    assert (first.status, first.body, second.body) == (204, b"", b"after")
    assert served.connections == 1


async def test_compressed_bodies_are_decoded_and_charsets_honoured() -> None:
    zipped = gzip.compress(b'{"ok":false,"error":"invalid_auth"}')
    latin = "café".encode("latin-1")
    answers = [
        ok(zipped, b"Content-Encoding: gzip\r\n"),
        ok(latin, b"Content-Type: text/plain; charset=ISO-8859-1\r\n"),
    ]
    pool = KeepAlivePool()
    async with scripted(answers) as served:
        url = f"http://127.0.0.1:{served.port}/"
        first = await pool.post(url, BODY, {}, 5)
        second = await pool.post(url, BODY, {}, 5)
    pool.close()
    assert first.text() == '{"ok":false,"error":"invalid_auth"}'
    assert second.text() == "café"


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    pool = KeepAlivePool()
    async with scripted([ok(), ok()], close_after=True) as served:
        url = f"http://127.0.0.1:{served.port}/"
        await pool.post(url, BODY, {}, 5)
        await asyncio.sleep(0.1)  # the server's FIN arrives while the connection is idle
        assert (await pool.post(url, BODY, {}, 5)).status == 200
    pool.close()
    assert served.connections == 2


async def test_no_answer_in_time_is_a_timeout_and_the_connection_is_dropped() -> None:
    pool = KeepAlivePool()
    async with scripted([ok(), ok()], delay=0.5) as served:
        url = f"http://127.0.0.1:{served.port}/"
        with pytest.raises(TimeoutError):
            await pool.post(url, BODY, {}, 0.2)
        assert (await pool.post(url, BODY, {}, 5)).status == 200
    pool.close()
    assert served.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200",
    ],
    ids=["not-http", "bad-length", "huge-length", "bad-gzip", "cut-short"],
)
async def test_what_is_not_http_is_a_connection_error(answer: bytes) -> None:
    pool = KeepAlivePool()
    async with scripted([answer], close_after=True) as served:
        with pytest.raises(ConnectionError):
            await pool.post(f"http://127.0.0.1:{served.port}/", BODY, {}, 5)
    pool.close()


async def test_not_http_raises_protocol_error() -> None:
    pool = KeepAlivePool()
    async with scripted([b"220 smtp.example ESMTP\r\n\r\n"]) as served:
        with pytest.raises(ProtocolError):
            await pool.post(f"http://127.0.0.1:{served.port}/", BODY, {}, 5)
    pool.close()


async def test_refused_connections_are_connection_errors() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(ConnectionError):
        await KeepAlivePool().post(f"http://127.0.0.1:{port}/", BODY, {}, 5)


async def test_connections_per_host_are_limited_and_waiters_served() -> None:
    pool = KeepAlivePool(limit_per_host=2)
    async with scripted(lambda n: ok(), delay=0.05) as served:
        url = f"http://127.0.0.1:{served.port}/"
        results = await asyncio.gather(*(pool.post(url, BODY, {}, 5) for _ in range(7)))
    pool.close()
    assert [r.status for r in results] == [200] * 7
    assert served.connections == 2
    assert served.most_open == 2


async def test_urls_and_headers_it_cannot_write_are_refused_for_the_caller() -> None:
    pool = KeepAlivePool()
    for url in ("ftp://example.org/", "http:///path", "http://exämple.org/"):
        with pytest.raises(ValueError, match="only ASCII http"):
            await pool.post(url, BODY, {}, 5)
    with pytest.raises(ValueError, match="line break"):
        await pool.post("http://127.0.0.1:9/", BODY, {"X-Bad": "a\r\nInjected: 1"}, 5)


# HttpSender: what goes to aiohttp instead


@asynccontextmanager
async def redirecting() -> AsyncIterator[tuple[int, list[str]]]:
    seen: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        seen.append(request.path)
        raise web.HTTPTemporaryRedirect("/new")

    async def new(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text=(await request.text()))

    app = web.Application()
    app.router.add_post("/old", moved)
    app.router.add_post("/new", new)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield port, seen
    finally:
        await runner.cleanup()


async def test_redirects_are_followed_when_the_config_says_so() -> None:
    http = HttpSender(timeout=5)
    try:
        async with redirecting() as (port, seen):
            status, text = await http.post(f"http://127.0.0.1:{port}/old", BODY, HTTPConfig())
            assert (status, text) == (200, BODY.decode())
            assert seen == ["/old", "/old", "/new"]  # ours, then aiohttp's, which follows

            seen.clear()
            config = HTTPConfig(follow_redirects=False)
            with pytest.raises(NotifyError) as failed:
                await http.post(f"http://127.0.0.1:{port}/old", BODY, config)
            assert (failed.value.reason, failed.value.status) == (Reason.CLIENT_ERROR, 307)
            assert seen == ["/old"]
    finally:
        await http.close()


async def test_sender_classifies_what_the_small_client_reports() -> None:
    http = HttpSender(timeout=0.3)
    try:
        async with scripted([ok(), ok()], delay=1.0) as served:
            with pytest.raises(NotifyError) as slow:
                await http.post(f"http://127.0.0.1:{served.port}/", BODY, HTTPConfig())
        assert (slow.value.reason, slow.value.retryable) == (Reason.TIMEOUT, True)
        async with scripted([b"nonsense\r\n\r\n"]) as served:
            with pytest.raises(NotifyError) as garbled:
                await http.post(f"http://127.0.0.1:{served.port}/", BODY, HTTPConfig())
        assert (garbled.value.reason, garbled.value.retryable) == (Reason.CONNECTION, True)
        retry = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 4\r\n\r\nslow"
        async with scripted([retry]) as served:
            with pytest.raises(NotifyError) as limited:
                await http.post(f"http://127.0.0.1:{served.port}/", BODY, HTTPConfig())
        assert (limited.value.reason, limited.value.retry_after) == (Reason.RATE_LIMITED, 3.0)
        assert "slow" in str(limited.value)
    finally:
        await http.close()


async def test_connections_idle_too_long_are_closed_by_a_later_release() -> None:
    pool = KeepAlivePool(idle_timeout=0.3)
    async with scripted(lambda n: ok(), delay=0.05) as served:
        url = f"http://127.0.0.1:{served.port}/"
        await asyncio.gather(*(pool.post(url, BODY, {}, 5) for _ in range(4)))  # 4 connections
        assert served.open_now == 4
        for _ in range(8):  # one at a time: the most recent connection serves them all
            await pool.post(url, BODY, {}, 5)
            await asyncio.sleep(0.1)
        assert served.connections == 4
        assert served.open_now == 1  # the three left at the bottom were swept
    pool.close()


async def test_a_closed_pool_keeps_no_connection() -> None:
    pool = KeepAlivePool()
    async with scripted(lambda n: ok(), delay=0.1) as served:
        url = f"http://127.0.0.1:{served.port}/"
        in_flight = asyncio.create_task(pool.post(url, BODY, {}, 5))
        await asyncio.sleep(0.05)
        pool.close()
        assert (await in_flight).status == 200
        await asyncio.sleep(0.05)
        assert served.open_now == 0


@pytest.mark.parametrize(
    "config",
    [
        {"bearer_token_file": "/nonexistent/tocsin-token"},
        {"basic_auth": {"username": "u", "password_file": "/nonexistent/tocsin-password"}},
    ],
    ids=["bearer", "basic"],
)
async def test_an_unreadable_credentials_file_is_a_config_error(config: dict[str, Any]) -> None:
    http = HttpSender(timeout=1)
    try:
        with pytest.raises(NotifyError) as failed:
            await http.post("http://127.0.0.1:9/", BODY, HTTPConfig.model_validate(config))
        assert (failed.value.reason, failed.value.retryable) == (Reason.CONFIG, False)
        assert "failed to read" in str(failed.value)
    finally:
        await http.close()
