"""Stored alerts: ingestion defaults, the merge rule (reference §5.2), JSON and the two hashes."""

from __future__ import annotations

from dataclasses import replace

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from schemas.alert import fingerprint
from services.router.alerts import (
    StoredAlert,
    dedup_hash,
    from_json,
    merge,
    resolved_at,
    to_json,
)
from tests.router.alertgen import S, at, message, stored


def test_from_message_without_ends_times_out_after_resolve_timeout() -> None:
    alert = StoredAlert.from_message(message({"alertname": "A"}, at(-10)), at(0), 300.0)
    assert (alert.starts_ns, alert.ends_ns, alert.updated_ns) == (at(-10), at(300), at(0))
    assert alert.timeout is True
    assert alert.fingerprint == fingerprint({"alertname": "A"})


def test_from_message_keeps_an_explicit_ends() -> None:
    alert = StoredAlert.from_message(message({"alertname": "A"}, at(0), at(40)), at(50), 300.0)
    assert (alert.ends_ns, alert.timeout, alert.updated_ns) == (at(40), False, at(50))


@pytest.mark.parametrize(
    ("ends", "now", "resolved"),
    [(0, at(10), False), (at(10), at(9), False), (at(10), at(10), True), (at(10), at(11), True)],
    ids=["no-ends", "ends-ahead", "ends-exactly-now", "ends-past"],
)
def test_resolved_at_counts_ends_equal_to_now_as_resolved(
    ends: int, now: int, resolved: bool
) -> None:
    assert resolved_at(stored(ends=ends), now) is resolved


OLD = {"v": "old"}
NEW = {"v": "new"}


def _alert(
    starts: float, ends: float, updated: float, timeout: bool = False, ann: dict[str, str] = OLD
) -> StoredAlert:
    base = stored(starts=at(starts), ends=at(ends), updated=at(updated), timeout=timeout)
    return replace(base, annotations=ann)


# (old, new, expected startsAt, expected endsAt, annotations of the base) in seconds from T0.
MERGES = [
    pytest.param(None, _alert(0, 300, 0, True, NEW), 0, 300, NEW, id="first-alert-stored-as-is"),
    pytest.param(_alert(0, 300, 0, True), _alert(0, 40, 40, ann=NEW), 0, 40, NEW, id="resolve-of-a-timeout-alert"),
    pytest.param(_alert(0, 300, 0, True), _alert(10, 400, 60, ann=NEW), 0, 400, NEW, id="refresh-keeps-earliest-starts"),
    pytest.param(_alert(0, 500, 0), _alert(10, 200, 60, ann=NEW), 0, 500, NEW, id="firing-older-explicit-later-ends-wins"),
    pytest.param(_alert(0, 500, 0, True), _alert(10, 200, 60, ann=NEW), 0, 200, NEW, id="firing-older-timeout-ends-loses"),
    pytest.param(_alert(0, 50, 50), _alert(0, 40, 60, ann=NEW), 0, 50, NEW, id="both-resolved-latest-ends-wins"),
    pytest.param(_alert(0, 500, 0), _alert(0, 40, 60, ann=NEW), 0, 40, NEW, id="younger-resolved-older-firing"),
    pytest.param(_alert(0, 300, 100), _alert(10, 200, 50, ann=NEW), 0, 300, OLD, id="younger-by-updatedAt-is-the-base"),
    pytest.param(_alert(0, 40, 40), _alert(100, 400, 100, ann=NEW), 100, 400, NEW, id="refire-after-resolve-replaces"),
    pytest.param(_alert(0, 300, 0), _alert(300, 600, 10, ann=NEW), 300, 600, NEW, id="starts-at-old-ends-is-no-overlap"),
    pytest.param(_alert(0, 300, 0), _alert(0, 300, 10, ann=NEW), 0, 300, NEW, id="same-range-is-no-overlap"),
    pytest.param(_alert(10, 300, 0), _alert(0, 10, 10, ann=NEW), 0, 10, NEW, id="ends-at-old-starts-is-no-overlap"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "starts", "ends", "annotations"), MERGES)
