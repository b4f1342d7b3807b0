"""Load an alertmanager.yml: parse, expand `$VAR`s, validate everything, build the route tree."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.config._base import Issue, translate, yaml_kind
from schemas.config._gostr import go_quote
from schemas.config._yaml import Source, read_yaml
from schemas.config.config import Config, GlobalConfig
from schemas.config.errors import ConfigError, ConfigProblem, YamlPath, format_path
from schemas.config.inhibit import InhibitRule, InhibitRuleSpec
from schemas.config.receivers import Receiver
from schemas.config.route import Route, RouteSpec
from schemas.config.timeinterval import MuteTimeIntervalSet, TimeIntervalSet

__all__ = ["load", "loads"]

_M = TypeVar("_M", bound=BaseModel)
_TOP_LEVEL = (
    "global",
    "route",
    "inhibit_rules",
    "receivers",
    "templates",
    "mute_time_intervals",
    "time_intervals",
)
_STRINGS = TypeAdapter(list[str])


def load(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Load the file at `path`, `$VAR`s from `env` (default os.environ); ConfigError if bad."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([ConfigProblem(str(path), None, "", reason)]) from None
    return loads(text, source=str(path), base_dir=path.parent, env=env)


def loads(
    text: str,
    *,
    source: str = "<string>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Load config text; relative paths (templates, http_config files) resolve against base_dir."""
    try:
        document = read_yaml(text, os.environ if env is None else env)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
        reason = f"{context}: {problem}" if context and problem else problem or str(exc)
        raise ConfigError([ConfigProblem(source, line, "", f"yaml: {reason}")]) from None
    return _Loader(document, source, base_dir).run()


