"""The daemon's own figures for ``/metrics`` and ``/readyz``, as plain numbers.

The Prometheus side (``monitor.metrics.collector``) turns them into metric families at scrape
time; the core keeps no Prometheus objects.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Protocol

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


STUCK_PERIODS = 10
"""A loop is stuck when it has had no successful iteration for this many of its periods."""

LOOPS = (
    "flush",
    "support",
    "maintenance",
    "watchdog",
    "scheduler",
    "prometheus",
    "integrity",
)
"""The background loops counted in ``slawatch_internal_errors_total{loop}`` (0 from the start,
so that ``increase()`` sees the first error)."""


@dataclass
class LoopBeat:
    """When a background loop last completed an iteration, and how often it should."""

    period: float
    last_ok: float


class ShardFigures(Protocol):
    """Sharding inside a location (issue 14; ``runtime.shard.ShardKeeper``)."""

    @property
    def members(self) -> tuple[str, ...]: ...

    @property
    def targets_owned(self) -> int: ...

    @property
    def up(self) -> bool: ...


class Health:
    """The daemon's own figures for ``/metrics`` and ``/readyz``."""

    def __init__(self) -> None:
        self.ready = False
        self.reload_successful = True
        self.last_reload_success: float | None = None
        self.last_reload_attempt: float | None = None
        self.store_write_errors = 0
        self.store_failing_since: float | None = None
        """When the store's writes began failing (None: the last write succeeded)."""
        self.last_flush: float | None = None
        self.scheduler_lag = LagHistogram()
        self.internal_errors: dict[str, int] = dict.fromkeys(LOOPS, 0)
        self.beats: dict[str, LoopBeat] = {}
        self.accountant = True
        """Issue 14: this daemon exports the contract series of SLAs judged by locations
        (``monitor.runtime.accountant``; always true on SQLite, a single daemon)."""
        self.shard: ShardFigures | None = None  # issue 14: set when sharding is on
        self.warming: set[str] = set()
        """fs28 (issue 20): what is still being built after a start and would make a request
        slow until it is (``/metrics``' per-SLA text before its first refresh: a scrape then
        built it, 13-32 s at 10,000 SLAs); not ready while any is."""
        self.store_corrupt: str | None = None
        """rd28 (issue 20): what the store file's integrity check after the start found wrong
        (None: nothing, or not checked yet); nothing more is written to it."""

    @property
    def store_failing(self) -> bool:
        """True from a failed durable write until the next one succeeds."""
        return self.store_failing_since is not None

    # -- background loops (issue 11, defect 4: none may die or stall silently) -------------------
    def loop_ok(self, loop: str, now: float, period: float) -> None:
        """``loop`` finished an iteration at ``now``; it should do so every ``period`` s."""
        self.beats[loop] = LoopBeat(period, now)

    def loop_failed(self, loop: str) -> None:
        """``loop`` caught an unexpected exception (its caller logged the traceback)."""
        self.internal_errors[loop] = self.internal_errors.get(loop, 0) + 1

    def forget_loop(self, loop: str) -> None:
        """``loop`` ended on purpose (stopping): not stuck."""
        self.beats.pop(loop, None)

    def problems(self, now: float) -> list[str]:
        """Why the daemon is not ready, as short phrases (none: ready)."""
        out: list[str] = []
        if not self.ready:
            out.append("starting or stopping")
        if self.store_corrupt is not None:
            out.append(f"store file corrupt ({self.store_corrupt})")
        if self.store_failing:
            out.append("store writes failing")
        if self.warming:
            out.append("building " + ", ".join(sorted(self.warming)))
        for loop, beat in sorted(self.beats.items()):
            if now - beat.last_ok > STUCK_PERIODS * beat.period:
                out.append(f"loop {loop} stuck for {now - beat.last_ok:.0f}s")
        return out

    def observe_lag(self, seconds: float) -> None:
        self.scheduler_lag.observe(seconds)


class WarmingGate:
    """fs28 (issue 20): one thing ``/readyz`` waits for (:attr:`Health.warming` names it until
    :meth:`open`): the per-SLA and the per-target ``/metrics`` lines' first writing."""

    def __init__(self, warming: set[str] | None, name: str) -> None:
        """Closed, holding ``name`` in ``warming`` (a :attr:`Health.warming`); with None (a
        renderer that does not gate readiness: tests, benches) open from the start."""
        self._warming, self._name = warming, name
        self.closed = warming is not None
        if warming is not None:
            warming.add(name)

    def open(self) -> None:
        if self._warming is not None and self.closed:
            self.closed = False
            self._warming.discard(self._name)
