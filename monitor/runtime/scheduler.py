"""Fixed-interval probing, driven by APScheduler 3 (asyncio).

Each target runs on its own interval grid: ``phase + k * interval`` in epoch seconds, where the
phase comes from a hash of the target's name. The grid never drifts by the probe's duration (the
weak monitors' ``while True: probe(); sleep()`` does), spreads 10,000 targets across the
interval instead of firing them in one millisecond, and stays the same across restarts and
reloads, so a target is probed at the same offsets in every bucket.

APScheduler does not run one job per target: at 10,000 targets every 30 s that is 333 job runs a
second, and each run costs APScheduler a trigger computation, a job-store update and a wakeup.
Instead there is one APScheduler job per distinct interval, firing every slice (a second at
most); each firing puts the runs of that interval's targets falling due in the next two slices
on the event loop's own timers, each at its target's exact grid time. A late slice job
therefore delays nothing unless it is more than a slice late, and a late run is still measured
against its grid time.

The runner owns the timeout: a probe still running at its target's timeout is cancelled and
recorded as ``timeout``. A slow target holds only its own task.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.clock import Clock, system_clock
from probes.registry import ProbeKind
from probes.result import Outcome, ProbeContext, ProbeResult

log = structlog.get_logger(__name__)

LATE_AFTER = 1.0
"""A run starting more than this after its grid time counts as late (``runs_late``)."""


# mem29 (issue 20): slots: one per target, no ``__dict__`` each (10,000 at 10,000 targets).
@dataclass(frozen=True, slots=True)
class ScheduledTarget:
    """What the scheduler needs to probe one target."""

    name: str
    kind: ProbeKind
    options: Any
    interval: float
    timeout: float
    role: str = "probe"
    bucket_lengths: tuple[int, ...] = ()


def phase_of(name: str, interval: float) -> float:
    """A stable offset in ``[0, interval)`` for ``name``."""
    return zlib.crc32(name.encode("utf-8")) / 2**32 * interval


def group_targets(targets: Iterable[ScheduledTarget]) -> dict[float, list[tuple[float, str]]]:
    """Interval -> its targets as (phase, name), sorted: the schedule's layout, pure (issue
    20: a reload builds it in its worker thread, ``ProbeScheduler.apply(grouped=...)``)."""
    by_interval: dict[float, list[tuple[float, str]]] = {}
    for target in targets:
        by_interval.setdefault(target.interval, []).append(
            (phase_of(target.name, target.interval), target.name)
        )
    for members in by_interval.values():
        members.sort()
    return by_interval


def next_run_after(now: float, interval: float, phase: float) -> float:
    """The first grid time strictly after ``now``."""
    return phase + (math.floor((now - phase) / interval) + 1) * interval


ResultSink = Callable[[ScheduledTarget, ProbeResult], None]
LagObserver = Callable[[float], None]


async def run_probe(target: ScheduledTarget) -> ProbeResult:
    """Run one probe of ``target`` under its timeout; never raises except on cancellation."""
    ctx = ProbeContext.starting_now(target.name, target.timeout)
    try:
        async with asyncio.timeout(target.timeout):
            return await target.kind.run(target.options, ctx)
    except TimeoutError:
        return ctx.result(Outcome.TIMEOUT, "timeout", duration_seconds=target.timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("probe_crashed", target=target.name, kind=target.kind.name)
        return ctx.result(Outcome.ERROR, type(exc).__name__)


SLICE_SECONDS = 1.0
"""How often each interval's APScheduler job plans the runs falling due next."""

_EPS = 1e-6
"""Slack on phase lookups; membership of a window is then decided exactly by next_run_after."""


def slice_of(interval: float) -> float:
    """The planning period for ``interval``: a quarter of it at most, so that two slices of
    look-ahead stay well within one interval and a target has at most one planned run."""
    return min(SLICE_SECONDS, interval / 4)


@dataclass
class _IntervalGroup:
    """The targets sharing one interval, sorted by phase, and how far they are planned."""

    interval: float
    phases: list[float]
    names: list[str]
    planned_until: float
    """Every grid time up to this epoch has a timer (or has run)."""

    def count_between(self, start: float, end: float) -> int:
        """How many grid times of all targets fall in ``(start, end]`` (any width)."""
        interval = self.interval
        return sum(
            math.floor((end - phase) / interval) - math.floor((start - phase) / interval)
            for phase in self.phases
        )

    def due_between(self, start: float, end: float) -> Iterator[tuple[str, float]]:
        """(target, grid time) for every grid time in ``(start, end]``; at most one per target
        since the window is never longer than the interval."""
        interval, phases = self.interval, self.phases
        width = end - start
        if width >= interval - 2 * _EPS:
            ranges: tuple[tuple[int, int], ...] = ((0, len(phases)),)
        else:
            lo = start % interval - _EPS
            hi = lo + width + 2 * _EPS
            if lo < 0:
                ranges = (
                    (0, bisect_right(phases, hi)),
                    (bisect_left(phases, lo + interval), len(phases)),
                )
            elif hi > interval:
                ranges = (
                    (bisect_left(phases, lo), len(phases)),
                    (0, bisect_right(phases, hi - interval)),
                )
            else:
                ranges = ((bisect_left(phases, lo), bisect_right(phases, hi)),)
        for first, last in ranges:
            for index in range(first, last):
                due = next_run_after(start, interval, phases[index])
                if due <= end:
                    yield self.names[index], due


