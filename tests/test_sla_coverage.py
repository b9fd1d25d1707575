"""Claimable is provable: the credit counts only proven unavailability (issue 12, problem 2)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from hypothesis import given

from monitor.reports.full import compose
from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import MonthResult, compute_month
from monitor.sla.policy import ServiceDef, SlaPolicy, Tally, UnknownPolicy
from monitor.sla.render import render
from tests.strategies import STANDARD_CREDIT, unproven_scenarios

DEC = Month(2026, 12)
GRID = month_grid(DEC, "UTC", 300)
SVC = ServiceDef("voice", ("sip",))


def policy(**overrides: Any) -> SlaPolicy:
    fields: dict[str, Any] = {
        "name": "ujet-voice",
        "service": "voice",
        "objective_percent": Decimal("99.999"),
        "credit": STANDARD_CREDIT,
        "unknown_policy": UnknownPolicy.EXCLUDE,
    }
    fields.update(overrides)
    return SlaPolicy(**fields)


def one_measured_day(unavailable: int = 3) -> dict[str, dict[int, Tally]]:
    """288 of the month's 8,928 buckets measured, ``unavailable`` of them failed."""
    column = {GRID.bucket_start(i): Tally(ok=10) for i in range(288)}
    for i in range(unavailable):
        column[GRID.bucket_start(100 + i)] = Tally(
            ok=9, failed=1, reasons=MappingProxyType({"timeout": 1})
        )
    return {"sip": column}


class TestClaimable:
    def test_low_coverage_does_not_over_claim(self) -> None:
        """The issue's month: 3 unavailable of 288 measured out of 8,928. The claim is the
        contract's 99.966% and 10% (1,000 USD), not the estimate's 98.96% and 50%."""
        result = compute_month(policy(), SVC, DEC, one_measured_day(), [])
        assert result.buckets_total == 8928
        assert result.uptime_percent == 100 * (1 - Fraction(3, 8928))
        assert result.credit_percent == 10
        assert result.credit_amount == Decimal("1000.00")
        assert result.uptime_percent_estimate == 100 * (1 - Fraction(3, 288))
        assert result.credit_amount_estimate == Decimal("5000.00")
        assert result.uptime_percent_worst_case == 100 * Fraction(285, 8928)
        assert result.coverage == Fraction(288, 8928)
        assert result.coverage_low

    def test_every_format_carries_the_coverage(self) -> None:
        """json, csv, text and claim all state the coverage; text and claim warn."""
        result = compute_month(policy(), SVC, DEC, one_measured_day(), [])
        assert '"coverage": 0.032258' in render([result], "json")
        assert '"coverage_low": true' in render([result], "json")
        csv_text = render([result], "csv")
        header, row = csv_text.splitlines()
        assert dict(zip(header.split(","), row.split(","), strict=True))["coverage"] == "0.032258"
        text = render([result], "text")
        assert "coverage         3.22% (288 of 8928 eligible buckets measured)  WARNING" in text
        claim = compose([result], "claim", None, None)
        assert "Monthly Uptime Percentage for December 2026 was 99.9664%" in claim
        assert "Monitoring coverage: 3.22% (288 of 8928 eligible buckets measured)" in claim
        assert "Credit requested: 10% of the month's fees, 1000.00 USD." in claim

    def test_nothing_measured_says_coverage_is_zero(self) -> None:
        """A month with no evidence at all owes nothing provable, and says coverage is 0."""
        result = compute_month(policy(), SVC, DEC, {}, [])
        assert result.coverage == 0
        assert result.credit_amount == Decimal("0.00")
        claim = compose([result], "claim", None, None)
        assert "No service credit is due" in claim
        assert "0.00% (0 of 8928 eligible buckets measured)  WARNING" in claim

    def test_min_coverage_is_configurable(self) -> None:
        """Below the SLA's min_coverage the month warns; at or above it does not."""
        low = compute_month(policy(min_coverage=Fraction(1, 50)), SVC, DEC, one_measured_day(), [])
        assert not low.coverage_low
        assert "WARNING" not in render([low], "text")


class TestProperties:
    @given(unproven_scenarios())
    def test_claimable_uptime_counts_only_proven_unavailability(
        self, scenario: dict[str, Any]
    ) -> None:
        """Uptime in [0, 100]; unknown buckets never count as unavailable in the claim; the
        worst case never exceeds the claimable figure; coverage in [0, 1]."""
        result = _compute(scenario)
        if result.uptime_percent is None:
            return
        assert 0 <= result.uptime_percent <= 100
        eligible = result.buckets_total - result.buckets_excluded
        assert result.uptime_percent == 100 * (1 - Fraction(result.buckets_unavailable, eligible))
        assert result.uptime_percent_worst_case is not None
        assert result.uptime_percent_worst_case <= result.uptime_percent
        assert result.coverage is None or 0 <= result.coverage <= 1


def _compute(scenario: dict[str, Any]) -> MonthResult:
    return compute_month(
        scenario["policy"],
        scenario["service"],
        scenario["month"],
        scenario["tallies"],
        scenario["exclusions"],
        canaries=scenario["canaries"],
    )
