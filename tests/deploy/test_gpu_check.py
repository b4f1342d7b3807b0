"""deploy/demo-app/gpu_check.py, the prepared GPU check, on a machine without a GPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "demo-app" / "gpu_check.py"


def run(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, timeout=120
    )


def _has_cuda() -> bool:
    try:
        import torch  # type: ignore[import-not-found]  # optional: only on GPU machines
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.mark.skipif(_has_cuda(), reason="a GPU is present: the device check applies instead")
def test_without_a_gpu_the_action_reports_no_gpu_through_the_agent() -> None:
    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"action": "gpu.empty_cache"' in done.stdout
    assert '"gpu": false, "detail": "no GPU"' in done.stdout
    assert "ok        no GPU: the action reports 'no GPU' cleanly" in done.stdout


@pytest.mark.skipif(_has_cuda(), reason="a GPU is present: the device check applies instead")
def test_require_gpu_fails_without_one() -> None:
    done = run("--require-gpu")
    assert done.returncode == 2
    assert "FAILED  no GPU visible to torch" in done.stdout
