"""Email: the contract against a real SMTP server (aiosmtpd: STARTTLS, AUTH), Alertmanager
0.25's message bytes, Go's encoders, TLS modes and how SMTP replies are classified."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import json
import re
import ssl
from contextlib import AbstractAsyncContextManager, AsyncExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from schemas.config.receivers.email import EmailConfig
from schemas.webhook import WebhookMessage
from services.notifiers.email import EmailNotifier, email_message, q_encode, quoted_printable
from services.notifiers.errors import NotifyError, Reason
from services.notifiers.job import Notifier
from services.notifiers.template import Data, TemplateSet, template_data
from services.runtime.embedded import free_port
from tests.notifiers import integrations_capture as rich
from tests.notifiers.alertmanager_capture import CAPTURE_FILE, EMAIL_HEADER
from tests.notifiers.contract import (
    STALL_FOR,
    TIMEOUT,
    NotifierContract,
    Outcome,
    StandIn,
    notification,
)

PASSWORD = "pa55-w0rd-secret"
TEMPLATES = TemplateSet.default()
CAPTURE = json.loads(CAPTURE_FILE.read_text())
RICH = json.loads(rich.CAPTURE_FILE.read_text())

REPLIES = {
    Outcome.OK: "250 OK",
    Outcome.SERVER_ERROR: "451 4.3.0 Try again later",
    Outcome.RATE_LIMITED: "452 4.5.3 Too many messages, slow down",
    Outcome.CLIENT_ERROR: "554 5.7.1 Message rejected",
}


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate(*rich.self_signed(tmp_path_factory.mktemp("tls")))


@dataclass
class SmtpStandIn:
    """An aiosmtpd server on loopback: STARTTLS when `tls` is set (or TLS from the first byte
    when `implicit`), AUTH for `users`, scripted replies to DATA, and what it received."""

    tls: ssl.SSLContext | None = None
    implicit: bool = False
    users: dict[str, str] = field(default_factory=dict)
    cram: bool = False  # offer CRAM-MD5 too
    exclude: tuple[str, ...] = ()
    auth_require_tls: bool = True
    host: str = "127.0.0.1"
    port: int = 0
    replies: dict[str, str] = field(default_factory=dict)  # MAIL / RCPT / AUTH overrides
    envelopes: list[Any] = field(default_factory=list)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    logins: list[tuple[str, str, str, str]] = field(default_factory=list)
    _script: list[Outcome] = field(default_factory=list)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def script(self, *outcomes: Outcome) -> None:
        self._script.extend(outcomes)

    @property
    def count(self) -> int:
        return len(self.envelopes)

    def message(self, index: int = -1) -> email.message.EmailMessage:
        raw = self.envelopes[index].original_content
        return email.message_from_bytes(raw, policy=email.policy.default)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:  # fmt: skip
        if "MAIL" in self.replies:
            return self.replies["MAIL"]
        envelope.mail_from, envelope.mail_options = address, options
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:  # fmt: skip
        if "RCPT" in self.replies:
            return self.replies["RCPT"]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.sessions.append({"tls": tls, "hello": session.host_name})
        outcome = self._script.pop(0) if self._script else Outcome.OK
        if outcome is Outcome.STALL:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), STALL_FOR)
            outcome = Outcome.OK
        return REPLIES[outcome]

    def _check(self, mechanism: str, identity: str, login: str, password: str) -> AuthResult:
        self.logins.append((mechanism, identity, login, password))
        if "AUTH" in self.replies:
            return AuthResult(success=False, handled=False, message=self.replies["AUTH"])
        return AuthResult(success=self.users.get(login) == password, handled=False)

    def _authenticator(self, server: Any, session: Any, envelope: Any, mechanism: str, data: LoginPassword) -> AuthResult:  # fmt: skip
        return self._check(mechanism, "", data.login.decode(), data.password.decode())

    async def auth_PLAIN(self, server: Any, args: list[str]) -> AuthResult:
        identity, login, password = base64.b64decode(args[1]).decode().split("\0")
        return self._check("PLAIN", identity, login, password)

    async def auth_CRAM__MD5(self, server: Any, args: list[str]) -> AuthResult:
        challenge = b"<1896.697170952@stand-in>"
        answer = await server.challenge_auth(challenge)
        login, digest = answer.decode().split(" ")
        secret = self.users.get(login, "")
        expected = hmac.new(secret.encode(), challenge, hashlib.md5).hexdigest()
        self.logins.append(("CRAM-MD5", "", login, digest))
        return AuthResult(success=hmac.compare_digest(digest, expected), handled=False)

    async def __aenter__(self) -> SmtpStandIn:
        exclude = [*self.exclude, *(() if self.cram else ("CRAM-MD5",))]

        def protocol() -> SMTP:
            return SMTP(
                self,
                hostname="stand-in",
                tls_context=None if self.implicit else self.tls,
                authenticator=self._authenticator,
                auth_exclude_mechanism=exclude,
                auth_require_tls=self.auth_require_tls,
            )

        self.port = self.port or free_port(self.host)
        ssl_context = self.tls if self.implicit else None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(protocol, self.host, self.port, ssl=ssl_context)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        self._server.close()
        await self._server.wait_closed()


def config(port: int, **fields: Any) -> EmailConfig:
    return EmailConfig.model_validate(
        {
            "to": "ops@example.org",
            "from": "am@example.org",
            "smarthost": f"127.0.0.1:{port}",
            "hello": "tocsin.test",
            "require_tls": False,
            **fields,
        }
    )


def notifier(port: int, **fields: Any) -> EmailNotifier:
    return EmailNotifier(config(port, **fields), TEMPLATES, timeout=TIMEOUT)


def data_of(webhook: dict[str, Any], receiver: str) -> Data:
    message = WebhookMessage.model_validate(webhook)
    return template_data(
        receiver, message.status, message.alerts, message.groupLabels, message.externalURL
    )


class TestEmailContract(NotifierContract):
    """STARTTLS with a CA file, AUTH with a password: the secret must never show."""

    secrets = (PASSWORD,)
    rate_limited_reason = Reason.SERVER_ERROR  # a 4xx reply: SMTP has no 429
    retry_after = False
    success_code = 250

    @pytest.fixture(autouse=True)
    def _certificate(self, certificate: Certificate) -> None:
        self.certificate = certificate

    def serve(self) -> AbstractAsyncContextManager[StandIn]:
        return SmtpStandIn(tls=self.certificate.server_context(), users={"alert": PASSWORD})

    async def open(self, port: int, stack: AsyncExitStack) -> Notifier:
        return notifier(
            port,
            require_tls=True,
            tls_config={"ca_file": str(self.certificate.cert)},
            auth_username="alert",
            auth_password=PASSWORD,
        )

    def sent_status(self, stand_in: StandIn) -> str:
        subject = str(cast(SmtpStandIn, stand_in).message()["Subject"])
        return "resolved" if subject.startswith("[RESOLVED]") else "firing"

    async def test_the_session_was_encrypted_and_authenticated(
        self, stand_in: StandIn, stack: AsyncExitStack
    ) -> None:
        await (await self.open(stand_in.port, stack)).notify(notification())
        smtp = cast(SmtpStandIn, stand_in)
        assert smtp.sessions == [{"tls": True, "hello": "tocsin.test"}]
        assert smtp.logins == [("LOGIN", "", "alert", PASSWORD)]


# Go's encoders -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("François-Jérôme", "=?utf-8?q?Fran=C3=A7ois-J=C3=A9r=C3=B4me?="),
        ("¡Hola, señor!", "=?utf-8?q?=C2=A1Hola,_se=C3=B1or!?="),
        ("", ""),
        ("Hello!", "Hello!"),
        ("123 456", "123 456"),
        ("\t !\"#$%&'()*+,-./ :;<>?@[\\]^_`{|}~", "\t !\"#$%&'()*+,-./ :;<>?@[\\]^_`{|}~"),
        ("a\nb", "=?utf-8?q?a=0Ab?="),
        ("é" * 30, "=?utf-8?q?" + "=C3=A9" * 10 + "?= =?utf-8?q?" + "=C3=A9" * 10 + "?= =?utf-8?q?" + "=C3=A9" * 10 + "?="),
    ],
    ids=["go-1", "go-example", "empty", "ascii", "go-spaces", "go-printable", "newline", "split-between-runes"],
)  # fmt: skip
def test_q_encoding_is_gos(value: str, encoded: str) -> None:
    """Go's mime.QEncoding.Encode("utf-8", ...) test vectors (src/mime/encodedword_test.go)."""
    assert q_encode(value) == encoded


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("", ""),
        ("foo bar", "foo bar"),
        ("foo bar=", "foo bar=3D"),
        ("foo bar\r", "foo bar\r\n"),
        ("foo bar\r\r", "foo bar\r\n\r\n"),
        ("foo bar\n", "foo bar\r\n"),
        ("foo bar\r\n", "foo bar\r\n"),
        ("foo bar\r\r\n", "foo bar\r\n\r\n"),
        ("foo bar ", "foo bar=20"),
        ("foo bar\t", "foo bar=09"),
        ("foo bar  ", "foo bar =20"),
        ("foo bar \n", "foo bar=20\r\n"),
        ("foo bar \r", "foo bar=20\r\n"),
        ("foo bar \r\n", "foo bar=20\r\n"),
        ("foo bar  \n", "foo bar =20\r\n"),
        ("foo bar  \n ", "foo bar =20\r\n=20"),
        ("¡Hola Señor!", "=C2=A1Hola Se=C3=B1or!"),
        ("\t !\"#$%&'()*+,-./ :;<>?@[\\]^_`{|}~", "\t !\"#$%&'()*+,-./ :;<>?@[\\]^_`{|}~"),
        ("a" * 75, "a" * 75),
        ("a" * 76, "a" * 75 + "=\r\na"),
        ("a" * 72 + "=", "a" * 72 + "=3D"),
        ("a" * 73 + "=", "a" * 73 + "=\r\n=3D"),
        ("a" * 74 + "=", "a" * 74 + "=\r\n=3D"),
        ("a" * 75 + "=", "a" * 75 + "=\r\n=3D"),
        (" " * 73, " " * 72 + "=20"),
        (" " * 74, " " * 73 + "=\r\n=20"),
        (" " * 75, " " * 74 + "=\r\n=20"),
        (" " * 76, " " * 75 + "=\r\n=20"),
        (" " * 77, " " * 75 + "=\r\n =20"),
    ],
)
def test_quoted_printable_is_gos(text: str, encoded: str) -> None:
    """Go's quotedprintable.Writer test vectors (src/mime/quotedprintable/writer_test.go)."""
    assert quoted_printable(text.encode()) == encoded.encode()


