"""compute_month: a month's figures from tallies, exclusions, canaries, gaps and ``now``."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import _MONEY, MonthResult, _assembled, _money, _shared_money, compute_month
from monitor.sla.policy import (
    BucketRule,
    BucketState,
    CreditPolicy,
    CreditTier,
    ExclusionKind,
    ExclusionWindow,
    ServiceDef,
    ServiceRule,
    ServiceRuleKind,
    SlaPolicy,
    Tally,
    UnknownPolicy,
)
from tests.strategies import STANDARD_CREDIT, engine_scenarios

NOV = Month(2026, 11)
GRID = month_grid(NOV, "UTC", 300)
OK = Tally(ok=10)
SVC = ServiceDef("voice", ("sip", "ivr"))


def fail(reason: str = "timeout", failed: int = 1, ok: int = 9) -> Tally:
    return Tally(ok=ok, failed=failed, reasons=MappingProxyType({reason: failed}))


def policy(**overrides: Any) -> SlaPolicy:
    fields: dict[str, Any] = {
        "name": "ujet-voice",
        "service": "voice",
        "objective_percent": Decimal("99.999"),
        "credit": STANDARD_CREDIT,
    }
    fields.update(overrides)
    return SlaPolicy(**fields)


def all_ok(*names: str, grid: Any = GRID) -> dict[str, dict[int, Tally]]:
    return {name: dict.fromkeys(grid.starts(), OK) for name in names}


def at(index: int) -> int:
    return GRID.bucket_start(index)


def run(
    tallies: Mapping[str, Mapping[int, Tally]],
    exclusions: tuple[ExclusionWindow, ...] = (),
    **kwargs: Any,
) -> MonthResult:
    sla = kwargs.pop("sla", policy())
    service = kwargs.pop("service", SVC)
    return compute_month(sla, service, NOV, tallies, exclusions, **kwargs)


class TestComputeMonth:
    def test_a_clean_month(self) -> None:
        """Every probe up: 100%, no credit, the full budget left."""
        result = run(all_ok("sip", "ivr"))
        assert result.buckets_total == result.buckets_available == 8640
        assert result.uptime_percent == 100
        assert result.to_json()["uptime_ratio_exact"] == "8640/8640"
        assert result.credit_amount == Decimal("0.00")
        assert result.error_budget_buckets == 0
        assert not result.breached
        assert result.buckets_to_next_tier == 1

    def test_one_bad_bucket_breaks_five_nines(self) -> None:
        """One unavailable bucket of 8640: 8639/8640, 10% credit, budget overdrawn by one."""
        tallies = all_ok("sip", "ivr")
        tallies["ivr"][at(100)] = fail("status_code_503", failed=2, ok=8)
        result = run(tallies)
        assert result.uptime_percent == 100 * Fraction(8639, 8640)
        assert result.to_json()["uptime_percent"] == 99.988426
        assert result.to_json()["uptime_ratio_exact"] == "8639/8640"
        assert result.credit_percent == 10
        assert result.credit_amount == Decimal("1000.00")
        assert (result.error_budget_used, result.error_budget_remaining) == (1, -1)
        assert result.breached
        assert result.buckets_to_next_tier == 8
        assert len(result.outages) == 1
        outage = result.outages[0]
        assert outage.start == datetime.fromtimestamp(at(100), UTC)
        assert outage.end - outage.start == timedelta(minutes=5)
        assert dict(outage.errors) == {"status_code_503": 2}
        assert dict(outage.failed_targets) == {"ivr": 2}

    def test_outages_merge_and_break(self) -> None:
        """Consecutive unavailable buckets merge; an unknown or excluded bucket breaks them."""
        tallies = all_ok("sip", "ivr")
        for index in (10, 11, 13, 15):
            tallies["sip"][at(index)] = fail("timeout")
        tallies["ivr"][at(11)] = fail("connection_refused")
        del tallies["sip"][at(12)]  # unknown
        tallies["sip"][at(12 + 2)] = fail()  # excluded below
        window = ExclusionWindow(
            "mw",
            datetime.fromtimestamp(at(14), UTC),
            datetime.fromtimestamp(at(15), UTC),
            ExclusionKind.SCHEDULED_MAINTENANCE,
        )
        result = run(tallies, (window,))
        assert [(o.buckets, o.start) for o in result.outages] == [
            (2, datetime.fromtimestamp(at(10), UTC)),
            (1, datetime.fromtimestamp(at(13), UTC)),
            (1, datetime.fromtimestamp(at(15), UTC)),
        ]
        assert dict(result.outages[0].errors) == {"timeout": 2, "connection_refused": 1}
        assert dict(result.outages[0].failed_targets) == {"sip": 2, "ivr": 1}
        assert result.states[12] is BucketState.UNKNOWN
        assert result.states[14] is BucketState.EXCLUDED
        assert dict(result.excluded_by_kind) == {ExclusionKind.SCHEDULED_MAINTENANCE: 1}
        assert [w.id for w in result.exclusions_applied] == ["mw"]

    @pytest.mark.parametrize(
        ("unknown_policy", "estimate"),
        [
            (UnknownPolicy.EXCLUDE, 100 * (1 - Fraction(1, 8638))),
            (UnknownPolicy.UNAVAILABLE, 100 * (1 - Fraction(3, 8640))),
            (UnknownPolicy.AVAILABLE, 100 * (1 - Fraction(1, 8640))),
        ],
    )
    def test_unknown_policies(self, unknown_policy: UnknownPolicy, estimate: Fraction) -> None:
        """Two unknown buckets and one unavailable: the policy moves only the estimate; the
        claimable uptime (and its budget) counts the proven unavailable bucket alone."""
        tallies = all_ok("sip", "ivr")
        del tallies["sip"][at(0)]
        tallies["ivr"][at(1)] = Tally()
        tallies["sip"][at(2)] = fail()
        result = run(tallies, sla=policy(unknown_policy=unknown_policy))
        assert result.buckets_unknown == 2
        assert result.uptime_percent_estimate == estimate
        assert result.uptime_percent == 100 * (1 - Fraction(1, 8640))
        assert result.uptime_percent_worst_case == 100 * (1 - Fraction(3, 8640))
        assert result.error_budget_used == 1

    def test_min_probes(self) -> None:
        """A bucket with fewer probes than min_probes is unknown, even with a failure in it."""
        tallies = all_ok("sip", "ivr")
        tallies["sip"][at(5)] = Tally(failed=1, reasons=MappingProxyType({"timeout": 1}))
        result = run(tallies, sla=policy(bucket_rule=BucketRule(min_probes=2)))
        assert result.states[5] is BucketState.UNKNOWN
        assert result.buckets_unavailable == 0

    def test_quorum_service(self) -> None:
        """Quorum 2 of 3: one target down is available, two down is unavailable."""
        service = ServiceDef("voice", ("a", "b", "c"), ServiceRule(ServiceRuleKind.QUORUM, 2))
        tallies = all_ok("a", "b", "c")
        tallies["a"][at(0)] = fail()
        tallies["a"][at(1)] = fail()
        tallies["b"][at(1)] = fail()
        result = run(tallies, service=service)
        assert result.states[:3] == (
            BucketState.AVAILABLE,
            BucketState.UNAVAILABLE,
            BucketState.AVAILABLE,
        )

    def test_canaries_exclude_only_buckets_whose_every_failure_is_excused(self) -> None:
        """Every failure excused by the canaries: our network, excluded; one failure not
        excused (the vendor failed while the canaries were fine): the bucket counts."""
        tallies = all_ok("sip", "ivr", "c1", "c2")
        tallies["sip"][at(20)] = Tally(
            failed=2, reasons=MappingProxyType({"timeout": 2}), excused=2
        )
        tallies["sip"][at(21)] = Tally(
            failed=10, reasons=MappingProxyType({"timeout": 10}), excused=2
        )
        result = run(tallies, canaries=("c1", "c2"))
        assert result.states[20] is BucketState.EXCLUDED
        assert result.states[21] is BucketState.UNAVAILABLE
        assert dict(result.excluded_by_kind) == {ExclusionKind.CUSTOMER_NETWORK: 1}
        assert result.exclusions_applied[0].source == "canary"

    def test_gaps_are_unknown_unless_proven_unavailable(self) -> None:
        """A bucket overlapping a monitor gap is unknown, unless its probes show a failure."""
        tallies = all_ok("sip", "ivr")
        tallies["sip"][at(31)] = fail()
        gap = (
            datetime.fromtimestamp(at(30) + 60, UTC),
            datetime.fromtimestamp(at(32) + 1, UTC),
        )
        result = run(tallies, gaps=(gap,))
        assert result.states[29:34] == (
            BucketState.AVAILABLE,
            BucketState.UNKNOWN,
            BucketState.UNAVAILABLE,
            BucketState.UNKNOWN,
            BucketState.AVAILABLE,
        )

    def test_running_month_pending_and_month_to_date(self) -> None:
        """Mid-month: later buckets pending (projected available), month to date elapsed only."""
        tallies = all_ok("sip", "ivr")
        tallies["sip"][at(0)] = fail()
        now = datetime.fromtimestamp(at(100) + 30, UTC)
        result = run(tallies, now=now)
        assert result.buckets_pending == 8640 - 100
        assert result.states[99] is BucketState.AVAILABLE
        assert result.states[100] is BucketState.PENDING
        assert result.month_to_date_uptime_percent == 100 * Fraction(99, 100)
        assert result.uptime_percent == 100 * Fraction(8639, 8640)
        assert not result.complete
        assert result.to_json()["as_of"] == now.isoformat().replace("+00:00", "Z")

    def test_future_exclusions_are_known_in_advance(self) -> None:
        """A maintenance window later in the month is excluded already, not pending."""
        window = ExclusionWindow(
            "mw",
            datetime(2026, 11, 20, 2, tzinfo=UTC),
            datetime(2026, 11, 20, 3, tzinfo=UTC),
            ExclusionKind.SCHEDULED_MAINTENANCE,
        )
        result = run(all_ok("sip", "ivr"), (window,), now=datetime(2026, 11, 2, tzinfo=UTC))
        assert result.buckets_excluded == 12
        assert (result.buckets_available + result.buckets_pending + result.buckets_excluded) == 8640

    def test_dst_month_in_london(self) -> None:
        """A London March report has 8916 buckets and a BST claim deadline."""
        grid = month_grid(Month(2026, 3), "Europe/London", 300)
        result = compute_month(
            policy(timezone="Europe/London"),
            SVC,
            Month(2026, 3),
            all_ok("sip", "ivr", grid=grid),
            (),
        )
        assert result.buckets_total == result.buckets_available == 8916
        assert result.claim_deadline.isoformat() == "2026-05-01T00:00:00+01:00"

    def test_nothing_measurable(self) -> None:
        """A wholly excluded month has no uptime (null), no credit and no budget."""
        window = ExclusionWindow(
            "all",
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2026, 12, 1, tzinfo=UTC),
            ExclusionKind.FORCE_MAJEURE,
        )
        result = run(all_ok("sip", "ivr"), (window,))
        assert result.uptime_percent is None
        assert result.to_json()["uptime_percent"] is None
        assert result.to_json()["uptime_ratio_exact"] is None
        assert (result.credit_amount, result.error_budget_buckets) == (Decimal("0.00"), 0)
        assert result.buckets_to_next_tier is None
        assert not result.breached

    def test_before_the_month_starts(self) -> None:
        """With now before the month, every bucket is pending and month-to-date is null."""
        result = run({}, now=datetime(2026, 10, 15, tzinfo=UTC))
        assert result.buckets_pending == 8640
        assert result.month_to_date_uptime_percent is None
        assert result.uptime_percent == 100

    def test_inputs_are_checked(self) -> None:
        """Mismatched service, an impossible quorum and naive now are refused by name."""
        with pytest.raises(ValueError, match="expected service 'voice', got 'web'"):
            run({}, service=ServiceDef("web", ("w",)))
        impossible = ServiceDef("voice", ("a",), ServiceRule(ServiceRuleKind.QUORUM, 2))
        with pytest.raises(ValueError, match="quorum 2 exceeds its 1 members"):
            run({}, service=impossible)
        with pytest.raises(ValueError, match="now: expected a timezone-aware"):
            run({}, now=datetime(2026, 11, 5))


def _compute(scenario: dict[str, Any], **overrides: Any) -> MonthResult:
    args = {**scenario, **overrides}
    return compute_month(
        args["policy"],
        args["service"],
        args["month"],
        args["tallies"],
        args["exclusions"],
        canaries=args["canaries"],
        now=args.get("now"),
    )


def _with_failure(tallies: dict[str, dict[int, Tally]], target: str, start: int) -> dict[str, Any]:
    column = dict(tallies[target])
    old = column.get(start, Tally())
    reasons = dict(old.reasons)
    reasons["added"] = reasons.get("added", 0) + 1
    column[start] = Tally(ok=old.ok, failed=old.failed + 1, reasons=MappingProxyType(reasons))
    return {**tallies, target: column}


_ORDER = {BucketState.AVAILABLE: 0, BucketState.UNKNOWN: 1, BucketState.UNAVAILABLE: 2}


class TestMonthProperties:
    @given(engine_scenarios())
    def test_counts_add_up_and_uptime_is_bounded(self, scenario: dict[str, Any]) -> None:
        """States partition the month; uptimes lie in [0, 100]; worst case is never better."""
        result = _compute(scenario)
        assert result.buckets_total == scenario["grid"].count == len(result.states)
        assert (
            result.buckets_available
            + result.buckets_unavailable
            + result.buckets_excluded
            + result.buckets_unknown
            + result.buckets_pending
        ) == result.buckets_total
        for value in (result.uptime_percent, result.uptime_percent_worst_case):
            assert value is None or 0 <= value <= 100
        if result.uptime_percent_worst_case is not None and result.uptime_percent is not None:
            assert result.uptime_percent_worst_case <= result.uptime_percent
        assert (result.error_budget_remaining < 0) == result.breached

    @given(engine_scenarios())
    def test_unknown_never_counts_as_unavailable_in_the_claim(
        self, scenario: dict[str, Any]
    ) -> None:
        """The claimable uptime counts proven unavailable buckets only, over the month less
        exclusions; the estimate counts unknown as available only under policy available;
        the worst case counts every unknown bucket unavailable."""
        result = _compute(scenario)
        if result.uptime_percent is None:
            return
        eligible = result.buckets_total - result.buckets_excluded
        assert result.denominator == eligible
        assert result.uptime_percent == 100 * (1 - Fraction(result.buckets_unavailable, eligible))
        assert 0 <= result.uptime_percent <= 100
        available = result.buckets_available + result.buckets_pending
        unknown_policy = scenario["policy"].unknown_policy
        if unknown_policy is UnknownPolicy.UNAVAILABLE:
            assert result.uptime_percent_estimate == 100 * Fraction(available, eligible)
        elif unknown_policy is UnknownPolicy.EXCLUDE and eligible > result.buckets_unknown:
            measured = eligible - result.buckets_unknown
            assert result.uptime_percent_estimate == 100 * Fraction(available, measured)
        assert result.uptime_percent_worst_case == 100 * Fraction(available, eligible)

    @given(engine_scenarios(min_probes_one=True), st.data())
    def test_adding_a_failure_never_raises_uptime(
        self, scenario: dict[str, Any], data: st.DataObject
    ) -> None:
        """One more failed probe on a service target never improves any bucket or the uptime.

        (min_probes 1: with more, a failed probe can complete the minimum and make an unknown
        bucket known, which TestTargetVerdict states separately.)
        """
        before = _compute(scenario)
        target = data.draw(st.sampled_from(scenario["service"].targets))
        index = data.draw(st.integers(0, scenario["grid"].count - 1))
        tallies = _with_failure(scenario["tallies"], target, scenario["grid"].bucket_start(index))
        after = _compute(scenario, tallies=tallies)
        for old, new in zip(before.states, after.states, strict=True):
            if old in _ORDER and new in _ORDER:
                assert _ORDER[new] >= _ORDER[old]
            else:
                assert old == new
        if before.uptime_percent is not None and after.uptime_percent is not None:
            assert after.uptime_percent <= before.uptime_percent
        assert after.uptime_percent_worst_case is None or (
            after.uptime_percent_worst_case <= before.uptime_percent_worst_case  # type: ignore[operator]
        )

    @given(engine_scenarios(), st.integers(-3600, 40 * 86400), st.integers(1, 5 * 86400))
    def test_an_exclusion_never_makes_a_bucket_unavailable(
        self, scenario: dict[str, Any], offset: int, length: int
    ) -> None:
        """Adding an exclusion window only ever turns buckets into excluded ones."""
        before = _compute(scenario)
        start = scenario["grid"].start + timedelta(seconds=offset)
        extra = ExclusionWindow(
            "extra", start, start + timedelta(seconds=length), ExclusionKind.FORCE_MAJEURE
        )
        after = _compute(scenario, exclusions=[*scenario["exclusions"], extra])
        for old, new in zip(before.states, after.states, strict=True):
            assert new == old or new is BucketState.EXCLUDED

    @given(engine_scenarios(), st.integers(0, 31 * 24), st.integers(0, 31 * 24))
    def test_projected_credit_only_rises_as_the_month_goes_on(
        self, scenario: dict[str, Any], first: int, second: int
    ) -> None:
        """With fixed evidence, a later ``now`` never lowers the projected credit."""
        early, late = sorted((first, second))
        start = scenario["grid"].start
        a = _compute(scenario, now=start + timedelta(hours=early))
        b = _compute(scenario, now=start + timedelta(hours=late))
        assert b.credit_percent >= a.credit_percent
        if a.uptime_percent is not None and b.uptime_percent is not None:
            assert b.uptime_percent <= a.uptime_percent


class TestAssembledResult:
    """c22 (issue 20): assemble_month builds its MonthResult without the dataclass's __init__;
    the instance must be the one that __init__ would make."""

    @given(engine_scenarios())
    def test_same_as_the_dataclass_init(self, scenario: dict[str, Any]) -> None:
        """Equal, same hash input, same repr, same to_json, and every field the same object."""
        result = _compute(scenario)
        values = {f.name: getattr(result, f.name) for f in dataclasses.fields(MonthResult)}
        made = MonthResult(**values)
        fast = _assembled(**values)
        assert type(fast) is MonthResult
        assert fast == made
        assert made == fast
        assert repr(fast) == repr(made)
        assert fast.to_json() == made.to_json()
        assert not hasattr(fast, "__dict__")  # slots only, as the dataclass's own
        assert all(getattr(fast, f) == getattr(made, f) for f in values)
        assert all(getattr(fast, name) is value for name, value in values.items())
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.now = None  # type: ignore[misc]

    def test_every_field_is_the_value_given(self) -> None:
        """Each field holds exactly the object passed for it (distinct sentinels), as the
        dataclass's own __init__ leaves it: nothing dropped, swapped or computed."""
        values: dict[str, Any] = {f.name: object() for f in dataclasses.fields(MonthResult)}
        fast, made = _assembled(**values), MonthResult(**values)
        assert all(getattr(fast, name) is value for name, value in values.items())
        assert all(getattr(made, name) is value for name, value in values.items())
        assert fast == made

    def test_a_field_missing_or_unknown_is_refused(self) -> None:
        """Every field by name, nothing else: a TypeError naming them otherwise."""
        with pytest.raises(TypeError, match="MonthResult: expected the fields"):
            _assembled(sla="x")


