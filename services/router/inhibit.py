"""Inhibition: a firing source alert mutes target alerts that agree with it on `equal` labels."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from schemas.config.inhibit import InhibitRule
from services.router.alerts import StoredAlert, resolved_at

__all__ = ["Inhibitor"]

# Per bucket: (sources that do not match the rule's target side, sources that do).
_Bucket = tuple[dict[str, StoredAlert], dict[str, StoredAlert]]


class _RuleSources:
    """One rule's source candidates, indexed by their values of the rule's `equal` labels."""

    __slots__ = ("buckets", "keys", "rule")

    def __init__(self, rule: InhibitRule) -> None:
        self.rule = rule
        self.buckets: dict[tuple[str, ...], _Bucket] = {}
        self.keys: dict[str, tuple[str, ...]] = {}

    def key(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        get = labels.get
        return tuple(get(name, "") for name in self.rule.equal)  # missing reads as ""

    def put(self, alert: StoredAlert) -> None:
        key = self.keys.get(alert.fingerprint)
        if key is None:
            key = self.key(alert.labels)
            self.keys[alert.fingerprint] = key
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = ({}, {})
        bucket[self.rule.is_target(alert.labels)][alert.fingerprint] = alert

    def drop(self, fp: str) -> None:
        key = self.keys.pop(fp, None)
        if key is None:
            return
        bucket = self.buckets[key]
        bucket[0].pop(fp, None)
        bucket[1].pop(fp, None)
        if not bucket[0] and not bucket[1]:
            del self.buckets[key]

    def firing_source(self, labels: Mapping[str, str], now_ns: int) -> str | None:
        bucket = self.buckets.get(self.key(labels))
        if bucket is None:
            return None
        found = _first_firing(bucket[0], now_ns)
        # A target that is itself a source is only muted by sources that are not targets,
        # so an alert matching both sides never inhibits itself.
        if found is None and bucket[1] and not self.rule.is_source(labels):
            found = _first_firing(bucket[1], now_ns)
        return found

    def all(self) -> Iterator[StoredAlert]:
        for one_sided, two_sided in self.buckets.values():
            yield from one_sided.values()
            yield from two_sided.values()


def _first_firing(sources: dict[str, StoredAlert], now_ns: int) -> str | None:
    for fp, alert in sources.items():
        if not resolved_at(alert, now_ns):
            return fp
    return None


class Inhibitor:
    """The inhibit rules of one config with their source candidates; `mutes` is a dict lookup."""

    def __init__(self, rules: Sequence[InhibitRule]) -> None:
        self._rules = [_RuleSources(rule) for rule in rules]

    def observe(self, alert: StoredAlert) -> None:
        """Keep a stored or updated alert as a source of each rule whose source side matches it."""
        for sources in self._rules:
            if alert.fingerprint in sources.keys or sources.rule.is_source(alert.labels):
                sources.put(alert)

    def forget(self, fp: str) -> None:
        """Drop an alert from every rule (it was deleted from the alert store)."""
        for sources in self._rules:
            sources.drop(fp)

    def purge_resolved(self, now_ns: int) -> list[str]:
        """Drop the sources resolved at `now_ns` (Alertmanager does this every 15 minutes)."""
        gone = {a.fingerprint for s in self._rules for a in s.all() if resolved_at(a, now_ns)}
        for fp in gone:
            self.forget(fp)
        return sorted(gone)

    def mutes(self, labels: Mapping[str, str], now_ns: int) -> str | None:
        """The fingerprint of the source that inhibits an alert with `labels`, or None.

        Rules are tried in config order and the first one that mutes names the source. Sources
        must be firing at `now_ns`; whether they are themselves silenced or inhibited is ignored.
        """
        for sources in self._rules:
            if not sources.rule.is_target(labels):
                continue
            found = sources.firing_source(labels, now_ns)
            if found is not None:
                return found
        return None

    def __len__(self) -> int:
        """The number of distinct source alerts held."""
        return len({fp for sources in self._rules for fp in sources.keys})