def test_merge_follows_alertmanager(
    old: StoredAlert | None,
    new: StoredAlert,
    starts: float,
    ends: float,
    annotations: dict[str, str],
) -> None:
    merged = merge(old, new)
    assert (merged.starts_ns, merged.ends_ns) == (at(starts), at(ends))
    assert merged.annotations == annotations


def test_merge_judges_resolved_at_the_given_now() -> None:
    old, new = _alert(0, 50, 30), _alert(0, 40, 45)
    # At 45 the older alert (ends 50) still fires, so the younger resolve time stands.
    assert merge(old, new, at(45)).ends_ns == at(40)
    assert merge(old, new, at(60)).ends_ns == at(50)


@pytest.mark.parametrize(
    "alert",
    [
        stored(),
        stored({"a": "1", "b": "é✓"}, ends=at(5), timeout=True),
        _alert(0, 1, 2, ann={"summary": "x"}),
    ],
    ids=["bare", "timeout-unicode", "annotations"],
)
def test_json_round_trip(alert: StoredAlert) -> None:
    assert from_json(to_json(alert)) == alert


def test_json_is_compact() -> None:
    assert to_json(stored(ends=at(1))) == {
        "l": {"alertname": "A"},
        "s": at(0),
        "e": at(1),
        "u": at(0),
    }


def _fingerprint_bytes(labels: dict[str, str]) -> bytes:
    return b"".join(
        n.encode() + b"\xff" + labels[n].encode() + b"\xff" for n in sorted(labels, key=str.encode)
    )


# Reference §7.4, decoded from a live 0.25.0 nflog snapshot.
DEDUP_HASHES = [
    ({"alertname": "Old"}, 10650358941428138632),
    ({"alertname": "T1", "i": "2"}, 6399140946784246353),
    ({}, 17241709254077376921),  # xxh64 of no bytes
]


@pytest.mark.parametrize(("labels", "expected"), DEDUP_HASHES, ids=["Old", "T1-i2", "empty"])
def test_dedup_hash_matches_the_nflog(labels: dict[str, str], expected: int) -> None:
    assert dedup_hash(labels) == expected


# Reference §12 fingerprints, read back from a live 0.25.0.
FINGERPRINTS = [
    ({"alertname": "HighCPU", "instance": "a:9100", "job": "node", "severity": "critical"}, "f640b7e1ff8afe25"),
    ({"alertname": "Sort", "team": "x.y", "a": "1", "a0": "2", "a_b": "3", "B": "4"}, "d2c9d85b32a37cc0"),
    ({"alertname": "Ünïcødé ✓", "path": 'C:\\tmp\n"q"'}, "fa2a82900522a76a"),
]  # fmt: skip


@pytest.mark.parametrize(("labels", "expected"), FINGERPRINTS, ids=["HighCPU", "Sort", "unicode"])
def test_stored_fingerprint_and_dedup_hash_share_the_byte_layout(
    labels: dict[str, str], expected: str
) -> None:
    alert = from_json(to_json(stored(labels)))
    assert alert.fingerprint == expected
    assert dedup_hash(labels) == xxhash.xxh64_intdigest(_fingerprint_bytes(labels))


@given(st.dictionaries(st.text(min_size=1), st.text(), max_size=6))
def test_dedup_hash_is_bytewise_ordered(labels: dict[str, str]) -> None:
    try:
        expected = xxhash.xxh64_intdigest(_fingerprint_bytes(labels))
    except UnicodeEncodeError:  # lone surrogates cannot reach the router (ingest rejects them)
        return
    assert dedup_hash(dict(reversed(list(labels.items())))) == expected


def test_timeout_from_resolve_timeout_zero_is_resolved_at_once() -> None:
    alert = StoredAlert.from_message(message({"alertname": "A"}, at(0)), at(0), 0.0)
    assert resolved_at(alert, at(0))
    assert alert.ends_ns == at(0)
    assert alert.starts_ns + S > alert.ends_ns
