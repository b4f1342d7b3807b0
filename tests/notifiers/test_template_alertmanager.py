"""Against the real binaries: the stored corpus and captures still describe Alertmanager 0.25,
and Tocsin renders what a fresh capture shows."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from services.notifiers.template import TemplateSet
from tests.conftest import binary
from tests.notifiers import test_template_defaults as defaults
from tests.notifiers.alertmanager_capture import capture
from tests.notifiers.amtool_corpus import amtool_render
from tests.notifiers.test_template_engine import CASES

pytestmark = pytest.mark.binaries


def test_amtool_still_renders_the_corpus() -> None:
    amtool = binary("amtool")
    with tempfile.TemporaryDirectory() as tmp:
        stale = [
            (case["id"], got, case["want"])
            for case in CASES
            if (got := amtool_render(amtool, case, Path(tmp))) != case["want"]
        ]
    assert stale == []


async def test_a_fresh_capture_renders_the_same() -> None:
    records: list[dict[str, Any]] = await capture(binary("prometheus-alertmanager"))
    assert all(r["webhook"] and r["slack"] and r["pagerduty"] and r["email"] for r in records)
    for record in records:
        defaults.test_template_data_matches_the_webhook_payload(record)
        defaults.test_slack_fields(record)
        defaults.test_pagerduty_fields(record)
        defaults.test_email_subject_and_headers(record)
    assert TemplateSet.default().names()  # the defaults parsed once more, for good measure
