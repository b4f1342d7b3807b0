"""deploy/grafana: provisioning, and the dashboards' panels, queries, thresholds and layout."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.artifacts import (
    COMPOSE,
    DASHBOARD_PROVIDER,
    DASHBOARDS,
    DATASOURCES,
    DEPLOY,
    compose_mounts,
    dashboard,
    leaf_panels,
    load_yaml,
)

UIDS = list(DASHBOARDS)
GRID_COLUMNS = 24


def provisioned_datasources() -> dict[str, str]:
    """uid -> type of every provisioned data source."""
    return {d["uid"]: d["type"] for d in load_yaml(DATASOURCES)["datasources"]}


def datasource_refs(model: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, {type, uid}) for every data source reference of a dashboard."""
    refs = []
    for panel in leaf_panels(model):
        refs.append((f"panel {panel['id']}", panel["datasource"]))
        refs.extend(
            (f"panel {panel['id']} target {t['refId']}", t["datasource"]) for t in panel["targets"]
        )
    for variable in model["templating"]["list"]:
        if "datasource" in variable:
            refs.append((f"variable {variable['name']}", variable["datasource"]))
    for annotation in model["annotations"]["list"]:
        if annotation["datasource"]["type"] != "grafana":
            refs.append((f"annotation {annotation['name']}", annotation["datasource"]))
    return refs


def thresholds(panel: dict[str, Any]) -> list[tuple[str, float | None]]:
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(step["color"], step["value"]) for step in steps]


def test_datasources_are_the_guides_with_fixed_uids() -> None:
    datasources = load_yaml(DATASOURCES)["datasources"]
    assert [(d["name"], d["type"], d["uid"]) for d in datasources] == [
        ("Prometheus", "prometheus", "prometheus"),
        ("Redis", "redis-datasource", "redis"),
        ("PostgreSQL", "postgres", "postgresql"),
    ]
    prometheus, redis, postgres = datasources
    assert prometheus["url"] == "http://prometheus:9090"
    assert prometheus["isDefault"] is True
    # secrets only in secureJsonData, from the environment
    assert "password" not in redis.get("jsonData", {})
    assert redis["secureJsonData"]["password"] == "$REDIS_PASSWORD"
    assert postgres["secureJsonData"]["password"] == "$DB_PASSWORD"


