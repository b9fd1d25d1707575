"""The daemon's running month (monitor.sla.running via accounting.Accounting) equals the
reference, compute_month through accounting.month_result, after any sequence of events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.accounting import Accounting, AccountingInputs, month_result
from monitor.sla.calendar import month_containing
from monitor.sla.policy import (
    ExclusionKind,
    ExclusionWindow,
    ServiceDef,
    ServiceRule,
    ServiceRuleKind,
    Tally,
)
from monitor.sla.running import CodedStates
from tests.strategies import engine_scenarios, unproven_scenarios

_LATE = (
    Tally(ok=0, failed=3, reasons={"late": 3}),
    Tally(ok=4),
    Tally(ok=1, failed=1),
    # The monitor's own errors and canary-excused failures (judged per bucket: monitor-error
    # buckets, customer_network only when every failure is excused).
    Tally(ok=0, errors=2, error_reasons={"secret_unavailable": 2}),
    Tally(ok=0, failed=2, reasons={"timeout": 2}, excused=2),
    Tally(ok=1, failed=2, reasons={"timeout": 2}, excused=1, errors=1, error_reasons={"x": 1}),
)

events = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(1, 200)),
        st.tuples(
            st.just("late"), st.integers(0, 2), st.integers(1, 50), st.integers(0, len(_LATE) - 1)
        ),
        st.tuples(st.just("exclude"), st.integers(-5, 700), st.integers(1, 30)),
        st.tuples(st.just("unexclude")),
        st.tuples(st.just("reload")),
        st.tuples(st.just("restart")),
        # Issue 20: closed buckets leave memory (k buckets before the running one), and the
        # months are rebuilt from the store's tallies with memory's laid over them (a reload
        # that changed the SLA, or a restart, after eviction).
        st.tuples(st.just("evict"), st.integers(0, 60)),
        st.tuples(st.just("rebuild")),
    ),
    min_size=1,
    max_size=25,
)


def _same(a: Any, b: Any) -> None:
    assert a.to_json() == b.to_json()
    assert tuple(a.states) == tuple(b.states)
    assert dict(a.excluded_kinds) == dict(b.excluded_kinds)


_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_SCENARIOS = st.one_of(engine_scenarios(), unproven_scenarios())


class TestRunningMonthEqualsComputeMonth:
    @_SETTINGS
    @given(
        scenario=_SCENARIOS, steps=events, gap=st.booleans(), nested=st.booleans(), data=st.data()
    )
    def test_any_sequence_of_events(
        self,
        scenario: dict[str, Any],
        steps: list[tuple[Any, ...]],
        gap: bool,
        nested: bool,
        data: Any,
    ) -> None:
        """Results arriving, late results, exclusions added and removed, reloads, restarts
        and the month's rollover leave Accounting's month equal to compute_month's."""
        _run(scenario, steps, gap, nested, data)

    @_SETTINGS
    @given(
        scenario=_SCENARIOS,
        before=events,
        hours=st.integers(24, 500),
        keep=st.integers(0, 30),
        how=st.sampled_from(["restart", "rebuild"]),
        after=events,
        gap=st.booleans(),
        nested=st.booleans(),
        data=st.data(),
    )
    def test_eviction_then_rebuild_from_the_store(
        self,
        scenario: dict[str, Any],
        before: list[tuple[Any, ...]],
        hours: int,
        keep: int,
        how: str,
        after: list[tuple[Any, ...]],
        gap: bool,
        nested: bool,
        data: Any,
    ) -> None:
        """Issue 20: closed buckets' tallies leave memory, the months are rebuilt from the
        store's tallies with memory's laid over them (restart, or a reload that changed the
        SLA), and any events after: still equal to compute_month over every tally written."""
        steps = [*before, ("advance", hours), ("evict", keep), (how,), *after]
        _run(scenario, steps, gap, nested, data)


