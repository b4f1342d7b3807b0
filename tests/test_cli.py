"""The command line: help, version, flags named like Alertmanager's, env equivalents, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services import __version__
from services.cli import main
from services.runtime.settings import load_settings


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"tocsin {__version__}"


@pytest.mark.parametrize("command", ["run", "ingest"])
def test_help_lists_alertmanager_style_flags_and_their_env(command: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    for flag, env in [
        ("--config.file", "TOCSIN_CONFIG__FILE"),
        ("--web.listen-address", "TOCSIN_WEB__LISTEN_ADDRESS"),
        ("--web.external-url", "TOCSIN_WEB__EXTERNAL_URL"),
        ("--kafka.bootstrap-servers", "TOCSIN_KAFKA__BOOTSTRAP_SERVERS"),
        ("--redis.url", "TOCSIN_REDIS__URL"),
        ("--ingest.workers", "TOCSIN_INGEST__WORKERS"),
        ("--web.auth.bearer-token-file", "TOCSIN_WEB__AUTH__BEARER_TOKEN_FILE"),
    ]:
        assert flag in result.stdout
        assert env in result.stdout


def test_flags_beat_env_which_beats_the_settings_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings_file = tmp_path / "tocsin.yml"
    settings_file.write_text(
        "web:\n  listen_address: 127.0.0.1:1111\n  external_url: http://file\nkafka:\n  partitions: 3\n"
    )
    monkeypatch.setenv("TOCSIN_SETTINGS_FILE", str(settings_file))
    monkeypatch.setenv("TOCSIN_WEB__EXTERNAL_URL", "http://env")
    settings = load_settings({"web.listen_address": "127.0.0.1:2222"})
    assert settings.web.listen_address == "127.0.0.1:2222"
    assert settings.web.external_url == "http://env"
    assert settings.kafka.partitions == 3


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--web.listen-address=nonsense"], {}, "web.listen_address"),
        (["--ingest.workers=zero"], {}, "ingest.workers"),
        ([], {"TOCSIN_KAFKA__PARTITIONS": "-1"}, "kafka.partitions"),
    ],
    ids=["flag", "flag-type", "env"],
)
def test_invalid_settings_name_the_key_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["ingest", *args]) == 2
    assert message in capsys.readouterr().err


def test_settings_file_errors_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("web:\n  nonsense: 1\n")
    assert main(["ingest", f"--settings.file={bad}"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "web.nonsense" in err


def test_unknown_command_is_a_usage_error() -> None:
    result = run("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_example_settings_file_loads() -> None:
    example = Path(__file__).parent.parent / "deploy" / "tocsin" / "settings.example.yml"
    settings = load_settings(settings_file=example)
    assert settings.kafka.replication_factor == 3
    assert settings.web.auth.bearer_token_file == Path("/run/secrets/tocsin-ingest-token")


def test_readme_documents_every_setting() -> None:
    from services.cli import _leaves
    from services.runtime.settings import Settings

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for dotted, _ in _leaves(Settings):
        assert f"`--{dotted.replace('_', '-')}`" in readme, dotted
        assert f"`TOCSIN_{dotted.upper().replace('.', '__')}`" in readme, dotted
