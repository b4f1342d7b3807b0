"""deploy/compose.yaml and deploy/Dockerfile, statically (Docker does not run in the tests)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.artifacts import COMPOSE, DEPLOY, check_settings, compose_mounts, load_yaml

COMPOSE_FILE: dict[str, Any] = load_yaml(COMPOSE)
SERVICES: dict[str, Any] = COMPOSE_FILE["services"]
DOCKERFILE = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")


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


def test_demo_app_is_a_commented_placeholder() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "# saas-api:" in text
    assert "saas-api" not in SERVICES


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
