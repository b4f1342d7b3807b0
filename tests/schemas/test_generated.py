"""The published contracts (JSON Schema per topic, OpenAPI) are current and well-formed."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest

from schemas.generate import generated_files


@pytest.mark.parametrize("path", sorted(generated_files()), ids=lambda p: p.name)
def test_generated_file_is_current(path: Path) -> None:
    expected = generated_files()[path]
    assert path.read_text(encoding="utf-8") == expected, "stale: run `python -m schemas.generate`"


def test_alert_topic_schema_accepts_a_real_message() -> None:
    from schemas.envelope import encode

    schema = next(json.loads(t) for p, t in generated_files().items() if p.name == "alerts.json")
    message = json.loads(
        encode(
            "tocsin.alert/v1",
            "ingest/test/1",
            {
                "labels": {"alertname": "X"},
                "annotations": {},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": None,
                "generatorURL": "",
                "status": "firing",
                "fingerprint": "0123456789abcdef",
                "receivedAt": "2026-01-01T00:00:00Z",
                "source": "api.v2",
            },
        )
    )
    jsonschema.validate(message, schema)
    message["data"]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(message, schema)


def test_openapi_document_is_valid_openapi3() -> None:
    from openapi_spec_validator import validate

    doc = next(json.loads(t) for p, t in generated_files().items() if p.name == "openapi.json")
    validate(doc)
