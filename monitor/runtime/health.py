"""The daemon's own figures for ``/metrics`` and ``/readyz``, as plain numbers.

The Prometheus side (``monitor.metrics.collector``) turns them into metric families at scrape
time; the core keeps no Prometheus objects.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Upper bounds (seconds) of the scheduler lag histogram; +Inf is implied."""


@dataclass
class LagHistogram:
    """How late probes start after their scheduled time: counts per bucket (not cumulative;
    the last count is above the last bound), the sum and the count."""

    bounds: tuple[float, ...] = LAG_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LAG_BUCKETS) + 1))
    total: float = 0.0
    observations: int = 0

    def observe(self, seconds: float) -> None:
        value = max(0.0, seconds)
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.observations += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound as Prometheus writes it, observations at or below it), +Inf last."""
        out: list[tuple[str, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


class Health:
    """The daemon's own figures for ``/metrics`` and ``/readyz``."""

    def __init__(self) -> None:
        self.ready = False
        self.reload_successful = True
        self.last_reload_success: float | None = None
        self.last_reload_attempt: float | None = None
        self.store_write_errors = 0
        self.store_up = True  # issue 14: False from a failed flush until the next that succeeds
        self.last_flush: float | None = None
        self.scheduler_lag = LagHistogram()

    def observe_lag(self, seconds: float) -> None:
        self.scheduler_lag.observe(seconds)
