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
    ),
    min_size=1,
    max_size=25,
)


def _same(a: Any, b: Any) -> None:
    assert a.to_json() == b.to_json()
    assert tuple(a.states) == tuple(b.states)
    assert dict(a.excluded_kinds) == dict(b.excluded_kinds)


class TestRunningMonthEqualsComputeMonth:
    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        scenario=st.one_of(engine_scenarios(), unproven_scenarios()),
        steps=events,
        gap=st.booleans(),
        nested=st.booleans(),
        data=st.data(),
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

        acc = Accounting(inputs(), lambda seconds, month, p: live)
        now = grid.start + timedelta(minutes=1)

        def check() -> None:
            month = month_containing(now, policy.timezone)
            for shown in {month, scenario["month"]}:
                if shown > month:
                    continue
                reference = month_result(acc.inputs, policy, shown, live, now)
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
                            live[name][start] = tally
                now = later
            elif step[0] == "late":
                name = names[step[1] % len(names)]
                start = grid.bucket_floor(now.timestamp()) - step[2] * grid.bucket_seconds
                live[name][start] = _LATE[step[3]]
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
            else:
                acc = Accounting(inputs(), lambda seconds, month, p: live)
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
