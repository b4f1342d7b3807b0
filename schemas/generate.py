"""Generate the published contracts: JSON Schema per topic (schemas/json/) and the OpenAPI document.

Run `python -m schemas.generate` after changing a model; a test fails while the files are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from schemas.alert import PostableAlert
from schemas.envelope import Envelope
from schemas.error import ErrorBody
from schemas.topics import TOPICS, Topic
from schemas.webhook import WebhookMessage

__all__ = ["generated_files", "main"]

_HERE = Path(__file__).parent


def _topic_schema(topic: Topic) -> dict[str, Any]:
    schema = TypeAdapter(Envelope[topic.model]).json_schema(by_alias=True)  # type: ignore[name-defined]
    schema["title"] = f"Message on topic {topic.name!r}"
    schema["description"] = f"{topic.description} Key: {topic.key}. Payload schema: {topic.schema}."
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def _openapi() -> dict[str, Any]:
    components: dict[str, Any] = {}

    def ref(model: Any, name: str) -> dict[str, str]:
        schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        components.update(schema.pop("$defs", {}))
        components[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    postable = ref(list[PostableAlert], "PostableAlerts")
    webhook = ref(WebhookMessage, "WebhookMessage")
    error = ref(ErrorBody, "ErrorBody")
    err = {"application/json": {"schema": error}}
    errors = {
        "400": {
            "description": "invalid body; valid alerts of the batch are still accepted",
            "content": err,
        },
        "401": {"description": "authentication required or wrong", "content": err},
        "413": {"description": "body larger than the configured limit", "content": err},
        "415": {"description": "content type is not application/json", "content": err},
        "503": {
            "description": "broker unavailable or slow; retry after Retry-After",
            "content": err,
        },
    }
    ok = {"200": {"description": "every alert acknowledged by the broker"}}
    health = {
        "type": "object",
        "properties": {
            "status": {"enum": ["healthy", "unhealthy"]},
            "timestamp": {"type": "string"},
            "version": {"type": "string"},
            "services": {"type": "object", "additionalProperties": {"type": "string"}},
            "error": {"type": "string"},
        },
        "required": ["status", "timestamp", "version", "services"],
    }
    components["Health"] = health
    security: list[dict[str, list[str]]] = [{"bearer": []}, {"basic": []}, {}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tocsin ingest",
            "version": "1",
            "description": "Accepts alerts from Prometheus and Alertmanager and publishes each to "
            "Kafka. Answers 2xx only after the broker acknowledged every alert.",
        },
        "paths": {
            "/api/v2/alerts": {
                "post": {
                    "summary": "Alertmanager API push (Prometheus alerting.alertmanagers, amtool)",
                    "security": security,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": postable}},
                    },
                    "responses": {**ok, **errors},
                }
            },
            "/api/v1/alertmanager": {
                "post": {
                    "summary": "Target of an Alertmanager webhook_config (payload version 4)",
                    "security": security,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": webhook}},
                    },
                    "responses": {**ok, **errors},
                }
            },
            "/health": {
                "get": {
                    "summary": "Health in the operations guide's format",
                    "responses": {
                        "200": {
                            "description": "healthy",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                        "503": {
                            "description": "unhealthy",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Health"}
                                }
                            },
                        },
                    },
                }
            },
            "/-/healthy": {
                "get": {"summary": "liveness", "responses": {"200": {"description": "alive"}}}
            },
            "/-/ready": {
                "get": {
                    "summary": "readiness",
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "text exposition format"}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "this document",
                    "responses": {"200": {"description": "OpenAPI 3"}},
                }
            },
        },
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "basic": {"type": "http", "scheme": "basic"},
            },
        },
    }


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generated_files() -> dict[Path, str]:
    """Every generated file and the text it must have."""
    files = {_HERE / "json" / f"{t.slug}.json": _dump(_topic_schema(t)) for t in TOPICS}
    files[_HERE / "openapi.json"] = _dump(_openapi())
    return files


def main() -> int:
    """Write every generated file."""
    for path, text in generated_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(_HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
