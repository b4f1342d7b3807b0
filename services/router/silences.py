"""Silences: Alertmanager 0.25's create/update/expire rules, states, API shape, and muting."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import re2

from schemas.alert import label_name_ok
from schemas.config._gostr import go_quote
from schemas.config.matchers import _GO_WORDING, Matcher, MatcherError, MatchType, matches_all
from services.router._silence_api import SilenceError, decode_postable

__all__ = [
    "NOT_FOUND",
    "Silence",
    "SilenceError",
    "SilenceState",
    "Silencer",
    "api_sort",
    "api_state",
    "api_time",
    "expire",
    "from_json",
    "matches",
    "parse_silence_id",
    "state",
    "to_api",
    "to_json",
    "validate_postable",
]

SilenceState = Literal["pending", "active", "expired"]
NOT_FOUND = "silence not found"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RETENTION_S = 120 * 3600.0
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence; matchers keep their posted order and regexes are anchored when matching."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_ns: int
    ends_ns: int
    created_by: str
    comment: str
    updated_ns: int


def state(silence: Silence, now_ns: int) -> SilenceState:
    """The state that decides muting: active from startsAt to endsAt, both included."""
    if now_ns < silence.starts_ns:
        return "pending"
    if now_ns > silence.ends_ns:
        return "expired"
    return "active"


def api_state(silence: Silence, now_ns: int) -> SilenceState:
    """The state the API shows and sorts by, where endsAt itself already counts as expired."""
    if now_ns < silence.starts_ns:
        return "pending"
    if now_ns < silence.ends_ns:
        return "active"
    return "expired"


def matches(silence: Silence, labels: Mapping[str, str]) -> bool:
    """Whether every matcher of the silence matches `labels` (a missing label reads as "")."""
    return matches_all(silence.matchers, labels)


def _regex_problem(pattern: str) -> str | None:
    # Alertmanager validates the pattern as written (unanchored), with Go's error wording.
    try:
        re2.compile(pattern, options=_RE2_OPTIONS)
    except re2.error as exc:
        raw = exc.args[0]
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        code, _, arg = text.partition(": ")
        return f"error parsing regexp: {_GO_WORDING.get(code, code)}: `{arg}`"
    return None


def _matches_empty(type_: MatchType, value: str) -> bool:
    # Only `=` and `=~` can "match the empty string" here: `!=` and `!~` never count, which is
    # why a silence made only of negative matchers is accepted.
    if type_ is MatchType.EQUAL:
        return value == ""
    if type_ is MatchType.REGEXP:
        return re2.search(value, "", options=_RE2_OPTIONS) is not None
    return False


def _build_matchers(raw: list[tuple[str, str, bool, bool]]) -> tuple[Matcher, ...]:
    built: list[Matcher] = []
    all_match_empty = True
    for index, (name, value, is_regex, is_equal) in enumerate(raw):
        where = f"silence invalid: invalid label matcher {index}"
        if not label_name_ok(name):
            raise SilenceError(400, f"{where}: invalid label name {go_quote(name)}")
        if is_regex:
            problem = _regex_problem(value)
            if problem is not None:
                raise SilenceError(
                    400, f"{where}: invalid regular expression {go_quote(value)}: {problem}"
                )
        type_ = MatchType(int(not is_equal) + 2 * int(is_regex))
        try:
            built.append(Matcher.new(type_, name, value))
        except MatcherError as exc:  # valid unanchored but not anchored, e.g. `\Qa`
            raise SilenceError(
                400, f"{where}: invalid regular expression {go_quote(value)}: {exc}"
            ) from None
        all_match_empty = all_match_empty and _matches_empty(type_, value)
    if all_match_empty:
        raise SilenceError(
            400, "silence invalid: at least one matcher must not match the empty string"
        )
    return tuple(built)


def _same_matchers(a: tuple[Matcher, ...], b: tuple[Matcher, ...]) -> bool:
    return [(m.name, m.type, m.value) for m in a] == [(m.name, m.type, m.value) for m in b]


def _can_update(old: Silence, new: Silence, now_ns: int) -> bool:
    if not _same_matchers(old.matchers, new.matchers):
        return False
    current = state(old, now_ns)
    if current == "active":
        # startsAt may not change (compared to the second) and endsAt may not be in the past.
        return new.starts_ns // 1_000_000_000 == old.starts_ns // 1_000_000_000 and not (
            new.ends_ns < now_ns
        )
    if current == "pending":
        return new.starts_ns >= now_ns
    return False


def validate_postable(
    body: Any,
    now_ns: int,
    existing: Mapping[str, Silence],
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> tuple[Silence, str | None]:
    """Check a `POST /api/v2/silences` body as Alertmanager 0.25 does, in its order.

    Returns the silence to store and the id of the silence that must be expired because this
    one replaces it (None for a new silence, an update in place, or an already expired one).
    Raises SilenceError with Alertmanager's status and message.
    """
    posted = decode_postable(body)
    if posted.starts_ns >= posted.ends_ns:
        raise SilenceError(400, "Failed to create silence: start time must be before end time")
    if posted.ends_ns < now_ns:
        raise SilenceError(400, "Failed to create silence: end time can't be in the past")
    previous = existing.get(posted.id) if posted.id else None
    if posted.id and previous is None:
        raise SilenceError(404, NOT_FOUND)
    replaces = None
    if previous is not None and state(previous, now_ns) != "expired":
        replaces = previous.id
    try:
        matchers = _build_matchers(posted.matchers)
    except SilenceError as exc:
        # Alertmanager 0.25 expires the old silence before it validates the new one.
        exc.expired_id = replaces
        raise
    silence = Silence(
        id=posted.id,
        matchers=matchers,
        starts_ns=posted.starts_ns,
        ends_ns=posted.ends_ns,
        created_by=posted.created_by,
        comment=posted.comment,
        updated_ns=now_ns,
    )
    if previous is not None and _can_update(previous, silence, now_ns):
        return silence, None
    return replace(silence, id=new_id(), starts_ns=max(silence.starts_ns, now_ns)), replaces


def expire(silence: Silence, now_ns: int) -> Silence:
    """`DELETE /api/v2/silence/{id}`: end an active silence now, a pending one before it starts."""
    current = state(silence, now_ns)
    if current == "expired":
        return silence
    if current == "active":
        return replace(silence, ends_ns=now_ns, updated_ns=now_ns)
    return replace(silence, starts_ns=now_ns, ends_ns=now_ns, updated_ns=now_ns)


def parse_silence_id(text: str) -> str:
    """The `{id}` of a silence path; SilenceError 422 unless it is a UUID, as in Alertmanager."""
    try:
        uuid.UUID(text)
    except ValueError:
        message = f"silenceID in path must be of type uuid: {json.dumps(text)}"
        raise SilenceError(422, message, 601) from None
    return text


_STATE_ORDER = {"active": 0, "pending": 1, "expired": 2}


def api_sort(silences: Iterable[Silence], now_ns: int) -> list[Silence]:
    """`GET /api/v2/silences` order: active by endsAt, pending by startsAt, expired newest first."""

    def key(silence: Silence) -> tuple[int, int]:
        current = api_state(silence, now_ns)
        if current == "active":
            return 0, silence.ends_ns
        if current == "pending":
            return 1, silence.starts_ns
        return 2, -silence.ends_ns

    return sorted(silences, key=key)


def api_time(ns: int) -> str:
    """A time as Alertmanager's API prints it (go-openapi strfmt.DateTime: milliseconds, UTC)."""
    seconds, frac = divmod(ns, 1_000_000_000)
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{frac // 1_000_000:03d}Z"


def to_api(silence: Silence, now_ns: int) -> dict[str, Any]:
    """The gettableSilence JSON object, keys in Alertmanager's order."""
    return {
        "id": silence.id,
        "status": {"state": api_state(silence, now_ns)},
        "updatedAt": api_time(silence.updated_ns),
        "comment": silence.comment,
        "createdBy": silence.created_by,
        "endsAt": api_time(silence.ends_ns),
        "matchers": [
            {
                "isEqual": m.type in (MatchType.EQUAL, MatchType.REGEXP),
                "isRegex": m.type >= MatchType.REGEXP,
                "name": m.name,
                "value": m.value,
            }
            for m in silence.matchers
        ],
        "startsAt": api_time(silence.starts_ns),
    }


def to_json(silence: Silence) -> dict[str, Any]:
    """A compact JSON-ready dict for storage (matchers as `[name, value, type]`)."""
    return {
        "i": silence.id,
        "m": [[m.name, m.value, int(m.type)] for m in silence.matchers],
        "s": silence.starts_ns,
        "e": silence.ends_ns,
        "b": silence.created_by,
        "c": silence.comment,
        "u": silence.updated_ns,
    }


def from_json(data: Mapping[str, Any]) -> Silence:
    """The silence `to_json` wrote."""
    return Silence(
        id=data["i"],
        matchers=tuple(Matcher.new(MatchType(t), n, v) for n, v, t in data["m"]),
        starts_ns=data["s"],
        ends_ns=data["e"],
        created_by=data["b"],
        comment=data["c"],
        updated_ns=data["u"],
    )


class Silencer:
    """The current silences, by id; answers which active silences mute a label set."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._silences = {s.id: s for s in silences}

    def set(self, silence: Silence) -> None:
        """Add or replace a silence."""
        self._silences[silence.id] = silence

    def get(self, silence_id: str) -> Silence | None:
        """The silence with this id, if any."""
        return self._silences.get(silence_id)

    def all(self) -> dict[str, Silence]:
        """Every silence, by id (a copy)."""
        return dict(self._silences)

    def gc(self, now_ns: int, retention_s: float = _RETENTION_S) -> list[str]:
        """Delete silences that ended at least `retention_s` ago; their ids."""
        horizon = now_ns - round(retention_s * 1_000_000_000)
        gone = [sid for sid, s in self._silences.items() if s.ends_ns <= horizon]
        for sid in gone:
            del self._silences[sid]
        return gone

    def mutes(self, labels: Mapping[str, str], now_ns: int) -> list[str]:
        """The sorted ids of the active silences that match `labels`."""
        return sorted(
            s.id
            for s in self._silences.values()
            if state(s, now_ns) == "active" and matches_all(s.matchers, labels)
        )
