"""The flush costs what changed and yields to the loop (issue 20, fl24), writing the same.

- The verdicts a daemon writes, flush after flush, whatever happens between and during its
  flushes (results, late ones, results and exclusions arriving while a flush yields between
  slices, a store refusing a write, time passing), are in the end the states of the month
  computed afresh (``monitor.accounting.month_result``, i.e. ``compute_month``) over the same
  tallies: from the first bucket holding a tally up to the last one settled, none missing.
- The live state's eviction, which visits only the buckets that closed through an index,
  drops exactly what a pass over every tally held drops.

Daemons over fixed clocks with results fed through their own result path; nothing depends on
the date the tests run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.runtime import daemon as daemon_module
from monitor.runtime.state import LiveState, bucket_floor
from monitor.runtime.verdict_due import VerdictDue
from monitor.sla.policy import Tally
from tests.daemon_verdicts import assert_store_holds_reference, daemon_examples, shared_step
from tests.strategies import (
    HARNESS_SERVICES,
    HARNESS_TARGETS,
    harness_exclusions,
    harness_steps,
)
from tests.test_metrics_sla_text import Harness, result

pytestmark = pytest.mark.timeout(600)


class TestSlicedFlushWritesTheReference:
    @daemon_examples(25)
    @given(
        st.lists(
            harness_steps(
                st.tuples(st.just("flush")),
                st.tuples(st.just("fail")),
                st.tuples(
                    st.just("during"),
                    st.lists(
                        st.tuples(
                            st.sampled_from(HARNESS_TARGETS), st.booleans(), st.integers(0, 1800)
                        ),
                        max_size=4,
                    ),
                    st.one_of(st.none(), st.sampled_from(HARNESS_SERVICES)),
                ),
                harness_exclusions,
            ),
            max_size=20,
        )
    )
    def test_after_any_events_the_store_holds_the_reference_verdicts(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch,
        events: list[tuple[Any, ...]],
    ) -> None:
        """Results (late ones included), time, exclusions, failed writes and flushes sliced
        with results and exclusions arriving between the slices: once time has passed and
        the daemon flushed, the store holds the reference month's verdicts."""
        # A slice after every SLA: the loop gets a turn between any two.
        monkeypatch.setattr(daemon_module, "SUMMARY_SLICE_SECONDS", -1.0)

        async def run() -> None:
            h = Harness(tmp_path_factory.mktemp("slices"))
            d = h.daemon
            h.history(3)
            await d.store.open()
            try:
                for number, event in enumerate(events):
                    if not await shared_step(h, number, event, monkeypatch):  # "during"
                        await self._flush_with_arrivals(h, number, event[1], event[2])
                h.clock.advance(20 * 60)  # every bucket fed settles
                for _ in range(3):
                    assert await d.flush()
                await assert_store_holds_reference(h, stored_tallies=False)
            finally:
                await d.store.close()

        asyncio.run(run())

    @staticmethod
    async def _flush_with_arrivals(
        h: Harness, number: int, arrivals: list[tuple[str, bool, int]], exclude: str | None
    ) -> None:
        """A flush while results (and an exclusion) arrive, one per turn of the loop."""

        async def arrive() -> None:
            for target, ok, age in arrivals:
                await asyncio.sleep(0)
                h.feed(target, h.clock() - age, ok)
            if exclude is not None:
                await h.exclude(f"d{number}", exclude, before=1800)

        flush = asyncio.ensure_future(h.daemon.flush())
        await asyncio.gather(flush, arrive())


class TestVerdictDue:
    def test_due_at_its_instant_and_again_until_committed(self) -> None:
        """An SLA comes due when its instant passes and stays due until an instant is
        committed for it; a tally written or another location's move makes it due early."""
        due = VerdictDue()
        policies = _policies(3)
        due.indexed({(300, "t0"): ["s0"], (300, "t1"): ["s1"], (300, "t2"): ["s2"]}, policies)
        due.update({"s0": 100.0, "s1": 100.0, "s2": 400.0})
        assert due.candidates(99.0, [], []) == []
        assert [p.name for p in due.candidates(100.0, [], [])] == ["s0", "s1"]
        # Not committed (the write failed): asked again.
        assert [p.name for p in due.candidates(101.0, [], [])] == ["s0", "s1"]
        due.update({"s0": 400.0, "s1": 400.0})
        assert due.candidates(102.0, [], []) == []
        assert [p.name for p in due.candidates(103.0, [(300, "t2")], ["s0"])] == ["s0", "s2"]
        assert [p.name for p in due.candidates(400.0, [], [])] == ["s0", "s1", "s2"]


def _policies(count: int) -> list[Any]:
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    return [Named(f"s{n}") for n in range(count)]


class TestEvictionIndex:
    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.one_of(
                st.tuples(
                    st.just("record"),
                    st.sampled_from(["a", "b", "c"]),
                    st.integers(0, 7200),
                    st.booleans(),
                ),
                st.tuples(st.just("load"), st.sampled_from(["a", "b", "c"]), st.integers(0, 23)),
                st.tuples(st.just("put"), st.sampled_from(["a", "b", "c"]), st.integers(0, 23)),
                st.tuples(st.just("flush")),
                st.tuples(st.just("forget"), st.integers(0, 7200)),
                st.tuples(st.just("evict"), st.integers(0, 7200)),
            ),
            max_size=40,
        )
    )
    def test_eviction_drops_what_a_pass_over_every_tally_drops(
        self, events: list[tuple[Any, ...]]
    ) -> None:
        """After any records, loads, puts, flushes, forgets and evictions, each eviction
        leaves exactly the tallies a pass over every tally would: those at or after the
        cutoff and those waiting for a flush."""
        state = LiveState()
        for event in events:
            if event[0] == "record":
                _, target, at, ok = event
                state.record(result(target, float(at), ok), (300, 900))
            elif event[0] == "load":
                state.load(300, {event[1]: {event[2] * 300: Tally(ok=2)}})
            elif event[0] == "put":
                state.put(300, event[1], event[2] * 300, Tally(ok=1, failed=1))
            elif event[0] == "flush":
                state.take_dirty()
            elif event[0] == "forget":
                state.forget_before(event[1])
            else:
                cutoffs = {seconds: bucket_floor(event[1], seconds) for seconds in (300, 900)}
                expected = {
                    seconds: {
                        target: {
                            start: tally
                            for start, tally in buckets.items()
                            if cutoffs[seconds] <= state.evicted_before(seconds)  # never back
                            or start >= cutoffs[seconds]
                            or (seconds, target, start) in state._dirty
                        }
                        for target, buckets in state.tallies(seconds).items()
                    }
                    for seconds in (300, 900)
                }
                state.evict_before(cutoffs)
                got = {
                    seconds: {t: dict(b) for t, b in state.tallies(seconds).items()}
                    for seconds in (300, 900)
                }
                assert got == expected
