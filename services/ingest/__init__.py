"""Ingest: accepts Alertmanager webhooks and API pushes and publishes each alert to Kafka."""

from services.ingest.app import IngestService, build_app

__all__ = ["IngestService", "build_app"]
