"""Faults, deadlines, lateness and credits (monitor.support.faults / contract), hand-checked.

Reference fault: business critical, received Mon 23 Nov 2026 10:00 GMT. Level 1 due 14:00 that
day (4 support hours), Level 2 due Tue 24 Nov 14:00 (1 Business Day = 8 support hours after the
Level 1 deadline), Level 3 due Thu 26 Nov 10:00 (3 Business Days = 24 support hours after
receipt). Late days run in 24-hour periods from Thu 26 Nov 10:00.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.sla.calendar import Month
from monitor.support.contract import SupportContract, summarize, year_bounds
from monitor.support.faults import (
    CONTRACT_DEADLINES,
    CreditTable,
    DeadlineRule,
    EventKind,
    Fault,
    FaultError,
    FaultEvent,
    Level,
    Severity,
    credit_days,
    deadlines,
    level_statuses,
    open_fault,
    record,
)
from tests.strategies import support_instants

LONDON = ZoneInfo("Europe/London")
CONTRACT = SupportContract("uma", Decimal("120000.00"), "GBP")
BC = Severity.BUSINESS_CRITICAL
DEFECT = Severity.DEFECT_WITH_WORKAROUND
MINOR = Severity.MINOR


def local(*parts: int) -> datetime:
    """A Europe/London wall time."""
    return datetime(*parts, tzinfo=LONDON)  # type: ignore[misc]


def fault(severity: Severity = BC, received: datetime | None = None, **events: datetime) -> Fault:
    """A fault received (default) Mon 23 Nov 2026 10:00 with the given level events."""
    result = open_fault("F-1", "uma", "IVR down", severity, received or local(2026, 11, 23, 10))
    for name, at in events.items():
        result = record(result, FaultEvent(EventKind(name), at))
    return result


def reassess(base: Fault, severity: Severity, at: datetime) -> Fault:
    """``base`` reassessed to ``severity`` at ``at``."""
    return record(base, FaultEvent(EventKind.REASSESSED, at, severity))


def day_percents(f: Fault, now: datetime) -> list[tuple[datetime, Decimal]]:
    """(start, percent) of each credited day under the contract's tables."""
    days = credit_days(f, CONTRACT.deadlines, CONTRACT.credits, CONTRACT.hours, now)
    return [(d.start, d.percent) for d in days]


class TestDeadlines:
    """``deadlines``: the contract's table on the support-hours clock."""

    def test_business_critical(self) -> None:
        """All three levels of the reference fault, as worked out by hand."""
        assert deadlines(fault(), CONTRACT_DEADLINES, CONTRACT.hours) == {
            Level.ACKNOWLEDGE: local(2026, 11, 23, 14),
            Level.RESTORE: local(2026, 11, 24, 14),
            Level.SOLVE: local(2026, 11, 26, 10),
        }

    def test_defect_matches_business_critical(self) -> None:
        """A defect with workaround has the same response times."""
        assert deadlines(fault(DEFECT), CONTRACT_DEADLINES, CONTRACT.hours) == deadlines(
            fault(), CONTRACT_DEADLINES, CONTRACT.hours
        )

    def test_minor_over_christmas(self) -> None:
        """Minor received Fri 18 Dec 2026 16:00: L1 Mon 21 12:00, L2 Wed 30 Dec 12:00.

        L2 is 40 support hours after L1: Mon 5h, Tue 8h, Wed 8h, Thu 24th 8h (29h), Fri 25 and
        Mon 28 (Boxing Day substitute) closed, Tue 29 8h (37h), Wed 30 3h.
        """
        minor = fault(MINOR, local(2026, 12, 18, 16))
        assert deadlines(minor, CONTRACT_DEADLINES, CONTRACT.hours) == {
            Level.ACKNOWLEDGE: local(2026, 12, 21, 12),
            Level.RESTORE: local(2026, 12, 30, 12),
        }

    def test_received_outside_support_hours(self) -> None:
        """Received Saturday: the clock starts Monday 09:00; 3 Business Days end Wed 17:00."""
        weekend = fault(BC, local(2026, 11, 21, 23))
        result = deadlines(weekend, CONTRACT_DEADLINES, CONTRACT.hours)
        assert result[Level.ACKNOWLEDGE] == local(2026, 11, 23, 13)
        assert result[Level.RESTORE] == local(2026, 11, 24, 13)
        assert result[Level.SOLVE] == local(2026, 11, 25, 17)

    def test_rule_validation(self) -> None:
        """A rule whose Solution level has no deadline is refused, naming the field."""
        with pytest.raises(ValueError, match="solution_level: 3 needs solve_days"):
            DeadlineRule(solve_days=None)
        with pytest.raises(ValueError, match="acknowledgement is not a Solution"):
            DeadlineRule(solution_level=Level.ACKNOWLEDGE)


