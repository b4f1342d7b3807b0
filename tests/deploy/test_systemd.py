"""deploy/systemd: the unit runs `tocsin run` with a graceful stop and hardening; its env is valid;
the remediation drop-in adds the policy and the agent secret."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from schemas.remediation import load_policy
from tests.deploy.artifacts import SYSTEMD_ENV, SYSTEMD_UNIT, check_settings
from tests.deploy.test_remediation_policy import POLICY_FILE, policy_variables

DRAIN_SECONDS = 10  # services/runtime/lifecycle.py: Lifecycle(drain_timeout=10.0)


def unit_sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """Section -> (key, value) in order; systemd keys may repeat, so no configparser."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not key=value: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


SECTIONS = unit_sections(SYSTEMD_UNIT.read_text(encoding="utf-8"))
SERVICE = dict(SECTIONS["Service"])
REMEDIATION_DROP_IN = SYSTEMD_UNIT.parent / "tocsin.service.d" / "remediation.conf"
DROP_IN = unit_sections(REMEDIATION_DROP_IN.read_text(encoding="utf-8"))
CREDENTIALS = "/run/credentials/tocsin.service"  # %d


def env_file() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in SYSTEMD_ENV.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def environment_lines(sections: dict[str, list[tuple[str, str]]]) -> dict[str, str]:
    """The Environment= assignments of a unit's [Service], %d expanded."""
    out: dict[str, str] = {}
    for key, value in sections["Service"]:
        if key == "Environment":
            name, _, setting = value.partition("=")
            out[name] = setting.replace("%d", CREDENTIALS)
    return out


def test_sections() -> None:
    assert list(SECTIONS) == ["Unit", "Service", "Install"]
    assert dict(SECTIONS["Install"])["WantedBy"] == "multi-user.target"
    assert "network-online.target" in dict(SECTIONS["Unit"])["After"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("Type", "simple"),
        ("ExecStart", "/usr/local/bin/tocsin run"),
        ("EnvironmentFile", "/etc/tocsin/tocsin.env"),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("KillMode", "mixed"),
        ("TimeoutStopSec", "30"),
        ("User", "tocsin"),
    ],
)
def test_service(key: str, value: str) -> None:
    assert SERVICE[key] == value


def test_stop_timeout_exceeds_the_drain() -> None:
    assert int(SERVICE["TimeoutStopSec"]) > DRAIN_SECONDS


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
    ],
)
def test_hardening(key: str, value: str) -> None:
    assert SERVICE[key] == value


def test_environment_is_valid_settings() -> None:
    env = env_file()
    assert {"SMTP_PASSWORD", "SLACK_WEBHOOK_URL", "PAGERDUTY_WEBHOOK_URL"} <= set(env)
    assert env["TOCSIN_CONFIG__FILE"] == "/etc/tocsin/alertmanager.yml"
    assert env["TOCSIN_REMEDIATION__AUDIT_DSN"].startswith("postgresql://")
    check_settings(env)
    # the unit's own Environment= lines too (%d: the credentials directory), with the drop-in's
    check_settings({**env, **environment_lines(SECTIONS), **environment_lines(DROP_IN)})


def test_remediation_drop_in() -> None:
    assert list(DROP_IN) == ["Service"]  # no second ExecStart: `tocsin run` with the policy
    env = environment_lines(DROP_IN)
    assert env == {"TOCSIN_REMEDIATION__POLICY_FILE": "/etc/tocsin/remediation.yml"}
    credentials = [v for k, v in DROP_IN["Service"] if k == "LoadCredential"]
    assert credentials == ["agent-secret:/etc/tocsin/agent-secret"]
    # the path the policy's app targets must name, as the drop-in's comment says
    assert f"{CREDENTIALS}/agent-secret" in REMEDIATION_DROP_IN.read_text(encoding="utf-8")
    # the remediation settings live in the env file, not in the unit
    assert not any(k.startswith("TOCSIN_REMEDIATION__") for k in environment_lines(SECTIONS))


def test_policy_variables_are_in_the_env_file() -> None:
    # with the drop-in, `tocsin run` loads the policy: its $VARs come from tocsin.env
    env = env_file()
    assert policy_variables() <= set(env), sorted(policy_variables() - set(env))
    policy = load_policy(POLICY_FILE, env=env)
    for postgres in policy.targets.postgres.values():
        dsn = urlsplit(postgres.dsn.get_secret_value())
        assert dsn.username == "tocsin_remediation"
        assert dsn.password  # a placeholder to change, in the 0640 env file
    for redis in policy.targets.redis.values():
        assert urlsplit(redis.url.get_secret_value()).password
    drop_in = REMEDIATION_DROP_IN.read_text(encoding="utf-8")
    for variable in policy_variables():
        assert variable in drop_in, f"the drop-in's header should say {variable} is in tocsin.env"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # verify checks that ExecStart exists: point it at a binary that does
    unit = tmp_path / "tocsin.service"
    text = SYSTEMD_UNIT.read_text(encoding="utf-8")
    unit.write_text(text.replace("/usr/local/bin/tocsin run", "/bin/true run"), "utf-8")
    # the drop-in beside it is read too (an unknown key in it is reported on stderr)
    (tmp_path / "tocsin.service.d").mkdir()
    (tmp_path / "tocsin.service.d" / "remediation.conf").write_text(
        REMEDIATION_DROP_IN.read_text(encoding="utf-8"), "utf-8"
    )
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr
