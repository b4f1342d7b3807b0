"""The routing tree: `route:` as written, and built into nodes that match alerts as Alertmanager."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from schemas.config._base import ConfigModel, FieldProblem, Issue
from schemas.config._fields import (
    Duration,
    LabelNameKey,
    MatcherLine,
    Regex,
    Text,
    is_label_name,
    reject_null_regex,
)
from schemas.config._gostr import go_quote
from schemas.config.errors import YamlPath, format_path
from schemas.config.matchers import Matcher, MatchType, format_matchers, sort_matchers

__all__ = ["Route", "RouteSpec", "format_label_set"]

_WILDCARD = "..."


class RouteSpec(ConfigModel):
    """One `route:` node exactly as written (options not yet inherited)."""

    receiver: str = ""
    group_by: list[Text] | None = None
    match: dict[LabelNameKey, Text] = {}
    match_re: dict[LabelNameKey, Regex] = {}
    matchers: list[MatcherLine] = []
    mute_time_intervals: list[Text] = []
    active_time_intervals: list[Text] = []
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteSpec] = []
    group_wait: Duration | None = None
    group_interval: Duration | None = None
    repeat_interval: Duration | None = None

    @field_validator("match_re", mode="before")
    @classmethod
    def _no_null_regex(cls, value: Any) -> Any:
        return reject_null_regex(value)

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, names: list[str] | None) -> list[str] | None:
        labels = [name for name in names or () if name != _WILDCARD]
        for index, name in enumerate(names or ()):
            if name != _WILDCARD and not is_label_name(name):
                raise FieldProblem(f"invalid label name {go_quote(name)} in group_by list", index)
        if labels and len(labels) < len(names or ()):
            raise ValueError(  # the doubled "other" is Alertmanager's
                "cannot have wildcard group_by (`...`) and other other labels at the same time"
            )
        for index, name in enumerate(names or ()):
            if name != _WILDCARD and name in (names or [])[:index]:
                raise FieldProblem(f"duplicated label {go_quote(name)} in group_by", index)
        return names

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _not_zero(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value == 0:
            raise ValueError(f"{info.field_name} cannot be zero")
        return value

    def all_matchers(self) -> list[Matcher]:
        """match, match_re (anchored, as Alertmanager stores them) and matchers, sorted."""
        found = [Matcher.new(MatchType.EQUAL, name, value) for name, value in self.match.items()]
        found += [
            Matcher.new(MatchType.REGEXP, name, f"^(?:{regex})$")
            for name, regex in self.match_re.items()
        ]
        found += [matcher for line in self.matchers for matcher in line]
        return sort_matchers(found)

    def root_issues(self) -> list[Issue]:
        """What Alertmanager forbids on the root route (paths relative to it)."""
        issues: list[Issue] = []
        if not self.receiver:
            issues.append(((), "root route must specify a default receiver"))
        for key in ("match", "match_re", "matchers"):
            if getattr(self, key):
                issues.append(((key,), "root route must not have any matchers"))
                break
        if self.continue_:
            issues.append((("continue",), "cannot have continue in root route"))
        if self.mute_time_intervals:
            message = "root route must not have any mute time intervals"
            issues.append((("mute_time_intervals",), message))
        if self.active_time_intervals:
            message = "root route must not have any active time intervals"
            issues.append((("active_time_intervals",), message))
        return issues

    def references(self, path: YamlPath = ()) -> Iterator[tuple[YamlPath, str, str]]:
        """Every (path, "receiver" | "time interval", name) this subtree uses, depth-first."""
        if self.receiver:
            yield (*path, "receiver"), "receiver", self.receiver
        for key in ("mute_time_intervals", "active_time_intervals"):
            for index, name in enumerate(getattr(self, key)):
                yield (*path, key, index), "time interval", name
        for index, child in enumerate(self.routes):
            yield from child.references((*path, "routes", index))


def format_label_set(labels: Mapping[str, str]) -> str:
    """prometheus/common's LabelSet.String: sorted `name="value"` (Go %q), joined by ", "."""
    return "{" + ", ".join(sorted(f"{name}={go_quote(v)}" for name, v in labels.items())) + "}"


