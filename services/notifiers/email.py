"""Email: one multipart/alternative message over SMTP, built as Alertmanager 0.25 builds it
(AM `notify/email/email.go`): the same headers and encodings (Go's mime Q-encoding, its
quoted-printable writer, its multipart layout), a text part when `text` is set, then the HTML part.

Where Tocsin differs from 0.25, on purpose:

- Every template (from, to, headers, text, html) is rendered before connecting, so a template
  or address error sends nothing (0.25 could close DATA on a half-written message).
- SMTP replies are classified by code: 4xx (transient) is retryable, 5xx is not, whichever
  command got it; 0.25 retries every MAIL/RCPT/AUTH failure and ignores the reply to the end of
  DATA. Connection, TLS and timeout errors are retryable, as in 0.25.
- No usable AUTH mechanism, and PLAIN over an unencrypted connection to a host other than
  localhost (Go's smtp.PlainAuth refuses it too), are configuration errors: not retryable.
- Headers are written in a fixed order (Subject, To, From, then the configured ones); Go writes
  them in map order, which is random.

As in 0.25, `auth_password_file` is read on every send and not trimmed.
"""

from __future__ import annotations

import base64
import secrets
import socket
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.policy import default as _policy
from email.utils import format_datetime
from pathlib import Path

import aiosmtplib

from schemas.config.http import TLSConfig
from schemas.config.receivers.email import DEFAULT_SUBJECT, EmailConfig
from schemas.group import Notification
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.fields import notification_data
from services.notifiers.template import Data, TemplateError, TemplateSet
from services.notifiers.template.gofmt import go_quote

__all__ = ["EmailMessage", "EmailNotifier", "email_message", "q_encode", "quoted_printable"]

_UPPERHEX = "0123456789ABCDEF"
_MAX_WORD_CONTENT = 75 - len("=?UTF-8?q?") - len("?=")
_LINE_MAX = 76
_LOCALHOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}


