"""YAML to plain data as Go's yaml.v2 sees it, with each YAML path's line and `$VAR`s expanded."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from schemas.config.env import UnsetVariableError, expand_env
from schemas.config.errors import YamlPath

__all__ = ["Source", "read_yaml"]

_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_APPENDING = frozenset({"matchers", "source_matchers", "target_matchers"})


@dataclass
class Source:
    """The parsed document, the 1-based line of each path, and problems met while reading."""

    data: Any
    lines: dict[YamlPath, int] = field(default_factory=dict)
    problems: list[tuple[YamlPath, str]] = field(default_factory=list)

    def line(self, path: YamlPath) -> int | None:
        """The line of `path`, or of its nearest ancestor that exists in the file."""
        for end in range(len(path), -1, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return None


# Every scalar stays the text written (yaml.v2 hands a string field the literal text of `500` or
# `yes`), except nulls, which become None; pydantic then parses bools, ints and durations. Merge
# keys (`<<`) behave as in yaml.v2, which is not quite the YAML spec (see `_assign`).


class _Reader:
    def __init__(self, source: Source, env: Mapping[str, str]) -> None:
        self.source = source
        self.env = env

    def value(self, node: yaml.Node, path: YamlPath) -> Any:
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _NULL:
                return None
            try:
                return expand_env(str(node.value), self.env)
            except UnsetVariableError as exc:
                self.source.problems.append((path, str(exc)))
                return str(node.value)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.source.lines.setdefault((*path, index), item.start_mark.line + 1)
                items.append(self.value(item, (*path, index)))
            return items
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        raise TypeError(f"unexpected YAML node {node!r}")  # the composer makes no other kind

    def mapping(
        self, node: yaml.MappingNode, path: YamlPath, merged: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        written: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                for key, value in self._merged(value_node, path):
                    _assign(out, key, value)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.source.problems.append((path, "mapping keys must be scalars"))
                continue
            key = "" if key_node.tag == _NULL else str(key_node.value)
            child = (*path, key)
            if key in written:
                self.source.problems.append((child, f'key "{key}" already set in map'))
                continue
            written.add(key)
            line = key_node.start_mark.line + 1
            if merged:  # a key written in the mapping itself is the better place to point at
                self.source.lines.setdefault(child, line)
            else:
                self.source.lines[child] = line
            _assign(out, key, self.value(value_node, child))
        return out

    def _merged(self, node: yaml.Node, path: YamlPath) -> list[tuple[str, Any]]:
        # yaml.v2 applies `<<: [a, b]` backwards, so that a's keys win over b's
        sources = reversed(node.value) if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[str, Any]] = []
        for source in sources:
            if isinstance(source, yaml.MappingNode):
                pairs += self.mapping(source, path, merged=True).items()
            else:
                self.source.problems.append((path, "map merge requires a map or a list of maps"))
        return pairs


def _assign(out: dict[str, Any], key: str, value: Any) -> None:
    # Keys apply in file order, a `<<` merge at its place, so later keys win. Alertmanager's
    # matcher lists append when decoded twice, so a merged and a written list add up.
    before = out.get(key)
    if key in _APPENDING and isinstance(before, list) and isinstance(value, list):
        out[key] = before + value
    else:
        out[key] = value


def read_yaml(text: str, env: Mapping[str, str]) -> Source:
    """Parse the first YAML document; yaml.YAMLError (with a mark) when it is not valid YAML."""
    # like yaml.v2's Unmarshal, read the first document and ignore any after it
    node = next(iter(yaml.compose_all(text, Loader=yaml.SafeLoader)), None)
    source = Source(data=None)
    if node is not None:
        source.lines[()] = node.start_mark.line + 1
        source.data = _Reader(source, env).value(node, ())
    return source