def _run(
    scenario: dict[str, Any],
    steps: list[tuple[Any, ...]],
    gap: bool,
    nested: bool,
    data: Any,
) -> None:
    policy, service, grid = scenario["policy"], scenario["service"], scenario["grid"]
    if nested:
        # The first target alone, the others as a nested member service (any of them
        # down): every leaf is judged, member by member.
        first, *rest = service.targets
        service = ServiceDef(
            service.name,
            (first,),
            service.rule,
            services=(ServiceDef("inner", tuple(rest), ServiceRule(ServiceRuleKind.ALL)),),
        )
    truth = scenario["tallies"]
    names = [*service.all_targets, *scenario["canaries"]]
    live: dict[str, dict[int, Tally]] = {name: {} for name in truth}
    gaps = (
        ((grid.start + timedelta(hours=30), grid.start + timedelta(hours=33, minutes=20)),)
        if gap
        else ()
    )
    api: list[ExclusionWindow] = []

    def inputs() -> AccountingInputs:
        return AccountingInputs(
            policies=(policy,),
            services={service.name: service},
            windows=(*scenario["exclusions"], *api),
            recurring=(),
            canaries=scenario["canaries"],
            gaps=gaps,
        )

    # What the store holds (every tally ever counted, flushed at once here), and the
    # bucket start before which memory (``live``) no longer holds them.
    written: dict[str, dict[int, Tally]] = {name: {} for name in truth}
    evicted = [0]

    def accounting() -> Accounting:
        return Accounting(inputs(), lambda seconds, month, p: live, floor=lambda s: evicted[0])

    def restored(acc: Accounting) -> None:
        # The daemon's rebuild: the store's tallies before the floor, memory's over them.
        month = month_containing(now, policy.timezone)
        tallies = {
            name: {
                **{s: t for s, t in written[name].items() if s < evicted[0]},
                **live[name],
            }
            for name in truth
        }
        prepared = [
            acc.prepare(inputs(), policy, shown, tallies, now)
            for shown in (month.previous(), month)
            if shown >= scenario["month"]
        ]
        # A late result while the store was being read: told to the months held then, not
        # to those prepared; install re-judges what memory holds.
        back = data.draw(st.integers(0, 3), label="late while reading")
        start = grid.bucket_floor(now.timestamp()) - back * grid.bucket_seconds
        if back and start >= evicted[0]:
            name = names[back % len(names)]
            live[name][start] = written[name][start] = _LATE[back]
            acc.tally_changed(grid.bucket_seconds, name, start)
        acc.install(inputs(), prepared)

    acc = accounting()
    now = grid.start + timedelta(minutes=1)

    def check() -> None:
        month = month_containing(now, policy.timezone)
        for shown in {month, scenario["month"]}:
            if shown > month:
                continue
            if shown < month.previous() and not acc.built(policy, shown) and evicted[0]:
                continue  # the daemon reads months before the previous from the store
            reference = month_result(acc.inputs, policy, shown, written, now)
            _same(acc.month_result(policy, now, shown), reference)
            _same(acc.month_result(policy, now, shown, stamp=False), reference)

    check()
    for step in steps:
        if step[0] == "advance":
            later = now + timedelta(hours=step[1])
            floor = grid.bucket_floor(now.timestamp())
            for name, column in truth.items():
                for start, tally in column.items():
                    if floor <= start < later.timestamp():
                        live[name][start] = written[name][start] = tally
            now = later
        elif step[0] == "late":
            name = names[step[1] % len(names)]
            start = grid.bucket_floor(now.timestamp()) - step[2] * grid.bucket_seconds
            if start < evicted[0]:
                continue  # left memory: the daemon does not count it (see LiveState)
            live[name][start] = written[name][start] = _LATE[step[3]]
            acc.tally_changed(grid.bucket_seconds, name, start)
        elif step[0] == "exclude":
            begin = grid.start + timedelta(hours=step[1])
            api.append(
                ExclusionWindow(
                    id=f"api{len(api)}",
                    start=begin,
                    end=begin + timedelta(hours=step[2]),
                    kind=ExclusionKind.SCHEDULED_MAINTENANCE,
                )
            )
            acc.replace_inputs(inputs())
        elif step[0] == "unexclude":
            if api:
                api.pop(data.draw(st.integers(0, len(api) - 1)))
            acc.replace_inputs(inputs())
        elif step[0] == "reload":
            acc.replace_inputs(inputs())
        elif step[0] == "evict":
            # After check(): every running month has judged every closed bucket.
            cutoff = grid.bucket_floor(now.timestamp()) - step[1] * grid.bucket_seconds
            evicted[0] = max(evicted[0], cutoff)
            for column in live.values():
                for start in [s for s in column if s < evicted[0]]:
                    del column[start]
        elif step[0] == "rebuild":
            if evicted[0]:
                restored(acc)
            else:
                acc.replace_inputs(inputs())
        else:
            acc = accounting()
            if evicted[0]:
                restored(acc)
        check()


class TestCodedStates:
    def test_sequence_behaviour(self) -> None:
        """Indexing, slicing (a tuple), iteration, length and equality with a tuple."""
        from monitor.sla.policy import BucketState as S

        states = (S.AVAILABLE, S.UNAVAILABLE, S.PENDING)
        coded = CodedStates(bytes(list(S).index(s) for s in states))
        assert len(coded) == 3
        assert coded[1] is S.UNAVAILABLE
        assert coded[-1] is S.PENDING
        assert coded[:2] == states[:2]
        assert tuple(coded) == states
        assert coded == states
        assert coded != states[:2]
