"""Issue 20 (ot25): a running month finds its outages incrementally (a run of unavailable
buckets found before, unchanged and holding no bucket judged again, is reused; runs of equal
evidence are summed once). Property: after any sequence of bucket closes, late results and
exclusions added or removed, the running month's outages equal ``compute_month``'s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import compute_month
from monitor.sla.policy import (
    ExclusionKind,
    ExclusionWindow,
    ServiceDef,
    SlaPolicy,
    Tally,
)
from monitor.sla.running import RunningMonth
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