def _test(matcher: Matcher) -> Callable[[str], bool]:
    if matcher.type is MatchType.EQUAL:
        return matcher.value.__eq__
    if matcher.type is MatchType.NOT_EQUAL:
        return matcher.value.__ne__
    return matcher.matches


class Route:
    """A node of the built routing tree: sorted matchers and options inherited per Alertmanager."""

    __slots__ = (
        "_group_names",
        "_key",
        "_tests",
        "active_time_intervals",
        "continue_",
        "group_by",
        "group_by_all",
        "group_interval",
        "group_wait",
        "matchers",
        "mute_time_intervals",
        "parent",
        "path",
        "receiver",
        "repeat_interval",
        "routes",
        "spec",
    )

    def __init__(self, spec: RouteSpec, parent: Route | None = None, index: int = 0) -> None:
        self.spec = spec
        self.parent = parent
        self.path: YamlPath = ("route",) if parent is None else (*parent.path, "routes", index)
        self.matchers: tuple[Matcher, ...] = tuple(spec.all_matchers())
        self.continue_ = spec.continue_
        self.mute_time_intervals: tuple[str, ...] = tuple(spec.mute_time_intervals)
        self.active_time_intervals: tuple[str, ...] = tuple(spec.active_time_intervals)
        if parent is None:
            self.receiver, group_by, self.group_by_all = "", frozenset[str](), False
            self.group_wait, self.group_interval, self.repeat_interval = 30.0, 300.0, 14400.0
        else:
            self.receiver, group_by, self.group_by_all = (
                parent.receiver,
                parent.group_by,
                parent.group_by_all,
            )
            self.group_wait = parent.group_wait
            self.group_interval = parent.group_interval
            self.repeat_interval = parent.repeat_interval
        self.receiver = spec.receiver or self.receiver
        named = [name for name in spec.group_by or () if name != _WILDCARD]
        if named:
            group_by, self.group_by_all = frozenset(named), False
        elif spec.group_by:  # only '...': "all" on; an empty list inherits everything
            self.group_by_all = True
        self.group_by: frozenset[str] = group_by
        if spec.group_wait is not None:
            self.group_wait = spec.group_wait
        if spec.group_interval is not None:
            self.group_interval = spec.group_interval
        if spec.repeat_interval is not None:
            self.repeat_interval = spec.repeat_interval
        self._group_names = tuple(sorted(group_by))
        own = format_matchers(self.matchers)
        self._key: str = own if parent is None else f"{parent._key}/{own}"
        self._tests = tuple((m.name, _test(m)) for m in self.matchers)
        self.routes: tuple[Route, ...] = tuple(
            Route(child, self, i) for i, child in enumerate(spec.routes)
        )

    def __repr__(self) -> str:
        return f"Route(key={self._key!r}, receiver={self.receiver!r})"

    @property
    def yaml_path(self) -> str:
        """Where the node is written, e.g. `route.routes[1]`."""
        return format_path(self.path)

    def _accepts(self, labels: Mapping[str, str]) -> bool:
        get = labels.get
        for name, test in self._tests:  # noqa: SIM110 - no generator on the per-alert path
            if not test(get(name, "")):
                return False
        return True

    def _collect(self, labels: Mapping[str, str], out: list[Route]) -> None:
        start = len(out)
        for child in self.routes:
            if child._accepts(labels):
                child._collect(labels, out)
                if not child.continue_:
                    break
        if len(out) == start:
            out.append(self)

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes an alert with `labels` goes to, in order (Alertmanager's depth-first walk)."""
        if not self._accepts(labels):
            return []
        out: list[Route] = []
        self._collect(labels, out)
        return out

    def key(self) -> str:
        """The route key: the matcher sets from the root down, e.g. `{}/{owner="team-A"}`."""
        return self._key

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that name the alert's group on this route (absent names are left out)."""
        if self.group_by_all:
            return dict(labels)
        return {name: labels[name] for name in self._group_names if name in labels}

    def group_key(self, labels: Mapping[str, str]) -> str:
        """Alertmanager's group key: `route key:{group labels}`."""
        return f"{self._key}:{format_label_set(self.group_labels(labels))}"

    def walk(self) -> Iterator[Route]:
        """This node and every node below it, depth-first in config order."""
        yield self
        for child in self.routes:
            yield from child.walk()
