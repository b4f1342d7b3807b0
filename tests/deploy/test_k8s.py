"""deploy/k8s, statically: probes, graceful stop, resources, references between objects."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest

from schemas.remediation import AppTarget, load_policy
from services.cli import _parser
from tests.deploy.artifacts import DEPLOY, K8S, check_settings, load_yaml, load_yaml_all
from tests.deploy.test_remediation_policy import POLICY_FILE, policy_variables

KUSTOMIZATION: dict[str, Any] = load_yaml(K8S / "kustomization.yaml")
OBJECTS: list[dict[str, Any]] = [
    doc for name in KUSTOMIZATION["resources"] for doc in load_yaml_all(K8S / name)
]
DEPLOYMENTS = {o["metadata"]["name"]: o for o in OBJECTS if o["kind"] == "Deployment"}
SECRET_DATA: dict[str, dict[str, str]] = {
    o["metadata"]["name"]: o["stringData"] for o in OBJECTS if o["kind"] == "Secret"
}
SECRET_KEYS = {name: set(data) for name, data in SECRET_DATA.items()}
CONFIGMAPS: dict[str, dict[str, str]] = {
    o["metadata"]["name"]: o["data"] for o in OBJECTS if o["kind"] == "ConfigMap"
}
DRAIN_SECONDS = 10  # services/runtime/lifecycle.py: Lifecycle(drain_timeout=10.0)

# Deployment -> the `tocsin` subcommand it runs.
COMMANDS = {
    "tocsin-ingest": "ingest",
    "tocsin-router": "router",
    "tocsin-notifiers": "notifiers",
    "tocsin-remediation": "remediation",
}
# Deployments with an API behind a Service (and a PodDisruptionBudget).
SERVED = ("tocsin-ingest", "tocsin-remediation")


def only(kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in OBJECTS if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    found: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(found) == 1
    return found[0]


def literal_env(deployment: dict[str, Any]) -> dict[str, str]:
    """The container's env values given inline (secretKeyRef ones left out)."""
    return {e["name"]: e["value"] for e in container(deployment)["env"] if "value" in e}


def pod_env(deployment: dict[str, Any]) -> dict[str, str]:
    """The container's environment with the placeholder values of secret.yaml filled in."""
    env: dict[str, str] = {}
    for entry in container(deployment)["env"]:
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = SECRET_DATA[ref["name"]][ref["key"]]
    return env