# Byte identity with Alertmanager 0.25 -------------------------------------------------------
def _volatile_free(raw: str) -> tuple[list[str], str]:
    """Header lines in a fixed order without Message-Id and Date (random / local time), body."""
    head, _, body = raw.partition("\r\n\r\n")
    lines = [line for line in head.split("\r\n") if not line.startswith(("Message-Id:", "Date:"))]
    return sorted(lines), body


@pytest.mark.parametrize("phase", [0, 1], ids=["firing", "resolved"])
def test_message_is_alertmanagers_bytes(phase: int) -> None:
    """Raw bytes from the wire: Q-encoded and split headers, a Q-encoded From, canonical header
    names, the text part (CRLF, trailing blanks, soft breaks) and a custom HTML part."""
    raw = RICH["email"][phase]
    boundary = re.search(r"boundary=(\w+)", raw)
    message_id = re.search(r"Message-Id: <(\d+)\.\d+@([^>]+)>", raw)
    assert boundary
    assert message_id
    sent = email_message(
        EmailConfig.model_validate({"smarthost": "127.0.0.1:25", **rich.EMAIL}),
        TEMPLATES,
        data_of(RICH["webhook"][phase], "rich"),
        now_ns=int(message_id.group(1)),
        hostname=message_id.group(2),
        boundary=boundary.group(1),
    )
    assert _volatile_free(sent.content.decode("ascii")) == _volatile_free(raw)
    assert (sent.sender, sent.recipients) == (
        "am@example.org",
        ["ops@example.org", "two@example.org"],
    )
    assert re.search(
        r"\r\nMessage-Id: <\d+\.\d+@[^>]+>\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n"
        r"Content-Type: multipart/alternative;  boundary=\w{60}\r\nMIME-Version: 1.0\r\n\r\n",
        raw,
    )  # fmt: skip