def test_dashboard_provider_reads_the_dashboards_compose_mounts() -> None:
    [provider] = load_yaml(DASHBOARD_PROVIDER)["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["foldersFromFilesStructure"] is True
    container_path = provider["options"]["path"]
    grafana = load_yaml(COMPOSE)["services"]["grafana"]
    [(source, target)] = [
        (s, t) for s, t in compose_mounts(grafana) if container_path.startswith(t + "/")
    ]
    local = (DEPLOY / source / Path(container_path).relative_to(target)).resolve()
    for path in DASHBOARDS.values():
        assert local in path.resolve().parents
    # folders come from subdirectories: the guide's two in "Production", Tocsin's in "Tocsin"
    assert DASHBOARDS["catalytic-system-metrics"].parent.name == "Production"
    assert DASHBOARDS["catalytic-business-metrics"].parent.name == "Production"
    assert DASHBOARDS["tocsin-pipeline"].parent.name == "Tocsin"


@pytest.mark.parametrize("uid", UIDS)
def test_dashboard_is_valid_json_with_its_uid(uid: str) -> None:
    model = json.loads(DASHBOARDS[uid].read_text(encoding="utf-8"))
    assert model["uid"] == uid
    assert model["id"] is None
    assert model["schemaVersion"] == 39
    assert model["title"]


@pytest.mark.parametrize(
    ("uid", "count", "refresh"),
    [
        ("catalytic-system-metrics", 12, "10s"),
        ("catalytic-business-metrics", 17, "30s"),
        ("tocsin-pipeline", 15, "10s"),
    ],
)
def test_panel_count_and_refresh(uid: str, count: int, refresh: str) -> None:
    model = dashboard(uid)
    assert len(leaf_panels(model)) == count
    assert model["refresh"] == refresh


@pytest.mark.parametrize("uid", UIDS)
def test_panel_ids_are_unique(uid: str) -> None:
    ids = [panel["id"] for panel in dashboard(uid)["panels"]]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("uid", UIDS)
def test_grid_has_no_overlaps(uid: str) -> None:
    boxes = []
    for panel in dashboard(uid)["panels"]:
        grid = panel["gridPos"]
        assert min(grid["w"], grid["h"]) > 0, panel["title"]
        assert min(grid["x"], grid["y"]) >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        boxes.append((panel["title"], grid))
    for (a, ga), (b, gb) in itertools.combinations(boxes, 2):
        apart = (
            ga["x"] + ga["w"] <= gb["x"]
            or gb["x"] + gb["w"] <= ga["x"]
            or ga["y"] + ga["h"] <= gb["y"]
            or gb["y"] + gb["h"] <= ga["y"]
        )
        assert apart, f"{a!r} and {b!r} overlap"


@pytest.mark.parametrize("uid", UIDS)
def test_every_target_has_a_query(uid: str) -> None:
    for panel in leaf_panels(dashboard(uid)):
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            kind = target["datasource"]["type"]
            field = {"prometheus": "expr", "postgres": "rawSql"}[kind]
            assert target[field].strip(), f"{panel['title']} {target['refId']}: empty {field}"


@pytest.mark.parametrize("uid", UIDS)
def test_datasources_match_provisioning(uid: str) -> None:
    provisioned = provisioned_datasources()
    for where, ref in datasource_refs(dashboard(uid)):
        assert ref["uid"] in provisioned, f"{uid} {where}: unknown data source {ref}"
        assert provisioned[ref["uid"]] == ref["type"], f"{uid} {where}: {ref}"


@pytest.mark.parametrize(
    ("uid", "variables"),
    [
        ("catalytic-system-metrics", ["environment", "instance", "time_range"]),
        ("catalytic-business-metrics", ["plan_type", "time_range", "country"]),
        ("tocsin-pipeline", ["instance"]),
    ],
)
def test_template_variables_are_the_guides(uid: str, variables: list[str]) -> None:
    assert [v["name"] for v in dashboard(uid)["templating"]["list"]] == variables


# (panel id, title, unit, threshold steps as the guide gives them)
SYSTEM_PANELS = [
    (1, "API Response Time (p95 & p99)", "s", [("green", None), ("yellow", 0.5), ("red", 1)]),
    (2, "API Request Rate", "reqps", [("green", None)]),
    (3, "GPU Utilization", "percent", [("green", None), ("yellow", 80), ("red", 90)]),
    (4, "Memory Efficiency Ratio", "percent", [("red", None), ("green", 100)]),
    (5, "Processing Speed Improvement", "percent", [("red", None), ("green", 100)]),
    (6, "Database Connection Pool", "short", [("green", None)]),
    (7, "Redis Cache Hit Rate", "percent", [("red", None), ("yellow", 80), ("green", 90)]),
    (8, "Error Rate", "percent", [("green", None), ("yellow", 0.1), ("red", 1)]),
    (9, "System CPU Usage", "percent", [("green", None), ("yellow", 70), ("red", 85)]),
    (10, "System Memory Usage", "percent", [("green", None), ("yellow", 80), ("red", 90)]),
    (11, "Disk Usage", "percent", [("green", None), ("yellow", 75), ("red", 85)]),
    (12, "Lattice Operations", "short", [("green", None)]),
]
BUSINESS_TARGETS = [
    (2, "MRR Growth Rate", "percent", [("red", None), ("green", 15)]),
    (5, "Customer Churn Rate", "percent", [("green", None), ("red", 5)]),
    (6, "Trial Conversions", "percent", [("red", None), ("green", 20)]),
    (8, "User Activation Rate", "percent", [("red", None), ("green", 80)]),
    (11, "Payment Success Rate", "percent", [("red", None), ("green", 98)]),
    (14, "Average Resolution Time", "h", [("green", None), ("red", 24)]),
]


@pytest.mark.parametrize(
    ("uid", "pid", "title", "unit", "steps"),
    [("catalytic-system-metrics", *p) for p in SYSTEM_PANELS]
    + [("catalytic-business-metrics", *p) for p in BUSINESS_TARGETS],
    ids=lambda value: value if isinstance(value, str) and " " in value else None,
)
def test_panel_unit_and_thresholds(
    uid: str, pid: int, title: str, unit: str, steps: list[tuple[str, float | None]]
) -> None:
    [panel] = [p for p in dashboard(uid)["panels"] if p["id"] == pid]
    assert panel["title"] == title
    assert panel["fieldConfig"]["defaults"]["unit"] == unit
    assert thresholds(panel) == steps


def test_connection_pool_utilization_has_the_guides_thresholds() -> None:
    [panel] = [p for p in dashboard("catalytic-system-metrics")["panels"] if p["id"] == 6]
    [override] = panel["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byName", "options": "Utilization"}
    props = {p["id"]: p["value"] for p in override["properties"]}
    assert props["unit"] == "percent"
    steps = [(s["color"], s["value"]) for s in props["thresholds"]["steps"]]
    assert steps == [("green", None), ("yellow", 70), ("red", 90)]


def test_business_dashboard_has_the_guides_annotations() -> None:
    names = [a["name"] for a in dashboard("catalytic-business-metrics")["annotations"]["list"]]
    assert names[1:] == ["Deployments", "Marketing campaigns", "Product launches", "Incidents"]


@pytest.mark.parametrize(
    "metric",
    [
        "tocsin_ingest_alerts_accepted_total",
        "tocsin_http_requests_total",
        "tocsin_ingest_publish_seconds_bucket",
        "tocsin_ingest_publish_failures_total",
        "tocsin_router_alerts_received_total",
        "tocsin_router_alerts_dropped_total",
        "tocsin_notifications_total",
        "tocsin_notifications_dead_lettered_total",
        "tocsin_remediation_remediations_total",
        "tocsin_remediation_pending",
        "tocsin_remediation_circuit_open",
        "tocsin_remediation_audit_pg_backlog",
        "tocsin_remediation_audit_records_total",
        "tocsin_remediation_audit_pg_failures_total",
    ],
)
def test_tocsin_dashboard_queries(metric: str) -> None:
    assert metric in queried_metrics(dashboard("tocsin-pipeline"))


# A metric created in services/: Counter("tocsin_...", ...), Gauge(\n "tocsin_...", ...), ...
_REGISTRATION = re.compile(r"\b(Counter|Gauge|Histogram|Summary|Info|Enum)\(\s*\"(tocsin_\w+)\"")
# What prometheus_client exposes for each (Counter("x_total") and Counter("x") both give x_total).
_EXPOSED = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_count", "_sum", "_created"),
    "Summary": ("", "_count", "_sum", "_created"),
    "Info": ("_info",),
    "Enum": ("",),
}


