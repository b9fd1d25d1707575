"""The daemon's summary asks only the SLAs whose months may have moved (issue 20, c21).

A daemon over a fixed clock (results fed through its own result path, no probe runs), so
nothing depends on the date the tests run. The reference is the month computed afresh by
``monitor.accounting.month_result`` (``compute_month``) over the same tallies.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.accounting import month_result
from monitor.instants import utc_from_epoch
from monitor.runtime.daemon import Daemon
from monitor.runtime.summary_due import boundary_step
from tests.daemon_verdicts import daemon_examples
from tests.strategies import harness_exclusions, harness_steps
from tests.test_metrics_sla_text import T0, Harness, write_config

pytestmark = pytest.mark.timeout(300)


async def asked(daemon: Daemon) -> set[str]:
    """Run the daemon's summary; the SLAs it asked the accounting for."""
    accounting = daemon.accounting
    names: set[str] = set()
    original = accounting.month_result

    def spy(policy: Any, *args: Any, **kwargs: Any) -> Any:
        names.add(policy.name)
        return original(policy, *args, **kwargs)

    accounting.month_result = spy  # type: ignore[method-assign]
    try:
        await daemon._summarise()
    finally:
        del accounting.month_result
    return names


def assert_summarised(daemon: Daemon) -> None:
    """Every month the accounting holds is advanced to now with nothing left marked, its
    result computed at its current version, and equal to the month computed afresh."""
    accounting = daemon.accounting
    now = daemon.clock()
    moment = utc_from_epoch(now)
    held = accounting._running
    assert held, "the summary built no month"
    for (name, month), running in held.items():
        policy = accounting.policy(name)
        grid = running.grid
        expected = max(0, min(grid.count, (int(now) - grid.start_epoch) // grid.bucket_seconds))
        assert running.elapsed == expected, (name, month)
        assert not running._dirty, (name, month)
        version, result = accounting._results[(name, month)]
        assert version == running.version, (name, month)
        tallies = daemon._tallies_for(policy.bucket_seconds, month, policy)
        reference = month_result(accounting.inputs, policy, month, tallies, moment)
        assert result == _stamped(result, reference), (name, month)


def _stamped(result: Any, reference: Any) -> Any:
    """The reference with the result's ``now`` (``stamp=False`` keeps an earlier one)."""
    import dataclasses

    return dataclasses.replace(reference, now=result.now if reference.now is not None else None)


class TestSummaryDue:
    def test_a_summary_asks_what_moved(self, tmp_path: Path) -> None:
        """A quiet second asks no SLA; a result in the running bucket asks none (no month
        figure moves); a late result asks its SLA; a 5-minute close asks the SLAs of
        5-minute buckets, a 15-minute one every SLA; an exclusion (new inputs) every SLA."""

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            await d.store.open()
            try:
                h.history(6)
                everyone = {p.name for p in d.accounting.inputs.policies}
                assert await asked(d) == everyone  # the first summary: every SLA
                assert_summarised(d)
                assert await asked(d) == set()
                h.clock.advance(1)
                assert await asked(d) == set()

                h.feed("a1", h.clock() - 1, True)  # the running bucket
                assert await asked(d) == set()

                h.feed("c1", h.clock() - 2 * 3600 + 10, False)  # late, a closed bucket
                assert await asked(d) == {"lc"}
                assert_summarised(d)

                # T0 is 10:02:17: the 5-minute buckets close at 10:05, the 15-minute at 10:15.
                h.clock.seconds = T0 + 163
                assert await asked(d) == {"la", "lb", "ld"}
                assert_summarised(d)
                h.clock.seconds = T0 + 763
                assert await asked(d) == everyone
                assert_summarised(d)
                h.clock.advance(1)
                assert await asked(d) == set()

                await h.exclude("carrier-1", "sa")
                assert await asked(d) == everyone
                assert_summarised(d)
            finally:
                await d.store.close()

        asyncio.run(run())

    def test_an_unfinished_summary_asks_everything_next(self, tmp_path: Path) -> None:
        """A summary that stops half-way (an error, a cancellation) leaves no SLA behind: the
        next one asks every SLA."""

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            await d.store.open()
            try:
                h.history(2)
                await d._summarise()
                h.clock.advance(300)

                # The summary stops half-way: asking lb fails once (la was asked before it).
                accounting = d.accounting
                original = accounting.month_result

                def failing(policy: Any, *args: Any, **kwargs: Any) -> Any:
                    if policy.name == "lb":
                        raise RuntimeError("lb")
                    return original(policy, *args, **kwargs)

                accounting.month_result = failing  # type: ignore[method-assign]
                with pytest.raises(RuntimeError):
                    await d._summarise()
                del accounting.month_result
                assert await asked(d) == {p.name for p in d.accounting.inputs.policies}
                assert_summarised(d)
            finally:
                await d.store.close()

        asyncio.run(run())

    def test_boundaries_cover_every_zone(self) -> None:
        """A grid starts at a local midnight (a whole number of quarter hours from a UTC
        midnight): each of its bucket boundaries is a multiple of the step, so crossing one
        is seen."""
        for size in (60, 300, 600, 900, 1800, 3600, 7200):
            step = boundary_step(size)
            for offset in range(-12 * 3600, 14 * 3600 + 1, 900):
                start = 20_000 * 86_400 - offset
                assert all((start + j * size) % step == 0 for j in range(50))

    @daemon_examples(30)
    @given(
        st.lists(
            harness_steps(
                st.tuples(st.just("summarise")),
                harness_exclusions,
                st.tuples(st.just("unexclude")),
                st.tuples(st.just("reload"), st.sampled_from(["99.9", "99.95"])),
                st.tuples(st.just("rollover")),
                max_age=4 * 3600,
                most=1300,
            ),
            max_size=30,
        )
    )
    def test_after_any_events_a_summary_leaves_every_month_current(
        self, tmp_path_factory: pytest.TempPathFactory, events: list[tuple[Any, ...]]
    ) -> None:
        """After any sequence of results (late ones included), time passing (across a month's
        end too), exclusions added and removed, reloads and summaries, a summary leaves
        every held month advanced to now, nothing marked, and its result equal to the month
        computed afresh: asking only what moved misses nothing."""

        async def run() -> None:
            root = tmp_path_factory.mktemp("summary")
            h = Harness(root)
            d = h.daemon
            await d.store.open()
            try:
                h.history(3)
                await d._summarise()
                added: list[str] = []
                for event in [*events, ("summarise",)]:
                    if h.play(event):
                        continue
                    if event[0] == "rollover":  # to 1 Jan 2027 00:00:07 UTC, then on
                        h.clock.seconds = max(h.clock.seconds, 1798761607.0)
                    elif event[0] == "exclude":
                        ident = f"x{len(added)}"
                        await h.exclude(ident, event[1])
                        added.append(ident)
                    elif event[0] == "unexclude":
                        if added:
                            assert await d.delete_exclusion(added.pop())
                    elif event[0] == "reload":
                        write_config(root, objective=event[1])
                        assert d.reload()
                    else:
                        await d._summarise()
                        assert_summarised(d)
            finally:
                await d.store.close()

        asyncio.run(run())


class TestSummaryFreezes:
    def test_a_long_summary_freezes_what_it_built_as_it_goes(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """st26 (issue 20): with the collector policy on, a summary of many SLAs (the first
        after a start) freezes the heap every ``FREEZE_AFTER`` SLAs it asked, not only at
        its end, and its figures are the same."""
        import gc

        from monitor.runtime import heap

        monkeypatch.setattr(heap, "FREEZE_AFTER", 2)
        thresholds = gc.get_threshold()
        asked_at_freeze: list[int] = []
        names: list[str] = []
        monkeypatch.setattr(gc, "freeze", lambda: asked_at_freeze.append(len(names)))

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            await d.store.open()
            try:
                h.history(2)
                accounting = d.accounting
                original = accounting.month_result

                def spy(policy: Any, *args: Any, **kwargs: Any) -> Any:
                    if len(args) == 1:  # the current month (the previous one has two)
                        names.append(policy.name)
                    return original(policy, *args, **kwargs)

                heap.manage(True)
                accounting.month_result = spy  # type: ignore[method-assign]
                try:
                    await d._summarise()
                finally:
                    del accounting.month_result
                    heap.manage(False)
                    gc.set_threshold(*thresholds)
                every = len(d.accounting.inputs.policies)
                assert every >= 4
                assert len(names) == every
                # Frozen after the 2nd, 4th, ... SLA (mid-summary), then once more at the end.
                mid = list(range(2, every + 1, 2))
                assert asked_at_freeze == [*mid, every], asked_at_freeze
                assert_summarised(d)
            finally:
                await d.store.close()

        asyncio.run(run())
