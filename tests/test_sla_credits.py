"""Credit tiers, amounts, the error budget and the distance to the next tier."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.sla.credits import (
    buckets_to_next_tier,
    credit_amount,
    credit_tier,
    error_budget,
    uptime_percent,
)
from monitor.sla.policy import CreditPolicy, CreditTier
from tests.strategies import STANDARD_CREDIT, credit_tables


def _percent(tier: CreditTier | None) -> Decimal:
    return Decimal(0) if tier is None else tier.credit_percent


class TestCreditTier:
    @pytest.mark.parametrize(
        ("uptime", "credit"),
        [
            (Fraction(100), 0),
            (Fraction("99.999"), 0),
            (Fraction("99.999") - Fraction(1, 10**9), 10),
            (Fraction("99.9"), 10),
            (Fraction("99.9") - Fraction(1, 10**9), 25),
            (Fraction(99), 25),
            (Fraction(99) - Fraction(1, 10**9), 50),
            (Fraction(0), 50),
        ],
    )
    def test_half_open_band_edges(self, uptime: Fraction, credit: int) -> None:
        """ "Less than X but at least Y": X itself is the better band, Y itself this band."""
        assert _percent(credit_tier(uptime, STANDARD_CREDIT)) == credit

    def test_inclusive_upper_edge(self) -> None:
        """An "at most 99.9" band contains 99.9 itself."""
        tier = CreditTier(Decimal(5), upper=Decimal("99.9"), upper_inclusive=True)
        policy = CreditPolicy((tier,), Decimal(100), "EUR")
        assert credit_tier(Fraction("99.9"), policy) is tier
        assert credit_tier(Fraction("99.9") + Fraction(1, 10**9), policy) is None

    def test_exclusive_lower_edge(self) -> None:
        """An "above 95" band does not contain 95 itself."""
        tier = CreditTier(Decimal(5), lower=Decimal(95), lower_inclusive=False)
        policy = CreditPolicy((tier,), Decimal(100), "EUR")
        assert credit_tier(Fraction(95), policy) is None
        assert credit_tier(Fraction(96), policy) is tier

    def test_no_measurement_no_tier(self) -> None:
        """An uptime of None (nothing measured) earns no credit."""
        assert credit_tier(None, STANDARD_CREDIT) is None


class TestCreditAmount:
    def test_percent_of_fee(self) -> None:
        """25% of 10000.00 is 2500.00."""
        tier = credit_tier(Fraction("99.5"), STANDARD_CREDIT)
        assert credit_amount(tier, STANDARD_CREDIT) == Decimal("2500.00")

    def test_capped(self) -> None:
        """The cap bounds the amount."""
        capped = CreditPolicy(STANDARD_CREDIT.tiers, Decimal("10000.00"), "USD", Decimal("3000"))
        assert credit_amount(credit_tier(Fraction(50), capped), capped) == Decimal("3000.00")

    def test_rounds_half_up_to_cents(self) -> None:
        """10% of 0.05 is 0.005, shown as 0.01."""
        policy = CreditPolicy(STANDARD_CREDIT.tiers, Decimal("0.05"), "USD")
        assert str(credit_amount(credit_tier(Fraction("99.95"), policy), policy)) == "0.01"

    def test_no_tier_is_zero_with_cents(self) -> None:
        """No credit renders as 0.00."""
        assert str(credit_amount(None, STANDARD_CREDIT)) == "0.00"


class TestErrorBudget:
    @pytest.mark.parametrize(
        ("denominator", "objective", "budget"),
        [
            (8928, "99.999", 0),
            (8928, "99.99", 0),
            (8928, "99.9", 8),
            (8640, "99.9", 8),
            (8640, "99", 86),
            (10000, "99.9", 10),
            (0, "99.9", 0),
        ],
    )
    def test_floor_of_allowance(self, denominator: int, objective: str, budget: int) -> None:
        """floor(denominator * (100 - objective) / 100)."""
        assert error_budget(denominator, Decimal(objective)) == budget

    @given(st.integers(1, 20_000), st.sampled_from(["99.999", "99.99", "99.9", "99.5", "95"]))
    def test_budget_is_the_largest_count_meeting_the_objective(
        self, denominator: int, objective: str
    ) -> None:
        """Using the whole budget meets the objective; one bucket more does not."""
        budget = error_budget(denominator, Decimal(objective))
        target = Fraction(Decimal(objective))
        assert uptime_percent(budget, denominator) >= target  # type: ignore[operator]
        if budget + 1 <= denominator:
            assert uptime_percent(budget + 1, denominator) < target  # type: ignore[operator]


class TestBucketsToNextTier:
    def test_thirty_day_month(self) -> None:
        """8640 buckets: 1 down reaches 10%; from there 9 down in all reach 25% (99.8958)."""
        assert buckets_to_next_tier(0, 8640, STANDARD_CREDIT) == 1
        assert buckets_to_next_tier(1, 8640, STANDARD_CREDIT) == 8
        assert buckets_to_next_tier(8640, 8640, STANDARD_CREDIT) is None

    def test_top_tier_has_no_next(self) -> None:
        """At 50% credit there is nothing higher."""
        assert buckets_to_next_tier(200, 8640, STANDARD_CREDIT) is None

    @given(st.integers(1, 3000), st.data())
    def test_matches_a_linear_search(self, denominator: int, data: st.DataObject) -> None:
        """The answer is the first count at which the credit rises, found by brute force."""
        down = data.draw(st.integers(0, denominator))
        start = _percent(credit_tier(uptime_percent(down, denominator), STANDARD_CREDIT))
        expected = next(
            (
                k
                for k in range(1, denominator - down + 1)
                if _percent(credit_tier(uptime_percent(down + k, denominator), STANDARD_CREDIT))
                > start
            ),
            None,
        )
        assert buckets_to_next_tier(down, denominator, STANDARD_CREDIT) == expected

    @given(credit_tables(), st.integers(1, 2000), st.data())
    def test_any_table_matches_a_linear_search(
        self, table: CreditPolicy, denominator: int, data: st.DataObject
    ) -> None:
        """Narrow bands that a step of one bucket jumps over are skipped, never reported."""
        down = data.draw(st.integers(0, denominator))
        start = _percent(credit_tier(uptime_percent(down, denominator), table))
        expected = next(
            (
                k
                for k in range(1, denominator - down + 1)
                if _percent(credit_tier(uptime_percent(down + k, denominator), table)) > start
            ),
            None,
        )
        assert buckets_to_next_tier(down, denominator, table) == expected


class TestUptimePercent:
    """c22 (issue 20): the uptime is one exact fraction, built once."""

    @given(st.integers(1, 100_000), st.data())
    def test_equals_the_contract_formula(self, denominator: int, data: st.DataObject) -> None:
        """``100 * (1 - unavailable / denominator)`` exactly, in lowest terms, for any count."""
        unavailable = data.draw(st.integers(0, denominator))
        value = uptime_percent(unavailable, denominator)
        expected = 100 * (1 - Fraction(unavailable, denominator))
        assert value == expected
        assert value is not None
        assert (value.numerator, value.denominator) == (expected.numerator, expected.denominator)

    def test_nothing_measured_is_none(self) -> None:
        """A denominator of zero (every bucket excluded) has no uptime."""
        assert uptime_percent(0, 0) is None