def _written(*texts: str) -> st.SearchStrategy[Decimal]:
    """A Decimal among ``texts`` (equal values written differently: 10 and 10.0)."""
    return st.sampled_from(texts).map(Decimal)


@st.composite
def _money_terms(draw: st.DrawFn, name: str) -> SlaPolicy:
    """An SLA's money terms, each Decimal drawn from equal values written differently."""
    tiers = (
        CreditTier(
            draw(_written("10", "10.0", "25")),
            upper=draw(_written("99.999", "99.9990")),
            lower=draw(_written("99.9", "99.90")),
            lower_inclusive=draw(st.booleans()),
        ),
        CreditTier(
            draw(_written("25", "25.00", "50")),
            upper=draw(_written("99.9", "99.90", "99")),
            upper_inclusive=draw(st.booleans()),
        ),
    )
    credit = CreditPolicy(
        tiers=tiers,
        monthly_fee=draw(_written("10000", "10000.00", "99.999")),
        currency=draw(st.sampled_from(("USD", "EUR"))),
        cap=draw(st.none() | _written("500", "500.0")),
    )
    return policy(
        name=name,
        objective_percent=draw(_written("99.9", "99.90", "99.999")),
        credit=credit,
        timezone=draw(st.sampled_from(("UTC", "Europe/London"))),
        unknown_policy=draw(st.sampled_from(list(UnknownPolicy))),
        claim_window_days=draw(st.integers(0, 3)),
    )


