"""Alertmanager's template data (template.Data, Alert, KV, Pairs) and its builder."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from services.notifiers.template.gotime import GoTime
from services.notifiers.template.gotypes import (
    STRING,
    STRING_SLICE,
    Func,
    GoType,
    Kind,
    StringSlice,
)

__all__ = [
    "KV",
    "Alert",
    "AlertLike",
    "Alerts",
    "Data",
    "Pair",
    "Pairs",
    "quote_meta",
    "template_data",
]


@dataclass(frozen=True, slots=True)
class Pair:
    """template.Pair: one label or annotation, `{{ .Name }}` and `{{ .Value }}`."""

    Name: str
    Value: str

    go_type: ClassVar[GoType] = GoType("template.Pair", Kind.STRUCT)
    go_fields: ClassVar[tuple[str, ...]] = ("Name", "Value")


class Pairs(list[Pair]):
    """template.Pairs, with `.Names` and `.Values` (Alertmanager 0.25 has no String method)."""

    go_type = GoType(
        "template.Pairs",
        Kind.SLICE,
        underlying="[]template.Pair",
        elem=Pair.go_type,
        comparable=False,
    )
    go_methods: ClassVar[Mapping[str, Func]]

    def Names(self) -> StringSlice:
        return StringSlice(p.Name for p in self)

    def Values(self) -> StringSlice:
        return StringSlice(p.Value for p in self)


Pairs.go_methods = {"Names": Func((), Pairs.Names), "Values": Func((), Pairs.Values)}


class KV(dict[str, str]):
    """template.KV (map[string]string): a missing key reads as "", methods shadow keys."""

    go_type = GoType(
        "template.KV",
        Kind.MAP,
        underlying="map[string]string",
        elem=STRING,
        key=STRING,
        comparable=False,
    )
    go_methods: ClassVar[Mapping[str, Func]]

    def SortedPairs(self) -> Pairs:
        """Pairs sorted by name, except that `alertname` comes first."""
        keys = sorted(self)
        if "alertname" in self:
            keys.remove("alertname")
            keys.insert(0, "alertname")
        return Pairs(Pair(k, self[k]) for k in keys)

    def Remove(self, keys: Sequence[str]) -> KV:
        """A copy without the given keys."""
        drop = set(keys)
        return KV({k: v for k, v in self.items() if k not in drop})

    def Names(self) -> StringSlice:
        return self.SortedPairs().Names()

    def Values(self) -> StringSlice:
        return self.SortedPairs().Values()


KV.go_methods = {
    "SortedPairs": Func((), KV.SortedPairs),
    "Remove": Func((STRING_SLICE,), KV.Remove),
    "Names": Func((), KV.Names),
    "Values": Func((), KV.Values),
}


@dataclass(frozen=True, slots=True)
class Alert:
    """template.Alert: one alert of the notification."""

    Status: str
    Labels: KV
    Annotations: KV
    StartsAt: GoTime
    EndsAt: GoTime
    GeneratorURL: str
    Fingerprint: str

    go_type: ClassVar[GoType] = GoType("template.Alert", Kind.STRUCT, comparable=False)
    go_fields: ClassVar[tuple[str, ...]] = (
        "Status",
        "Labels",
        "Annotations",
        "StartsAt",
        "EndsAt",
        "GeneratorURL",
        "Fingerprint",
    )


_ALERT_SLICE = GoType(
    "[]template.Alert", Kind.SLICE, elem=Alert.go_type, comparable=False, defined=False
)


class _AlertSlice(list[Alert]):
    """[]template.Alert, what `.Firing` and `.Resolved` return (no methods of its own)."""

    go_type = _ALERT_SLICE


class Alerts(list[Alert]):
    """template.Alerts, with `.Firing` and `.Resolved`."""

    go_type = GoType(
        "template.Alerts",
        Kind.SLICE,
        underlying="[]template.Alert",
        elem=Alert.go_type,
        comparable=False,
    )
    go_methods: ClassVar[Mapping[str, Func]]

    def Firing(self) -> list[Alert]:
        return _AlertSlice(a for a in self if a.Status == "firing")

    def Resolved(self) -> list[Alert]:
        return _AlertSlice(a for a in self if a.Status == "resolved")


Alerts.go_methods = {"Firing": Func((), Alerts.Firing), "Resolved": Func((), Alerts.Resolved)}


@dataclass(frozen=True, slots=True)
class Data:
    """template.Data, the dot of every notification template (Alertmanager passes a pointer)."""

    Receiver: str
    Status: str
    Alerts: Alerts
    GroupLabels: KV
    CommonLabels: KV
    CommonAnnotations: KV
    ExternalURL: str

    go_type: ClassVar[GoType] = GoType("*template.Data", Kind.STRUCT, pointer=True)
    go_fields: ClassVar[tuple[str, ...]] = (
        "Receiver",
        "Status",
        "Alerts",
        "GroupLabels",
        "CommonLabels",
        "CommonAnnotations",
        "ExternalURL",
    )


class AlertLike(Protocol):
    """What `template_data` reads from an alert (schemas.webhook.WebhookAlert fits)."""

    @property
    def status(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def annotations(self) -> Mapping[str, str]: ...
    @property
    def startsAt(self) -> str: ...
    @property
    def endsAt(self) -> str | None: ...
    @property
    def generatorURL(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...


_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


def quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta, which Alertmanager applies to the receiver name."""
    return _META.sub(r"\\\1", text)


def _common(maps: Sequence[Mapping[str, str]]) -> KV:
    if not maps:
        return KV()
    common = dict(maps[0])
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if k in other and other[k] == v}
    return KV(common)


def template_data(
    receiver: str,
    status: str | None,
    alerts: Iterable[AlertLike],
    group_labels: Mapping[str, str],
    external_url: str,
) -> Data:
    """Alertmanager's `Template.Data`: the receiver name QuoteMeta-escaped, the group status
    (`firing` if any alert fires, when `status` is None), and the labels and annotations
    shared with identical values by every alert as CommonLabels and CommonAnnotations."""
    items = Alerts(
        Alert(
            Status=a.status,
            Labels=KV(a.labels),
            Annotations=KV(a.annotations),
            StartsAt=GoTime.parse(a.startsAt),
            EndsAt=GoTime.parse(a.endsAt) if a.endsAt else GoTime.zero(),
            GeneratorURL=a.generatorURL,
            Fingerprint=a.fingerprint,
        )
        for a in alerts
    )
    if status is None:
        status = "firing" if any(a.Status == "firing" for a in items) else "resolved"
    return Data(
        Receiver=quote_meta(receiver),
        Status=status,
        Alerts=items,
        GroupLabels=KV(group_labels),
        CommonLabels=_common([a.Labels for a in items]),
        CommonAnnotations=_common([a.Annotations for a in items]),
        ExternalURL=external_url,
    )
