"""Warnings for configs that load but probably do not do what their author meant (§18 pitfalls)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.config.config import Config
from schemas.config.duration import format_duration
from schemas.config.errors import YamlPath, format_path
from schemas.config.inhibit import InhibitRule
from schemas.config.matchers import Matcher, MatchType
from schemas.config.route import Route

__all__ = ["LintWarning", "lint"]

_REGEX_HINTS = (".*", ".+", "|")
_REGEX_META = frozenset("\\.+*?()|[]{}^$")  # what Go's regexp.QuoteMeta escapes
_Found = list[tuple[YamlPath, str]]


@dataclass(frozen=True)
class LintWarning:
    """One finding: the YAML path it is about and a plain explanation with what to do instead."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def lint(config: Config) -> list[LintWarning]:
    """Every warning for `config`, routes first, then receivers, then inhibit rules."""
    found: _Found = []
    for route in config.route.walk():
        _route(route, found)
    _receivers(config, found)
    for index, rule in enumerate(config.inhibit_rules):
        _inhibit_rule(rule, ("inhibit_rules", index), found)
    return [LintWarning(format_path(path), message) for path, message in found]


def _disjoint(a: Matcher, b: Matcher) -> bool:
    """Whether no label value can satisfy both matchers (only cases that are easy to prove)."""
    if a.name != b.name:
        return False
    if b.type is MatchType.EQUAL and a.type is not MatchType.EQUAL:
        a, b = b, a
    if a.type is not MatchType.EQUAL:
        return False
    if b.type is MatchType.EQUAL:
        return a.value != b.value
    if b.type is MatchType.NOT_EQUAL:
        return a.value == b.value
    return not b.matches(a.value)  # a regex matcher that a's only value fails


def _never_both(a: Route, b: Route) -> bool:
    return any(_disjoint(x, y) for x in a.matchers for y in b.matchers)


def _matchers_text(matchers: list[str]) -> str:
    return "[" + ", ".join(f"'{m}'" for m in matchers) + "]"


def _as_matchers(match: Mapping[str, str], match_re: Mapping[str, str]) -> str:
    out = [str(Matcher(name, MatchType.EQUAL, value)) for name, value in match.items()]
    out += [str(Matcher(name, MatchType.REGEXP, value)) for name, value in match_re.items()]
    return _matchers_text(out)


def _continue(route: Route, parent: Route, index: int, found: _Found) -> None:
    later = parent.routes[index + 1 :]
    if any(not _never_both(route, sibling) for sibling in later):
        return
    why = (
        "no sibling route follows it"
        if not later
        else "none of the sibling routes after it can match the alerts this route matches"
    )
    same = _matchers_text([str(m) for m in route.matchers])
    found.append(
        (
            (*route.path, "continue"),
            f"continue: true has no effect here: it only lets later sibling routes match too, "
            f"and {why}. It does not also send to the parent route's receiver "
            f'"{parent.receiver}": a parent route is used only when none of its child routes '
            f'matched. To also notify "{parent.receiver}", add right after this route a sibling '
            f"route with the same matchers ({same}) and receiver: {parent.receiver}.",
        )
    )


def _siblings(route: Route, parent: Route, index: int, found: _Found) -> None:
    for sibling in parent.routes[:index]:
        same = sibling.matchers == route.matchers
        if not sibling.continue_ and (same or not sibling.matchers):
            why = "has the same matchers" if same else "has no matchers"
            message = (
                f"this route never matches: the earlier sibling {sibling.yaml_path} {why} and "
                "no continue, so it takes every alert that would reach this one"
            )
            found.append((route.path, message))
            return
        if same and sibling.receiver == route.receiver:
            message = (
                f"this route has the same matchers and receiver as {sibling.yaml_path}: both "
                "build identical group keys, so they share one notification log entry and one "
                "of them is deduplicated away"
            )
            found.append((route.path, message))


