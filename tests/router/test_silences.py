"""Silences (reference §9): every POST check in Alertmanager 0.25's order, updates, DELETE, API."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from schemas.timefmt import format_ns
from services.router.silences import (
    Silence,
    SilenceError,
    Silencer,
    api_sort,
    api_state,
    expire,
    from_json,
    matches,
    parse_silence_id,
    state,
    to_api,
    to_json,
    validate_postable,
)
from tests.router.alertgen import S, at

NOW = at(0)
MATCHER = {"name": "a", "value": "b", "isRegex": False}
_DROP = object()


def body(**fields: Any) -> dict[str, Any]:
    """A valid postable silence (active from an hour ago for an hour), with fields replaced."""
    out: dict[str, Any] = {
        "matchers": [MATCHER],
        "startsAt": format_ns(at(-3600)),
        "endsAt": format_ns(at(3600)),
        "createdBy": "me",
        "comment": "c",
    }
    out.update(fields)
    return {k: v for k, v in out.items() if v is not _DROP}


def _ids(*names: str) -> Any:
    counter = iter(names)
    return lambda: next(counter)


def post(
    data: Any, existing: dict[str, Silence] | None = None, new_id: str = "new"
) -> tuple[Silence, str | None]:
    return validate_postable(data, NOW, existing or {}, _ids(new_id))


# (body, status, OpenAPI code or None, message): all messages as a live 0.25.0 answered them.
ERRORS = [
    pytest.param({}, 422, 602, "comment in body is required", id="empty-body-comment-first"),
    pytest.param(body(comment=_DROP, matchers=[]), 422, 602, "comment in body is required", id="comment-before-matchers"),
    pytest.param(body(createdBy=_DROP, matchers=[]), 422, 602, "createdBy in body is required", id="createdBy"),
    pytest.param(body(endsAt=_DROP, matchers=[]), 422, 602, "endsAt in body is required", id="endsAt"),
    pytest.param(body(endsAt=None), 422, 602, "endsAt in body is required", id="null-is-missing"),
    pytest.param(body(matchers=_DROP), 422, 602, "matchers in body is required", id="matchers"),
    pytest.param(body(matchers=[], startsAt=_DROP), 422, 612, "matchers in body should have at least 1 items", id="matchers-min-items-before-startsAt"),
    pytest.param(body(matchers=[{}]), 422, 602, "matchers.0.isRegex in body is required", id="matcher-isRegex"),
    pytest.param(body(matchers=[{"isRegex": False, "value": "x"}]), 422, 602, "matchers.0.name in body is required", id="matcher-name"),
    pytest.param(body(matchers=[MATCHER, {"isRegex": False, "name": "x"}]), 422, 602, "matchers.1.value in body is required", id="matcher-value-second"),
    pytest.param(body(startsAt=_DROP), 422, 602, "startsAt in body is required", id="startsAt"),
    pytest.param(body(startsAt=format_ns(at(3600))), 400, None, "Failed to create silence: start time must be before end time", id="start-equals-end"),
    pytest.param(body(startsAt=format_ns(at(-10)), endsAt=format_ns(at(-20))), 400, None, "Failed to create silence: start time must be before end time", id="start-after-end-checked-before-past"),
    pytest.param(body(endsAt=""), 400, None, "Failed to create silence: start time must be before end time", id="empty-ends-is-zero-time"),
    pytest.param(body(endsAt=format_ns(at(-1))), 400, None, "Failed to create silence: end time can't be in the past", id="ends-in-the-past"),
    pytest.param(body(id="nope", matchers=[{"name": "a-b", "value": "x", "isRegex": False}]), 404, None, "silence not found", id="unknown-id-before-validation"),
    pytest.param(body(matchers=[{"name": "a-b", "value": "x", "isRegex": False}]), 400, None, 'silence invalid: invalid label matcher 0: invalid label name "a-b"', id="bad-label-name"),
    pytest.param(body(matchers=[{"name": "", "value": "x", "isRegex": False}]), 400, None, 'silence invalid: invalid label matcher 0: invalid label name ""', id="empty-label-name"),
    pytest.param(body(matchers=[MATCHER, {"name": "q", "value": "(", "isRegex": True}]), 400, None, 'silence invalid: invalid label matcher 1: invalid regular expression "(": error parsing regexp: missing closing ): `(`', id="regex-missing-paren"),
    pytest.param(body(matchers=[{"name": "q", "value": "a\\", "isRegex": True}]), 400, None, 'silence invalid: invalid label matcher 0: invalid regular expression "a\\\\": error parsing regexp: trailing backslash at end of expression: ``', id="regex-trailing-backslash"),
    pytest.param(body(matchers=[{"name": "q", "value": "[a", "isRegex": True}]), 400, None, 'silence invalid: invalid label matcher 0: invalid regular expression "[a": error parsing regexp: missing closing ]: `[a`', id="regex-missing-bracket"),
    pytest.param(body(matchers=[{"name": "q", "value": "x**", "isRegex": True}]), 400, None, 'silence invalid: invalid label matcher 0: invalid regular expression "x**": error parsing regexp: invalid nested repetition operator: `**`', id="regex-nested-repetition"),
    pytest.param(body(matchers=[{"name": "q", "value": "a)|(b", "isRegex": True}]), 400, None, 'silence invalid: invalid label matcher 0: invalid regular expression "a)|(b": error parsing regexp: unexpected ): `a)|(b`', id="regex-valid-only-when-anchored"),
    pytest.param(body(matchers=[{"name": "a", "value": "", "isRegex": False}]), 400, None, "silence invalid: at least one matcher must not match the empty string", id="equal-empty"),
    pytest.param(body(matchers=[{"name": "a", "value": ".*", "isRegex": True}]), 400, None, "silence invalid: at least one matcher must not match the empty string", id="regex-matches-empty"),
    pytest.param(body(comment=5), 400, 400, 'parsing silence body from "" failed, because json: cannot unmarshal number into Go struct field Silence.comment of type string', id="comment-number"),
    pytest.param(body(matchers={}), 400, 400, 'parsing silence body from "" failed, because json: cannot unmarshal object into Go struct field Silence.matchers of type models.Matchers', id="matchers-object"),
    pytest.param(body(matchers=[5]), 400, 400, 'parsing silence body from "" failed, because json: cannot unmarshal number into Go struct field Silence.matchers of type models.Matcher', id="matcher-number"),
    pytest.param(body(matchers=[{"name": "a", "value": 5, "isRegex": False}]), 400, 400, 'parsing silence body from "" failed, because json: cannot unmarshal number into Go struct field Matcher.matchers.value of type string', id="matcher-value-number"),
    pytest.param(body(matchers=[{"name": "a", "value": "x", "isRegex": "no"}]), 400, 400, 'parsing silence body from "" failed, because json: cannot unmarshal string into Go struct field Matcher.matchers.isRegex of type bool', id="matcher-isRegex-string"),
    pytest.param(body(startsAt=5), 400, 400, 'parsing silence body from "" failed, because json: cannot unmarshal number into Go struct field Silence.startsAt of type string', id="startsAt-number"),
    pytest.param(body(id=5), 400, 400, 'parsing silence body from "" failed, because json: cannot unmarshal number into Go struct field .id of type string', id="id-number"),
    pytest.param([], 400, 400, 'parsing silence body from "" failed, because json: cannot unmarshal array into Go value of type struct { ID string "json:\\"id,omitempty\\"" }', id="array-body"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "status", "code", "message"), ERRORS)
def test_post_errors_in_alertmanager_order(
    data: Any, status: int, code: int | None, message: str
) -> None:
    with pytest.raises(SilenceError) as caught:
        post(data)
    assert (caught.value.status, caught.value.code, caught.value.message) == (status, code, message)


def test_a_bad_time_stops_decoding_before_an_earlier_type_error() -> None:
    with pytest.raises(SilenceError) as caught:
        post({"comment": 5, "startsAt": "bad"})
    assert caught.value.status == 400
    assert caught.value.message.startswith(
        'parsing silence body from "" failed, because parsing time "bad"'
    )


def test_error_bodies_are_byte_exact() -> None:
    assert SilenceError(404, "silence not found").body() == b'"silence not found"\n'
    assert (
        SilenceError(422, "comment in body is required", 602).body()
        == b'{"code":602,"message":"comment in body is required"}'
    )
    assert SilenceError(400, 'a <b> & "c"').body() == b'"a \\u003cb\\u003e \\u0026 \\"c\\""\n'


def test_keys_match_case_insensitively_and_unknown_keys_are_ignored() -> None:
    data = body(comment=_DROP, Comment="c", extra=1)
    silence, _ = post(data)
    assert silence.comment == "c"


@pytest.mark.parametrize(
    ("matcher", "labels", "silenced"),
    [
        ({"name": "foo", "value": "bar", "isRegex": False, "isEqual": False}, {}, True),
        ({"name": "foo", "value": "bar", "isRegex": False, "isEqual": False}, {"foo": "baz"}, True),
        (
            {"name": "foo", "value": "bar", "isRegex": False, "isEqual": False},
            {"foo": "bar"},
            False,
        ),
        ({"name": "foo", "value": "b.*", "isRegex": True, "isEqual": False}, {"x": "y"}, True),
        ({"name": "foo", "value": "b.*", "isRegex": True, "isEqual": False}, {"foo": "bar"}, False),
    ],
    ids=[
        "ne-missing-label",
        "ne-other-value",
        "ne-same-value",
        "nre-missing-label",
        "nre-matching",
    ],
)
def test_negative_only_silences_are_accepted_and_match_almost_everything(
    matcher: dict[str, Any], labels: dict[str, str], silenced: bool
) -> None:
    silence, _ = post(body(matchers=[matcher]))
    assert matches(silence, labels) is silenced


def test_negative_matcher_plus_equal_empty_is_accepted() -> None:
    negative = {"name": "q", "value": "x", "isRegex": True, "isEqual": False}
    silence, _ = post(body(matchers=[negative, {"name": "r", "value": "", "isRegex": False}]))
    assert matches(silence, {"q": "y"})
    assert not matches(silence, {"q": "y", "r": "1"})


@pytest.mark.parametrize(
    ("starts", "expected"),
    [
        (format_ns(at(-3600)), NOW),
        ("", NOW),
        (format_ns(at(60)), at(60)),
        ("2026-01-05T09:01:00", at(60)),
    ],
    ids=["past-becomes-now", "empty-is-zero-then-now", "future-kept", "no-zone-is-utc"],
)
def test_new_silence_starts(starts: str, expected: int) -> None:
    silence, replaced = post(body(startsAt=starts))
    assert (silence.id, silence.starts_ns, silence.updated_ns, replaced) == (
        "new",
        expected,
        NOW,
        None,
    )


def _existing(starts: int, ends: int, value: str = "b") -> Silence:
    matcher = {"name": "a", "value": value, "isRegex": False}
    return validate_postable(
        body(matchers=[matcher], startsAt=format_ns(starts), endsAt=format_ns(ends)),
        starts,
        {},
        _ids("old"),
    )[0]


ACTIVE = _existing(at(-100), at(100))
PENDING = _existing(at(100), at(200))
EXPIRED = _existing(at(-200), at(-100))


# (old silence, changes to post with id "old", expected id, replaced id, expected startsAt)
UPDATES = [
    pytest.param(ACTIVE, {"endsAt": format_ns(at(500))}, "old", None, at(-100), id="active-extend-in-place"),
    pytest.param(ACTIVE, {"startsAt": format_ns(at(-100) + S // 2)}, "old", None, at(-100) + S // 2, id="active-same-second-in-place"),
    pytest.param(ACTIVE, {"startsAt": format_ns(at(-99))}, "new", "old", NOW, id="active-new-starts-replaces"),
    pytest.param(ACTIVE, {"matchers": [{"name": "a", "value": "c", "isRegex": False}]}, "new", "old", NOW, id="active-new-matchers-replaces"),
    pytest.param(ACTIVE, {"matchers": [{"name": "a", "value": "b", "isRegex": True}]}, "new", "old", NOW, id="active-matcher-type-change-replaces"),
    pytest.param(PENDING, {"startsAt": format_ns(at(0)), "endsAt": format_ns(at(300))}, "old", None, at(0), id="pending-starts-now-in-place"),
    pytest.param(PENDING, {"startsAt": format_ns(at(-1)), "endsAt": format_ns(at(300))}, "new", "old", NOW, id="pending-starts-past-replaces"),
    pytest.param(EXPIRED, {"startsAt": format_ns(at(10)), "endsAt": format_ns(at(300))}, "new", None, at(10), id="expired-gets-a-new-id"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "changes", "new_id", "replaced", "starts"), UPDATES)
def test_update_in_place_or_replace(
    old: Silence, changes: dict[str, Any], new_id: str, replaced: str | None, starts: int
) -> None:
    posted = {
        "id": "old",
        "startsAt": format_ns(old.starts_ns),
        "endsAt": format_ns(old.ends_ns),
        **changes,
    }
    silence, replaces = post(body(**posted), {"old": old})
    assert (silence.id, replaces, silence.starts_ns, silence.updated_ns) == (
        new_id,
        replaced,
        starts,
        NOW,
    )


@pytest.mark.parametrize(
    ("old", "expired_id"), [(ACTIVE, "old"), (EXPIRED, None)], ids=["active", "expired"]
)
def test_an_invalid_update_still_expires_the_old_silence(
    old: Silence, expired_id: str | None
) -> None:
    bad = [{"name": "q-x", "value": "1", "isRegex": False}]
    with pytest.raises(SilenceError) as caught:
        post(body(id="old", matchers=bad), {"old": old})
    assert caught.value.status == 400
    assert caught.value.expired_id == expired_id


def test_delete_ends_an_active_silence_now() -> None:
    done = expire(ACTIVE, NOW)
    assert (done.starts_ns, done.ends_ns, done.updated_ns) == (ACTIVE.starts_ns, NOW, NOW)
    assert api_state(done, NOW) == "expired"
    assert state(done, NOW) == "active"
    assert state(done, NOW + 1) == "expired"


def test_delete_of_a_pending_silence_moves_both_ends_to_now() -> None:
    done = expire(PENDING, NOW)
    assert (done.starts_ns, done.ends_ns, done.updated_ns) == (NOW, NOW, NOW)
    assert state(done, NOW + 1) == "expired"


def test_delete_of_an_expired_silence_changes_nothing() -> None:
    assert expire(EXPIRED, NOW) is EXPIRED


@pytest.mark.parametrize(
    ("text", "ok"),
    [("0b1b10a4-0000-4000-8000-000000000000", True), ("nope", False)],
    ids=["uuid", "not-uuid"],
)
def test_silence_id_in_path_must_be_a_uuid(text: str, ok: bool) -> None:
    if ok:
        assert parse_silence_id(text) == text
        return
    with pytest.raises(SilenceError) as caught:
        parse_silence_id(text)
    assert (
        caught.value.body()
        == b'{"code":601,"message":"silenceID in path must be of type uuid: \\"nope\\""}'
    )


@pytest.mark.parametrize(
    ("now", "expected", "api"),
    [(99.999, "pending", "pending"), (100, "active", "active"), (200, "active", "expired"), (200.000000001, "expired", "expired")],
    ids=["before-start", "at-start", "at-end", "after-end"],
)  # fmt: skip
def test_state_boundaries(now: float, expected: str, api: str) -> None:
    assert state(PENDING, at(now)) == expected
    assert api_state(PENDING, at(now)) == api


def test_api_sort_active_by_end_pending_by_start_expired_newest_first() -> None:
    def sil(name: str, starts: float, ends: float) -> Silence:
        return Silence(name, (), at(starts), at(ends), "", "", NOW)

    silences = [
        sil("expired-old", -50, -40), sil("pending-late", 30, 40), sil("active-late", -1, 90),
        sil("expired-new", -30, -20), sil("active-soon", -1, 10), sil("pending-soon", 20, 90),
        sil("ends-now", -5, 0),
    ]  # fmt: skip
    assert [s.id for s in api_sort(silences, NOW)] == [
        "active-soon", "active-late", "pending-soon", "pending-late", "ends-now", "expired-new", "expired-old",
    ]  # fmt: skip


def test_gettable_silence_shape() -> None:
    matchers = [
        {"name": "a", "value": "x", "isRegex": False, "isEqual": False},
        {"name": "b", "value": "y.*", "isRegex": True},
    ]
    data = body(
        matchers=matchers,
        startsAt="2026-01-05T09:00:10.123456789Z",
        endsAt="2030-01-02T00:00:00.9999Z",
    )
    silence, _ = post(data)
    assert to_api(silence, NOW) == {
        "id": "new",
        "status": {"state": "pending"},
        "updatedAt": "2026-01-05T09:00:00.000Z",
        "comment": "c",
        "createdBy": "me",
        "endsAt": "2030-01-02T00:00:00.999Z",
        "matchers": [
            {"isEqual": False, "isRegex": False, "name": "a", "value": "x"},
            {"isEqual": True, "isRegex": True, "name": "b", "value": "y.*"},
        ],
        "startsAt": "2026-01-05T09:00:10.123Z",
    }
    assert list(to_api(silence, NOW)) == [
        "id",
        "status",
        "updatedAt",
        "comment",
        "createdBy",
        "endsAt",
        "matchers",
        "startsAt",
    ]


def test_storage_json_round_trip() -> None:
    matchers = [
        {"name": "a", "value": "x", "isRegex": False, "isEqual": False},
        {"name": "b", "value": "y.*", "isRegex": True, "isEqual": False},
    ]
    silence, _ = post(body(matchers=matchers))
    assert from_json(to_json(silence)) == silence


def test_silencer_mutes_with_active_matching_silences_only() -> None:
    def sil(sid: str, starts: float, ends: float, value: str = "b") -> Silence:
        return replace(_existing(at(starts), at(ends), value), id=sid)

    silencer = Silencer(
        [sil("z", -10, 10), sil("a", -10, 10), sil("pending", 5, 10), sil("other", -10, 10, "c")]
    )
    assert silencer.mutes({"a": "b"}, NOW) == ["a", "z"]
    assert silencer.mutes({"a": "b"}, at(5)) == ["a", "pending", "z"]
    assert silencer.mutes({"a": "b"}, at(11)) == []
    silencer.set(sil("late", -10, 30))
    assert silencer.gc(at(10) + 120 * 3600 * S) == ["z", "a", "pending", "other"]
    assert list(silencer.all()) == ["late"]
