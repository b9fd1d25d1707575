"""Time as an input: the daemon and everything it builds read the time through a ``Clock``.

Pure code takes ``now`` as a parameter; the long-running parts (daemon, scheduler, HTTP routes,
collectors) are given a clock instead of calling :func:`time.time`, so a test can run them at a
fixed instant of a fixed month whatever the date it runs on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from monitor.instants import utc_from_epoch

Clock = Callable[[], float]
"""Seconds since 1970, like :func:`time.time`."""


def system_clock() -> float:
    """The host's wall clock."""
    return time.time()


def utc_now(clock: Clock) -> datetime:
    """``clock``'s current instant as an aware UTC datetime."""
    return utc_from_epoch(clock())


@dataclass
class FixedClock:
    """A clock that reads ``seconds`` until moved (tests and reproducible reports)."""

    seconds: float

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds
