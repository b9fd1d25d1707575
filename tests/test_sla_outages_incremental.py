"""Issue 20 (ot25): a running month finds its outages incrementally (a run of unavailable
buckets found before, unchanged and holding no bucket judged again, is reused; runs of equal
evidence are summed once). Property: after any sequence of bucket closes, late results and
exclusions added or removed, the running month's outages equal ``compute_month``'s.

Issue 20 (oc26): the outages are kept compact (``CompactOutages``: runs and figure indexes,
built into ``Outage`` objects when read) and the evidence as two integers a bucket
(``BucketEvidence``): the same sequences of events hold them equal to the reference read
every way a reader reads them, the evidence equal to the tallies of every bucket judged
unavailable, and a month restored from its encoded state equal again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import MonthResult, compute_month
from monitor.sla.policy import (
    BucketState,
    ExclusionKind,
    ExclusionWindow,
    ServiceDef,
    SlaPolicy,
    Tally,
)
from monitor.sla.running import RunningMonth
from monitor.sla.running_codec import decode, encode
from tests.strategies import STANDARD_CREDIT

MONTH = Month(2026, 11)
TARGETS = ("https://a.example/", "https://b.example/")
SERVICE = ServiceDef("svc", TARGETS)
POLICY = SlaPolicy("sla", "svc", Decimal("99.9"), STANDARD_CREDIT, bucket_seconds=3600)
GRID = month_grid(MONTH, "UTC", 3600)
# A few kinds of tally, most of them failing so that runs of unavailable buckets form, with
# equal and different evidence (the shared-cells path and the per-run path).
PALETTE = (
    Tally(ok=3),
    Tally(ok=0, failed=2, reasons={"http_503": 2}),
    Tally(ok=0, failed=2, reasons={"http_503": 2}),
    Tally(ok=1, failed=1, reasons={"timeout": 1}),
    Tally(ok=0, failed=3, reasons={"timeout": 1, "http_503": 2}),
    Tally(ok=0, failed=2, reasons={"tls": 2}, excused=1),
)
SPAN = 48  # the buckets events touch: the month's first two days

events = st.lists(
    st.one_of(
        st.tuples(st.just("close"), st.integers(1, 12)),
        st.tuples(
            st.just("late"),
            st.integers(0, len(TARGETS) - 1),
            st.integers(0, SPAN - 1),
            st.integers(0, len(PALETTE) - 1),
        ),
        st.tuples(st.just("exclude"), st.integers(0, SPAN - 1), st.integers(1, 6)),
        st.tuples(st.just("unexclude")),
    ),
    min_size=1,
    max_size=30,
)


class TestIncrementalOutages:
    """The running month's outages against the full recomputation."""

    @settings(max_examples=150, deadline=None)
    @given(
        initial=st.dictionaries(
            st.tuples(st.integers(0, len(TARGETS) - 1), st.integers(0, SPAN - 1)),
            st.integers(0, len(PALETTE) - 1),
            max_size=60,
        ),
        steps=events,
    )
    def test_any_sequence_equals_compute_month(
        self, initial: dict[tuple[int, int], int], steps: list[tuple[Any, ...]]
    ) -> None:
        """Bucket closes, late results (re-judging buckets inside, beside and between
        outages) and exclusions added and removed: after each, the running month's outages
        (reused, rebuilt or copied from an equal run) equal compute_month's, in order."""
        tallies: dict[str, dict[int, Tally]] = {name: {} for name in TARGETS}
        for (target, index), kind in initial.items():
            tallies[TARGETS[target]][GRID.bucket_start(index)] = PALETTE[kind]
        windows: list[ExclusionWindow] = []
        running = RunningMonth(POLICY, SERVICE, MONTH, ())
        # Half the span elapsed at once (as at a start), so that late results re-judge.
        now = GRID.start + timedelta(hours=SPAN // 2)
        for step in steps:
            if step[0] == "close":
                now = min(now + timedelta(hours=int(step[1])), GRID.start + timedelta(hours=SPAN))
            elif step[0] == "late":
                _, target, index, kind = step
                epoch = GRID.bucket_start(int(index))
                tallies[TARGETS[int(target)]][epoch] = PALETTE[int(kind)]
                running.mark(epoch)
            elif step[0] == "exclude":
                _, index, length = step
                start = datetime.fromtimestamp(GRID.bucket_start(int(index)), UTC)
                windows.append(
                    ExclusionWindow(
                        f"w{len(windows)}",
                        start,
                        start + timedelta(hours=int(length)),
                        ExclusionKind.SCHEDULED_MAINTENANCE,
                    )
                )
                running.replace_windows(windows)
            else:
                windows.clear()
                running.replace_windows(windows)
            running.advance(tallies, now)
            got = running.result(now)
            reference = compute_month(POLICY, SERVICE, MONTH, tallies, windows, now=now)
            assert got.outages == reference.outages
            assert tuple(got.states) == tuple(reference.states)
            _same_outages(got, reference)
            _same_evidence(running, tallies, now)
        # The encoded state restored (start-up's path) finds the same outages again.
        restored = RunningMonth.restored(
            POLICY, SERVICE, MONTH, windows, decode(encode(running.judged_state(running.elapsed)))
        )
        restored.advance(tallies, now)
        _same_outages(restored.result(now), running.result(now))
        _same_outages(
            restored.result(now), compute_month(POLICY, SERVICE, MONTH, tallies, windows, now=now)
        )


def _same_outages(got: MonthResult, reference: MonthResult) -> None:
    """``got``'s outages read every way a reader reads them (iteration, index from either
    end, slices, length, equality both ways, JSON) equal ``reference``'s tuple."""
    want = tuple(reference.outages)
    assert len(got.outages) == len(want)
    assert list(got.outages) == list(want)
    assert tuple(got.outages) == want
    assert want == got.outages
    assert all(got.outages[i] == want[i] for i in range(-len(want), len(want)))
    assert got.outages[1:-1] == want[1:-1]
    assert got.outages[::2] == want[::2]
    assert got.to_json()["outages"] == reference.to_json()["outages"]


def _same_evidence(
    running: RunningMonth, tallies: dict[str, dict[int, Tally]], now: datetime
) -> None:
    """The evidence kept equals the tallies of every elapsed bucket judged unavailable
    before exclusions (compute_month without windows judges the same verdicts)."""
    plain = compute_month(POLICY, SERVICE, MONTH, tallies, (), now=now)
    elapsed = running.elapsed
    want = tuple(
        (
            index,
            tuple(
                (name, tallies[name][GRID.bucket_start(index)])
                for name in TARGETS
                if GRID.bucket_start(index) in tallies[name]
            ),
        )
        for index, state in enumerate(plain.states[:elapsed])
        if state is BucketState.UNAVAILABLE
    )
    assert running.judged_state(elapsed).evidence == want


class TestOutagesFoundFromTheLowestMove:
    """Issue 20 (sum27): the runs ending before the lowest bucket moved since the last find
    are kept as found (not walked again); a close moves one bucket at the end."""

    @settings(max_examples=100, deadline=None)
    @given(
        judged=st.lists(st.integers(-1, len(PALETTE) - 1), min_size=0, max_size=40),
        closes=st.lists(
            st.tuples(
                st.integers(-1, len(PALETTE) - 1),
                st.one_of(
                    st.none(),
                    st.tuples(st.integers(0, 79), st.integers(0, len(PALETTE) - 1)),
                ),
            ),
            min_size=1,
            max_size=40,
        ),
    )
    def test_restored_then_closed_bucket_by_bucket_equals_compute_month(
        self, judged: list[int], closes: list[tuple[int, tuple[int, int] | None]]
    ) -> None:
        """A month restored from its judged state (as at a start), then closed one bucket at
        a time (a failing, passing or missing tally for the one target; now and then a late
        result on an earlier bucket): after each close the outages equal compute_month's (the
        runs kept from the last find, those found again after them, the figures of either)."""
        target = TARGETS[0]
        tallies: dict[str, dict[int, Tally]] = {name: {} for name in TARGETS}
        for index, kind in enumerate(judged):
            if kind >= 0:
                tallies[target][GRID.bucket_start(index)] = PALETTE[kind]
        now = GRID.start + timedelta(hours=len(judged))
        first = RunningMonth(POLICY, SERVICE, MONTH, ())
        first.advance(tallies, now)
        running = RunningMonth.restored(
            POLICY, SERVICE, MONTH, (), decode(encode(first.judged_state(first.elapsed)))
        )
        _same_outages(running.result(now), first.result(now))
        for kind, late in closes:
            closing = running.elapsed
            if kind >= 0:
                tallies[target][GRID.bucket_start(closing)] = PALETTE[kind]
            if late is not None and late[0] < closing:
                epoch = GRID.bucket_start(late[0])
                tallies[target][epoch] = PALETTE[late[1]]
                running.mark(epoch)
            now += timedelta(hours=1)
            running.advance(tallies, now)
            got = running.result(now)
            reference = compute_month(POLICY, SERVICE, MONTH, tallies, (), now=now)
            _same_outages(got, reference)
