"""Shared infrastructure: settings, Kafka, lifecycle, logging, metrics, HTTP, health, embedded."""

from services.runtime.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
