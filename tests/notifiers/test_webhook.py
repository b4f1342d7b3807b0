"""The webhook payload, byte for byte as Alertmanager 0.25 sends it (reference §11 capture)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.group import Notification
from services.notifiers.gojson import GoMap, dumps
from services.notifiers.webhook import quote_meta, webhook_payload

# Captured from Alertmanager 0.25.0 on the wire (reference §11), with a trailing newline.
CAPTURED = (
    b'{"receiver":"hook","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"HighCPU","instance":"a:9100","job":"node","severity":"critical"},"annotations":{"summary":"CPU \\u003chigh\\u003e \\u0026 hot"},"startsAt":"2026-11-27T02:10:31.083842749Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph?g0.expr=up","fingerprint":"f640b7e1ff8afe25"},{"status":"firing","labels":{"alertname":"HighCPU","instance":"b:9100","job":"node","severity":"critical"},"annotations":{"summary":"CPU high"},"startsAt":"2026-11-27T02:10:31.083842749Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"c13f7a2620dad38a"}],"groupLabels":{"alertname":"HighCPU"},"commonLabels":{"alertname":"HighCPU","job":"node","severity":"critical"},"commonAnnotations":{},"externalURL":"http://am.example:9093/am","version":"4","groupKey":"{}:{alertname=\\"HighCPU\\"}","truncatedAlerts":0}'
    b"\n"
)


def notification() -> Notification:
    def alert(instance: str, summary: str, url: str, fp: str) -> dict[str, object]:
        return {
            "status": "firing",
            "labels": {
                "severity": "critical",
                "job": "node",
                "instance": instance,
                "alertname": "HighCPU",
            },
            "annotations": {"summary": summary},
            "startsAt": "2026-11-27T02:10:31.083842749Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": url,
            "fingerprint": fp,
        }

    return Notification.model_validate(
        {
            "receiver": "hook",
            "integration": "webhook[0]",
            "status": "firing",
            "alerts": [
                alert(
                    "a:9100", "CPU <high> & hot", "http://prom/graph?g0.expr=up", "f640b7e1ff8afe25"
                ),
                alert("b:9100", "CPU high", "", "c13f7a2620dad38a"),
            ],
            "groupLabels": {"alertname": "HighCPU"},
            "commonLabels": {"severity": "critical", "alertname": "HighCPU", "job": "node"},
            "commonAnnotations": {},
            "externalURL": "http://am.example:9093/am",
            "groupKey": '{}:{alertname="HighCPU"}',
            "routeKey": "{}",
            "repeatInterval": 14400.0,
            "sendResolved": True,
            "tick": "2026-11-27T02:10:31Z",
            "firingHashes": [],
            "resolvedHashes": [],
            "idempotencyKey": "k",
        }
    )


def test_payload_is_byte_identical_to_alertmanagers() -> None:
    assert webhook_payload(notification()) == CAPTURED


def test_receiver_is_quote_meta_escaped_as_alertmanager_does() -> None:
    assert quote_meta("team.x+y") == "team\\.x\\+y"
    assert quote_meta(r"a\b(c)[d]{e}^$|*?") == r"a\\b\(c\)\[d\]\{e\}\^\$\|\*\?"


_TEXT = st.text(
    st.one_of(
        st.sampled_from(list('<>&\\"\b\f\n\r\t\x00\x1f\x7f\u2028\u2029bfu/é€😀')),
        st.characters(exclude_categories=["Cs"]),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    labels=st.dictionaries(_TEXT, _TEXT, max_size=5),
    annotations=st.dictionaries(_TEXT, _TEXT, max_size=3),
    text=_TEXT,
    truncated=st.integers(min_value=0, max_value=2**70),
)
def test_the_fast_encoder_writes_what_the_go_compatible_one_writes(
    labels: dict[str, str], annotations: dict[str, str], text: str, truncated: int
) -> None:
    """orjson with Go's escapes patched in, or the fallback: the same bytes as `gojson.dumps`."""
    base = notification()
    alert = base.alerts[0].model_copy(
        update={"labels": labels, "annotations": annotations, "generatorURL": text}
    )
    n = base.model_copy(
        update={
            "alerts": [alert, base.alerts[1]],
            "receiver": text,
            "commonLabels": labels,
            "commonAnnotations": annotations,
            "groupKey": text,
            "truncatedAlerts": truncated,
        }
    )
    expected = dumps(
        {
            "receiver": quote_meta(n.receiver),
            "status": n.status,
            "alerts": [
                {
                    "status": a.status,
                    "labels": GoMap(a.labels),
                    "annotations": GoMap(a.annotations),
                    "startsAt": a.startsAt,
                    "endsAt": a.endsAt,
                    "generatorURL": a.generatorURL,
                    "fingerprint": a.fingerprint,
                }
                for a in n.alerts
            ],
            "groupLabels": GoMap(n.groupLabels),
            "commonLabels": GoMap(n.commonLabels),
            "commonAnnotations": GoMap(n.commonAnnotations),
            "externalURL": n.externalURL,
            "version": "4",
            "groupKey": n.groupKey,
            "truncatedAlerts": n.truncatedAlerts,
        },
        newline=True,
    )
    assert webhook_payload(n) == expected