def pod_files(deployment: dict[str, Any]) -> dict[str, str]:
    """Path in the container -> "<kind>/<object>/<key>" of every file a ConfigMap or Secret
    volume puts there."""
    pod = deployment["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in container(deployment).get("volumeMounts", [])}
    files: dict[str, str] = {}
    for volume in pod.get("volumes", []):
        root = PurePosixPath(mounts[volume["name"]])
        if "configMap" in volume:
            name = volume["configMap"]["name"]
            for key in CONFIGMAPS[name]:
                files[str(root / key)] = f"ConfigMap/{name}/{key}"
        if "secret" in volume:
            name = volume["secret"]["secretName"]
            for item in volume["secret"]["items"]:
                files[str(root / item["path"])] = f"Secret/{name}/{item['key']}"
    return files


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
    assert main["args"] == [COMMANDS[name]]
    assert deployment["spec"]["replicas"] >= 1


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_args_are_a_tocsin_command(name: str) -> None:
    args = _parser().parse_args(container(DEPLOYMENTS[name])["args"])
    assert args.command == COMMANDS[name]
    assert getattr(args, "remediation_command", None) is None  # the service, not a client


def test_nothing_is_planned_any_more() -> None:
    for path in K8S.glob("*.yaml"):
        assert "PLANNED" not in path.read_text(encoding="utf-8"), path.name


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
    # every setting naming a file under a mounted ConfigMap or Secret names one that is there
    files = pod_files(DEPLOYMENTS[name])
    for key, value in literal.items():
        if any(value.startswith(f"{root}/") for root in mounts.values()):
            assert value in files, f"{key}={value}: no such key in the mounted volume"


@pytest.mark.parametrize(
    ("name", "setting", "source"),
    [
        ("tocsin-router", "TOCSIN_CONFIG__FILE", "ConfigMap/tocsin-config/alertmanager.yml"),
        ("tocsin-notifiers", "TOCSIN_CONFIG__FILE", "ConfigMap/tocsin-config/alertmanager.yml"),
        # the router publishes remediation requests only with the policy
        (
            "tocsin-router",
            "TOCSIN_REMEDIATION__POLICY_FILE",
            "ConfigMap/tocsin-config/remediation.yml",
        ),
        (
            "tocsin-remediation",
            "TOCSIN_REMEDIATION__POLICY_FILE",
            "ConfigMap/tocsin-config/remediation.yml",
        ),
        (
            "tocsin-remediation",
            "TOCSIN_WEB__AUTH__BEARER_TOKEN_FILE",
            "Secret/tocsin-secrets/remediation-api-token",
        ),
        (
            "tocsin-ingest",
            "TOCSIN_WEB__AUTH__BEARER_TOKEN_FILE",
            "Secret/tocsin-secrets/ingest-token",
        ),
    ],
)
def test_file_settings_point_at_the_right_keys(name: str, setting: str, source: str) -> None:
    deployment = DEPLOYMENTS[name]
    assert pod_files(deployment)[literal_env(deployment)[setting]] == source


def test_configmap_policy_is_the_deploy_policy() -> None:
    policy = (DEPLOY / "tocsin" / "remediation.yml").read_text(encoding="utf-8")
    assert CONFIGMAPS["tocsin-config"]["remediation.yml"] == policy


def test_remediation_has_the_audit_dsn_and_the_agent_secret() -> None:
    deployment = DEPLOYMENTS["tocsin-remediation"]
    [dsn] = [
        e for e in container(deployment)["env"] if e["name"] == "TOCSIN_REMEDIATION__AUDIT_DSN"
    ]
    assert dsn["valueFrom"]["secretKeyRef"] == {
        "name": "tocsin-secrets",
        "key": "remediation-audit-dsn",
    }
    # each app target's secret_file is where the pod has the Secret's agent key
    policy = load_policy(POLICY_FILE, env=pod_env(deployment))
    apps: dict[str, AppTarget] = policy.targets.apps
    files = pod_files(deployment)
    assert apps
    for target in apps.values():
        if target.secret_file is not None:
            assert files[str(target.secret_file)] == "Secret/tocsin-secrets/tocsin-agent-secret"


# Deployments that load the remediation policy: the router (to publish requests) and the service.
POLICY_LOADERS = ("tocsin-router", "tocsin-remediation")


def test_the_policy_loaders_are_those_with_the_policy_file() -> None:
    loaders = {
        name
        for name, deployment in DEPLOYMENTS.items()
        if "TOCSIN_REMEDIATION__POLICY_FILE" in literal_env(deployment)
    }
    assert loaders == set(POLICY_LOADERS)


@pytest.mark.parametrize("name", POLICY_LOADERS)
def test_policy_variables_come_from_the_secret(name: str) -> None:
    deployment = DEPLOYMENTS[name]
    entries = {e["name"]: e for e in container(deployment)["env"]}
    for variable in sorted(policy_variables()):
        assert variable in entries, f"{name}: {variable} not set (the policy would not load)"
        ref = entries[variable]["valueFrom"]["secretKeyRef"]  # a secret: it holds a password
        assert ref["name"] == "tocsin-secrets"
        assert ref["key"] in SECRET_KEYS["tocsin-secrets"], variable
    # the policy loads with the Secret's values, and its targets carry their credentials
    policy = load_policy(POLICY_FILE, env=pod_env(deployment))
    for redis in policy.targets.redis.values():
        assert redis.url.get_secret_value().startswith("redis://:")
    for postgres in policy.targets.postgres.values():
        assert urlsplit(postgres.dsn.get_secret_value()).username == "tocsin_remediation"


@pytest.mark.parametrize("name", SERVED)
def test_service_and_disruption_budget_select_their_pods(name: str) -> None:
    labels = DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"]
    service = only("Service", name)
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": 9095, "targetPort": "http"}]
    budget = only("PodDisruptionBudget", name)
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] < DEPLOYMENTS[name]["spec"]["replicas"]
    # a Service's pods get a preStop pause, so that it stops routing to them before SIGTERM
    assert container(DEPLOYMENTS[name])["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"


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
