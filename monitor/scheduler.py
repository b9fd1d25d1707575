"""Fixed-interval probing on APScheduler 3 (asyncio).

Each target runs on its own interval grid: ``phase + k * interval`` in epoch seconds, where the
phase comes from a hash of the target's name. The grid never drifts by the probe's duration (the
weak monitors' ``while True: probe(); sleep()`` does), spreads 10,000 targets across the
interval instead of firing them in one millisecond, and stays the same across restarts and
reloads, so a target is probed at the same offsets in every bucket.

The runner owns the timeout: a probe still running at its target's timeout is cancelled and
recorded as ``timeout``. A slow target holds only its own task.
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from probes.registry import ProbeKind
from probes.result import Outcome, ProbeContext, ProbeResult

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
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


def next_run_after(now: float, interval: float, phase: float) -> float:
    """The first grid time strictly after ``now``."""
    return phase + (math.floor((now - phase) / interval) + 1) * interval


def grid_time_at_or_before(now: float, interval: float, phase: float) -> float:
    return phase + math.floor((now - phase) / interval) * interval


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


class ProbeScheduler:
    """Keeps one APScheduler job per target and reports every result to ``sink``."""

    def __init__(self, sink: ResultSink, lag_observer: LagObserver | None = None) -> None:
        self._sink = sink
        self._lag_observer = lag_observer
        self._targets: dict[str, ScheduledTarget] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                # A late run still runs (and its lag is measured) rather than vanishing.
                "misfire_grace_time": None,
                "coalesce": True,
                "max_instances": 1,
            },
        )
        self.started = False
        self._stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def targets(self) -> dict[str, ScheduledTarget]:
        return self._targets

    def start(self) -> None:
        self._scheduler.start()
        self.started = True

    def apply(self, targets: Iterable[ScheduledTarget], now: float | None = None) -> None:
        """Make the schedule match ``targets``: add, replace or remove jobs as needed.

        A target whose interval is unchanged keeps its job (and so its next run); its new
        options take effect at that run.
        """
        wanted = {t.name: t for t in targets}
        current = self._targets
        self._targets = wanted
        moment = time.time() if now is None else now
        for name in set(current) - set(wanted):
            self._scheduler.remove_job(_job_id(name))
        for name, target in wanted.items():
            old = current.get(name)
            if old is not None and old.interval == target.interval:
                continue
            if old is not None:
                self._scheduler.remove_job(_job_id(name))
            phase = phase_of(name, target.interval)
            first = next_run_after(moment, target.interval, phase)
            self._scheduler.add_job(
                self._fire,
                IntervalTrigger(
                    seconds=target.interval,
                    start_date=datetime.fromtimestamp(first, tz=UTC),
                    timezone=UTC,
                ),
                args=(name,),
                id=_job_id(name),
                name=name,
            )

    async def _fire(self, name: str) -> None:
        target = self._targets.get(name)
        if target is None:
            return
        now = time.time()
        if self._lag_observer is not None:
            due = grid_time_at_or_before(now, target.interval, phase_of(name, target.interval))
            self._lag_observer(now - due)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            result = await run_probe(target)
        except asyncio.CancelledError:
            if self._stopping:
                # We cancelled it ourselves at shutdown: an unfinished probe proved nothing.
                return
            raise
        finally:
            self._tasks.discard(task)
        self._sink(target, result)

    async def shutdown(self, grace: float = 0.5) -> None:
        """Stop starting probes, give running ones ``grace`` seconds, then cancel the rest.

        A cancelled probe is not recorded: it proved nothing either way.
        """
        if not self.started:
            return
        # Pause first: shutting APScheduler's asyncio executor down cancels running jobs at once.
        self._scheduler.pause()
        self._stopping = True
        await asyncio.sleep(0)  # jobs submitted just now start and register themselves
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
        pending = {task for task in self._tasks if not task.done()}
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        self._scheduler.shutdown(wait=False)
        self.started = False


def _job_id(name: str) -> str:
    return f"probe:{name}"
