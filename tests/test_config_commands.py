"""`tocsin config ...` against amtool 0.25: same output, same exit status."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.config import load
from services import config_commands
from services.config_commands import parse_label_args
from tests.conftest import TESTDATA, binary

CASES: list[dict[str, Any]] = json.loads((TESTDATA / "route_cases.json").read_text())
GUIDE_ENV = {
    "SMTP_PASSWORD": "x",
    "SLACK_WEBHOOK_URL": "http://s",
    "PAGERDUTY_WEBHOOK_URL": "http://p",
}


def amtool(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        [binary("amtool"), *args], capture_output=True, text=True, timeout=30, check=False
    )
    return result.returncode, result.stdout


def tocsin(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
        input=stdin,
    )


@pytest.fixture(scope="module")
def case_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("route-cases")
    files: dict[str, Path] = {}
    for case in CASES:
        if case["config"] not in files:
            path = folder / f"case{len(files)}.yml"
            path.write_text(case["config"])
            files[case["config"]] = path
    return files


def label_args(labels: dict[str, str]) -> list[str]:
    return [f"{k}={json.dumps(v)}" for k, v in labels.items()]


@pytest.mark.binaries
@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_routes_test_prints_what_amtool_prints(
    case: dict[str, Any], case_files: dict[str, Path]
) -> None:
    path = case_files[case["config"]]
    config = load(path)
    labels = parse_label_args(label_args(case["labels"]))
    assert labels == case["labels"]
    for tree in (False, True):
        out = io.StringIO()
        status = config_commands.routes_test(config, labels, out, tree=tree)
        flags = ["--tree"] if tree else []
        assert (status, out.getvalue()) == amtool(
            "config", "routes", "test", f"--config.file={path}", *flags, *label_args(case["labels"])
        )
    assert out.getvalue().splitlines()[-1] == ",".join(case["receivers"])


@pytest.mark.binaries
def test_routes_show_prints_what_amtool_prints(case_files: dict[str, Path]) -> None:
    for path in case_files.values():
        out = io.StringIO()
        assert config_commands.routes_show(load(path), out) == 0
        assert (0, out.getvalue()) == amtool("config", "routes", "show", f"--config.file={path}")


@pytest.mark.binaries
@pytest.mark.parametrize("verify", ["security-critical", "default", "security-critical,default"])
def test_verify_receivers_exit_status_is_amtools(verify: str, tmp_path: Path) -> None:
    guide = (TESTDATA / "config" / "guide-alertmanager.yml").read_text()
    for name, value in GUIDE_ENV.items():
        guide = guide.replace(f"${name}", value)
    path = tmp_path / "guide.yml"
    path.write_text(guide)
    args = [f"--verify.receivers={verify}", "severity=critical", "category=security"]
    ours = tocsin("config", "routes", "test", f"--config.file={path}", *args)
    assert (ours.returncode, ours.stdout) == amtool(
        "config", "routes", "test", f"--config.file={path}", *args
    )


def test_input_file_gives_one_line_per_label_set(tmp_path: Path) -> None:
    guide = TESTDATA / "config" / "guide-alertmanager.yml"
    lines = [
        {"severity": "critical", "category": "security"},
        {"severity": "warning", "category": "security"},
        {"category": "performance"},
        {"alertname": "Other"},
        "not an object",
        {"category": "infrastructure"},
    ]
    stdin = "\n".join(json.dumps(line) for line in lines) + "\n"
    result = tocsin(
        "config",
        "routes",
        "test",
        f"--config.file={guide}",
        "--input",
        "-",
        env=GUIDE_ENV,
        stdin=stdin,
    )
    assert result.stdout.splitlines() == [
        "security-critical",
        "security-warning",
        "performance-team",
        "default",
        "",
        "infrastructure-team",
    ]
    assert result.returncode == 1
    assert "input line 5" in result.stderr


def test_check_reports_success_and_the_continue_pitfall() -> None:
    result = tocsin(
        "config", "check", str(TESTDATA / "config" / "guide-alertmanager.yml"), env=GUIDE_ENV
    )
    assert result.returncode == 0
    assert "SUCCESS" in result.stdout
    assert " - 5 receivers" in result.stdout
    assert "route.routes[0].continue: continue: true" in result.stdout
    assert "does not also send to the parent route's receiver" in result.stdout


def test_check_without_the_secrets_names_each_variable() -> None:
    clean = {k: v for k, v in os.environ.items() if k not in GUIDE_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "config", "check", str(TESTDATA / "config" / "guide-alertmanager.yml")],
        capture_output=True, text=True, timeout=60, check=False, env=clean,
    )  # fmt: skip
    assert result.returncode == 1
    for name in GUIDE_ENV:
        assert f"environment variable {name} is not set" in result.stdout
    assert "failed to validate 1 file(s)" in result.stderr


def test_check_of_a_bad_file_fails_with_line_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "route:\n  receiver: x\n  routes:\n    - receiver: nope\nreceivers:\n  - name: x\n"
    )
    result = tocsin("config", "check", str(bad))
    assert result.returncode == 1
    assert (
        f'{bad}:4: route.routes[0].receiver: undefined receiver "nope" used in route'
        in result.stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["owner=~x"], "labels must be specified as key=value pairs"),
        (["{a=b"], "Failed to parse labels"),
    ],
)
def test_bad_label_arguments(args: list[str], message: str) -> None:
    guide = TESTDATA / "config" / "guide-alertmanager.yml"
    result = tocsin("config", "routes", "test", f"--config.file={guide}", *args, env=GUIDE_ENV)
    assert result.returncode == 1
    assert message in result.stderr


def test_routes_needs_a_config_file() -> None:
    clean = {k: v for k, v in os.environ.items() if k != "TOCSIN_CONFIG__FILE"}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "config", "routes"],
        capture_output=True, text=True, timeout=60, check=False, env=clean,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--config.file" in result.stderr
