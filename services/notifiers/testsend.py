"""`tocsin notify test`: send a synthetic alert group to every integration of one receiver.

One attempt each, no retries, so a misconfigured receiver is found before an incident. With
`--dry-run` nothing is sent: the rendered bodies are printed (never the URLs, keys or passwords
they would go to).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from schemas.config import Config, ConfigError, load
from schemas.config.http import HTTPConfig
from schemas.group import Notification
from schemas.timefmt import GO_ZERO_TIME, format_ns
from services.notifiers.email import EmailNotifier, email_message
from services.notifiers.errors import NotifyError
from services.notifiers.http import HttpSender
from services.notifiers.service import build_integrations
from services.notifiers.template import TemplateSet, template_data
from services.runtime.settings import Settings

__all__ = ["run_command", "synthetic_notification", "test_receiver"]


def synthetic_notification(receiver: str, integration: str, external_url: str) -> Notification:
    """A firing group of one test alert, as the router would publish it."""
    labels = {"alertname": "TocsinTest", "receiver": receiver, "severity": "none"}
    return Notification.model_validate(
        {
            "receiver": receiver,
            "integration": integration,
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": labels,
                    "annotations": {"summary": f"Test notification for receiver {receiver}"},
                    "startsAt": format_ns(time.time_ns()),
                    "endsAt": GO_ZERO_TIME,
                    "generatorURL": "",
                    "fingerprint": "0000000000000000",
                }
            ],
            "groupLabels": {"alertname": "TocsinTest"},
            "commonLabels": labels,
            "commonAnnotations": {},
            "externalURL": external_url,
            "groupKey": '{}:{alertname="TocsinTest"}',
            "routeKey": "{}",
            "repeatInterval": 3600.0,
            "sendResolved": True,
            "tick": format_ns(time.time_ns()),
            "firingHashes": [],
            "resolvedHashes": [],
            "idempotencyKey": f"tocsin-notify-test-{time.time_ns()}",
        }
    )


class _Printer(HttpSender):
    """An HTTP sender that prints the body instead of sending it."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self._out = out

    async def post(
        self,
        url: str,
        body: bytes,
        config: HTTPConfig,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, str]:
        print(body.decode(errors="replace").rstrip("\n"), file=self._out)
        return 200, "ok"


async def test_receiver(
    config: Config, receiver: str, external_url: str, out: TextIO, *, dry_run: bool
) -> int:
    """Exit status: 0 when every integration accepted (or rendered), 1 otherwise."""
    spec = next((r for r in config.receivers if r.name == receiver), None)
    if spec is None:
        names = ", ".join(r.name for r in config.receivers)
        print(f"tocsin: error: no receiver {receiver!r} (receivers: {names})", file=out)
        return 1
    templates = TemplateSet.default()
    templates.parse_files(config.templates)
    http: HttpSender = _Printer(out) if dry_run else HttpSender()
    failed = 0
    try:
        integrations = build_integrations(spec, http, templates)
        if not integrations:
            print(f"receiver {receiver!r} has no integrations: nothing to send", file=out)
        for name, notifier in integrations:
            notification = synthetic_notification(receiver, name, external_url)
            print(f"--- {receiver}/{name}", file=out)
            try:
                if dry_run and isinstance(notifier, EmailNotifier):
                    index = int(name[len("email[") : -1])
                    data = template_data(
                        receiver, "firing", notification.alerts,
                        notification.groupLabels, external_url,
                    )  # fmt: skip
                    message = email_message(
                        spec.email_configs[index], templates, data,
                        now_ns=time.time_ns(), hostname="localhost",
                    )  # fmt: skip
                    print(message.content.decode(errors="replace"), file=out)
                    continue
                code = await notifier.notify(notification)
                print(f"{'rendered' if dry_run else 'delivered'} ({code})", file=out)
            except NotifyError as exc:
                failed += 1
                kind = "retryable" if exc.retryable else "permanent"
                print(f"FAILED ({kind}, {exc.reason.value}): {exc}", file=out)
    finally:
        await http.close()
    return 1 if failed else 0


async def run_command(settings: Settings, receiver: str, *, dry_run: bool) -> int:
    """`tocsin notify test`: load the config the settings name and test one receiver."""
    if settings.config.file is None:
        print("tocsin: error: --config.file (or TOCSIN_CONFIG__FILE) is required", file=sys.stderr)
        return 2
    try:
        config = load(settings.config.file)
    except ConfigError as exc:
        print(f"tocsin: error: {exc}", file=sys.stderr)
        return 1
    external = settings.web.external_url or f"http://{settings.web.listen_address}"
    return await test_receiver(config, receiver, external, sys.stdout, dry_run=dry_run)
