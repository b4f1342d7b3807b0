"""Topic names: valid for Kafka, readable for ordinary receivers, unique for odd ones."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.topics import notifications_topic

KAFKA_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


@pytest.mark.parametrize(
    ("receiver", "topic"),
    [
        ("security-critical", "notifications.security-critical"),
        ("team.db_pager", "notifications.team.db_pager"),
    ],
)
def test_ordinary_names_are_kept(receiver: str, topic: str) -> None:
    assert notifications_topic(receiver) == topic


def test_odd_names_are_made_safe_and_kept_apart() -> None:
    a, b = notifications_topic("Ops team"), notifications_topic("Ops/team")
    assert a.startswith("notifications.Ops_team-")
    assert a != b


@given(st.text(min_size=1, max_size=300))
def test_every_name_gives_a_valid_kafka_topic(receiver: str) -> None:
    assert KAFKA_TOPIC.fullmatch(notifications_topic(receiver))
