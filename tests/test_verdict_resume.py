"""A restart resumes the verdicts from what the store holds (issue 20, rw25).

- After any sequence of results (late ones included), time, flushes, failed writes, exclusions
  added while running or while the daemon is down, restarts, crashes (the unflushed results
  lost) and crashes mid-flush (tallies stored without their verdicts, as a spool replayed or a
  flush whose verdict pass failed leaves them), the store holds exactly the reference month's
  verdicts (``compute_month`` via ``month_result``): from the first bucket with a tally to the
  last settled.
- A restart with nothing changed writes no verdict again; one after a late tally was stored
  without its verdict writes from that bucket only.
- ``first_differing`` finds the first bucket stored otherwise than judged.

Daemons over fixed clocks, results fed through their own path; nothing depends on the date.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import load_config
from monitor.instants import utc_from_epoch
from monitor.runtime.daemon import Daemon
from monitor.runtime.state import bucket_floor
from monitor.runtime.verdict_resume import first_differing
from monitor.sla.policy import BucketState, ExclusionKind, ExclusionWindow
from monitor.store.base import ServiceBucketRow, TallyRow, WriteBatch
from tests.daemon_verdicts import assert_store_holds_reference, daemon_examples, shared_step
from tests.strategies import (
    HARNESS_SERVICES,
    harness_advances,
    harness_exclusions,
    harness_results,
)
from tests.test_metrics_sla_text import Harness

pytestmark = pytest.mark.timeout(600)


async def assert_store_equals_reference(h: Harness) -> None:
    """tests/daemon_verdicts.py's check, with the reference over the tallies the store holds
    (every one, whatever daemon wrote it): after a restart the live state holds only the
    last hour's."""
    await assert_store_holds_reference(h, stored_tallies=True)


async def settle_and_check(h: Harness) -> None:
    """Let every bucket fed settle, flush until it is written, and check the store against the
    reference (the end of every property run here and in tests/test_verdict_vouch.py)."""
    h.clock.advance(20 * 60)
    for _ in range(4):
        assert await h.daemon.flush()
    await assert_store_equals_reference(h)


async def restart(h: Harness, *, down_exclusion: str | None = None, ident: str = "down") -> None:
    """Stop (no flush: what was not written is lost, as at kill -9) and start a new daemon
    over the same configuration and store, as ``Daemon.start`` reads its history."""
    await h.daemon.store.close()
    d = Daemon(load_config(h.path), h.path, clock=h.clock)
    d.scheduler.apply(d._schedule(), now=h.clock())
    await d.store.open()
    if down_exclusion is not None:  # added to the store while the daemon was down
        now = h.clock()
        await d.store.add_exclusion(
            ExclusionWindow(
                id=ident,
                start=utc_from_epoch(now - 2400),
                end=utc_from_epoch(now + 600),
                kind=ExclusionKind.TELECOM_PROVIDER,
                reason="carrier outage",
                services=frozenset({down_exclusion}),
                source="api",
            )
        )
    await d._load_history(h.clock())
    h.daemon = d


async def crash_mid_flush(h: Harness) -> None:
    """The flush's tallies reach the store, its verdicts never do (a crash between writes,
    a spool of tallies replayed, a verdict pass that failed); then a restart."""
    d = h.daemon
    dirty = d.state.take_dirty()
    vantage, location = d.config.monitor.name, d.config.monitor.location_name
    rows = [TallyRow.of(vantage, target, start, s, t, location) for (s, target, start), t in dirty]
    await d.store.write_batch(WriteBatch(tallies=rows, heartbeat=h.clock()))
    await restart(h)


EVENTS = (
    harness_results(),
    harness_advances(),
    st.tuples(st.just("flush")),
    st.tuples(st.just("fail")),
    harness_exclusions,
    st.tuples(st.just("restart"), st.sampled_from([None, *HARNESS_SERVICES])),
    st.tuples(st.just("crash_mid_flush")),
)
"""The steps of the property below, in the order Hypothesis shrinks towards."""


