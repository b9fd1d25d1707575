"""fs33 (issue 20): ``RunningMonth._judge`` writes only the code of a bucket that is not
unavailable before or after, holds no error reason, is not excused and is not excluded; every
other bucket takes the whole walk (evidence, outages, error reasons, canary runs, the judged
verdict under a window). A bucket judged again from other tallies, whatever it was and
whatever it becomes, leaves the month equal to one judged afresh from the final tallies and
to ``compute_month``: a shortcut taken by a bucket that needed the walk (an unavailable one
turning available, keeping its evidence and its outage) fails here."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sla.calendar import month_grid
from monitor.sla.month import _gap_buckets, compute_month, kept_gap_buckets
from monitor.sla.policy import Tally
from monitor.sla.running import RunningMonth, gap_set
from tests.strategies import ENGINE_CANARIES, engine_scenarios

_CELLS: tuple[Tally | None, ...] = (
    None,
    Tally(ok=3),
    Tally(ok=1, failed=1, reasons={"timeout": 1}),
    Tally(ok=0, failed=3, reasons={"late": 3}),
    Tally(ok=0, errors=2, error_reasons={"secret_unavailable": 2}),
    Tally(ok=0, failed=2, reasons={"timeout": 2}, excused=2),
    Tally(ok=1, failed=2, reasons={"timeout": 2}, excused=1, errors=1, error_reasons={"x": 1}),
)
"""Cells a bucket is judged again from: available, unavailable (or unknown, by the rule), the
monitor's own errors, canary-excused, nothing at all."""


def _at(scenario: dict[str, Any], index: int) -> datetime:
    grid = scenario["grid"]
    return datetime.fromtimestamp(grid.start_epoch + index * grid.bucket_seconds, tz=UTC)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=engine_scenarios(), data=st.data())
def test_buckets_judged_again_equal_the_month_judged_afresh(
    scenario: dict[str, Any], data: Any
) -> None:
    policy, service, month = scenario["policy"], scenario["service"], scenario["month"]
    grid = scenario["grid"]
    canaries = ENGINE_CANARIES if data.draw(st.booleans(), label="canaries") else ()
    windows = scenario["exclusions"]
    tallies = {name: dict(column) for name, column in scenario["tallies"].items()}
    upto = data.draw(st.integers(1, grid.count), label="now")
    now = _at(scenario, upto)
    running = RunningMonth(policy, service, month, windows, canaries=canaries)
    running.advance(tallies, now)
    running.result(now)  # the outages found: a bucket judged again must move them
    # Rounds of buckets judged again (each from new tallies, or none), one advance a round:
    # several buckets at once, in any order, some twice.
    rounds = data.draw(
        st.lists(
            st.lists(
                st.tuples(
                    st.integers(0, upto - 1),
                    st.sampled_from(service.all_targets),
                    st.integers(0, len(_CELLS) - 1),
                ),
                min_size=1,
                max_size=12,
            ),
            min_size=1,
            max_size=3,
        ),
        label="rounds",
    )
    for changes in rounds:
        for index, name, cell in changes:
            epoch = grid.start_epoch + index * grid.bucket_seconds
            if _CELLS[cell] is None:
                tallies[name].pop(epoch, None)
            else:
                # A new object each time: equal tallies read back from the store are one
                # object only within one read (the judge keys its verdicts by identity).
                tallies[name][epoch] = dataclasses.replace(_CELLS[cell])
            running.mark(epoch)
        running.advance(tallies, now)
        running.result(now)

    fresh = RunningMonth(policy, service, month, windows, canaries=canaries)
    fresh.advance(tallies, now)
    got, want = running.result(now), fresh.result(now)
    assert got.to_json() == want.to_json()
    assert tuple(got.states) == tuple(want.states)
    assert dict(got.excluded_kinds) == dict(want.excluded_kinds)
    # The evidence, error reasons and excused buckets kept, not only the figures (the first
    # tallied bucket only ever moves down, by design: a tally removed does not raise it).
    kept, judged_afresh = running.judged_state(upto), fresh.judged_state(upto)
    assert dataclasses.replace(kept, first_tallied=None) == dataclasses.replace(
        judged_afresh, first_tallied=None
    )
    before = grid.start_epoch + upto * grid.bucket_seconds
    so_far = {n: {e: t for e, t in col.items() if e < before} for n, col in tallies.items()}
    reference = compute_month(policy, service, month, so_far, windows, canaries=canaries, now=now)
    assert tuple(got.states) == reference.states
    assert got.to_json() == reference.to_json()


_SPANS = st.lists(st.tuples(st.integers(-7_200, 3_000_000), st.integers(1, 40_000)), max_size=4)
"""Gaps as (seconds from the month's start, seconds long)."""


@settings(max_examples=100, deadline=None)
@given(scenario=engine_scenarios(), spans=st.lists(_SPANS, min_size=1, max_size=3), data=st.data())
def test_gap_set_equals_the_walk(
    scenario: dict[str, Any], spans: list[list[tuple[int, int]]], data: Any
) -> None:
    """fs33 (issue 20): the gap buckets a month is built with, kept per grid for a tuple of
    gaps, are the buckets the walk finds for that grid and those gaps, whichever tuples and
    grids were asked before (a memo keyed by the grid alone, or by the gaps alone, fails)."""
    month, zone = scenario["month"], scenario["policy"].timezone
    grids = [scenario["grid"], month_grid(month.next(), zone, 3600), month_grid(month, "UTC", 300)]
    first = scenario["grid"].start_epoch
    tuples = [
        tuple(
            (datetime.fromtimestamp(first + a, UTC), datetime.fromtimestamp(first + a + n, UTC))
            for a, n in gaps
        )
        for gaps in spans
    ]
    asked = data.draw(
        st.lists(st.tuples(st.integers(0, len(tuples) - 1), st.integers(0, 2)), max_size=12),
        label="asked",
    )
    every = [(which, grid) for which in range(len(tuples)) for grid in range(len(grids))]
    for which, grid in [*asked, *every]:
        gaps = tuples[which]
        want = frozenset(_gap_buckets(grids[grid], gaps))
        assert gap_set(grids[grid], gaps) == want
        assert gap_set(grids[grid], list(gaps)) == want
        # The snapshot digest's sorted list is the same memo's (one walk for both).
        assert kept_gap_buckets(grids[grid], gaps)[1] == sorted(want)