class ProbeScheduler:
    """Runs every target on its grid and reports every result to ``sink``."""

    def __init__(
        self,
        sink: ResultSink,
        lag_observer: LagObserver | None = None,
        *,
        clock: Clock = system_clock,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        """``on_error`` counts an unexpected exception in planning or recording (logged
        with its traceback here; the scheduler goes on)."""
        self._sink = sink
        self._on_error = on_error
        self._clock = clock
        self._lag_observer = lag_observer
        self._targets: dict[str, ScheduledTarget] = {}
        self._groups: dict[float, _IntervalGroup] = {}
        self._timers: dict[tuple[str, float], asyncio.TimerHandle] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._expired: set[asyncio.Task[Any]] = set()
        """Tasks their timeout cancelled (``_expire``), told apart from a shutdown's cancel."""
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                # A late slice still plans its runs (they start at once, their lag measured).
                "misfire_grace_time": None,
                "coalesce": True,
                "max_instances": 1,
            },
        )
        self.started = False
        self._stopping = False
        # Runs that never started (a stall longer than an interval, or the target still
        # running) and runs that started more than LATE_AFTER after their grid time: a stall
        # shows here even when the lag histogram sees only one late start for it.
        self.runs_skipped = 0
        self.runs_late = 0

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def targets(self) -> dict[str, ScheduledTarget]:
        return self._targets

    def start(self) -> None:
        self._scheduler.start()
        self.started = True
        now = self._clock()
        for group in self._groups.values():
            self._plan(group, now)

    def apply(
        self,
        targets: Iterable[ScheduledTarget],
        now: float | None = None,
        *,
        grouped: Mapping[float, Sequence[tuple[float, str]]] | None = None,
    ) -> None:
        """Make the schedule match ``targets``.

        A target whose interval is unchanged keeps its grid and its planned next run; its new
        options take effect at that run. A new target (or one whose interval changed) first
        runs at its first grid time after ``now``. ``grouped``: ``group_targets(targets)``,
        built ahead (issue 20: a reload's worker thread), not built here again.
        """
        wanted = {t.name: t for t in targets}
        current = self._targets
        self._targets = wanted
        moment = self._clock() if now is None else now
        moved = {
            name
            for name, old in current.items()
            if name not in wanted or wanted[name].interval != old.interval
        }
        if moved:
            for key in [key for key in self._timers if key[0] in moved]:
                self._timers.pop(key).cancel()
        by_interval = group_targets(wanted.values()) if grouped is None else grouped
        for interval in set(self._groups) - set(by_interval):
            del self._groups[interval]
            self._scheduler.remove_job(_job_id(interval))
        for interval, members in by_interval.items():
            group = self._groups.get(interval)
            if group is None:
                group = self._groups[interval] = _IntervalGroup(
                    interval, [], [], planned_until=moment
                )
                period = slice_of(interval)
                self._scheduler.add_job(
                    self._plan_slice,
                    IntervalTrigger(
                        seconds=period,
                        start_date=datetime.fromtimestamp(
                            (math.floor(moment / period) + 1) * period, tz=UTC
                        ),
                        timezone=UTC,
                    ),
                    args=(interval,),
                    id=_job_id(interval),
                    name=f"plan every {interval:g}s",
                )
            group.phases = [phase for phase, _ in members]
            group.names = [name for _, name in members]
            if not self.started:
                continue
            # Targets new to this interval whose first grid time is already inside the planned
            # window would otherwise wait a whole interval.
            for phase, name in members:
                old = current.get(name)
                if old is not None and old.interval == interval:
                    continue
                first = next_run_after(moment, interval, phase)
                if first <= group.planned_until:
                    self._arm(name, first)
            self._plan(group, moment)

    async def _plan_slice(self, interval: float) -> None:
        group = self._groups.get(interval)
        if group is not None and not self._stopping:
            try:
                self._plan(group, self._clock())
            except Exception:
                self._failed("plan_failed", interval=interval)

    def _failed(self, event: str, **details: object) -> None:
        log.exception(event, **details)
        if self._on_error is not None:
            self._on_error()

    def _plan(self, group: _IntervalGroup, now: float) -> None:
        """Put the runs due up to two slices ahead on timers."""
        period = slice_of(group.interval)
        end = now + 2 * period
        # After a stall (a blocked loop, a suspended host) the runs whose grid time passed
        # more than a slice ago are not released at once: at 30,000 targets that was every
        # target in the same millisecond (EMFILE on the listener). Each target runs at its
        # next grid time instead, so the grid's phases spread them over one interval, and no
        # target waits more than one interval. The grid times dropped are counted as skipped.
        start = max(group.planned_until, now - period)
        if start > group.planned_until:
            missed = group.count_between(group.planned_until, start)
            if missed:
                self.runs_skipped += missed
                log.warning("probe_runs_skipped", interval=group.interval, runs=missed)
        if end <= start:
            return
        for name, due in group.due_between(start, end):
            self._arm(name, due)
        group.planned_until = end

    def _arm(self, name: str, due: float) -> None:
        loop = asyncio.get_running_loop()
        key = (name, due)
        # call_at on the loop's clock, as call_later(due - clock()) computes it, without
        # call_later's extra frame (issue 20, pp24: every probe passes here).
        self._timers[key] = loop.call_at(loop.time() + (due - self._clock()), self._launch, key)

    def _launch(self, key: tuple[str, float]) -> None:
        self._timers.pop(key, None)
        name, due = key
        target = self._targets.get(name)
        if target is None or self._stopping:
            return
        now = self._clock()
        if self._lag_observer is not None:
            self._lag_observer(now - due)
        if now - due > LATE_AFTER:
            self.runs_late += 1
        running = self._running
        if name in running:
            # Cannot happen while timeouts are shorter than intervals; never run one target twice.
            log.warning("probe_skipped_still_running", target=name)
            self.runs_skipped += 1
            return
        task = asyncio.create_task(self._run(target))
        running[name] = task
        self._tasks.add(task)

    async def _run(self, target: ScheduledTarget) -> None:
        """``run_probe(target)``, then the sink: one coroutine, and the target's timeout as a
        plain loop timer cancelling this task instead of an ``asyncio.timeout`` context
        (issue 20, pp24: a ``Timeout`` object, its two coroutines and its rescheduling per
        probe). Timed out, cancelled at shutdown, crashed: recorded exactly as ``run_probe``
        records them (tests/test_probe_fastpath.py holds the two equal)."""
        task = asyncio.current_task()
        assert task is not None
        loop = task.get_loop()
        ctx = ProbeContext.starting_now(target.name, target.timeout)
        expiry = loop.call_at(loop.time() + target.timeout, self._expire, task)
        others = 0  # cancels besides the timeout's (asyncio.timeout's rule, below)
        expired = False
        try:
            try:
                result = await target.kind.run(target.options, ctx)
            finally:
                expiry.cancel()
                if self._expired and task in self._expired:
                    # The timeout cancelled this task: take its cancel back, as asyncio.timeout
                    # does on leaving, also when the probe swallowed it and answered anyway.
                    self._expired.discard(task)
                    expired = True
                    others = task.uncancel()
        except asyncio.CancelledError:
            # A timeout only when the timeout's cancel was the only one.
            if not expired or others > 0:
                if self._stopping:
                    # We cancelled it ourselves at shutdown: an unfinished probe proved nothing.
                    return
                raise
            result = ctx.result(Outcome.TIMEOUT, "timeout", duration_seconds=target.timeout)
        except Exception as exc:
            log.exception("probe_crashed", target=target.name, kind=target.kind.name)
            result = ctx.result(Outcome.ERROR, type(exc).__name__)
        finally:
            self._running.pop(target.name, None)
            self._tasks.discard(task)
        try:
            self._sink(target, result)
        except Exception:
            self._failed("probe_result_not_recorded", target=target.name)

    def _expire(self, task: asyncio.Task[None]) -> None:
        """The target's timeout: cancel its probe, which ``_run`` records as ``timeout``."""
        if not task.done():
            self._expired.add(task)
            task.cancel()

    async def shutdown(self, grace: float = 0.5) -> None:
        """Stop starting probes, give running ones ``grace`` seconds, then cancel the rest.

        A cancelled probe is not recorded: it proved nothing either way.
        """
        if not self.started:
            return
        self._scheduler.pause()
        self._stopping = True
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        await asyncio.sleep(0)  # tasks created just now start and register themselves
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        pending = {task for task in self._tasks if not task.done()}
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        self._scheduler.shutdown(wait=False)
        self.started = False


def _job_id(interval: float) -> str:
    return f"plan:{interval!r}"
