"""A small HTTP/1.1 client for the notifiers' POSTs: kept-alive connections, one write per request.

Every notification is one POST to a webhook, Slack or PagerDuty, and in `bench/e2e.py` aiohttp's
client request machinery was the largest single cost of a notifier (about 70 us of CPU per
request on the bench machine, against about 20 us here). This client does only what a
notification needs: POST a body that is already encoded, over plain TCP or TLS, on connections
kept alive per (scheme, host, port, TLS settings), and read the status, headers and body back
(Content-Length, chunked, or until close; 1xx skipped; gzip/deflate bodies decoded).

What it does not do (proxies, redirects to follow) stays with aiohttp in `HttpSender`, which
falls back to it for those. A failure before the response is complete is `ConnectionError` or
`TimeoutError`; the caller decides what is retryable. A connection the server has closed while
idle is noticed (EOF or reset) and not reused; the race in which the server closes it just as a
request is written is the one every keep-alive client has, and surfaces as a connection error.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from typing import Any
from urllib.parse import urlsplit

__all__ = ["HttpResponse", "KeepAlivePool", "ProtocolError"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 8 * 1024 * 1024
_NO_BODY = frozenset({204, 304})


class ProtocolError(ConnectionError):
    """The server's answer is not HTTP/1.x this client can read."""


class HttpResponse:
    """Status, headers (names lower-cased) and the body, decoded if it was compressed."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def text(self) -> str:
        """The body as text: the charset the server named, else UTF-8; bad bytes replaced."""
        charset = "utf-8"
        ctype = self.headers.get("content-type", "")
        if "charset=" in ctype:
            charset = ctype.split("charset=", 1)[1].split(";", 1)[0].strip().strip('"') or "utf-8"
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def _parse_head(head: bytes) -> tuple[bytes, int, dict[str, str]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError("malformed response header")
        key = name.strip().lower().decode("latin-1")
        text = value.strip().decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return parts[0], int(parts[1]), headers


def _chunked(buf: bytearray) -> tuple[bytes, int] | None:
    """(body, bytes used) of a complete chunked body at the start of `buf`; None if incomplete."""
    body = bytearray()
    pos = 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError("malformed chunk size") from None
        pos = eol + 2
        if size == 0:
            # Trailers (usually none), then an empty line.
            while True:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    return bytes(body), eol + 2
                pos = eol + 2
        if len(buf) < pos + size + 2:
            return None
        body += buf[pos : pos + size]
        if len(body) > _MAX_BODY:
            raise ProtocolError("response body too large")
        pos += size + 2


def _decoded(body: bytes, headers: dict[str, str]) -> bytes:
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:  # raw deflate, as some servers send it
            return zlib.decompress(body, -zlib.MAX_WBITS)
    return body


class _Connection(asyncio.Protocol):
    """One connection: at most one request in flight, its response parsed as it arrives."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.usable = True
        self.idle_since = 0.0
        self._buf = bytearray()
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._head: tuple[bytes, int, dict[str, str]] | None = None
        self._length = -1  # -1 until close, -2 chunked, else the Content-Length
        self._eof = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing asked: the connection is out of step
            self._discard()
            return
        self._buf += data
        self._advance()

    def eof_received(self) -> bool:
        self._eof = True
        self.usable = False
        if self._waiter is not None:
            self._advance()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        self._eof = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._advance()
            if not waiter.done():
                waiter.set_exception(
                    ConnectionError(f"connection closed before the response ended: {exc or 'EOF'}")
                )

    # the request
    def request(self, data: bytes) -> asyncio.Future[HttpResponse]:
        """Write `data` (a whole request); the future gets the response or the failure."""
        assert self.transport is not None
        waiter = self._loop.create_future()
        self._waiter = waiter
        self._head = None
        self._length = -1
        self.transport.write(data)
        return waiter

    def timed_out(self, waiter: asyncio.Future[HttpResponse]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError("no complete response in time"))
            self._discard()

    def _discard(self) -> None:
        self.usable = False
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        waiter = self._waiter
        self._discard()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _advance(self) -> None:
        try:
            self._parse()
        except (ProtocolError, zlib.error) as exc:
            self._fail(ProtocolError(str(exc)))

    def _parse(self) -> None:
        buf = self._buf
        while self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise ProtocolError("response header too large")
                return
            version, status, headers = _parse_head(bytes(buf[:end]))
            del buf[: end + 4]
            if 100 <= status < 200:
                continue  # 100 Continue and friends: the real answer follows
            self._head = (version, status, headers)
            if status in _NO_BODY:
                self._length = 0
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                self._length = -2
            elif "content-length" in headers:
                try:
                    self._length = int(headers["content-length"])
                except ValueError:
                    raise ProtocolError("malformed Content-Length") from None
                if not 0 <= self._length <= _MAX_BODY:
                    raise ProtocolError("response body too large")
            else:
                self._length = -1
        version, status, headers = self._head
        if self._length >= 0:
            if len(buf) < self._length:
                return
            body = bytes(buf[: self._length])
            del buf[: self._length]
        elif self._length == -2:
            done = _chunked(buf)
            if done is None:
                return
            body, used = done
            del buf[:used]
        else:  # until the server closes
            if len(buf) > _MAX_BODY:
                raise ProtocolError("response body too large")
            if not self._eof:
                return
            body = bytes(buf)
            buf.clear()
            self.usable = False
        connection = headers.get("connection", "").lower()
        if (
            "close" in connection
            or (version == b"HTTP/1.0" and "keep-alive" not in connection)
            or buf  # bytes nobody asked for
        ):
            self.usable = False
        response = HttpResponse(status, headers, _decoded(body, headers))  # may raise: _fail
        waiter = self._waiter
        self._waiter = None
        self._head = None
        if not self.usable and self.transport is not None:
            self.transport.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)


