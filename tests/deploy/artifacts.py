"""The deploy/ files as data: their paths, and the rules and dashboards parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules"
PROMTOOL_TESTS = PROMETHEUS / "tests"
ALERT_RULE_FILES = ("security.yml", "performance.yml", "infrastructure.yml")
RECORDING_RULE_FILE = RULES / "recording.yml"
RELAY_CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
TOCSIN_CONFIG = DEPLOY / "tocsin" / "alertmanager.yml"
GRAFANA = DEPLOY / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "datasources.yml"
DASHBOARD_PROVIDER = GRAFANA / "provisioning" / "dashboards" / "dashboard-provisioning.yml"
DASHBOARDS = {
    "catalytic-system-metrics": GRAFANA / "provisioning/dashboards/Production/system-metrics.json",
    "catalytic-business-metrics": GRAFANA
    / "provisioning/dashboards/Production/business-metrics.json",
    "tocsin-pipeline": GRAFANA / "provisioning/dashboards/Tocsin/tocsin-pipeline.json",
}
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
SYSTEMD_UNIT = DEPLOY / "systemd" / "tocsin.service"
SYSTEMD_ENV = DEPLOY / "systemd" / "tocsin.env.example"

# The $VARs of the guide's alertmanager.yml, with values its loader accepts.
GUIDE_ENV = {
    "SMTP_PASSWORD": "smtp-secret",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/XXXX",
    "PAGERDUTY_WEBHOOK_URL": "https://events.pagerduty.com/integration/abc/enqueue",
}


@dataclass(frozen=True)
class Rule:
    """One rule of a rule file: an alert or a recording rule."""

    file: str
    group: str
    body: dict[str, Any]

    @property
    def name(self) -> str:
        """The alert name or the recorded metric name."""
        return str(self.body.get("alert") or self.body["record"])

    @property
    def expr(self) -> str:
        """The PromQL expression."""
        return str(self.body["expr"])


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_yaml_all(path: Path) -> list[Any]:
    """Every non-empty document of a multi-document YAML file."""
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _rules(path: Path) -> list[Rule]:
    document = load_yaml(path)
    return [
        Rule(path.name, group["name"], rule)
        for group in document["groups"]
        for rule in group["rules"]
    ]


def alert_rules() -> list[Rule]:
    """The 18 alerts, in file order."""
    return [rule for name in ALERT_RULE_FILES for rule in _rules(RULES / name)]


def recording_rules() -> list[Rule]:
    """The 8 recording rules."""
    return _rules(RECORDING_RULE_FILE)


def dashboard(uid: str) -> dict[str, Any]:
    """A dashboard's JSON model."""
    model: dict[str, Any] = json.loads(DASHBOARDS[uid].read_text(encoding="utf-8"))
    return model


def leaf_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels of a dashboard that show data (rows left out, collapsed rows opened)."""
    out: list[dict[str, Any]] = []
    for panel in model["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def compose_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of a compose service's short-syntax volumes ("src:dst[:mode]")."""
    return [(v.split(":")[0], v.split(":")[1]) for v in service.get("volumes", [])]


def setting_env_names() -> set[str]:
    """Every environment variable Tocsin's settings read (TOCSIN_<SECTION>__<KEY>)."""
    from pydantic import BaseModel

    from services.runtime.settings import SETTINGS_FILE_ENV, Settings

    names = {SETTINGS_FILE_ENV}

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name.upper()}__")
            else:
                names.add(f"{prefix}{name.upper()}")

    walk(Settings, "TOCSIN_")
    return names


def check_settings(env: dict[str, str]) -> None:
    """Raise unless the TOCSIN_* variables of `env` are settings Tocsin accepts with these values."""
    from services.runtime.settings import SETTINGS_FILE_ENV, load_settings

    known = setting_env_names()
    tocsin = {k: v for k, v in env.items() if k.startswith("TOCSIN_") and k != SETTINGS_FILE_ENV}
    unknown = sorted(set(tocsin) - known)
    if unknown:
        raise AssertionError(f"not Tocsin settings: {unknown}")
    load_settings(
        {k.removeprefix("TOCSIN_").lower().replace("__", "."): v for k, v in tocsin.items()}
    )
