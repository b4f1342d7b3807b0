"""deploy/compose.yaml and deploy/Dockerfile, statically (Docker does not run in the tests)."""

from __future__ import annotations

import importlib.util
import re
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

from schemas.remediation import (
    ActionName,
    CacheFlushParams,
    Policy,
    TerminateIdleParams,
    load_policy,
)
from tests.deploy.artifacts import COMPOSE, DEPLOY, check_settings, compose_mounts, load_yaml
from tests.deploy.test_remediation_policy import POLICY_FILE, policy_variables

COMPOSE_FILE: dict[str, Any] = load_yaml(COMPOSE)
SERVICES: dict[str, Any] = COMPOSE_FILE["services"]
DOCKERFILE = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
INIT_SQL = DEPLOY / "postgres" / "initdb" / "10-roles.sql"


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


# The policy as the tocsin container loads it: its $VARs from the container's environment.
POLICY: Policy = load_policy(
    POLICY_FILE, env={k: interpolate(v) for k, v in environment("tocsin").items()}
)


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


def postgres_env() -> dict[str, str]:
    return {k: interpolate(v) for k, v in environment("postgres").items()}


def init_roles() -> dict[str, dict[str, str]]:
    """Role -> {"options": its CREATE ROLE options, "password_env": the variable of its
    password} of every role postgres/initdb/10-roles.sql creates."""
    sql = INIT_SQL.read_text(encoding="utf-8")
    getenv = dict(re.findall(r"^\\getenv (\w+) (\w+)$", sql, re.MULTILINE))
    roles: dict[str, dict[str, str]] = {}
    for name, options in re.findall(r"^CREATE ROLE (\w+) ([^;]*);", sql, re.MULTILINE):
        [variable] = re.findall(r"PASSWORD :'(\w+)'", options)
        roles[name] = {"options": " ".join(options.split()), "password_env": getenv[variable]}
    return roles


def init_grants() -> dict[str, set[str]]:
    """Role -> the roles granted to it by the init SQL."""
    sql = INIT_SQL.read_text(encoding="utf-8")
    grants: dict[str, set[str]] = {}
    for granted, member in re.findall(r"^GRANT ([\w, ]+) TO (\w+);", sql, re.MULTILINE):
        grants.setdefault(member, set()).update(g.strip() for g in granted.split(","))
    return grants


def check_login_role(dsn: str) -> str:
    """`dsn` is the compose PostgreSQL as a non-superuser login role that the init SQL creates,
    with the password the postgres container gives that role; its user."""
    parts = urlsplit(dsn)
    postgres = postgres_env()
    assert (parts.scheme, parts.hostname, parts.port) == ("postgresql", "postgresql", 5432), dsn
    assert parts.path == f"/{postgres['POSTGRES_DB']}", dsn
    assert parts.username is not None
    assert parts.username != postgres["POSTGRES_USER"], "the compose superuser"
    role = init_roles()[parts.username]
    options = role["options"].split()
    assert "LOGIN" in options
    assert "NOSUPERUSER" in options
    assert "SUPERUSER" not in options
    assert parts.password == postgres[role["password_env"]]
    return parts.username


def test_init_sql_is_mounted_and_its_passwords_are_set() -> None:
    mounts = compose_mounts(SERVICES["postgres"])
    [(source, target)] = [m for m in mounts if m[1].startswith("/docker-entrypoint-initdb.d")]
    assert target == "/docker-entrypoint-initdb.d"
    assert (DEPLOY / source / INIT_SQL.name) == INIT_SQL
    assert INIT_SQL.is_file()
    roles = init_roles()
    assert set(roles) == {"catalytic_app", "tocsin_remediation", "tocsin_audit"}
    postgres = environment("postgres")
    for role in roles.values():
        assert role["password_env"] in postgres  # each from deploy/.env via compose


def test_audit_dsn_is_the_compose_postgres_as_a_role_that_may_create_its_table() -> None:
    user = check_login_role(interpolate(environment("tocsin")["TOCSIN_REMEDIATION__AUDIT_DSN"]))
    # a schema of its own, named after it: first on the default search_path ("$user", public)
    sql = INIT_SQL.read_text(encoding="utf-8")
    assert re.search(rf"^CREATE SCHEMA {user} AUTHORIZATION {user};", sql, re.MULTILINE)


def test_policy_postgres_target_is_a_role_that_may_end_sessions() -> None:
    [target] = POLICY.targets.postgres.values()
    user = check_login_role(target.dsn.get_secret_value())
    assert {"pg_signal_backend", "pg_read_all_stats"} <= init_grants()[user]


def test_policy_variables_are_set_in_compose() -> None:
    # the tocsin container's environment has them, from deploy/.env (test_every_variable...)
    assert policy_variables() <= set(environment("tocsin"))
    [redis] = POLICY.targets.redis.values()
    url = urlsplit(redis.url.get_secret_value())
    assert url.password == interpolate("${REDIS_PASSWORD}")
    assert (url.hostname, url.port) == ("redis", 6379)


def test_shared_redis_never_evicts() -> None:
    # Tocsin's state and the app cache share the compose Redis: noeviction, and no switch
    command = SERVICES["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    tocsin_redis = urlsplit(interpolate(environment("tocsin")["TOCSIN_REDIS__URL"]))
    for rule in POLICY.rules:
        if rule.action is ActionName.REDIS_CACHE_FLUSH:
            assert isinstance(rule.params, CacheFlushParams)
            assert rule.target is not None
            url = urlsplit(POLICY.targets.redis[rule.target].url.get_secret_value())
            assert url.hostname == tocsin_redis.hostname
            assert rule.params.temporary_policy is None, rule.name


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
    # its own non-superuser role: terminate_idle never ends a superuser's sessions
    assert check_login_role(args.pg_dsn) == "catalytic_app"
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