class TestLevelStatuses:
    """``level_statuses``: met, breached and lateness as of ``now``."""

    def test_met_late_and_open(self) -> None:
        """L1 on time, L2 21 hours late, L3 still open and 2 days late at ``now``."""
        f = fault(acknowledged=local(2026, 11, 23, 13), restored=local(2026, 11, 25, 11))
        l1, l2, l3 = level_statuses(f, CONTRACT_DEADLINES, CONTRACT.hours, local(2026, 11, 28, 10))
        assert (l1.breached, l1.lateness) == (False, timedelta(0))
        assert (l2.breached, l2.lateness) == (True, timedelta(hours=21))
        assert (l3.met_at, l3.breached, l3.lateness) == (None, True, timedelta(days=2))

    def test_higher_level_meets_lower(self) -> None:
        """A permanent correction recorded without an acknowledgement meets Level 1 too."""
        f = fault(solved=local(2026, 11, 23, 12))
        statuses = level_statuses(f, CONTRACT_DEADLINES, CONTRACT.hours, local(2026, 12, 1))
        assert [s.met_at for s in statuses] == [local(2026, 11, 23, 12)] * 3
        assert not any(s.breached for s in statuses)

    def test_rejects_naive_now(self) -> None:
        """``now`` must carry a zone."""
        with pytest.raises(ValueError, match="now: expected a timezone-aware"):
            level_statuses(fault(), CONTRACT_DEADLINES, CONTRACT.hours, datetime(2026, 12, 1))


class TestRecord:
    """``record``: history is appended, idempotent, never rewritten."""

    def test_same_event_twice_is_a_no_op(self) -> None:
        """Recording the same acknowledgement again returns the same fault."""
        once = fault(acknowledged=local(2026, 11, 23, 11))
        again = record(once, FaultEvent(EventKind.ACKNOWLEDGED, local(2026, 11, 23, 11)))
        assert again is once

    def test_conflicting_time_is_refused(self) -> None:
        """A second, different acknowledgement time raises with both times."""
        once = fault(acknowledged=local(2026, 11, 23, 11))
        with pytest.raises(FaultError, match=r"Level 1 .* already recorded at 2026-11-23T11:00"):
            record(once, FaultEvent(EventKind.ACKNOWLEDGED, local(2026, 11, 23, 12)))

    def test_event_before_receipt_is_refused(self) -> None:
        """Nothing can happen to a fault before it was received."""
        with pytest.raises(FaultError, match="is before receipt"):
            fault(acknowledged=local(2026, 11, 23, 9))

    def test_reassessment_history(self) -> None:
        """Reassessments are kept in order; reassessing to the current severity is a no-op."""
        f = reassess(fault(), DEFECT, local(2026, 11, 25, 11))
        assert reassess(f, DEFECT, local(2026, 11, 26, 9)) is f
        assert f.severity is DEFECT
        assert f.severity_at(local(2026, 11, 25, 10)) is BC
        assert [s for _, s in f.severity_history()] == [BC, DEFECT]

    def test_bad_ids_and_events(self) -> None:
        """Ids and event fields are validated with the value named."""
        with pytest.raises(ValueError, match="fault id: expected letters"):
            open_fault("bad id", "uma", "t", BC, local(2026, 11, 23, 10))
        with pytest.raises(ValueError, match="reassessed event: severity: expected a severity"):
            FaultEvent(EventKind.REASSESSED, local(2026, 11, 23, 10))
        with pytest.raises(ValueError, match="expected a timezone-aware datetime, got naive"):
            FaultEvent(EventKind.SOLVED, datetime(2026, 11, 23, 10))


