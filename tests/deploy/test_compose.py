"""deploy/compose.yaml and deploy/Dockerfile, statically (Docker does not run in the tests)."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from schemas.remediation import ActionName, Policy, TerminateIdleParams, load_policy
from tests.deploy.artifacts import COMPOSE, DEPLOY, check_settings, compose_mounts, load_yaml

COMPOSE_FILE: dict[str, Any] = load_yaml(COMPOSE)
SERVICES: dict[str, Any] = COMPOSE_FILE["services"]
DOCKERFILE = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
POLICY: Policy = load_policy(DEPLOY / "tocsin" / "remediation.yml")


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment", {})
    assert isinstance(env, dict), f"{service}: write environment as a mapping"
    return {k: str(v) for k, v in env.items()}


def test_services() -> None:
    expected = {
        "kafka",
        "redis",
        "postgres",
        "prometheus",
        "alertmanager",
        "grafana",
        "tocsin",
        "node-exporter",
        "redis-exporter",
        "postgres-exporter",
        "saas-api",
    }
    assert set(SERVICES) == expected


@pytest.mark.parametrize(
    ("service", "image"),
    [
        ("prometheus", "prom/prometheus:v2.45.0"),
        ("alertmanager", "prom/alertmanager:v0.25.0"),
        ("node-exporter", "prom/node-exporter:v1.6.1"),
        ("redis-exporter", "oliver006/redis_exporter:v1.50.0"),
        ("postgres-exporter", "prometheuscommunity/postgres-exporter:v0.13.0"),
    ],
)
def test_the_guides_versions(service: str, image: str) -> None:
    assert SERVICES[service]["image"] == image


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_images_are_pinned(service: str) -> None:
    image = SERVICES[service]["image"]
    assert ":" in image, image
    assert not image.endswith(":latest"), image


def test_kafka_is_a_single_kraft_node() -> None:
    env = environment("kafka")
    assert SERVICES["kafka"]["image"].startswith(("apache/kafka:", "bitnami/kafka:"))
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert "zookeeper" not in SERVICES
    assert "healthcheck" in SERVICES["kafka"]


def test_tocsin_is_built_from_the_dockerfile_and_runs_everything() -> None:
    tocsin = SERVICES["tocsin"]
    assert tocsin["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / ".." / tocsin["build"]["dockerfile"]).is_file()
    assert tocsin["command"] == ["run"]
    env = environment("tocsin")
    assert env["TOCSIN_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert re.fullmatch(
        r"redis://:\$\{REDIS_PASSWORD[^}]*\}@redis:6379/0", env["TOCSIN_REDIS__URL"]
    )
    assert env["TOCSIN_CONFIG__FILE"] == "/etc/tocsin/alertmanager.yml"
    assert ("./tocsin/alertmanager.yml", "/etc/tocsin/alertmanager.yml") in compose_mounts(tocsin)
    assert {"SMTP_PASSWORD", "SLACK_WEBHOOK_URL", "PAGERDUTY_WEBHOOK_URL"} <= set(env)
    assert tocsin["depends_on"]["kafka"] == {"condition": "service_healthy"}
    # stop_grace_period beyond the 10 s drain
    assert int(tocsin["stop_grace_period"].removesuffix("s")) > 10
    check_settings(env)


def test_alert_path_is_prometheus_alertmanager_tocsin() -> None:
    prometheus = compose_mounts(SERVICES["prometheus"])
    assert ("./prometheus/prometheus.yml", "/etc/prometheus/prometheus.yml") in prometheus
    assert ("./prometheus/rules", "/etc/prometheus/rules") in prometheus
    alertmanager = compose_mounts(SERVICES["alertmanager"])
    assert ("./alertmanager/alertmanager.yml", "/etc/alertmanager/alertmanager.yml") in alertmanager
    # the token Alertmanager sends (credentials_file) is the one Tocsin requires
    for service in ("alertmanager", "tocsin"):
        assert "tocsin-ingest-token" in SERVICES[service]["secrets"]
    token = environment("tocsin")["TOCSIN_WEB__AUTH__BEARER_TOKEN_FILE"]
    assert token == "/run/secrets/tocsin-ingest-token"
    relay = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")
    webhook = relay["receivers"][0]["webhook_configs"][0]
    assert webhook["http_config"]["authorization"]["credentials_file"] == token


def test_postgres_answers_to_the_guides_hostname() -> None:
    # the guide's exporter DSN and Grafana data source say postgresql:5432
    assert "postgresql" in SERVICES["postgres"]["networks"]["monitoring"]["aliases"]
    assert "@postgresql:5432/" in environment("postgres-exporter")["DATA_SOURCE_NAME"]


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_bind_mounts_exist(service: str) -> None:
    for source, _ in compose_mounts(SERVICES[service]):
        if source.startswith("./"):
            assert (DEPLOY / source).exists(), f"{service}: {source} missing"


def test_secret_files_live_in_the_ignored_directory() -> None:
    for name, secret in COMPOSE_FILE["secrets"].items():
        assert secret["file"].startswith("./secrets/"), name
    assert "secrets/*" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert (DEPLOY / "secrets" / "README.md").is_file()


def test_every_variable_is_in_the_env_example() -> None:
    used = set(re.findall(r"\$\{(\w+)", COMPOSE.read_text(encoding="utf-8")))
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^(\w+)=", example, re.MULTILINE))
    assert used <= defined, sorted(used - defined)


def interpolate(value: str) -> str:
    """`value` as Compose makes it with deploy/.env.example as its .env."""
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    env = dict(re.findall(r"^(\w+)=(.*)$", example, re.MULTILINE))
    return re.sub(r"\$\{(\w+)[^}]*\}", lambda m: env[m.group(1)], value)


def hostnames() -> set[str]:
    """Every name a container on the compose network answers to."""
    names = set(SERVICES)
    for service in SERVICES.values():
        networks = service.get("networks", {})
        if isinstance(networks, dict):
            for network in networks.values():
                names.update((network or {}).get("aliases", []))
    return names


def test_tocsin_runs_remediation_with_the_policy() -> None:
    # `tocsin run` with the policy: the router publishes requests and the service handles them
    env = environment("tocsin")
    assert env["TOCSIN_REMEDIATION__POLICY_FILE"] == "/etc/tocsin/remediation.yml"
    assert ("./tocsin/remediation.yml", "/etc/tocsin/remediation.yml") in compose_mounts(
        SERVICES["tocsin"]
    )
    assert not any(name.startswith("tocsin-") for name in SERVICES)  # no second replica
    assert SERVICES["tocsin"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    check_settings(env)


def test_audit_dsn_is_the_compose_postgres() -> None:
    dsn = urlsplit(interpolate(environment("tocsin")["TOCSIN_REMEDIATION__AUDIT_DSN"]))
    postgres = {k: interpolate(v) for k, v in environment("postgres").items()}
    assert (dsn.scheme, dsn.hostname, dsn.port) == ("postgresql", "postgresql", 5432)
    assert (dsn.username, dsn.password) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )
    assert dsn.path == f"/{postgres['POSTGRES_DB']}"


def test_policy_targets_are_compose_hosts() -> None:
    urls = [t.url.get_secret_value() for t in POLICY.targets.redis.values()]
    urls += [t.dsn.get_secret_value() for t in POLICY.targets.postgres.values()]
    urls += [t.url for t in POLICY.targets.apps.values()]
    for url in urls:
        assert urlsplit(url).hostname in hostnames(), url


def test_agent_secret_is_a_compose_secret_of_both_sides() -> None:
    assert COMPOSE_FILE["secrets"]["tocsin-agent-secret"] == {
        "file": "./secrets/tocsin-agent-secret"
    }
    for target in POLICY.targets.apps.values():
        assert str(target.secret_file) == "/run/secrets/tocsin-agent-secret"
    for service in ("tocsin", "saas-api"):
        assert "tocsin-agent-secret" in SERVICES[service]["secrets"], service


def demo_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_app", DEPLOY / "demo-app" / "demo_app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_app_is_the_guides_saas_api() -> None:
    app = SERVICES["saas-api"]
    assert app["image"] == SERVICES["tocsin"]["image"]
    assert app["build"] == SERVICES["tocsin"]["build"]
    [(source, script)] = compose_mounts(app)
    assert source == "./demo-app/demo_app.py"
    assert app["entrypoint"] == ["python", script]
    # the demo app's own parser takes them
    args = demo_app().parse_args([interpolate(arg) for arg in app["command"]])
    assert args.listen == "0.0.0.0:8000"
    assert args.agent_secret_file == "/run/secrets/tocsin-agent-secret"
    pg_dsn, redis_url = urlsplit(args.pg_dsn), urlsplit(args.redis_url)
    assert (pg_dsn.hostname, pg_dsn.port, redis_url.hostname, redis_url.port) == (
        "postgresql",
        5432,
        "redis",
        6379,
    )
    assert redis_url.password == interpolate("${REDIS_PASSWORD}")
    # the policy reaches it at saas-api:8000, and terminate_idle picks its sessions
    [agent] = POLICY.targets.apps.values()
    assert urlsplit(agent.url).netloc == "saas-api:8000"
    [idle] = [r for r in POLICY.rules if r.action is ActionName.POSTGRES_TERMINATE_IDLE]
    assert isinstance(idle.params, TerminateIdleParams)
    assert args.application_name in idle.params.application_names
    # Prometheus scrapes it as the guide's catalytic-saas job
    prometheus = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    [job] = [j for j in prometheus["scrape_configs"] if j["job_name"] == "catalytic-saas"]
    assert job["static_configs"][0]["targets"] == ["saas-api:8000"]
    # the image's HEALTHCHECK probes Tocsin's port: the app has its own
    assert "127.0.0.1:8000/health" in " ".join(app["healthcheck"]["test"])


def test_dockerfile() -> None:
    stages = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert stages[-1] == "python:3.12-slim"
    assert "pip install" in DOCKERFILE
    assert 'ENTRYPOINT ["tocsin"]' in DOCKERFILE
    assert 'CMD ["run"]' in DOCKERFILE
    assert "EXPOSE 9095" in DOCKERFILE
    assert "STOPSIGNAL SIGTERM" in DOCKERFILE
    [user] = re.findall(r"^USER (\S+)", DOCKERFILE, re.MULTILINE)
    assert not user.startswith(("root", "0:", "0")), user


def test_build_context_keeps_what_pip_needs() -> None:
    # The context is filtered by an allow list; everything the Dockerfile copies is on it.
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"
    copied = [
        name
        for sources in re.findall(r"^COPY (?!--)(.+) \S+$", DOCKERFILE, re.MULTILINE)
        for name in sources.split()
    ]
    assert copied == ["pyproject.toml", "setup.py", "README.md", "schemas", "services"]
    for name in copied:
        assert f"!{name}" in rules or f"!{name}/" in rules, name
