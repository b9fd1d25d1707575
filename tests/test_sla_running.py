"""The daemon's running month (monitor.sla.running via accounting.Accounting) equals the
reference, compute_month through accounting.month_result, after any sequence of events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from monitor.accounting import Accounting, AccountingInputs, month_result, settled_month
from monitor.runtime.snapshots import settled_of
from monitor.sla.calendar import Month, month_containing, month_grid
from monitor.sla.policy import (
    ExclusionKind,
    ExclusionWindow,
    ServiceDef,
    ServiceRule,
    ServiceRuleKind,
    Tally,
)
from monitor.sla.running import CodedStates
from monitor.sla.running_codec import decode, encode, inputs_digest
from monitor.sla.settled import money_of_result
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
        # Issue 20: the running months persisted (up to the buckets that left memory), and
        # a tally written by someone else (``slawatch import`` while the daemon is stopped)
        # into any bucket of the month, followed by the restart: it spoils the month's
        # snapshot, which the restart must not start from.
        st.tuples(st.just("snapshot")),
        st.tuples(st.just("import"), st.integers(0, 2), st.integers(0, 400), st.integers(0, 5)),
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

    @_SETTINGS
    @given(
        scenario=_SCENARIOS,
        before=events,
        hours=st.integers(24, 500),
        keep=st.integers(0, 30),
        between=events,
        restart=st.one_of(
            st.just(("restart",)),
            st.just(("rebuild",)),
            st.tuples(st.just("import"), st.integers(0, 2), st.integers(0, 400), st.integers(0, 5)),
        ),
        after=events,
        gap=st.booleans(),
        nested=st.booleans(),
        data=st.data(),
    )
    def test_restart_through_the_snapshot(
        self,
        scenario: dict[str, Any],
        before: list[tuple[Any, ...]],
        hours: int,
        keep: int,
        between: list[tuple[Any, ...]],
        restart: tuple[Any, ...],
        after: list[tuple[Any, ...]],
        gap: bool,
        nested: bool,
        data: Any,
    ) -> None:
        """Issue 20: the months saved as judged state, any events (late results, exclusions,
        more eviction), then a restart (or a reload rebuilding the SLA) that starts from the
        saved state unless an import into the month spoiled it: still equal to
        compute_month over every tally written."""
        steps = [*before, ("advance", hours), ("evict", keep), ("snapshot",), *between]
        _run(scenario, [*steps, restart, *after], gap, nested, data)

    @_SETTINGS
    @given(
        scenario=_SCENARIOS,
        before=events,
        hours=st.integers(745, 1000),
        keep=st.integers(0, 30),
        between=events,
        restart=st.sampled_from([("restart",), ("rebuild",)]),
        after=events,
        gap=st.booleans(),
        nested=st.booleans(),
        data=st.data(),
    )
    def test_restart_after_the_month_is_over(
        self,
        scenario: dict[str, Any],
        before: list[tuple[Any, ...]],
        hours: int,
        keep: int,
        between: list[tuple[Any, ...]],
        restart: tuple[Any, ...],
        after: list[tuple[Any, ...]],
        gap: bool,
        nested: bool,
        data: Any,
    ) -> None:
        """sm32 (issue 20): the month over and saved whole, any events (late results,
        exclusions added and removed over it, reloads), then a restart (or a rebuild) that
        holds it by the counts its snapshot carries: its money, read first, and its month,
        built from the snapshot when asked, still equal compute_month over every tally."""
        steps = [*before, ("advance", hours), ("evict", keep), ("snapshot",), *between]
        _run(scenario, [*steps, restart, *after], gap, nested, data)


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
    # Issue 20: the store's month snapshots (month -> what the daemon saved) and whether a
    # write into the month since spoiled its guard (monitor.store.snapshots).
    snapshots: dict[Month, dict[str, Any]] = {}

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
        prepared = []
        for shown in (month.previous(), month):
            if shown < scenario["month"]:
                continue
            # Started from the month's snapshot when unspoiled and judged under the same
            # inputs; then only the tallies after it are read from the store.
            saved = snapshots.get(shown)
            judged = None
            if saved is not None and not saved["spoiled"]:
                digest = inputs_digest(
                    policy, service, shown, scenario["canaries"], gaps, saved["judged"]
                )
                if digest == saved["digest"]:
                    judged = decode(saved["state"])
                    event("a month started from its snapshot")
            if judged is not None and saved is not None and shown < month:
                # sm32: a previous month whose whole snapshot carries its counts is held by
                # them (as the daemon does), built from the snapshot when first needed.
                state = saved["state"]
                settled = settled_month(
                    inputs(),
                    policy,
                    shown,
                    saved["judged"],
                    saved["settled"],
                    lambda state=state: decode(state),
                    evicted[0],
                )
                if settled is not None:
                    event("a previous month held by its counts")
                    prepared.append(settled)
                    continue
            after = saved["through"] if judged is not None and saved is not None else 0
            read = {
                name: {s: t for s, t in column.items() if s >= after}
                for name, column in tallies.items()
            }
            prepared.append(acc.prepare(inputs(), policy, shown, read, now, judged))
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
            if shown < month:
                # sm32: its money first (a settled month's from its counts, not built).
                assert acc.previous_money(policy, now, shown) == money_of_result(reference)
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
        elif step[0] == "snapshot":
            # As the daemon saves them: up to the buckets that left memory (no result of
            # the daemon's own counts into them any more).
            for running in acc.held_months(policy, now):
                grid_of = running.grid
                size = grid_of.bucket_seconds
                through = min(running.elapsed, max(0, (evicted[0] - grid_of.start_epoch) // size))
                if through <= 0:
                    continue
                snapshots[running.month] = {
                    "state": encode(running.judged_state(through)),
                    "digest": inputs_digest(
                        policy, running.service, running.month, running.canaries, gaps, through
                    ),
                    "judged": through,
                    "through": grid_of.start_epoch + through * size,
                    "spoiled": False,
                    "settled": settled_of(running, through),
                }
        elif step[0] == "import":
            start = grid.bucket_floor(now.timestamp()) - step[2] * grid.bucket_seconds
            if start < grid.start_epoch:
                continue
            name = service.all_targets[step[1] % len(service.all_targets)]
            written[name][start] = _LATE[step[3]]
            if start >= evicted[0]:
                live[name][start] = _LATE[step[3]]  # the restart loads the open window
            for shown, saved in snapshots.items():
                bounds = month_grid(shown, policy.timezone, policy.bucket_seconds)
                if bounds.start_epoch <= start < bounds.end_epoch:
                    saved["spoiled"] = True  # a foreign write anywhere in the month
            acc = accounting()
            if evicted[0]:
                restored(acc)
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