RECORDS = CAPTURE["records"]


@pytest.mark.parametrize("record", RECORDS, ids=[r["scenario"] for r in RECORDS])
def test_default_headers_are_alertmanagers(record: dict[str, Any]) -> None:
    """Subject, To, From and a templated header of the 8 captured scenarios."""
    name = record["scenario"]
    email_config = EmailConfig.model_validate(
        {
            "to": f"{name}@example.org",
            "from": "am@example.org",
            "smarthost": "127.0.0.1:25",
            "headers": {"X-Tocsin-Test": EMAIL_HEADER},
        }
    )
    sent = email_message(
        email_config,
        TEMPLATES,
        data_of(record["webhook"], record["receiver"]),
        now_ns=0,
        hostname="h",
    )
    parsed = email.message_from_bytes(sent.content, policy=email.policy.default)
    assert {key: str(parsed[key]) for key in record["email"]} == record["email"]


def test_without_text_only_the_html_part_is_sent() -> None:
    sent = email_message(config(25), TEMPLATES, data_of(RECORDS[0]["webhook"], "single"), now_ns=0, hostname="h")  # fmt: skip
    parsed = email.message_from_bytes(sent.content, policy=email.policy.default)
    parts = [part.get_content_type() for part in parsed.iter_parts()]
    assert (parsed.get_content_type(), parts) == ("multipart/alternative", ["text/html"])


