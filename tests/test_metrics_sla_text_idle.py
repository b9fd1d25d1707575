"""mt33 (issue 20): the shortcuts of the first ``/metrics`` text's per-SLA lines are what the
long way writes: the idle running bucket's state, ``slawatch_bucket_state``'s lines from
their template, and the previous month's lines from the last SLA's."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.metrics.sla_text import (
    _BUCKET_TEXTS,
    _SHOWN_STATES,
    _previous_lines,
    _written_previous_lines,
    idle_bucket_state,
    provisional_bucket_state,
)
from monitor.metrics.text import label_value
from monitor.sla.calendar import Month
from monitor.sla.month import CompactOutages, Outage
from monitor.sla.policy import BucketState, ServiceDef, ServiceRule, ServiceRuleKind
from monitor.sla.settled import MonthMoney
from tests.strategies import service_rules

_NAMES = ("a", "b", "c", "d")


@st.composite
def services(draw: st.DrawFn, depth: int = 2) -> ServiceDef:
    """A service over some of four targets (a target may be named twice, nested or not), its
    nested services drawn the same way, each under any rule (a quorum above its members
    included: never down, so available with no evidence)."""
    targets = tuple(draw(st.lists(st.sampled_from(_NAMES), max_size=3)))
    children = tuple(draw(st.lists(services(depth - 1), max_size=2))) if depth else ()
    rule = draw(
        st.one_of(
            service_rules,
            st.builds(
                ServiceRule, kind=st.just(ServiceRuleKind.QUORUM), min_down=st.integers(1, 6)
            ),
        )
    )
    return ServiceDef(draw(st.sampled_from(["s", "t"])), targets, rule, children)


def _daemon(canaries: bool) -> Any:
    """What ``provisional_bucket_state`` reads of a daemon: no window, no tally."""
    return SimpleNamespace(
        accounting=SimpleNamespace(
            windows_for=lambda policy, month: (), inputs=SimpleNamespace(canaries=canaries)
        ),
        state=SimpleNamespace(tallies=lambda size: {}),
    )


@settings(max_examples=300, deadline=None)
@given(services(), st.booleans())
def test_the_idle_bucket_state_is_the_provisional_state_with_no_tally(
    service: ServiceDef, canaries: bool
) -> None:
    """An SLA's running bucket with no tally and no window: ``idle_bucket_state`` is what
    ``provisional_bucket_state`` judges, tallies read or given as absent, with or without
    canaries, for any nesting and rule (the shortcut ``bucket_lines`` takes)."""
    policy = SimpleNamespace(bucket_seconds=300, timezone="UTC", locations=None, bucket_rule=None)
    month = Month(2026, 12)
    daemon = _daemon(canaries)
    now = 1_796_000_000.0
    expected = idle_bucket_state(service)
    cells = [None] * len(service.all_targets)
    assert provisional_bucket_state(daemon, policy, service, now, month=month) is expected  # type: ignore[arg-type]
    assert (
        provisional_bucket_state(daemon, policy, service, now, month=month, cells=cells)  # type: ignore[arg-type]
        is expected
    )


@given(st.text(max_size=8), st.text(max_size=8))
def test_bucket_state_lines_from_the_template_are_those_written(service: str, sla: str) -> None:
    """``slawatch_bucket_state`` from its template, for every state and any labels (a NUL,
    the template's mark, included): one line per shown state, 1.0 on the state."""
    labels = f'service="{label_value(service)}",sla="{label_value(sla)}"'
    for state in BucketState:
        assert labels.join(_BUCKET_TEXTS[state]) == "".join(
            f'slawatch_bucket_state{{{labels},state="{s.value}"}} '
            f"{'1.0' if s is state else '0.0'}\n"
            for s in _SHOWN_STATES
        )


_MONEY = st.builds(
    MonthMoney,
    currency=st.sampled_from(["EUR", 'x"\\', "a\x00b"]),
    credit_amount=st.sampled_from([Decimal("0"), Decimal("0.00"), Decimal("12.5")]),
    claim_deadline=st.sampled_from(
        [
            datetime(2027, 1, 31, tzinfo=UTC),
            datetime(2027, 1, 31, 1, tzinfo=timezone(timedelta(hours=1))),  # the same instant
            datetime(2027, 2, 28, tzinfo=UTC),
        ]
    ),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["la", "\x00", 'q"']), _MONEY), min_size=1, max_size=10))
def test_previous_lines_from_the_last_written_are_the_moneys_own(
    steps: list[tuple[str, MonthMoney]],
) -> None:
    """The previous month's lines, taken from the last SLA's when its money is equal, are
    those this SLA's money writes, for any sequence of equal and differing money (an equal
    amount written otherwise, a deadline in another zone) and any names and currency."""
    for name, money in steps:
        labels = f'service="s",sla="{label_value(name)}"'
        assert _previous_lines(labels, money) == _written_previous_lines(labels, money)


@given(
    st.integers(0, 2_000_000_000),
    st.sampled_from([60, 300, 3600]),
    st.lists(st.tuples(st.integers(0, 50), st.integers(1, 9), st.integers(0, 1)), max_size=5),
)
def test_the_latest_outage_reached_without_building_it(
    start: int, size: int, runs: list[tuple[int, int, int]]
) -> None:
    """``CompactOutages.last_reach`` is the latest outage's end (as ``set_result`` reads it,
    in epoch seconds) and its locations, None with no outage."""
    figures = tuple(
        Outage(
            start=datetime(2026, 12, 1, tzinfo=UTC),
            end=datetime(2026, 12, 1, tzinfo=UTC),
            buckets=1,
            errors={},
            failed_targets={},
            locations=where,
        )
        for where in [("fra",), ("ams", 'q"')]
    )
    outages = CompactOutages(
        start,
        size,
        array("q", [first for first, _, _ in runs]),
        array("q", [length for _, length, _ in runs]),
        array("q", [kind for _, _, kind in runs]),
        figures,
    )
    reach = outages.last_reach()
    if not runs:
        assert reach is None
        return
    assert reach is not None
    assert (float(reach[0]), reach[1]) == (outages[-1].end.timestamp(), outages[-1].locations)