class TestCreditDays:
    """``credit_days``: 24-hour periods after the Solution deadline, at the severity in force."""

    def test_business_critical_three_days(self) -> None:
        """Solved Sat 28 Nov 12:00: periods from Thu, Fri and Sat 10:00 are late (3 x 5%)."""
        f = fault(solved=local(2026, 11, 28, 12))
        assert day_percents(f, local(2026, 12, 31)) == [
            (local(2026, 11, 26, 10), Decimal(5)),
            (local(2026, 11, 27, 10), Decimal(5)),
            (local(2026, 11, 28, 10), Decimal(5)),
        ]

    def test_solved_exactly_on_a_period_boundary(self) -> None:
        """A Solution at deadline + 24h is one day late, not two; at the deadline, none."""
        assert len(day_percents(fault(solved=local(2026, 11, 27, 10)), local(2027, 1, 1))) == 1
        assert day_percents(fault(solved=local(2026, 11, 26, 10)), local(2027, 1, 1)) == []

    def test_workaround_reduces_severity(self) -> None:
        """Reassessed to a defect Fri 27 Nov 12:00: 5%, 5%, then 1% a day until solved."""
        f = fault(restored=local(2026, 11, 25, 11), solved=local(2026, 12, 1, 12))
        f = reassess(f, DEFECT, local(2026, 11, 27, 12))
        assert [p for _, p in day_percents(f, local(2027, 1, 1))] == [
            Decimal(5),
            Decimal(5),
            Decimal(1),
            Decimal(1),
            Decimal(1),
            Decimal(1),
        ]

    def test_upgraded_minor_runs_from_the_business_critical_deadline(self) -> None:
        """Minor upgraded to business critical on Wed: late from Thu 26 10:00 at 5%."""
        f = reassess(fault(MINOR), BC, local(2026, 11, 25, 10))
        assert day_percents(f, local(2026, 11, 28, 12)) == [
            (local(2026, 11, 26, 10), Decimal(5)),
            (local(2026, 11, 27, 10), Decimal(5)),
            (local(2026, 11, 28, 10), Decimal(5)),
        ]

    def test_minor_earns_nothing_and_open_fault_is_capped(self) -> None:
        """Minor errors earn 0%; an unsolved critical fault stops at 20 days."""
        assert all(p == 0 for _, p in day_percents(fault(MINOR), local(2027, 2, 1)))
        days = day_percents(fault(), local(2027, 2, 1))
        assert len(days) == 20
        assert days[-1][0] == local(2026, 12, 15, 10)

    def test_open_fault_counts_part_of_a_day_up_to_now(self) -> None:
        """Unsolved, as of Thu 26 Nov 10:01: the first period has begun, so one day."""
        assert len(day_percents(fault(), local(2026, 11, 26, 10, 1))) == 1
        assert day_percents(fault(), local(2026, 11, 26, 10)) == []

    def test_periods_are_elapsed_24_hours_across_dst(self) -> None:
        """Received Tue 20 Oct 2026 10:00 BST, due Fri 23 10:00 BST; after the clocks go back
        on Sun 25 Oct the periods start at 09:00 GMT (24 elapsed hours, not calendar days)."""
        f = fault(received=local(2026, 10, 20, 10), solved=local(2026, 10, 26, 12))
        assert [start for start, _ in day_percents(f, local(2026, 12, 1))] == [
            local(2026, 10, 23, 10),
            local(2026, 10, 24, 10),
            local(2026, 10, 25, 9),
            local(2026, 10, 26, 9),
        ]

    def test_credit_table_validation(self) -> None:
        """Percentages outside 0..100 are refused, naming the severity."""
        with pytest.raises(ValueError, match=r"percent_per_day\.minor: expected 0\.\.100, got 101"):
            CreditTable(percent_per_day={BC: Decimal(5), DEFECT: Decimal(1), MINOR: Decimal(101)})


class TestSummarize:
    """``summarize``: per-fault summaries and month/year credit totals."""

    def test_month_and_year_totals(self) -> None:
        """Late days are attributed to the month they begin in: 13% November, 1% December."""
        f = fault(restored=local(2026, 11, 25, 11), solved=local(2026, 12, 1, 12))
        f = reassess(f, DEFECT, local(2026, 11, 27, 12))
        november = summarize(CONTRACT, [f], local(2026, 12, 15), month=Month(2026, 11))
        assert (november.month.percent, november.month.amount) == (Decimal(13), Decimal("15600"))
        assert (november.year.percent, november.year.days) == (Decimal(14), 6)
        december = summarize(CONTRACT, [f], local(2026, 12, 15))
        assert (december.month_label, december.month.percent) == ("2026-12", Decimal(1))
        assert december.faults[0].credit_amount == Decimal("16800")

    def test_other_contracts_faults_are_ignored(self) -> None:
        """Only faults naming the contract are summarized."""
        other = open_fault("F-2", "other", "x", BC, local(2026, 11, 23, 10))
        assert summarize(CONTRACT, [other], local(2026, 12, 15)).faults == ()

    def test_year_bounds_are_local(self) -> None:
        """A year starts at local midnight on 1 January (GMT, so 00:00 UTC)."""
        start, end = year_bounds(2027, "Europe/London")
        assert (start.isoformat(), end.isoformat()) == (
            "2027-01-01T00:00:00+00:00",
            "2028-01-01T00:00:00+00:00",
        )

    def test_contract_validation(self) -> None:
        """A negative fee is refused with the contract named."""
        with pytest.raises(ValueError, match="contract x: annual_fee: expected a non-negative"):
            SupportContract("x", Decimal(-1), "GBP")


class TestCreditProperties:
    """Properties of ``credit_days`` over arbitrary receipt and solution times."""

    @given(support_instants(), st.integers(0, 40 * 24), st.integers(0, 40 * 24))
    def test_later_solution_never_earns_less(self, received: datetime, a: int, b: int) -> None:
        """Solving later never reduces the late days, and never exceeds the 20-day cap."""
        early, late = sorted((a, b))
        now = received + timedelta(days=90)

        def days(hours: int) -> int:
            f = fault(received=received, solved=received + timedelta(hours=hours))
            return len(credit_days(f, CONTRACT.deadlines, CONTRACT.credits, CONTRACT.hours, now))

        assert days(early) <= days(late) <= 20

    @given(support_instants())
    def test_solved_by_the_deadline_earns_nothing(self, received: datetime) -> None:
        """A Solution at the Level 3 deadline is on time."""
        due = deadlines(fault(received=received), CONTRACT_DEADLINES, CONTRACT.hours)[Level.SOLVE]
        f = fault(received=received, solved=due)
        now = due + timedelta(days=30)
        assert credit_days(f, CONTRACT.deadlines, CONTRACT.credits, CONTRACT.hours, now) == ()
