"""`tocsin remediation list|show|approve|reject|circuit-reset`: clients of the approval API.

They talk to a running `tocsin remediation` (or `tocsin run` with a policy) over HTTP, as amtool
talks to Alertmanager: `--remediation.url` (env `TOCSIN_REMEDIATION_URL`, default
http://127.0.0.1:9095), credentials from `--bearer-token-file` / `TOCSIN_API_TOKEN` or
`--username` with `--password-file` / `TOCSIN_API_PASSWORD`.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

__all__ = ["CLIENT_COMMANDS", "add_client_commands", "run_command"]

CLIENT_COMMANDS = ("list", "show", "approve", "reject", "circuit-reset")
_DEFAULT_URL = "http://127.0.0.1:9095"
_COLUMNS = ("ID", "STATE", "MODE", "RULE", "ACTION", "TARGET", "ALERT", "CREATED", "EXPIRES/BY")


def _client_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("API client")
    group.add_argument(
        "--remediation.url", dest="remediation_url", metavar="URL",
        default=os.environ.get("TOCSIN_REMEDIATION_URL", _DEFAULT_URL),
        help=f"URL of the remediation API [env: TOCSIN_REMEDIATION_URL; default: {_DEFAULT_URL}]",
    )  # fmt: skip
    group.add_argument(
        "--bearer-token-file", type=Path, default=None, metavar="FILE",
        help="file holding the API's Bearer token [env: TOCSIN_API_TOKEN, the token itself]",
    )  # fmt: skip
    group.add_argument(
        "--username", default=os.environ.get("TOCSIN_API_USERNAME"),
        help="basic-auth user; recorded as who decided [env: TOCSIN_API_USERNAME]",
    )  # fmt: skip
    group.add_argument(
        "--password-file", type=Path, default=None, metavar="FILE",
        help="file holding the basic-auth password [env: TOCSIN_API_PASSWORD]",
    )  # fmt: skip
    group.add_argument(
        "-o", "--output", choices=("table", "json"), default="table", help="output format"
    )


def add_client_commands(parser: argparse.ArgumentParser) -> None:
    """Add the client subcommands to the `remediation` parser (none given: run the service)."""
    sub = parser.add_subparsers(dest="remediation_command", metavar="COMMAND")
    listing = sub.add_parser("list", help="list remediations (newest first)")
    listing.add_argument("--state", default=None, help="only this state, e.g. pending")
    _client_flags(listing)
    show = sub.add_parser("show", help="one remediation, with its audit trail when stored")
    show.add_argument("id", metavar="ID")
    _client_flags(show)
    for name, verb in (("approve", "approve (its action runs at once)"), ("reject", "reject")):
        decide = sub.add_parser(name, help=f"{verb} a pending remediation")
        decide.add_argument("id", metavar="ID")
        decide.add_argument("--by", default=None, help="who decides (default: the API user)")
        decide.add_argument("--comment", default="", help="why, for the audit trail")
        _client_flags(decide)
    reset = sub.add_parser(
        "circuit-reset", help="close the circuit so that auto-remediation resumes"
    )
    reset.add_argument("--by", default=None, help="who resets (default: the API user)")
    _client_flags(reset)


def _headers(args: argparse.Namespace) -> dict[str, str]:
    token = None
    if args.bearer_token_file is not None:
        token = args.bearer_token_file.read_text(encoding="utf-8").strip()
    token = token or os.environ.get("TOCSIN_API_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    if args.username:
        password = ""
        if args.password_file is not None:
            password = args.password_file.read_text(encoding="utf-8").strip()
        password = password or os.environ.get("TOCSIN_API_PASSWORD", "")
        raw = f"{args.username}:{password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    return {}


class _ApiError(Exception):
    pass


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, body: dict[str, Any] | None = None
) -> Any:
    data = orjson.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    async with http.request(method, url, data=data, headers=headers) as response:
        raw = await response.read()
        try:
            answer = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            answer = raw.decode(errors="replace")
        if response.status >= 400:
            message = answer.get("error") if isinstance(answer, dict) else answer
            raise _ApiError(f"{response.status}: {message}")
        return answer


def _row(r: dict[str, Any]) -> tuple[str, ...]:
    last = r.get("expiresAt") if r.get("state") == "pending" else r.get("decidedBy")
    return (
        r["id"], r["state"], r["mode"], r["rule"], r["action"], r["target"] or "-",
        r.get("alertname") or r["fingerprint"], r["createdAt"], last or "-",
    )  # fmt: skip


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(_COLUMNS, *rows, strict=False)
    ]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in [_COLUMNS, *rows]]  # fmt: skip
    return "\n".join(lines)


def _print(args: argparse.Namespace, value: Any, text: str) -> None:
    if args.output == "json":
        sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(text + "\n")


async def run_command(args: argparse.Namespace) -> int:
    """Run one client command; the exit status (1 when the API refused or was unreachable)."""
    base = args.remediation_url.rstrip("/") + "/api/v1/remediations"
    command = args.remediation_command
    try:
        headers = _headers(args)
    except OSError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return 2
    timeout = aiohttp.ClientTimeout(total=30)
    try:
        async with aiohttp.ClientSession(headers=headers, timeout=timeout) as http:
            return await _dispatch(http, base, command, args)
    except _ApiError as exc:
        print(f"tocsin: {command}: {exc}", file=sys.stderr)
    except (aiohttp.ClientError, TimeoutError) as exc:
        print(f"tocsin: cannot reach {args.remediation_url}: {exc}", file=sys.stderr)
    return 1


async def _dispatch(
    http: aiohttp.ClientSession, base: str, command: str, args: argparse.Namespace
) -> int:
    if command == "list":
        url = f"{base}?{urlencode({'state': args.state})}" if args.state else base
        found = await _call(http, "GET", url)
        _print(args, found, _table([_row(r) for r in found]))
    elif command == "show":
        found = await _call(http, "GET", f"{base}/{args.id}")
        lines = [_table([_row(found)])]
        if found.get("detail"):
            lines.append(f"detail: {found['detail']}")
        for record in found.get("audit", []):
            lines.append(f"{record['at']}  {record['event']:<18}  {record['actor']}")
        _print(args, found, "\n".join(lines))
    elif command in ("approve", "reject"):
        body: dict[str, Any] = {"comment": args.comment}
        if args.by:
            body["by"] = args.by
        found = await _call(http, "POST", f"{base}/{args.id}/{command}", body)
        verb = "approved" if command == "approve" else "rejected"
        text = f"{verb} {found['id']} ({found['action']} on {found['target']}): {found['state']}"
        _print(args, found, text)
    else:
        body = {"by": args.by} if args.by else {}
        found = await _call(http, "POST", f"{base}/circuit/reset", body)
        was = found["was"]
        text = f"circuit closed (was open: {was['reason']})" if was["open"] else (
            "circuit closed (it was not open)"
        )  # fmt: skip
        _print(args, found, text)
    return 0
