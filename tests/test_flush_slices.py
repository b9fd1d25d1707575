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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.accounting import month_result
from monitor.instants import utc_from_epoch
from monitor.runtime import daemon as daemon_module
from monitor.runtime.state import LiveState, bucket_floor
from monitor.runtime.verdict_due import VerdictDue
from monitor.sla.calendar import month_containing
from monitor.sla.policy import BucketState, Tally
from monitor.store.base import StoreError
from probes.result import Outcome, ProbeResult
from tests.test_metrics_sla_text import Harness

pytestmark = pytest.mark.timeout(600)

TARGETS = ("a1", "b1", "b2", "c1")


async def assert_store_equals_reference(h: Harness) -> None:
    """Every SLA's stored verdicts of its running month are the reference month's states,
    one per bucket from the first holding a tally of its targets to the last settled."""
    d = h.daemon
    now = d.clock()
    moment = utc_from_epoch(now)
    inputs = d.accounting.inputs
    settle = d._settle_seconds()
    for policy in inputs.policies:
        month = month_containing(moment, policy.timezone)
        tallies = d._tallies_for(policy.bucket_seconds, month, policy)
        reference = month_result(inputs, policy, month, tallies, moment)
        start = int(reference.start.timestamp())
        size = policy.bucket_seconds
        upto = min(len(reference.states), int((now - settle - start) // size))
        first = min(
            (
                (bucket - start) // size
                for target in inputs.services[policy.service].all_targets
                for bucket in tallies.get(target, {})
                if start <= bucket < start + upto * size
            ),
            default=None,
        )
        rows = await d.store.load_service_buckets(policy.name, start, start + upto * size)
        stored = {(r.bucket_start - start) // size: r for r in rows}
        if first is None:
            assert not stored, policy.name
            continue
        assert sorted(stored) == list(range(first, upto)), policy.name
        for index, row in stored.items():
            assert row.state is reference.states[index], (policy.name, index)
            assert (row.kind is not None) == (row.state is BucketState.EXCLUDED)


class TestSlicedFlushWritesTheReference:
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        st.lists(
            st.one_of(
                st.tuples(
                    st.just("result"),
                    st.sampled_from(TARGETS),
                    st.booleans(),
                    st.integers(0, 3600),
                ),
                st.tuples(st.just("advance"), st.integers(1, 1200)),
                st.tuples(st.just("flush")),
                st.tuples(st.just("fail")),
                st.tuples(
                    st.just("during"),
                    st.lists(
                        st.tuples(st.sampled_from(TARGETS), st.booleans(), st.integers(0, 1800)),
                        max_size=4,
                    ),
                    st.one_of(st.none(), st.sampled_from(["sa", "sb", "sc"])),
                ),
                st.tuples(st.just("exclude"), st.sampled_from(["sa", "sb", "sc"])),
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
                    if event[0] == "result":
                        _, target, ok, age = event
                        h.feed(target, h.clock() - age, ok)
                    elif event[0] == "advance":
                        h.clock.advance(event[1])
                    elif event[0] == "exclude":
                        await h.exclude(f"x{number}", event[1], before=1800)
                    elif event[0] == "flush":
                        assert await d.flush()
                    elif event[0] == "fail":
                        await self._failed_flush(d, monkeypatch)
                    else:
                        await self._flush_with_arrivals(h, number, event[1], event[2])
                h.clock.advance(20 * 60)  # every bucket fed settles
                for _ in range(3):
                    assert await d.flush()
                await assert_store_equals_reference(h)
            finally:
                await d.store.close()

        asyncio.run(run())

    @staticmethod
    async def _failed_flush(d: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        async def refuse(batch: Any) -> None:
            raise StoreError("disk full")

        with monkeypatch.context() as patch:
            patch.setattr(d.store, "write_batch", refuse)
            assert await d.flush() is False

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


def _result(target: str, at: float, ok: bool) -> ProbeResult:
    return ProbeResult(
        target,
        Outcome.UP if ok else Outcome.DOWN,
        at,
        duration_seconds=0.01,
        reason="" if ok else "status_code_503",
    )


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
                state.record(_result(target, float(at), ok), (300, 900))
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
