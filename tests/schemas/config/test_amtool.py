"""Cross-checks with the real amtool 0.25: the same verdicts and messages, the same routing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.config import ConfigError, loads
from tests.conftest import binary
from tests.schemas.config.casefiles import BAD, GOOD, env_of, header

pytestmark = pytest.mark.binaries


def _amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("amtool"), *args], capture_output=True, text=True, timeout=30, check=False
    )


CHECKED_BAD = [
    p for p in BAD if not header(p, "amtool")[:1] or not header(p, "amtool")[0].startswith("skip")
]
CHECKED_GOOD = [p for p in GOOD if not env_of(p)]


@pytest.mark.parametrize("path", CHECKED_BAD, ids=[p.stem for p in CHECKED_BAD])
def test_amtool_rejects_bad_files_with_our_message(path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        loads(path.read_text(), source=path.name, base_dir=path.parent, env=env_of(path))
    (problem,) = info.value.problems
    expected = (header(path, "amtool") or [problem.message])[0]
    result = _amtool("check-config", str(path))
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


@pytest.mark.parametrize("path", CHECKED_GOOD, ids=[p.stem for p in CHECKED_GOOD])
def test_amtool_accepts_good_files(path: Path) -> None:
    result = _amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


NAMES = ("team", "env", "sev")
VALUES = ("a", "b", "c")
REGEXES = ("a|b", "b.*", ".*", "c?", "[ab]", "(?i)A")


@st.composite
def _matchers(draw: st.DrawFn) -> list[str]:
    found = []
    for _ in range(draw(st.integers(0, 2))):
        name, op = draw(st.sampled_from(NAMES)), draw(st.sampled_from(("=", "!=", "=~", "!~")))
        value = draw(st.sampled_from(REGEXES if "~" in op else VALUES))
        found.append(f'{name}{op}"{value}"')
    return found


def _routes(depth: int) -> st.SearchStrategy[list[dict[str, Any]]]:
    route = st.fixed_dictionaries(
        {"matchers": _matchers(), "continue": st.booleans()},
        optional={
            "routes": _routes(depth - 1) if depth > 1 else st.just([]),
            "receiver": st.just(""),
            "match_re": st.dictionaries(
                st.sampled_from(NAMES), st.sampled_from(REGEXES), max_size=1
            ),
        },
    )
    return st.lists(route, max_size=3)


def _name_receivers(routes: list[dict[str, Any]], names: list[str]) -> None:
    for route in routes:
        if "receiver" in route or not names:  # some routes inherit their parent's receiver
            route["receiver"] = f"r{len(names)}"
            names.append(route["receiver"])
        _name_receivers(route.get("routes", []), names)


@settings(
    max_examples=int(os.environ.get("TOCSIN_DIFF_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    routes=_routes(3),
    labels=st.dictionaries(st.sampled_from(NAMES), st.sampled_from(VALUES), min_size=1),
)
def test_routing_matches_amtool(
    tmp_path: Path, routes: list[dict[str, Any]], labels: dict[str, str]
) -> None:
    names = ["root"]
    _name_receivers(routes, names)
    document = {
        "route": {"receiver": "root", "routes": routes},
        "receivers": [{"name": name} for name in names],
    }
    config_file = tmp_path / "routes.yml"
    config_file.write_text(yaml.safe_dump(document))
    ours = ",".join(r.receiver for r in loads(config_file.read_text()).route.match(labels))
    args = [f"{name}={value}" for name, value in labels.items()]
    result = _amtool("config", "routes", "test", f"--config.file={config_file}", *args)
    assert result.returncode == 0, result.stderr
    assert ours == result.stdout.strip(), config_file.read_text()
