"""`tocsin demo --check`: the whole pipeline with the real Prometheus and Alertmanager, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import binary

STEPS = [
    "ok  demo app up at",
    "ok  Prometheus http://",
    "ok  fault: the demo app leaked 10 of its 10 database connections",
    "ok  Prometheus: DatabaseConnectionPoolExhaustion firing",
    "ok  Alertmanager: received DatabaseConnectionPoolExhaustion",
    "ok  Tocsin ingest -> Kafka -> router: DatabaseConnectionPoolExhaustion grouped for "
    "performance-team",
    'ok  email to performance@catalytic.local: "[PERFORMANCE] DatabaseConnectionPoolExhaustion"',
    "ok  remediation postgres.terminate_idle on main waiting for approval",
    "ok  approved by demo through POST /api/v1/remediations/",
    "ok  remediation ran: 10 idle-in-transaction sessions of demo-app terminated",
    "ok  Prometheus: DatabaseConnectionPoolExhaustion resolved",
    'ok  resolved email to performance@catalytic.local: "[PERFORMANCE] '
    'DatabaseConnectionPoolExhaustion"',
    "ok  fault: 8 clients hammer the demo app's /auth/login",
    "ok  Prometheus: CriticalFailedLoginRate firing",
    "ok  Alertmanager -> Tocsin: CriticalFailedLoginRate grouped for security-critical",
    'ok  Slack #security-critical: "🚨 CRITICAL SECURITY ALERT"',
    "ok  PagerDuty webhook: firing group",
    'ok  email to security-team@catalytic.local: "[CRITICAL SECURITY] CriticalFailedLoginRate"',
]


def demo(*flags: str) -> subprocess.CompletedProcess[str]:
    binary("prometheus")
    binary("prometheus-alertmanager")
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "demo", "--check", *flags],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def test_every_step_is_observed_in_order(tmp_path: Path) -> None:
    done = demo("--timeout", "240", "--workdir", str(tmp_path))
    logs = "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
        for log in sorted(tmp_path.glob("*.log"))
    )
    assert done.returncode == 0, done.stdout + done.stderr + logs
    lines = done.stdout.splitlines()
    steps = [line.split("] ", 1)[1] for line in lines if line.startswith("[")]
    assert len(steps) == len(STEPS), done.stdout
    for step, expected in zip(steps, STEPS, strict=True):
        assert step.startswith(expected), (step, expected)
    assert not [line for line in lines if line.startswith(" ")]  # --check: no details
    assert lines[-1].startswith(f"all {len(STEPS)} steps observed in ")


def test_a_step_not_seen_in_time_fails_the_check(tmp_path: Path) -> None:
    done = demo("--timeout", "2", "--workdir", str(tmp_path))
    assert done.returncode == 1
    assert "FAILED  not observed within 2s: " in done.stdout
