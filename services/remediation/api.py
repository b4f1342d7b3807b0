"""The approval API: list remediations, show one with its audit trail, approve, reject, reset.

- `GET /api/v1/remediations[?state=pending]`: newest first;
- `GET /api/v1/remediations/{id}`: the remediation, with `audit` (its trail from PostgreSQL)
  when an audit DSN is configured;
- `POST /api/v1/remediations/{id}/approve` (202, the action starts in this process) and
  `/reject` (200), body optional: `{"by": "...", "comment": "..."}`;
- `GET /api/v1/remediations/circuit` and `POST /api/v1/remediations/circuit/reset`.

The actor recorded is the basic-auth user when there is one, else `by`, else "api". Errors are
JSON `{"error": ...}`: 400 bad body or state, 401 without credentials (when auth is
configured), 404 unknown id, 409 not pending or expired.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web

from schemas.remediation_flow import AuditRecord, Remediation, RemediationState
from services.remediation.approvals import Conflict, NotFound
from services.remediation.safety import CircuitState
from services.runtime.auth import Authenticator
from services.runtime.http import json_error

__all__ = ["RemediationAPI"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _Store(Protocol):
    async def find(
        self, state: RemediationState | None = None, limit: int = 500
    ) -> list[Remediation]: ...

    async def get(self, remediation_id: str) -> Remediation | None: ...


class _Audit(Protocol):
    @property
    def has_table(self) -> bool: ...

    async def trail(self, remediation_id: str) -> list[AuditRecord]: ...


class _Service(Protocol):
    """What the API needs of the remediation service."""

    @property
    def store(self) -> _Store: ...

    @property
    def audit(self) -> _Audit: ...

    async def approve(self, remediation_id: str, actor: str, comment: str = "") -> Remediation: ...

    async def reject(self, remediation_id: str, actor: str, comment: str = "") -> Remediation: ...

    async def circuit(self) -> CircuitState | None: ...

    async def reset_circuit(self, actor: str) -> CircuitState | None: ...


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")


def _circuit(state: CircuitState | None) -> dict[str, Any]:
    if state is None:
        return {"open": False}
    return {"open": True, "reason": state.reason, "openedAt": state.opened_at}


class _BadBody(ValueError):
    pass


class RemediationAPI:
    """The routes; mount them on any aiohttp application."""

    def __init__(self, service: _Service, auth: Authenticator) -> None:
        self._service = service
        self._auth = auth

    def routes(self) -> list[web.RouteDef]:
        """Every route of the API."""
        guard = self._guarded
        base = "/api/v1/remediations"
        return [
            web.get(base, guard(self.list_remediations)),
            web.get(f"{base}/circuit", guard(self.get_circuit)),
            web.post(f"{base}/circuit/reset", guard(self.reset_circuit)),
            web.get(base + "/{id}", guard(self.get)),
            web.post(base + "/{id}/approve", guard(self.approve)),
            web.post(base + "/{id}/reject", guard(self.reject)),
        ]

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            denied = self._auth.check(request)
            return denied if denied is not None else await handler(request)

        return guarded

    async def list_remediations(self, request: web.Request) -> web.Response:
        """The remediations, newest first; `state` keeps one state."""
        state_text = request.query.get("state")
        state = None
        if state_text:
            try:
                state = RemediationState(state_text)
            except ValueError:
                known = ", ".join(s.value for s in RemediationState)
                return json_error(400, f"unknown state {state_text!r} (one of {known})")
        found = await self._service.store.find(state)
        return _json([r.model_dump(mode="json") for r in found])

    async def get(self, request: web.Request) -> web.Response:
        """One remediation, with its audit trail when the audit table is configured."""
        remediation_id = request.match_info["id"]
        remediation = await self._service.store.get(remediation_id)
        if remediation is None:
            return json_error(404, f"remediation {remediation_id} not found")
        body = remediation.model_dump(mode="json")
        audit = self._service.audit
        if audit.has_table:
            trail = await audit.trail(remediation_id)
            body["audit"] = [r.model_dump(mode="json") for r in trail]
        return _json(body)

    async def approve(self, request: web.Request) -> web.Response:
        """Approve a pending remediation: 202, its action runs now in this process."""
        return await self._decide(request, approve=True)

    async def reject(self, request: web.Request) -> web.Response:
        """Reject a pending remediation."""
        return await self._decide(request, approve=False)

    async def _decide(self, request: web.Request, *, approve: bool) -> web.Response:
        remediation_id = request.match_info["id"]
        try:
            by, comment = await _decision_body(request)
        except _BadBody as exc:
            return json_error(400, str(exc))
        actor = _basic_user(request) or by or "api"
        decide = self._service.approve if approve else self._service.reject
        try:
            remediation = await decide(remediation_id, actor, comment)
        except NotFound as exc:
            return json_error(404, str(exc))
        except Conflict as exc:
            state = exc.state.value if exc.state is not None else None
            return json_error(409, exc.message, state=state)
        return _json(remediation.model_dump(mode="json"), 202 if approve else 200)

    async def get_circuit(self, _: web.Request) -> web.Response:
        """Whether the circuit is open, why and since when."""
        return _json(_circuit(await self._service.circuit()))

    async def reset_circuit(self, request: web.Request) -> web.Response:
        """Close the circuit so auto-remediation resumes; answers the state it had."""
        try:
            by, _ = await _decision_body(request)
        except _BadBody as exc:
            return json_error(400, str(exc))
        actor = _basic_user(request) or by or "api"
        was = await self._service.reset_circuit(actor)
        return _json({"open": False, "was": _circuit(was)})


async def _decision_body(request: web.Request) -> tuple[str, str]:
    raw = await request.read()
    if not raw.strip():
        return "", ""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _BadBody(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _BadBody('body must be a JSON object: {"by": "...", "comment": "..."}')
    unknown = sorted(set(body) - {"by", "comment"})
    if unknown:
        raise _BadBody(f"unknown field(s): {', '.join(unknown)} (allowed: by, comment)")
    by, comment = body.get("by", ""), body.get("comment", "")
    if not isinstance(by, str) or not isinstance(comment, str):
        raise _BadBody("by and comment must be strings")
    if len(by) > 200 or len(comment) > 2000:
        raise _BadBody("by (200) or comment (2000 characters) too long")
    return by, comment


def _basic_user(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, ValueError):
        return None
    user, sep, _ = decoded.partition(":")
    return user if sep and user else None