def _route(route: Route, found: _Found) -> None:
    spec, path, parent = route.spec, route.path, route.parent
    index = path[-1]
    if parent is not None and isinstance(index, int):
        if route.continue_:
            _continue(route, parent, index, found)
        _siblings(route, parent, index, found)
        if spec.group_by == []:
            inherited = "['...']" if route.group_by_all else str(sorted(route.group_by))
            message = (
                "group_by: [] does not reset grouping: an empty list inherits the parent's "
                f"group_by (here {inherited}). List the labels to group by instead"
            )
            found.append(((*path, "group_by"), message))
    for key in ("mute_time_intervals", "active_time_intervals"):
        if route.routes and getattr(spec, key):
            message = (
                f"{key} are not inherited by child routes: alerts that go to a child route "
                "ignore them. Repeat the setting on each child route that needs it"
            )
            found.append(((*path, key), message))
    set_here = spec.repeat_interval is not None or spec.group_interval is not None
    if set_here and route.repeat_interval < route.group_interval:
        every = format_duration(route.group_interval)
        message = (
            f"repeat_interval ({format_duration(route.repeat_interval)}) is shorter than "
            f"group_interval ({every}): repeats are only checked at group_interval ticks, so a "
            f"notification repeats every {every} at most"
        )
        found.append((path, message))
    if spec.match or spec.match_re:
        rekey = (
            " (match_re values appear anchored in the route key, so it changes and active "
            "alert groups start over once)"
            if spec.match_re
            else ""
        )
        message = (
            f"match and match_re are deprecated: write matchers: "
            f"{_as_matchers(spec.match, spec.match_re)} instead{rekey}"
        )
        found.append(((*path, "match" if spec.match else "match_re"), message))
    _matcher_values(path, "match_re", spec.match_re, route.matchers, found)


def _anchored(value: str) -> bool:
    return value.startswith("^") or (value.endswith("$") and not value.endswith("\\$"))


def _matcher_values(
    path: YamlPath,
    re_key: str,
    match_re: Mapping[str, str],
    matchers: tuple[Matcher, ...],
    found: _Found,
) -> None:
    for m in matchers:
        regex = m.type >= MatchType.REGEXP
        written = match_re.get(m.name) if m.type is MatchType.REGEXP else None
        deprecated = written is not None and m.value == f"^(?:{written})$"
        value = written if written is not None and deprecated else m.value
        if regex and _anchored(value):
            message = (
                f"the regex for {m.name} is anchored already: Alertmanager always matches the "
                f"whole value (it compiles ^(?:...)$), so the ^ and $ in {value!r} are redundant"
            )
            found.append(((*path, re_key, m.name) if deprecated else path, message))
        elif not regex and any(hint in m.value for hint in _REGEX_HINTS):
            op = "=~" if m.type is MatchType.EQUAL else "!~"
            message = (
                f"{m}: {m.type.op} compares the value literally, but it looks like a regex: use "
                f'{m.name}{op}"..." to match a pattern'
            )
            found.append((path, message))


def _receivers(config: Config, found: _Found) -> None:
    used = {route.receiver for route in config.route.walk()}
    for index, receiver in enumerate(config.receivers):
        if receiver.name not in used:
            message = (
                f'receiver "{receiver.name}" is not used by any route: it is validated but never '
                "sent anything"
            )
            found.append((("receivers", index), message))
        if any(ch in receiver.name for ch in _REGEX_META):
            escaped = "".join("\\" + ch if ch in _REGEX_META else ch for ch in receiver.name)
            message = (
                f'receiver "{receiver.name}" has regex metacharacters in its name: Alertmanager '
                f'hands templates and webhooks the escaped form "{escaped}" (.Receiver, '
                '"receiver"); prefer letters, digits, - and _'
            )
            found.append((("receivers", index, "name"), message))
        if receiver.name in used and not receiver.integrations:
            message = (
                f'receiver "{receiver.name}" has no integrations: alerts routed to it are '
                "dropped (fine for a deliberate black hole)"
            )
            found.append((("receivers", index), message))


def _inhibit_rule(rule: InhibitRule, path: YamlPath, found: _Found) -> None:
    if not rule.equal:
        message = (
            "this inhibit rule has no equal labels: any firing source alert mutes every "
            "matching target alert, across all clusters and instances. List the labels that "
            "must be equal, e.g. equal: [alertname, instance]"
        )
        found.append((path, message))
    for side in ("source", "target"):
        matchers = rule.source_matchers if side == "source" else rule.target_matchers
        if not matchers:
            message = f"this inhibit rule has no {side} matchers: every alert is a {side}"
            found.append((path, message))
        match: dict[str, str] = getattr(rule.spec, f"{side}_match")
        match_re: dict[str, str] = getattr(rule.spec, f"{side}_match_re")
        if match or match_re:
            message = (
                f"{side}_match and {side}_match_re are deprecated: write {side}_matchers: "
                f"{_as_matchers(match, match_re)} instead"
            )
            found.append(((*path, f"{side}_match" if match else f"{side}_match_re"), message))
        _matcher_values(path, f"{side}_match_re", match_re, matchers, found)