class TestSharedMoney:
    """fw28 (issue 20): the money figures shared between SLAs of the same terms and counts
    are the ones each SLA's own computation gives, down to how each Decimal is written."""

    @given(
        _money_terms("a"),
        _money_terms("b"),
        st.integers(0, 9000),
        st.integers(0, 9000),
        st.integers(0, 9000),
        st.sampled_from((NOV, Month(2026, 3), Month(2026, 10))),
    )
    def test_same_as_its_own(
        self,
        a: SlaPolicy,
        b: SlaPolicy,
        denominator: int,
        unavailable: int,
        unknown: int,
        month: Month,
    ) -> None:
        unavailable = min(unavailable, denominator)
        unknown = min(unknown, denominator - unavailable)
        for first, second in ((a, b), (b, a), (a, a)):
            _MONEY.clear()
            _shared_money(first, month, unavailable, unknown, denominator)
            shared = _shared_money(second, month, unavailable, unknown, denominator)
            own = _money(second, month, unavailable, unknown, denominator)
            assert shared == own
            assert repr(shared) == repr(own)
            for field in dataclasses.fields(own):
                assert str(getattr(shared, field.name)) == str(getattr(own, field.name))

    def test_shared_between_slas_of_the_same_terms(self) -> None:
        """Two SLAs of the same terms (other names, other credit objects) share one object;
        another count, zone or fee written otherwise does not."""
        _MONEY.clear()
        one = policy(name="one")
        two = policy(name="two", credit=dataclasses.replace(STANDARD_CREDIT))
        assert _shared_money(one, NOV, 3, 5, 8640) is _shared_money(two, NOV, 3, 5, 8640)
        assert _shared_money(one, NOV, 4, 5, 8640) is not _shared_money(two, NOV, 3, 5, 8640)
        london = policy(name="three", timezone="Europe/London")
        assert _shared_money(london, NOV, 3, 5, 8640) is not _shared_money(one, NOV, 3, 5, 8640)
        fee = dataclasses.replace(STANDARD_CREDIT, monthly_fee=Decimal("10000.0"))
        other = policy(name="four", credit=fee)
        assert _shared_money(other, NOV, 3, 5, 8640) is not _shared_money(one, NOV, 3, 5, 8640)
        assert _shared_money(other, NOV, 3, 5, 8640) == _money(other, NOV, 3, 5, 8640)