def q_encode(value: str) -> str:
    """Go's `mime.QEncoding.Encode("utf-8", value)`: unchanged when it is printable ASCII (tabs
    allowed), else `=?utf-8?q?...?=` words of at most 75 characters, split between runes."""
    if all(" " <= ch <= "~" or ch == "\t" for ch in value):
        return value
    out = ["=?utf-8?q?"]
    length = 0
    for ch in value:
        if " " <= ch <= "~" and ch not in "=?_":
            encoded, size = ("_" if ch == " " else ch), 1
        else:
            encoded = "".join(f"={b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
            size = len(encoded)
        if length + size > _MAX_WORD_CONTENT:
            out.append("?= =?utf-8?q?")
            length = 0
        out.append(encoded)
        length += size
    out.append("?=")
    return "".join(out)


def quoted_printable(data: bytes) -> bytes:
    """Go's `mime/quotedprintable.Writer` (text mode): CR, LF and CRLF become CRLF, lines are
    cut at 76 characters with soft breaks, trailing blanks before a break are encoded."""
    out = bytearray()
    line = bytearray()
    cr = False

    def soft_break() -> None:
        line.extend(b"=\r\n")
        out.extend(line)
        line.clear()

    def encode(b: int) -> None:
        if _LINE_MAX - 1 - len(line) < 3:
            soft_break()
        line.extend(f"={_UPPERHEX[b >> 4]}{_UPPERHEX[b & 15]}".encode())

    def check_last() -> None:
        if line and line[-1] in b" \t":
            encode(line.pop())

    for b in data:
        if (0x21 <= b <= 0x7E and b != 0x3D) or b in b" \t\r\n":
            if b in b"\r\n":
                if cr and b == 0x0A:
                    cr = False
                    continue
                cr = b == 0x0D
                check_last()
                line.extend(b"\r\n")
                out.extend(line)
                line.clear()
                continue
            if len(line) == _LINE_MAX - 1:
                soft_break()
            line.append(b)
            cr = False
        else:
            encode(b)
    check_last()
    out.extend(line)
    return bytes(out)


def _part(boundary: str, first: bool, content_type: str, body: str) -> bytes:
    start = f"--{boundary}\r\n" if first else f"\r\n--{boundary}\r\n"
    head = (
        f"{start}Content-Transfer-Encoding: quoted-printable\r\n"
        f"Content-Type: {content_type}; charset=UTF-8\r\n\r\n"
    )
    return head.encode() + quoted_printable(body.encode("utf-8", "surrogateescape"))


def _addresses(value: str, what: str) -> list[str]:
    """net/mail.ParseAddressList, as far as Python's RFC 5322 parser agrees with it."""
    header = _policy.header_factory("To", value)
    found = [address.addr_spec for address in header.addresses]
    if header.defects or not found or not all("@" in a for a in found):
        detail = "; ".join(str(d) for d in header.defects) or "no address"
        message = f"parse {what!r} addresses: mail: {detail}"
        raise NotifyError(Reason.CONFIG, message, retryable=False)
    return found


class EmailMessage:
    """A rendered email: the envelope (sender, recipients) and the bytes after DATA."""

    def __init__(self, sender: str, recipients: list[str], content: bytes) -> None:
        self.sender = sender
        self.recipients = recipients
        self.content = content


def email_message(
    config: EmailConfig,
    templates: TemplateSet,
    data: Data,
    *,
    now_ns: int,
    hostname: str,
    boundary: str | None = None,
) -> EmailMessage:
    """Render and build the message Alertmanager 0.25 would send; NotifyError if a template
    or an address fails (not retryable)."""

    def render(text: str, what: str, *, html: bool = False) -> str:
        try:
            return (templates.render_html if html else templates.render)(text, data)
        except TemplateError as exc:
            raise NotifyError(Reason.TEMPLATE, f"execute {what}: {exc}", retryable=False) from None

    senders = _addresses(render(config.from_, "'from' template"), "from")
    if len(senders) != 1:
        message = f"must be exactly one 'from' address (got: {len(senders)})"
        raise NotifyError(Reason.CONFIG, message, retryable=False)
    recipients = _addresses(render(config.to, "'to' template"), "to")

    headers = {"Subject": DEFAULT_SUBJECT, "To": config.to, "From": config.from_}
    headers |= config.headers
    lines = [
        f"{name}: {q_encode(render(text, f'{go_quote(name)} header template'))}\r\n"
        for name, text in headers.items()
    ]
    if "Message-Id" not in headers:
        lines.append(f"Message-Id: <{now_ns}.{secrets.randbits(64)}@{hostname}>\r\n")
    boundary = boundary or secrets.token_hex(30)
    when = datetime.fromtimestamp(now_ns / 1e9, tz=UTC).astimezone()
    lines.append(f"Date: {format_datetime(when)}\r\n")
    lines.append(f"Content-Type: multipart/alternative;  boundary={boundary}\r\n")
    lines.append("MIME-Version: 1.0\r\n\r\n")

    body = b""
    if config.text:
        body += _part(boundary, True, "text/plain", render(config.text, "text template"))
    if config.html:
        html = render(config.html, "html template", html=True)
        body += _part(boundary, not body, "text/html", html)
    body += f"\r\n--{boundary}--\r\n".encode()
    return EmailMessage(senders[0], recipients, "".join(lines).encode() + body)


class _TLSContext(ssl.SSLContext):
    """A client context that verifies (and sends SNI for) `server_name`, whatever host name the
    connection was opened with: asyncio would use the smarthost's for implicit TLS."""

    server_name = ""

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        name = self.server_name or server_hostname
        return super().wrap_bio(incoming, outgoing, server_side, name, session)


def _tls_context(tls: TLSConfig, host: str) -> _TLSContext:
    """commoncfg.NewTLSConfig with ServerName defaulting to the smarthost's host."""
    try:
        context = _TLSContext(ssl.PROTOCOL_TLS_CLIENT)
        if tls.ca_file:
            context.load_verify_locations(cafile=tls.ca_file)
        else:
            context.load_default_certs()
        if tls.cert_file:
            context.load_cert_chain(tls.cert_file, tls.key_file or None)
    except (OSError, ssl.SSLError) as exc:
        message = f"parse TLS configuration: {type(exc).__name__}"
        raise NotifyError(Reason.CONFIG, message, retryable=False) from None
    if tls.min_version:
        context.minimum_version = _TLS_VERSIONS[tls.min_version]
    if tls.max_version:
        context.maximum_version = _TLS_VERSIONS[tls.max_version]
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.server_name = tls.server_name or host
    return context


def _split_host_port(smarthost: str) -> tuple[str, str]:
    host, _, port = smarthost.rpartition(":")
    return host.removeprefix("[").removesuffix("]"), port


def _reply_error(step: str, exc: aiosmtplib.SMTPResponseException) -> NotifyError:
    """4xx replies are transient (retryable), 5xx permanent."""
    message = f"{step}: {exc.code} {exc.message}"
    if 400 <= exc.code < 500:
        return NotifyError(Reason.SERVER_ERROR, message, retryable=True, status=exc.code)
    return NotifyError(Reason.CLIENT_ERROR, message, retryable=False, status=exc.code)


class EmailNotifier:
    """One `email_configs` entry; a connection per notification, as Alertmanager does."""

    def __init__(
        self,
        config: EmailConfig,
        templates: TemplateSet,
        *,
        timeout: float = 10.0,
        clock: Callable[[], int] = time.time_ns,
        hostname: str | None = None,
    ) -> None:
        self._config = config
        self._templates = templates
        self._timeout = timeout
        self._clock = clock
        self._hostname = hostname or socket.gethostname() or "localhost.localdomain"

    def __repr__(self) -> str:
        return f"EmailNotifier(smarthost={self._config.smarthost!r})"

    async def notify(self, notification: Notification) -> int:
        """Send; the SMTP reply code to the end of DATA on success, NotifyError otherwise."""
        data = notification_data(notification)
        message = email_message(
            self._config, self._templates, data, now_ns=self._clock(), hostname=self._hostname
        )
        host, port = _split_host_port(self._config.smarthost)
        if not port.isdigit():
            raise NotifyError(Reason.CONFIG, f"invalid smarthost port {port!r}", retryable=False)
        implicit = port == "465"
        smtp = aiosmtplib.SMTP(
            hostname=host,
            port=int(port),
            local_hostname=self._config.hello or "localhost",
            timeout=self._timeout,
            use_tls=implicit,
            start_tls=False,
            tls_context=_tls_context(self._config.tls_config, host) if implicit else None,
        )
        step = f"establish {'TLS ' if implicit else ''}connection to server"
        try:
            await smtp.connect()
            step = "send EHLO command"
            await _hello(smtp)
            if self._config.require_tls:
                step = "send STARTTLS command"
                await self._starttls(smtp, host)
            step = "authenticate"
            await self._auth(smtp, host, tls=implicit or self._config.require_tls)
            options, encoding = _mail_options(smtp)
            step = "send MAIL command"
            await smtp.mail(message.sender, options=options, encoding=encoding)
            step = "send RCPT command"
            for recipient in message.recipients:
                await smtp.rcpt(recipient, encoding=encoding)
            step = "send DATA command"
            reply = await smtp.data(message.content)
        except aiosmtplib.SMTPResponseException as exc:
            raise _reply_error(step, exc) from None
        except (TimeoutError, aiosmtplib.SMTPTimeoutError):
            raise NotifyError(Reason.TIMEOUT, f"{step}: timed out", retryable=True) from None
        except (OSError, aiosmtplib.SMTPException) as exc:
            detail = f"{step}: {type(exc).__name__}"
            raise NotifyError(Reason.CONNECTION, detail, retryable=True) from None
        except ValueError as exc:  # aiosmtplib refusing an address or a hello name
            detail = f"{step}: {exc}"
            raise NotifyError(Reason.CONFIG, detail, retryable=False) from None
        finally:
            await _quit(smtp)
        return reply.code

    async def _starttls(self, smtp: aiosmtplib.SMTP, host: str) -> None:
        if not smtp.supports_extension("starttls"):
            message = (
                "'require_tls' is true (default) but "
                f"{go_quote(self._config.smarthost)} does not advertise the STARTTLS extension"
            )
            raise NotifyError(Reason.CONNECTION, message, retryable=True)
        context = _tls_context(self._config.tls_config, host)
        await smtp.starttls(server_hostname=context.server_name, tls_context=context)
        await _hello(smtp)

    async def _auth(self, smtp: aiosmtplib.SMTP, host: str, *, tls: bool) -> None:
        """Alertmanager's mechanism choice: the server's order, the first one configured."""
        config = self._config
        if not smtp.supports_extension("auth") or not config.auth_username:
            return
        problems: list[str] = []
        for mechanism in smtp.esmtp_extensions["auth"].split():
            name = mechanism.upper()
            if name == "CRAM-MD5":
                secret = config.auth_secret.get_secret_value()
                if secret:
                    await smtp.auth_crammd5(config.auth_username, secret)
                    return
                problems.append("missing secret for CRAM-MD5 auth mechanism")
            elif name in ("PLAIN", "LOGIN"):
                password = self._password()
                if not password:
                    problems.append(f"missing password for {name} auth mechanism")
                    continue
                if name == "PLAIN":
                    if not tls and host not in _LOCALHOSTS:
                        message = "find auth mechanism: PLAIN over an unencrypted connection"
                        raise NotifyError(Reason.CONFIG, message, retryable=False)
                    await _auth_plain(smtp, config.auth_identity, config.auth_username, password)
                else:
                    await _auth_login(smtp, config.auth_username, password)
                return
        detail = "; ".join(problems) or "unknown auth mechanism: " + smtp.esmtp_extensions["auth"]
        raise NotifyError(Reason.CONFIG, f"find auth mechanism: {detail}", retryable=False)

    def _password(self) -> str:
        config = self._config
        if config.auth_password_file:
            try:
                return Path(config.auth_password_file).read_text(encoding="utf-8")
            except OSError as exc:
                message = f"could not read auth_password_file: {exc.strerror}"
                raise NotifyError(Reason.CONFIG, message, retryable=False) from None
        return config.auth_password.get_secret_value()


async def _hello(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:  # as Go's smtp.Client: fall back to HELO
        await smtp.helo()


def _mail_options(smtp: aiosmtplib.SMTP) -> tuple[list[str], str]:
    """Go's smtp.Client.Mail: BODY=8BITMIME and SMTPUTF8 when the server offers them."""
    options = []
    if smtp.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    if smtp.supports_extension("smtputf8"):
        options.append("SMTPUTF8")
        return options, "utf-8"
    return options, "ascii"


async def _auth_plain(smtp: aiosmtplib.SMTP, identity: str, username: str, password: str) -> None:
    """AUTH PLAIN with the authorization identity (aiosmtplib's auth_plain sends none)."""
    token = base64.b64encode(f"{identity}\0{username}\0{password}".encode()).decode()
    reply = await smtp.execute_command(b"AUTH", b"PLAIN", token.encode())
    if reply.code != 235:
        raise aiosmtplib.SMTPAuthenticationError(reply.code, reply.message)


async def _auth_login(smtp: aiosmtplib.SMTP, username: str, password: str) -> None:
    """AUTH LOGIN answering the server's prompts: `Username:` / `Password:` as Alertmanager's
    LoginAuth does, any other prompt by position (first the user, then the password), where
    Go would stop with "unexpected server challenge" (aiosmtpd asks for "User Name")."""
    reply = await smtp.execute_command(b"AUTH", b"LOGIN")
    for position in range(2):
        if reply.code != 334:
            break
        try:
            prompt = base64.b64decode(reply.message).decode().strip("\0 ").lower()
        except (ValueError, UnicodeDecodeError):
            prompt = ""
        wants_user = prompt == "username:" or (prompt != "password:" and position == 0)
        answer = username if wants_user else password
        reply = await smtp.execute_command(base64.b64encode(answer.encode()))
    if reply.code != 235:
        raise aiosmtplib.SMTPAuthenticationError(reply.code, reply.message)


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    if not smtp.is_connected:
        return
    try:
        await smtp.quit(timeout=1.0)
    except (OSError, aiosmtplib.SMTPException):
        smtp.close()
