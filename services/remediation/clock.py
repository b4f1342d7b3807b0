"""The clock remediation reads, injectable so timing logic is testable without sleeping."""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Wall-clock seconds since the epoch."""

    def now(self) -> float:
        """The current time."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """`time.time()`."""
        return time.time()