async def play(
    h: Harness, number: int, event: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Play one of :data:`EVENTS` (the ``number``-th) on the harness's daemon."""
    if await shared_step(h, number, event, monkeypatch):
        return
    if event[0] == "restart":
        await restart(h, down_exclusion=event[1], ident=f"down{number}")
    else:
        assert event[0] == "crash_mid_flush"
        await crash_mid_flush(h)


class TestRestartWritesTheReference:
    @daemon_examples(60)
    @given(st.lists(st.one_of(*EVENTS), max_size=20))
    def test_after_any_events_and_restarts_the_store_holds_the_reference(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        monkeypatch: pytest.MonkeyPatch,
        events: list[tuple[Any, ...]],
    ) -> None:
        """Whatever happened before, across and between restarts, once time has passed and
        the daemon flushed, the store holds the reference month's verdicts."""

        async def run() -> None:
            h = Harness(tmp_path_factory.mktemp("resume"))
            h.history(3)
            await h.daemon.store.open()
            # The history stored first: a month with no tally stored at all writes unknown
            # verdicts from the mark its first pass took (as before rw25), which the
            # reference's "from the first bucket with a tally" does not describe.
            assert await h.daemon.flush()
            try:
                for number, event in enumerate(events):
                    await play(h, number, event, monkeypatch)
                await settle_and_check(h)
            finally:
                await h.daemon.store.close()

        asyncio.run(run())


def _counting(d: Daemon) -> list[int]:
    """The verdict rows of every batch the daemon writes from now on."""
    counts: list[int] = []
    inner = d.store.write_batch

    async def write_batch(batch: WriteBatch) -> None:
        counts.append(len(batch.service_buckets))
        await inner(batch)

    d.store.write_batch = write_batch  # type: ignore[method-assign]
    return counts


class TestRestartWritesWhatDiffers:
    def test_a_restart_with_nothing_changed_writes_no_verdict(self, tmp_path: Any) -> None:
        """Three hours of verdicts stored; a restart at the same instant writes none again
        (before rw25 it wrote all 3 hours of every SLA); one after a late tally was stored
        without its verdict writes that bucket onwards only."""

        async def run() -> None:
            h = Harness(tmp_path)
            h.history(3)
            await h.daemon.store.open()
            try:
                for _ in range(3):
                    assert await h.daemon.flush()
                await assert_store_equals_reference(h)
                await restart(h)
                counts = _counting(h.daemon)
                for _ in range(3):
                    assert await h.daemon.flush()
                assert sum(counts) == 0
                await assert_store_equals_reference(h)
                # b1, b2 down 20 minutes ago (a closed, settled bucket), stored with no verdict.
                late = h.clock() - 1200
                for at in range(5):  # b1 and b2 down there: sb (quorum 2) judged down
                    h.feed("b1", late + at, False)
                    h.feed("b2", late + at, False)
                await crash_mid_flush(h)
                counts = _counting(h.daemon)
                for _ in range(3):
                    assert await h.daemon.flush()
                await assert_store_equals_reference(h)
                settle = h.daemon._settle_seconds()
                now = h.clock()
                # Only the SLAs reading b1 write, from its bucket to the last settled at most.
                readers = [
                    p
                    for p in h.daemon.accounting.inputs.policies
                    if "b1" in h.daemon.accounting.inputs.services[p.service].all_targets
                ]
                expected = sum(
                    (
                        bucket_floor(now - settle, p.bucket_seconds)
                        - bucket_floor(late, p.bucket_seconds)
                    )
                    // p.bucket_seconds
                    for p in readers
                )
                assert 0 < sum(counts) <= expected
            finally:
                await h.daemon.store.close()

        asyncio.run(run())


class TestFirstDiffering:
    @given(
        st.lists(st.sampled_from(list(BucketState)), min_size=0, max_size=30),
        st.data(),
    )
    def test_the_first_bucket_stored_otherwise(self, states: list[BucketState], data: Any) -> None:
        """Rows stored as judged up to some bucket, then one missing or differing: that
        bucket is the answer; all stored as judged: ``upto``."""
        size, start = 300, 1_000_000 - 1_000_000 % 300
        kind = ExclusionKind.TELECOM_PROVIDER

        def kind_at(index: int) -> ExclusionKind | None:
            return kind if states[index] is BucketState.EXCLUDED else None

        rows = [
            ServiceBucketRow("v", "s", "svc", start + i * size, state, kind_at(i), "v")
            for i, state in enumerate(states)
        ]
        cut = data.draw(st.integers(0, len(states)))
        how = data.draw(st.sampled_from(["missing", "state", "service"]))
        if cut < len(states):
            if how == "missing":
                del rows[cut]
            elif how == "state":
                other = next(s for s in BucketState if s is not states[cut])
                changed = kind if other is BucketState.EXCLUDED else None
                rows[cut] = ServiceBucketRow(
                    "v", "s", "svc", rows[cut].bucket_start, other, changed, "v"
                )
            else:
                rows[cut] = ServiceBucketRow(
                    "v", "s", "other", rows[cut].bucket_start, states[cut], kind_at(cut), "v"
                )
        found = first_differing(
            rows,
            start_epoch=start,
            bucket_seconds=size,
            first=0,
            upto=len(states),
            service="svc",
            location="v",
            state_at=lambda i: states[i],
            kind_at=kind_at,
        )
        assert found == cut
