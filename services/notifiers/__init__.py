"""Notifiers: rendering and sending notifications to Alertmanager-compatible integrations."""

__all__: list[str] = []
