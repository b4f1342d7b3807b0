"""Inhibit rules: source and target matchers (from all three spellings) and the `equal` labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from schemas.config._base import ConfigModel
from schemas.config._fields import (
    CompiledMatcher,
    EqualLabel,
    LabelNameKey,
    MatcherLine,
    Regex,
    Text,
    reject_null_regex,
)
from schemas.config.matchers import Matcher, MatchType, matches_all, sort_matchers

__all__ = ["InhibitRule", "InhibitRuleSpec"]


def _combine(
    match: dict[str, str], match_re: dict[str, str], lines: list[tuple[Matcher, ...]]
) -> tuple[Matcher, ...]:
    return tuple(
        sort_matchers(
            [Matcher.new(MatchType.EQUAL, k, v) for k, v in match.items()]
            + [Matcher.new(MatchType.REGEXP, k, f"^(?:{r})$") for k, r in match_re.items()]
            + [m for line in lines for m in line]
        )
    )


class InhibitRuleSpec(ConfigModel):
    """One `inhibit_rules` entry as written."""

    source_match: dict[LabelNameKey, Text] = {}
    source_match_re: dict[LabelNameKey, Regex] = {}
    source_matchers: list[MatcherLine] = []
    target_match: dict[LabelNameKey, Text] = {}
    target_match_re: dict[LabelNameKey, Regex] = {}
    target_matchers: list[MatcherLine] = []
    equal: list[EqualLabel] = []

    @field_validator("source_match_re", "target_match_re", mode="before")
    @classmethod
    def _no_null_regex(cls, value: Any) -> Any:
        return reject_null_regex(value)


class InhibitRule(ConfigModel):
    """A compiled rule: a firing source mutes targets that agree with it on every `equal` label."""

    source_matchers: tuple[CompiledMatcher, ...]
    target_matchers: tuple[CompiledMatcher, ...]
    equal: tuple[str, ...]
    spec: InhibitRuleSpec = Field(repr=False, exclude=True)

    @classmethod
    def build(cls, spec: InhibitRuleSpec) -> InhibitRule:
        """Compile a written rule (match_re values anchored as Alertmanager stores them)."""
        return cls(
            source_matchers=_combine(spec.source_match, spec.source_match_re, spec.source_matchers),
            target_matchers=_combine(spec.target_match, spec.target_match_re, spec.target_matchers),
            equal=tuple(spec.equal),
            spec=spec,
        )

    def is_source(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert with `labels` matches every source matcher."""
        return matches_all(self.source_matchers, labels)

    def is_target(self, labels: Mapping[str, str]) -> bool:
        """Whether an alert with `labels` matches every target matcher."""
        return matches_all(self.target_matchers, labels)

    def equal_on(self, source: Mapping[str, str], target: Mapping[str, str]) -> bool:
        """Whether source and target agree on every `equal` label (a missing label reads as "")."""
        return all(source.get(name, "") == target.get(name, "") for name in self.equal)
