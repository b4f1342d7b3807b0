"""deploy/k8s, statically: probes, graceful stop, resources, references between objects."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from tests.deploy.artifacts import K8S, check_settings, load_yaml, load_yaml_all

KUSTOMIZATION: dict[str, Any] = load_yaml(K8S / "kustomization.yaml")
OBJECTS: list[dict[str, Any]] = [
    doc for name in KUSTOMIZATION["resources"] for doc in load_yaml_all(K8S / name)
]
DEPLOYMENTS = {o["metadata"]["name"]: o for o in OBJECTS if o["kind"] == "Deployment"}
SECRET_KEYS = {
    o["metadata"]["name"]: set(o["stringData"]) for o in OBJECTS if o["kind"] == "Secret"
}
CONFIGMAPS = {o["metadata"]["name"] for o in OBJECTS if o["kind"] == "ConfigMap"}
DRAIN_SECONDS = 10  # services/runtime/lifecycle.py: Lifecycle(drain_timeout=10.0)

# Deployment -> the `tocsin` subcommand it runs; the last one is planned (replicas: 0).
COMMANDS = {
    "tocsin-ingest": ("ingest", False),
    "tocsin-router": ("router", False),
    "tocsin-notifiers": ("notifiers", False),
    "tocsin-remediation": ("remediation", True),
}


def only(kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in OBJECTS if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(found) == 1
    return found[0]


def test_every_listed_resource_exists_and_parses() -> None:
    for name in KUSTOMIZATION["resources"]:
        assert (K8S / name).is_file(), name
    assert sorted(p.name for p in K8S.glob("*.yaml")) == sorted(
        [*KUSTOMIZATION["resources"], "kustomization.yaml"]
    )


def test_one_deployment_per_service() -> None:
    assert set(DEPLOYMENTS) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_deployment(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    pod = deployment["spec"]["template"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    main = container(deployment)
    assert main["image"] == "tocsin"  # kustomization.yaml `images:` names the registry and tag
    command, planned = COMMANDS[name]
    assert main["args"] == [command]
    assert (deployment["spec"]["replicas"] == 0) is planned
    if planned:
        text = (K8S / f"{command}.yaml").read_text(encoding="utf-8")
        assert f"# PLANNED: `tocsin {command}`" in text


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_probes_on_the_http_port(name: str) -> None:
    main = container(DEPLOYMENTS[name])
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http": 9095}
    for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
        get = main[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == 9095


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_stop_is_longer_than_the_drain(name: str) -> None:
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    assert grace == 30
    pre_stop = container(DEPLOYMENTS[name]).get("lifecycle", {}).get("preStop", {})
    pause = int(pre_stop["exec"]["command"][1]) if pre_stop else 0
    assert grace > pause + DRAIN_SECONDS


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_resources_and_security(name: str) -> None:
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    main = container(DEPLOYMENTS[name])
    for bound in ("requests", "limits"):
        assert set(main["resources"][bound]) == {"cpu", "memory"}, bound
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_references_resolve_and_settings_are_valid(name: str) -> None:
    pod = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    main = container(DEPLOYMENTS[name])
    literal = {e["name"]: e["value"] for e in main["env"] if "value" in e}
    for entry in main["env"]:
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            assert ref["key"] in SECRET_KEYS[ref["name"]], entry["name"]
            literal[entry["name"]] = "redis://redis:6379/0"  # a value of the right shape
    check_settings(literal)
    mounts = {m["name"]: m["mountPath"] for m in main.get("volumeMounts", [])}
    for volume in pod.get("volumes", []):
        assert volume["name"] in mounts
        if "secret" in volume:
            keys = {item["key"] for item in volume["secret"]["items"]}
            assert keys <= SECRET_KEYS[volume["secret"]["secretName"]]
        if "configMap" in volume:
            assert volume["configMap"]["name"] in CONFIGMAPS
            config_file = literal["TOCSIN_CONFIG__FILE"]
            assert config_file == f"{mounts[volume['name']]}/alertmanager.yml"


def test_ingest_service_and_disruption_budget_select_ingest_pods() -> None:
    labels = DEPLOYMENTS["tocsin-ingest"]["spec"]["template"]["metadata"]["labels"]
    service = only("Service", "tocsin-ingest")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 9095, "targetPort": "http"}]
    budget = only("PodDisruptionBudget", "tocsin-ingest")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] < DEPLOYMENTS["tocsin-ingest"]["spec"]["replicas"]


def test_secret_holds_only_placeholders() -> None:
    for value in only("Secret", "tocsin-secrets")["stringData"].values():
        assert "CHANGE" in value


def test_kustomize_builds() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed")
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "image: registry.example.com/tocsin:0.1.0" in result.stdout
    assert "namespace: tocsin" in result.stdout