# SMTP: the session ---------------------------------------------------------------------------
async def test_one_rcpt_per_address_and_bare_envelope_addresses() -> None:
    async with SmtpStandIn() as smtp:
        to = "ops@example.org, Second <two@example.org>"
        await notifier(smtp.port, to=to, **{"from": "AM <am@example.org>"}).notify(notification())
    envelope = smtp.envelopes[0]
    assert (envelope.mail_from, envelope.rcpt_tos) == ("am@example.org", ["ops@example.org", "two@example.org"])  # fmt: skip
    assert "BODY=8BITMIME" in envelope.mail_options
    assert smtp.sessions == [{"tls": False, "hello": "tocsin.test"}]
    assert smtp.message()["To"] == to


async def test_require_tls_needs_starttls_on_offer() -> None:
    async with SmtpStandIn() as smtp:
        with pytest.raises(NotifyError) as caught:
            await notifier(smtp.port, require_tls=True).notify(notification())
    assert (caught.value.reason, caught.value.retryable) == (Reason.CONNECTION, True)
    assert str(caught.value) == (
        f"'require_tls' is true (default) but \"127.0.0.1:{smtp.port}\" does not advertise "
        "the STARTTLS extension"
    )


async def test_without_require_tls_starttls_is_not_used(certificate: Certificate) -> None:
    async with SmtpStandIn(tls=certificate.server_context()) as smtp:
        await notifier(smtp.port).notify(notification())
    assert smtp.sessions[0]["tls"] is False