def registered_metrics() -> set[str]:
    """Every tocsin_* series name Tocsin's services export, from their source."""
    names: set[str] = set()
    for path in sorted((DEPLOY.parent / "services").rglob("*.py")):
        for kind, name in _REGISTRATION.findall(path.read_text(encoding="utf-8")):
            base = name.removesuffix("_total") if kind == "Counter" else name
            names.update(base + suffix for suffix in _EXPOSED[kind])
    return names


def queried_metrics(model: dict[str, Any]) -> set[str]:
    """The tocsin_* names a dashboard's PromQL (targets and variables) reads."""
    exprs = [t["expr"] for p in leaf_panels(model) for t in p["targets"] if "expr" in t]
    exprs += [v.get("definition", "") for v in model["templating"]["list"]]
    return {name for expr in exprs for name in re.findall(r"\btocsin_\w+", expr)}


def test_registered_metrics_scan_finds_each_kind() -> None:
    names = registered_metrics()
    assert "tocsin_ingest_publish_seconds_bucket" in names  # Histogram
    assert "tocsin_remediation_pending" in names  # Gauge
    assert "tocsin_build_info" in names  # Gauge created on its own line
    assert "tocsin_notifications_total" in names  # Counter named with _total
    assert "tocsin_remediation_audit" not in names  # the audit table's name, not a metric


@pytest.mark.parametrize("uid", UIDS)
def test_dashboards_query_only_metrics_tocsin_exports(uid: str) -> None:
    unknown = queried_metrics(dashboard(uid)) - registered_metrics()
    assert not unknown, f"{uid} queries metrics no service registers: {sorted(unknown)}"


def test_tocsin_dashboard_has_nothing_planned() -> None:
    model = dashboard("tocsin-pipeline")
    for panel in model["panels"]:
        assert "planned" not in panel["title"].lower(), panel["title"]
        assert "planned" not in panel.get("description", "").lower(), panel["title"]
    assert "once those services" not in model["description"]


@pytest.mark.parametrize(
    ("title", "expr"),
    [
        ("Pending approvals", 'max(tocsin_remediation_pending{instance=~"$instance"})'),
        ("Auto-remediation circuit", 'max(tocsin_remediation_circuit_open{instance=~"$instance"})'),
    ],
)
def test_remediation_state_panels_take_the_max_of_replicas(title: str, expr: str) -> None:
    # every replica reports the same Redis state: a sum would count it once per replica
    [panel] = [p for p in leaf_panels(dashboard("tocsin-pipeline")) if p["title"] == title]
    assert [t["expr"] for t in panel["targets"]] == [expr]
    assert thresholds(panel)[-1][0] in ("yellow", "red")


def test_circuit_panel_names_its_states() -> None:
    [panel] = [
        p
        for p in leaf_panels(dashboard("tocsin-pipeline"))
        if p["title"] == "Auto-remediation circuit"
    ]
    [mapping] = panel["fieldConfig"]["defaults"]["mappings"]
    assert {k: v["text"] for k, v in mapping["options"].items()} == {"0": "closed", "1": "open"}
