"""URL and `host:port` checks with the messages of Go's net/url, net and Alertmanager's config."""

from __future__ import annotations

import re

from schemas.config._gostr import go_quote

__all__ = ["check_host_port", "check_url", "check_url_syntax"]

_HOST_OK = frozenset("!$&'()*+,;=:[]<>\"-_.~")
_PORT = re.compile(r"(?::[0-9]*)?")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class _ParseError(ValueError):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason + detail)
        self.reason = reason


def _unescape(text: str, host: bool = False) -> None:
    bad = _BAD_ESCAPE.search(text)
    if bad is not None:
        raise _ParseError("invalid URL escape", " " + go_quote(text[bad.start() : bad.start() + 3]))
    if host:
        for ch in text:
            if ch < "\x80" and not ch.isalnum() and ch not in _HOST_OK and ch != "%":
                raise _ParseError("invalid character", f" {go_quote(ch)} in host name")


def _split_scheme(raw: str) -> tuple[str, str]:
    for i, ch in enumerate(raw):
        if ch.isascii() and ch.isalpha():
            continue
        if ch.isascii() and (ch.isdigit() or ch in "+-."):
            if i == 0:
                return "", raw
            continue
        if ch == ":":
            if i == 0:
                raise _ParseError("missing protocol scheme")
            return raw[:i].lower(), raw[i + 1 :]
        return "", raw
    return "", raw


def _parse_host(authority: str) -> str:
    host = authority[authority.rfind("@") + 1 :]
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise _ParseError("missing ']' in host")
        port = host[end + 1 :]
    else:
        colon = host.rfind(":")
        port = host[colon:] if colon >= 0 else ""
    if not _PORT.fullmatch(port):
        raise _ParseError("invalid port", f" {go_quote(port)} after host")
    _unescape(host, host=True)
    return host


def _parse(raw: str) -> tuple[str, str]:
    """Scheme and host of `raw` as Go's url.Parse finds them; _ParseError where Go fails."""
    if any(ch < " " or ch == "\x7f" for ch in raw):
        raise _ParseError("net/url: invalid control character in URL")
    raw, _, fragment = raw.partition("#")
    scheme, rest = _split_scheme(raw)
    rest = rest.partition("?")[0]
    if not rest.startswith("/"):
        if scheme:
            return scheme, ""  # opaque, like mailto:x
        if ":" in rest.partition("/")[0]:
            raise _ParseError("first path segment in URL cannot contain colon")
    host = ""
    if rest.startswith("//") and (scheme or not rest.startswith("///")):
        authority, slash, path = rest[2:].partition("/")
        host, rest = _parse_host(authority), slash + path
    _unescape(rest)
    _unescape(fragment)
    return scheme, host


def check_url(raw: str, *, secret: bool = False) -> str:
    """`raw` if it is an http(s) URL with a host, else ValueError (never quoting a secret URL)."""
    try:
        scheme, host = _parse(raw)
    except _ParseError as exc:
        if secret:
            raise ValueError(f'parse "<secret>": {exc.reason}') from None
        raise ValueError(f"parse {go_quote(raw)}: {exc}") from None
    if scheme not in ("http", "https"):
        raise ValueError(f"unsupported scheme {go_quote(scheme)} for URL")
    if not host:
        raise ValueError("missing host for URL")
    return raw


def check_url_syntax(raw: str) -> str:
    """`raw` if Go's url.Parse takes it (any scheme), else ValueError that does not quote it."""
    try:
        _parse(raw)
    except _ParseError as exc:
        raise ValueError(f'parse "<secret>": {exc.reason}') from None
    return raw


def _address_error(address: str, why: str) -> ValueError:
    return ValueError(f"address {address}: {why}" if address else why)


def check_host_port(address: str) -> str:
    """`address` when empty or a valid `host:port` (Go's net.SplitHostPort), else ValueError."""
    if not address:
        return address
    colon = address.rfind(":")
    if colon < 0:
        raise _address_error(address, "missing port in address")
    start, after_host = 0, 0
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise _address_error(address, "missing ']' in address")
        if end + 1 == len(address):
            raise _address_error(address, "missing port in address")
        if end + 1 != colon:
            if address[end + 1] == ":":
                raise _address_error(address, "too many colons in address")
            raise _address_error(address, "missing port in address")
        start, after_host = 1, end + 1
    elif ":" in address[:colon]:
        raise _address_error(address, "too many colons in address")
    if "[" in address[start:]:
        raise _address_error(address, "unexpected '[' in address")
    if "]" in address[after_host:]:
        raise _address_error(address, "unexpected ']' in address")
    if colon == len(address) - 1:
        raise ValueError(f"address {go_quote(address)}: port cannot be empty")
    return address
