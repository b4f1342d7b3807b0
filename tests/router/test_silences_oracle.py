"""The silence POST checks against a live Alertmanager 0.25: same status, same body bytes."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.timefmt import format_ns, now_ns, parse_ns
from services.router.silences import SilenceError, validate_postable
from services.runtime.embedded import free_port
from tests.conftest import binary
from tests.router.test_silences import ERRORS, NOW, body

pytestmark = pytest.mark.binaries


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A throwaway Alertmanager on a free loopback port; yields the port."""
    am = binary("prometheus-alertmanager")
    tmp: Path = tmp_path_factory.mktemp("am")
    (tmp / "am.yml").write_text("route: {receiver: r}\nreceivers: [{name: r}]\n")
    port = free_port()
    proc = subprocess.Popen(
        [am, f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                if _request(port, "GET", "/-/ready")[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait()


def _request(port: int, method: str, path: str, data: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, data, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _shift(data: Any, delta: int) -> Any:
    """The body with its times moved by `delta` ns (the oracle runs on the wall clock)."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for key in ("startsAt", "endsAt"):
        value = out.get(key)
        if isinstance(value, str) and value:
            out[key] = format_ns(parse_ns(value) + delta)
    return out


@pytest.mark.parametrize(("data", "status", "code", "message"), ERRORS)
def test_post_errors_match_the_live_alertmanager(
    alertmanager: int, data: Any, status: int, code: int | None, message: str
) -> None:
    with pytest.raises(SilenceError) as caught:
        validate_postable(data, NOW, {})
    live = _request(
        alertmanager, "POST", "/api/v2/silences", json.dumps(_shift(data, now_ns() - NOW)).encode()
    )
    assert live == (caught.value.status, caught.value.body())


def test_negative_only_silence_is_accepted_live(alertmanager: int) -> None:
    matcher = {"name": "foo", "value": "bar", "isRegex": False, "isEqual": False}
    data = _shift(body(matchers=[matcher]), now_ns() - NOW)
    status, raw = _request(alertmanager, "POST", "/api/v2/silences", json.dumps(data).encode())
    assert status == 200
    assert set(json.loads(raw)) == {"silenceID"}