class _Loader:
    # Checks follow Alertmanager 0.25 (config/config.go) with its messages, but every problem is
    # reported, not only the first, each with its file, line and YAML path.
    def __init__(self, document: Source, source: str, base_dir: Path | None) -> None:
        self.document = document
        self.source = source
        self.base_dir = base_dir
        self.issues: list[Issue] = list(document.problems)

    def fail(self) -> ConfigError:
        # a value whose variable is unset is left unexpanded: drop what its validation said
        unexpanded = {path for path, _ in self.document.problems}
        issues = [
            (path, message)
            for index, (path, message) in enumerate(self.issues)
            if index < len(self.document.problems) or path not in unexpanded
        ]
        problems = [
            ConfigProblem(self.source, self.document.line(path), format_path(path), message)
            for path, message in issues
        ]
        problems.sort(key=lambda p: (p.line is None, p.line or 0))
        return ConfigError(problems)

    def validate(self, model: type[_M], value: Any, path: YamlPath) -> _M | None:
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            self.issues.extend(translate(exc, path))
            return None

    def items(self, data: dict[str, Any], key: str) -> list[Any]:
        value = data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.issues.append(((key,), f"cannot unmarshal {yaml_kind(value)} into list"))
            return []
        return value

    def run(self) -> Config:
        data = self.document.data
        if data is None:
            self.issues.append(((), "no route provided in config"))
            raise self.fail()
        if not isinstance(data, dict):
            self.issues.append(((), f"cannot unmarshal {yaml_kind(data)} into map"))
            raise self.fail()
        self.issues += [((key,), f"field {key} not found") for key in data if key not in _TOP_LEVEL]
        written = data.get("global")
        defaults = self.validate(GlobalConfig, {} if written is None else written, ("global",))
        if defaults is not None and self.base_dir is not None:
            http = defaults.http_config.with_directory(self.base_dir)
            defaults = defaults.model_copy(update={"http_config": http})
        receivers = self.receivers(data, defaults)
        intervals, interval_names = self.time_intervals(data)
        route = self.route(data, {r.name for r in receivers if r is not None}, interval_names)
        rules = [
            self.validate(InhibitRuleSpec, raw, ("inhibit_rules", i))
            for i, raw in enumerate(self.items(data, "inhibit_rules"))
        ]
        templates = self.templates(data)
        if self.issues or defaults is None or route is None:
            raise self.fail()
        return Config.model_validate(
            {
                "global": defaults,
                "route": Route(route),
                "inhibit_rules": [InhibitRule.build(r) for r in rules if r is not None],
                "receivers": receivers,
                "time_intervals": intervals,
                "templates": templates,
                "source": self.source,
            }
        )

    def receivers(
        self, data: dict[str, Any], defaults: GlobalConfig | None
    ) -> list[Receiver | None]:
        out: list[Receiver | None] = []
        seen: set[str] = set()
        for i, raw in enumerate(self.items(data, "receivers")):
            receiver = self.validate(Receiver, raw, ("receivers", i))
            name = receiver.name if receiver is not None else _raw_name(raw)
            if name in seen:
                message = f"notification config name {go_quote(name)} is not unique"
                self.issues.append((("receivers", i, "name"), message))
            elif name:
                seen.add(name)
            if receiver is not None and defaults is not None:
                receiver = self.copy_down(receiver, defaults, ("receivers", i))
            # an invalid receiver still defines its name, so routes using it are not blamed too
            out.append(receiver or (Receiver(name=name) if name else None))
        return out

    def copy_down(self, receiver: Receiver, defaults: GlobalConfig, path: YamlPath) -> Receiver:
        update: dict[str, Any] = {}
        for key in ("email_configs", "slack_configs", "pagerduty_configs", "webhook_configs"):
            configs = []
            for j, config in enumerate(getattr(receiver, key)):
                filled, issues = config.with_globals(defaults)
                self.issues += [((*path, key, j, *sub), message) for sub, message in issues]
                http = getattr(filled, "http_config", None)
                if http is not None and self.base_dir is not None:
                    filled = filled.model_copy(
                        update={"http_config": http.with_directory(self.base_dir)}
                    )
                configs.append(filled)
            update[key] = configs
        return receiver.model_copy(update=update)

    def time_intervals(self, data: dict[str, Any]) -> tuple[dict[str, TimeIntervalSet], set[str]]:
        out: dict[str, TimeIntervalSet] = {}
        seen: set[str] = set()
        kinds: tuple[tuple[str, type[TimeIntervalSet]], ...] = (
            ("mute_time_intervals", MuteTimeIntervalSet),
            ("time_intervals", TimeIntervalSet),
        )
        for key, model in kinds:
            for i, raw in enumerate(self.items(data, key)):
                interval = self.validate(model, raw, (key, i))
                name = interval.name if interval is not None else _raw_name(raw)
                if name in seen:
                    message = f"{model._kind} {go_quote(name)} is not unique"
                    self.issues.append(((key, i, "name"), message))
                elif name:
                    seen.add(name)
                    if interval is not None:
                        out[name] = interval
        return out, seen

    def route(
        self, data: dict[str, Any], receivers: set[str], intervals: set[str]
    ) -> RouteSpec | None:
        if data.get("route") is None:
            self.issues.append((("route",), "no routes provided"))
            return None
        spec = self.validate(RouteSpec, data["route"], ("route",))
        if spec is None:
            return None
        self.issues += [(("route", *sub), message) for sub, message in spec.root_issues()]
        for path, kind, name in spec.references(("route",)):
            known = receivers if kind == "receiver" else intervals
            if name not in known:
                self.issues.append((path, f"undefined {kind} {go_quote(name)} used in route"))
        return spec

    def templates(self, data: dict[str, Any]) -> list[Path]:
        try:
            patterns = _STRINGS.validate_python(data.get("templates") or [])
        except ValidationError as exc:
            self.issues += translate(exc, ("templates",))
            return []
        base = self.base_dir or Path.cwd()
        found: list[Path] = []
        for pattern in patterns:
            full = pattern if os.path.isabs(pattern) else str(base / pattern)
            for name in sorted(glob.glob(full, include_hidden=True)):
                path = Path(name)
                if path.is_file() and path not in found:
                    found.append(path)
        return found


def _raw_name(raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return name if isinstance(name, str) else ""
