"""Each support credit belongs to one month (issue 12, problem 1): the late days that began in
a month are claimed in that month's claim, so consecutive claims add up to the whole."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sla.calendar import Month
from monitor.support.contract import SupportContract, summarize
from monitor.support.faults import EventKind, Fault, FaultEvent, Severity, open_fault, record
from monitor.support.report import support_claim, support_text

LONDON = ZoneInfo("Europe/London")
CONTRACT = SupportContract("uma", Decimal("420000.00"), "GBP")
AS_OF = datetime(2027, 3, 1, tzinfo=LONDON)
MONTHS = (Month(2026, 10), Month(2026, 11), Month(2026, 12), Month(2027, 1), Month(2027, 2))


def local(*parts: int) -> datetime:
    """A Europe/London wall time."""
    return datetime(*parts, tzinfo=LONDON)  # type: ignore[misc, arg-type]


def late_across_month_end() -> Fault:
    """Business critical, received Mon 23 Nov 2026, solved 2 Dec 17:00: late days begin on
    26..30 Nov (5) and 1..2 Dec (2), 5% each."""
    fault = open_fault(
        "F-1", "uma", "IVR down", Severity.BUSINESS_CRITICAL, local(2026, 11, 23, 10)
    )
    return record(fault, FaultEvent(EventKind.SOLVED, local(2026, 12, 2, 17)))


def claimed_total(text: str) -> Decimal:
    """The total a support claim text asks for (0 when nothing is due)."""
    found = re.findall(r"Total support credit requested for \S+: \S+% .*? = (\S+) GBP", text)
    return sum((Decimal(x) for x in found), Decimal(0))


class TestSupportMonths:
    """Claims for consecutive months: every late day once, in the month it began."""

    def test_fault_late_across_month_end_is_split(self) -> None:
        """November claims the 5 November days, December the 2 December ones, and the
        claims' totals add up to the fault's whole credit (the bug: both claimed all 7)."""
        fault = late_across_month_end()
        texts = {m: support_claim([summarize(CONTRACT, [fault], AS_OF, month=m)]) for m in MONTHS}
        assert claimed_total(texts[Month(2026, 11)]) == Decimal("105000.00")
        assert claimed_total(texts[Month(2026, 12)]) == Decimal("42000.00")
        assert claimed_total(texts[Month(2026, 10)]) == 0
        assert claimed_total(texts[Month(2027, 1)]) == 0
        whole = summarize(CONTRACT, [fault], AS_OF, month=Month(2026, 11)).faults[0]
        assert whole.credit_amount == Decimal("147000.00")
        assert sum(claimed_total(t) for t in texts.values()) == whole.credit_amount

    def test_december_text_omits_a_november_fault(self) -> None:
        """A fault solved in November is not listed in December's text report."""
        fault = open_fault("F-9", "uma", "Old", Severity.MINOR, local(2026, 11, 2, 10))
        fault = record(fault, FaultEvent(EventKind.RESTORED, local(2026, 11, 3, 10)))
        nov = support_text([summarize(CONTRACT, [fault], AS_OF, month=Month(2026, 11))])
        dec = support_text([summarize(CONTRACT, [fault], AS_OF, month=Month(2026, 12))])
        assert "F-9" in nov
        assert "F-9" not in dec
        assert "0 relevant to 2026-12" in dec

    @settings(max_examples=60, deadline=None)
    @given(
        received=st.integers(min_value=0, max_value=60 * 24 * 60),
        solved_after=st.none() | st.integers(min_value=0, max_value=50 * 24 * 60),
        severity=st.sampled_from(list(Severity)),
    )
    def test_months_add_up(
        self, received: int, solved_after: int | None, severity: Severity
    ) -> None:
        """Whatever the fault, the months' late days partition its late days (nothing twice,
        nothing lost) and the months' percents add up to its percent."""
        at = local(2026, 10, 15) + timedelta(minutes=received)
        fault = open_fault("F-1", "uma", "x", severity, at)
        if solved_after is not None:
            fault = record(
                fault, FaultEvent(EventKind.SOLVED, at + timedelta(minutes=solved_after))
            )
        summaries = [summarize(CONTRACT, [fault], AS_OF, month=m) for m in MONTHS]
        whole = summaries[0].faults[0]
        numbers = [d.number for s in summaries for d in s.faults[0].month_late_days]
        assert sorted(numbers) == [d.number for d in whole.late_days]
        assert sum(s.month.percent for s in summaries) == whole.credit_percent
        assert sum(s.faults[0].month_credit_percent for s in summaries) == whole.credit_percent
