"""deploy/systemd: the unit runs `tocsin run` with a graceful stop and hardening; its env is valid."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.artifacts import SYSTEMD_ENV, SYSTEMD_UNIT, check_settings

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
    env: dict[str, str] = {}
    for line in SYSTEMD_ENV.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    assert {"SMTP_PASSWORD", "SLACK_WEBHOOK_URL", "PAGERDUTY_WEBHOOK_URL"} <= set(env)
    assert env["TOCSIN_CONFIG__FILE"] == "/etc/tocsin/alertmanager.yml"
    check_settings(env)
    # the unit's own Environment= lines too (%d: the credentials directory)
    for key, value in SECTIONS["Service"]:
        if key == "Environment":
            name, _, setting = value.partition("=")
            check_settings({name: setting.replace("%d", "/run/credentials/tocsin.service")})


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    # verify checks that ExecStart exists: point it at a binary that does
    unit = tmp_path / "tocsin.service"
    text = SYSTEMD_UNIT.read_text(encoding="utf-8")
    unit.write_text(text.replace("/usr/local/bin/tocsin run", "/bin/true run"), "utf-8")
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr
