"""The probe scheduler: per-target grids planned in slices, runs on time, reloads, shutdown."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from monitor.runtime.scheduler import (
    ProbeScheduler,
    ScheduledTarget,
    _IntervalGroup,
    next_run_after,
    phase_of,
)
from probes.registry import ProbeKind
from probes.result import Outcome, ProbeContext, ProbeResult

pytestmark = pytest.mark.timeout(60)


class _NoOptions(BaseModel):
    pass


async def _instant(options: Any, ctx: ProbeContext) -> ProbeResult:
    return ctx.result(Outcome.UP)


INSTANT = ProbeKind("instant", _NoOptions, _instant, "answers at once")


def target(name: str, interval: float) -> ScheduledTarget:
    return ScheduledTarget(name, INSTANT, _NoOptions(), interval, timeout=interval / 2)


def group_of(names: list[str], interval: float) -> _IntervalGroup:
    members = sorted((phase_of(n, interval), n) for n in names)
    return _IntervalGroup(interval, [p for p, _ in members], [n for _, n in members], 0.0)


class TestDueBetween:
    @given(
        count=st.integers(1, 60),
        interval=st.sampled_from([0.5, 1.0, 7.0, 30.0, 60.0, 300.0]),
        origin=st.floats(1.7e9, 1.9e9),
        cuts=st.lists(st.floats(0.001, 0.49), min_size=1, max_size=40),
    )
    def test_consecutive_windows_yield_every_grid_time_once(
        self, count: int, interval: float, origin: float, cuts: list[float]
    ) -> None:
        """Windows laid end to end (each shorter than the interval, as the scheduler plans
        them) yield each target's grid times inside them exactly once, and no other time."""
        names = [f"t{i}" for i in range(count)]
        group = group_of(names, interval)
        seen: list[tuple[str, float]] = []
        edge = origin
        for cut in cuts:
            end = edge + cut * interval
            seen.extend(group.due_between(edge, end))
            edge = end
        expected = []
        for name in names:
            due = next_run_after(origin, interval, phase_of(name, interval))
            while due <= edge:
                expected.append((name, due))
                due += interval
        assert sorted(seen) == sorted(expected)


class TestProbeScheduler:
    async def test_each_target_runs_at_its_grid_times(self) -> None:
        """Every target is probed once per interval, within a few milliseconds of
        ``phase + k * interval`` on an idle loop."""
        runs: list[tuple[str, float]] = []
        scheduler = ProbeScheduler(lambda t, r: runs.append((t.name, r.started_at)))
        interval = 0.4
        scheduler.apply([target(f"t{i}", interval) for i in range(20)])
        scheduler.start()
        await asyncio.sleep(1.3)
        await scheduler.shutdown()
        by_name: dict[str, list[float]] = {}
        for name, at in runs:
            by_name.setdefault(name, []).append(at)
        assert len(by_name) == 20
        for name, times in by_name.items():
            assert 3 <= len(times) <= 4
            phase = phase_of(name, interval)
            for at in times:
                late = (at - phase) % interval
                assert late < 0.05, (name, late)

    async def test_lag_is_observed_per_run(self) -> None:
        """The lag observer hears one small, non-negative lag per run."""
        lags: list[float] = []
        runs: list[str] = []
        scheduler = ProbeScheduler(lambda t, r: runs.append(t.name), lags.append)
        scheduler.apply([target("a", 0.2), target("b", 0.3)])
        scheduler.start()
        await asyncio.sleep(0.9)
        await scheduler.shutdown()
        assert len(lags) >= len(runs) >= 5
        assert all(-0.001 < lag < 0.05 for lag in lags)

    async def test_reload_removes_changes_and_adds_targets(self) -> None:
        """After apply(): a removed target stops, a target whose interval changed runs on its
        new grid only, and an added one starts within one interval."""
        runs: list[tuple[str, float]] = []
        scheduler = ProbeScheduler(lambda t, r: runs.append((t.name, time.time())))
        scheduler.apply([target("gone", 0.2), target("moved", 0.2), target("kept", 0.2)])
        scheduler.start()
        await asyncio.sleep(0.5)
        changed_at = time.time()
        scheduler.apply([target("moved", 0.5), target("kept", 0.2), target("new", 0.3)])
        await asyncio.sleep(1.2)
        await scheduler.shutdown()
        after = [(name, at) for name, at in runs if at > changed_at + 0.01]
        names = {name for name, _ in after}
        assert "gone" not in names
        assert {"moved", "kept", "new"} <= names
        moved = [at for name, at in after if name == "moved"]
        assert 2 <= len(moved) <= 3
        phase = phase_of("moved", 0.5)
        assert all((at - phase) % 0.5 < 0.05 for at in moved)

    async def test_shutdown_cancels_planned_runs_and_records_no_cancelled_probe(self) -> None:
        """After shutdown nothing more runs, and a probe cut short is not recorded."""
        started = asyncio.Event()

        async def hang(options: Any, ctx: ProbeContext) -> ProbeResult:
            started.set()
            await asyncio.sleep(10)
            return ctx.result(Outcome.UP)

        slow = ProbeKind("hang", _NoOptions, hang, "never answers in time")
        results: list[ProbeResult] = []
        scheduler = ProbeScheduler(lambda t, r: results.append(r))
        scheduler.apply([ScheduledTarget("slow", slow, _NoOptions(), 0.2, timeout=5.0)])
        scheduler.start()
        await asyncio.wait_for(started.wait(), 2)
        await scheduler.shutdown(grace=0.1)
        await asyncio.sleep(0.5)
        assert results == []
        assert scheduler.in_flight == 0
