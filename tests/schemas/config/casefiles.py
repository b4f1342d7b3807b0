"""The config case files: `good-*.yml` load, `bad-*.yml` fail with the error in their header."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import TESTDATA

CONFIG_DIR = TESTDATA / "config"
GOOD = sorted(CONFIG_DIR.glob("good-*.yml"))
BAD = sorted(CONFIG_DIR.glob("bad-*.yml"))
GUIDE = CONFIG_DIR / "guide-alertmanager.yml"
GUIDE_ENV = {
    "SMTP_PASSWORD": "smtp-pa55word",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/sl4ck-t0ken",
    "PAGERDUTY_WEBHOOK_URL": "https://events.pd-bridge.example/hook?token=pd-t0ken",
}


def header(path: Path, key: str) -> list[str]:
    """The values of the `# key: value` comment lines of a case file."""
    prefix = f"# {key}: "
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


def env_of(path: Path) -> dict[str, str]:
    """The environment a case file needs (`# env: NAME=value` lines)."""
    return dict(item.split("=", 1) for item in header(path, "env"))