@pytest.mark.parametrize(
    ("tls_config", "delivered"),
    [({}, False), ({"insecure_skip_verify": True}, True), ("ca", True), ("ca-wrong-name", False)],
    ids=["unknown-ca", "insecure-skip-verify", "ca-file", "server-name-mismatch"],
)
async def test_starttls_verifies_the_server(
    certificate: Certificate, tls_config: Any, delivered: bool
) -> None:
    if tls_config == "ca":
        tls_config = {"ca_file": str(certificate.cert)}
    elif tls_config == "ca-wrong-name":
        tls_config = {"ca_file": str(certificate.cert), "server_name": "other.example"}
    async with SmtpStandIn(tls=certificate.server_context()) as smtp:
        send = notifier(smtp.port, require_tls=True, tls_config=tls_config).notify(notification())
        if delivered:
            assert await send == 250
        else:
            with pytest.raises(NotifyError) as caught:
                await send
            assert (caught.value.reason, caught.value.retryable) == (Reason.CONNECTION, True)
    assert smtp.count == int(delivered)


async def test_port_465_is_tls_from_the_first_byte(certificate: Certificate) -> None:
    """Implicit TLS on 127.0.0.2:465; `server_name` names the certificate's host."""
    try:
        stand_in = SmtpStandIn(tls=certificate.server_context(), implicit=True, host="127.0.0.2", port=465)  # fmt: skip
        await stand_in.__aenter__()
    except OSError as exc:
        pytest.skip(f"cannot listen on 127.0.0.2:465 here: {exc}")
    try:
        email_config = config(465, tls_config={"ca_file": str(certificate.cert), "server_name": "localhost"})  # fmt: skip
        email_config = email_config.model_copy(update={"smarthost": "127.0.0.2:465"})
        await EmailNotifier(email_config, TEMPLATES, timeout=TIMEOUT).notify(notification())
    finally:
        await stand_in.__aexit__()
    assert stand_in.sessions[0]["tls"] is True


# SMTP: authentication ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("offered", "fields", "login"),
    [
        ({}, {}, ("LOGIN", "", "alert", PASSWORD)),
        ({"exclude": ("LOGIN",)}, {"auth_identity": "boss"}, ("PLAIN", "boss", "alert", PASSWORD)),
        ({"cram": True}, {"auth_secret": PASSWORD}, ("CRAM-MD5", "", "alert", "digest")),
        ({"cram": True}, {}, ("LOGIN", "", "alert", PASSWORD)),
    ],
    ids=["login-first-in-server-order", "plain-with-identity", "cram-md5-with-secret", "cram-md5-without-secret"],
)  # fmt: skip
async def test_auth_mechanism_follows_the_servers_order(
    certificate: Certificate,
    offered: dict[str, Any],
    fields: dict[str, Any],
    login: tuple[str, ...],
) -> None:
    async with SmtpStandIn(tls=certificate.server_context(), users={"alert": PASSWORD}, **offered) as smtp:  # fmt: skip
        auth = {"auth_username": "alert", "auth_password": PASSWORD, **fields}
        tls = {"insecure_skip_verify": True}
        await notifier(smtp.port, require_tls=True, tls_config=tls, **auth).notify(notification())
    assert smtp.count == 1
    got = smtp.logins[0]
    assert got[:3] == login[:3]
    assert got[3] == login[3] or login[0] == "CRAM-MD5"


@pytest.mark.parametrize(
    ("reply", "password", "reason", "retryable"),
    [
        (None, "wrong", Reason.CLIENT_ERROR, False),
        ("454 4.7.0 Temporary authentication failure", PASSWORD, Reason.SERVER_ERROR, True),
    ],
    ids=["535-rejected", "454-temporary"],
)
async def test_auth_failures(
    certificate: Certificate, reply: str | None, password: str, reason: Reason, retryable: bool
) -> None:
    replies = {"AUTH": reply} if reply else {}
    async with SmtpStandIn(tls=certificate.server_context(), users={"alert": PASSWORD}, replies=replies) as smtp:  # fmt: skip
        tls = {"insecure_skip_verify": True}
        send = notifier(smtp.port, require_tls=True, tls_config=tls, auth_username="alert", auth_password=password)  # fmt: skip
        with pytest.raises(NotifyError) as caught:
            await send.notify(notification())
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert password not in str(caught.value)
    assert smtp.count == 0