_Key = tuple[str, str, int, Any]


class KeepAlivePool:
    """Connections kept alive per (scheme, host, port, TLS context), reused most recent first."""

    def __init__(
        self,
        limit_per_host: int = 64,
        idle_timeout: float = 15.0,
        user_agent: str | None = None,
    ) -> None:
        self._limit = limit_per_host
        self._idle_timeout = idle_timeout
        self._user_agent = user_agent
        self._idle: dict[_Key, list[_Connection]] = {}
        self._open: dict[_Key, int] = {}
        self._waiting: dict[_Key, deque[asyncio.Future[None]]] = {}
        self._default_tls: ssl.SSLContext | None = None
        self._targets: dict[tuple[str, Any], tuple[_Key, str, int, ssl.SSLContext | None, str]] = {}
        self._swept = time.monotonic()
        self._closing = False

    def close(self) -> None:
        """Close every idle connection; those in use close when their request ends."""
        self._closing = True
        for conns in self._idle.values():
            for conn in conns:
                conn.usable = False
                if conn.transport is not None:
                    conn.transport.close()
        self._idle.clear()

    async def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        time_limit: float,
        tls: ssl.SSLContext | bool = True,
    ) -> HttpResponse:
        """POST `body` to an http(s) URL; the response, or ConnectionError / TimeoutError when
        it is not complete within `time_limit` seconds (connecting included). ValueError for a
        URL or header it does not write (the caller may use another client)."""
        target = self._targets.get((url, tls))
        if target is None:
            target = self._target(url, tls)
            if len(self._targets) >= 1024:
                self._targets.clear()
            self._targets[(url, tls)] = target
        key, host, port, context, start = target
        lines = [start]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + time_limit
        conn = await self._acquire(key, host, port, context, time_limit)
        timer: asyncio.TimerHandle | None = None
        try:
            waiter = conn.request(data)
            timer = loop.call_at(deadline, conn.timed_out, waiter)
            response = await waiter
        except BaseException:
            conn.usable = False
            if conn.transport is not None:
                conn.transport.abort()
            self._release(key, conn)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        self._release(key, conn)
        return response

    def _target(
        self, url: str, tls: ssl.SSLContext | bool
    ) -> tuple[_Key, str, int, ssl.SSLContext | None, str]:
        """Where `url` goes: pool key, host, port, TLS context, request line and fixed headers."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname or not url.isascii():
            raise ValueError("only ASCII http:// and https:// URLs with a host")
        secure = scheme == "https"
        host = parts.hostname
        port = parts.port or (443 if secure else 80)
        context: ssl.SSLContext | None = None
        if secure:
            context = tls if isinstance(tls, ssl.SSLContext) else self._default_context()
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        authority = parts.netloc.rsplit("@", 1)[-1]  # userinfo is never sent in Host
        start = f"POST {path} HTTP/1.1\r\nHost: {authority}"
        if self._user_agent is not None:
            start += f"\r\nUser-Agent: {self._user_agent}"
        return (scheme, host, port, context), host, port, context, start

    def _default_context(self) -> ssl.SSLContext:
        if self._default_tls is None:
            self._default_tls = ssl.create_default_context()
        return self._default_tls

    async def _acquire(
        self, key: _Key, host: str, port: int, context: ssl.SSLContext | None, time_limit: float
    ) -> _Connection:
        conn = self._take_idle(key)
        if conn is not None:
            return conn
        while self._open.get(key, 0) >= self._limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(key, deque()).append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake(key)  # woken, then cancelled: the turn goes to the next one
                raise
            conn = self._take_idle(key)
            if conn is not None:
                return conn
        self._open[key] = self._open.get(key, 0) + 1
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(time_limit):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop),
                    host,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                )
        except BaseException:
            self._open[key] -= 1
            self._wake(key)
            raise
        return conn

    def _take_idle(self, key: _Key) -> _Connection | None:
        """The most recently used idle connection still fit for use; the others found on the
        way (closed by the server, idle too long) are closed."""
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.usable and now - conn.idle_since < self._idle_timeout:
                return conn
            self._closed(key, conn)
        return None

    def _release(self, key: _Key, conn: _Connection) -> None:
        if conn.usable and not self._closing:
            conn.idle_since = now = time.monotonic()
            self._idle.setdefault(key, []).append(conn)
            self._wake(key)
            if now - self._swept > self._idle_timeout:
                self._sweep(now)
        else:
            self._closed(key, conn)

    def _sweep(self, now: float) -> None:
        """Close the connections idle for longer than the idle timeout (reuse is most recent
        first, so those at the bottom of a list can sit unused while the load is low)."""
        self._swept = now
        for key, conns in self._idle.items():
            stale = [c for c in conns if not c.usable or now - c.idle_since >= self._idle_timeout]
            if stale:
                conns[:] = [c for c in conns if c not in stale]
                for conn in stale:
                    self._closed(key, conn)

    def _closed(self, key: _Key, conn: _Connection) -> None:
        if conn.transport is not None and not conn.transport.is_closing():
            conn.transport.close()
        self._open[key] = self._open.get(key, 1) - 1
        self._wake(key)

    def _wake(self, key: _Key) -> None:
        waiting = self._waiting.get(key)
        while waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
