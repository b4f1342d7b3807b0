"""HTTP for the integrations: one pooled session, `http_config` applied, responses classified."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from schemas.config.http import HTTPConfig
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.fields import read_file
from services.notifiers.keepalive import HttpResponse, KeepAlivePool

__all__ = ["HttpSender", "retry_after_seconds"]

USER_AGENT = "Alertmanager/0.25.0"


def retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HttpSender:
    """POSTs over kept-alive connections (reused across notifications).

    Most go through `KeepAlivePool`, a small HTTP/1.1 client that costs a fraction of aiohttp's
    request machinery per notification; requests through a proxy, and redirects to follow, go
    through aiohttp's client.
    """

    def __init__(self, timeout: float = 10.0) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._total = timeout
        self._ssl: dict[tuple[str, str, str, bool], ssl.SSLContext] = {}
        self._pool = KeepAlivePool(limit_per_host=64, user_agent=USER_AGENT)

    async def close(self) -> None:
        """Close the pools."""
        self._pool.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _session_for_use(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=256, limit_per_host=64),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    def _ssl_for(self, config: HTTPConfig) -> ssl.SSLContext | bool:
        tls = config.tls_config
        if not (tls.ca_file or tls.cert_file or tls.insecure_skip_verify):
            return True
        # By the settings, not the object: a reloaded config reuses the context, and a freed
        # config's id() can never hand its context to another one.
        key = (tls.ca_file, tls.cert_file, tls.key_file, tls.insecure_skip_verify)
        if key not in self._ssl:
            context = ssl.create_default_context(cafile=tls.ca_file or None)
            if tls.cert_file:
                context.load_cert_chain(tls.cert_file, tls.key_file or None)
            if tls.insecure_skip_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._ssl[key] = context
        return self._ssl[key]

    def _auth(self, config: HTTPConfig) -> dict[str, str]:
        header = config.authorization_header
        if header is not None:
            kind, credentials, credentials_file = header
            secret = credentials.get_secret_value() or (
                read_file(credentials_file, "credentials_file") if credentials_file else ""
            )
            return {"Authorization": f"{kind} {secret}"}
        basic = config.basic_auth
        if basic is not None:
            password = basic.password.get_secret_value() or (
                read_file(basic.password_file, "password_file") if basic.password_file else ""
            )
            auth = aiohttp.BasicAuth(basic.username, password)
            return {"Authorization": auth.encode()}
        return {}

    async def post(
        self,
        url: str,
        body: bytes,
        config: HTTPConfig,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, str]:
        """POST `body`; (status, text) for a 2xx, else NotifyError classified for the retry stage.

        5xx and 429 are retryable (with Retry-After), other 4xx are not; connection problems and
        timeouts are retryable. Error messages carry the status and body, never the URL.
        """
        all_headers = {"Content-Type": content_type, **self._auth(config), **(headers or {})}
        proxy = config.proxy_url.get_secret_value() or None
        tls = self._ssl_for(config)
        response: HttpResponse | None = None
        if proxy is None:
            try:
                response = await self._pool.post(url, body, all_headers, self._total, tls)
            except ValueError:  # a URL or header the small client does not take: aiohttp's
                pass
            except TimeoutError:
                raise NotifyError(Reason.TIMEOUT, "request timed out", retryable=True) from None
            except OSError as exc:  # ConnectionError, refused, unreachable, TLS failures
                raise NotifyError(
                    Reason.CONNECTION, f"connection failed: {type(exc).__name__}", retryable=True
                ) from None
            if (
                response is not None
                and response.status in _REDIRECTS
                and config.follow_redirects
                and "location" in response.headers
            ):
                response = None  # aiohttp follows it, as Go's client would
        if response is not None:
            status = response.status
            text = response.text()
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
        else:
            status, text, retry_after = await self._post_aiohttp(
                url, body, config, all_headers, proxy, tls
            )
        if 200 <= status < 300:
            return status, text
        detail = f"unexpected status code {status}: {text[:300]}"
        if status == 429:
            raise NotifyError(
                Reason.RATE_LIMITED, detail, retryable=True, retry_after=retry_after, status=status
            )
        if status >= 500:
            raise NotifyError(
                Reason.SERVER_ERROR, detail, retryable=True, retry_after=retry_after, status=status
            )
        raise NotifyError(Reason.CLIENT_ERROR, detail, retryable=False, status=status)

    async def _post_aiohttp(
        self,
        url: str,
        body: bytes,
        config: HTTPConfig,
        all_headers: dict[str, str],
        proxy: str | None,
        tls: ssl.SSLContext | bool,
    ) -> tuple[int, str, float | None]:
        session = self._session_for_use()
        kwargs: dict[str, Any] = {"ssl": tls, "proxy": proxy}
        try:
            async with session.post(
                url,
                data=body,
                headers=all_headers,
                allow_redirects=config.follow_redirects,
                **kwargs,
            ) as response:
                text = await response.text(errors="replace")
                status = response.status
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        except TimeoutError:
            raise NotifyError(Reason.TIMEOUT, "request timed out", retryable=True) from None
        except aiohttp.ClientError as exc:
            raise NotifyError(
                Reason.CONNECTION, f"connection failed: {type(exc).__name__}", retryable=True
            ) from None
        return status, text, retry_after