async def test_password_file_is_read_as_is(certificate: Certificate, tmp_path: Path) -> None:
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD)
    async with SmtpStandIn(tls=certificate.server_context(), users={"alert": PASSWORD}) as smtp:
        tls = {"insecure_skip_verify": True}
        auth = {"auth_username": "alert", "auth_password_file": str(password_file)}
        await notifier(smtp.port, require_tls=True, tls_config=tls, **auth).notify(notification())
    assert smtp.logins == [("LOGIN", "", "alert", PASSWORD)]


@pytest.mark.parametrize(("host", "sent"), [("127.0.0.1", True), ("127.0.0.2", False)])
async def test_plain_is_refused_without_tls_except_to_localhost(host: str, sent: bool) -> None:
    """Go's smtp.PlainAuth sends a password in clear only to localhost/127.0.0.1/::1."""
    users = {"alert": PASSWORD}
    async with SmtpStandIn(users=users, exclude=("LOGIN",), host=host, auth_require_tls=False) as smtp:  # fmt: skip
        email_config = config(smtp.port, auth_username="alert", auth_password=PASSWORD)
        email_config = email_config.model_copy(update={"smarthost": f"{host}:{smtp.port}"})
        send = EmailNotifier(email_config, TEMPLATES, timeout=TIMEOUT).notify(notification())
        if sent:
            assert await send == 250
        else:
            with pytest.raises(NotifyError) as caught:
                await send
            assert (caught.value.reason, caught.value.retryable) == (Reason.CONFIG, False)
    assert (smtp.count, len(smtp.logins)) == (int(sent), int(sent))


# SMTP: replies --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "reply", "reason", "retryable"),
    [
        ("MAIL", "451 4.7.1 Greylisted, try again", Reason.SERVER_ERROR, True),
        ("MAIL", "550 5.7.1 Sender rejected", Reason.CLIENT_ERROR, False),
        ("RCPT", "450 4.2.1 Mailbox busy", Reason.SERVER_ERROR, True),
        ("RCPT", "550 5.1.1 No such user", Reason.CLIENT_ERROR, False),
    ],
    ids=["mail-451", "mail-550", "rcpt-450", "rcpt-550"],
)
async def test_replies_4xx_are_retryable_5xx_are_not(
    command: str, reply: str, reason: Reason, retryable: bool
) -> None:
    async with SmtpStandIn(replies={command: reply}) as smtp:
        with pytest.raises(NotifyError) as caught:
            await notifier(smtp.port).notify(notification())
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert str(caught.value).startswith(f"send {command} command: {reply[:3]}")
    assert caught.value.status == int(reply[:3])


@pytest.mark.parametrize(
    ("fields", "reason", "text"),
    [
        ({"from": "a@example.org, b@example.org"}, Reason.CONFIG, "must be exactly one 'from' address (got: 2)"),
        ({"to": "not an address"}, Reason.CONFIG, "parse 'to' addresses"),
        ({"headers": {"X-Bad": "{{ humanize 1 }}"}}, Reason.TEMPLATE, 'execute "X-Bad" header template'),
        ({"html": "{{ .Nope }}"}, Reason.TEMPLATE, "execute html template"),
    ],
    ids=["two-from", "bad-to", "header-template", "html-template"],
)  # fmt: skip
async def test_template_and_address_errors_send_nothing(
    fields: dict[str, Any], reason: Reason, text: str
) -> None:
    async with SmtpStandIn() as smtp:
        with pytest.raises(NotifyError) as caught:
            await notifier(smtp.port, **fields).notify(notification())
    assert (caught.value.reason, caught.value.retryable) == (reason, False)
    assert text in str(caught.value)
    assert smtp.count == 0
