"""The support section of the report and the support metric samples."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from monitor.sla.calendar import Month
from monitor.support.contract import ContractSummary, SupportContract, summarize, summarize_all
from monitor.support.faults import EventKind, FaultEvent, Severity, open_fault, record
from monitor.support.metrics import HELP, LABELS, support_samples
from monitor.support.notice import Violation, ViolationKind
from monitor.support.report import (
    render_support,
    support_claim,
    support_csv,
    support_json,
    support_text,
)
from monitor.support.service import log_notice_violations

LONDON = ZoneInfo("Europe/London")
CONTRACT = SupportContract("uma", Decimal("120000.00"), "GBP")


def local(*parts: int) -> datetime:
    """A Europe/London wall time."""
    return datetime(*parts, tzinfo=LONDON)  # type: ignore[misc]


def november() -> ContractSummary:
    """F-1: business critical, restored Wed, reassessed Fri, solved Tue 1 Dec 12:00 (13% in
    November); F-2: minor, still open on 15 Dec."""
    late = open_fault("F-1", "uma", "IVR down", Severity.BUSINESS_CRITICAL, local(2026, 11, 23, 10))
    late = record(late, FaultEvent(EventKind.RESTORED, local(2026, 11, 25, 11)))
    late = record(
        late,
        FaultEvent(EventKind.REASSESSED, local(2026, 11, 27, 12), Severity.DEFECT_WITH_WORKAROUND),
    )
    late = record(late, FaultEvent(EventKind.SOLVED, local(2026, 12, 1, 12)))
    minor = open_fault("F-2", "uma", "Typo", Severity.MINOR, local(2026, 11, 30, 9))
    return summarize(CONTRACT, [late, minor], local(2026, 12, 15), month=Month(2026, 11))


class TestSupportJson:
    """``support_json``: exact figures as strings, per-level deadlines."""

    def test_contract_and_fault_figures(self) -> None:
        """Month and year credits and the fault's levels are all present and exact."""
        doc = support_json([november()])
        contract = doc["contracts"][0]
        assert (contract["credit_month_percent"], contract["credit_month_amount"]) == (
            "13",
            "15600.00",
        )
        assert (contract["credit_year_percent"], contract["credit_year_amount"]) == (
            "14",
            "16800.00",
        )
        fault = contract["faults"][0]
        assert [lv["deadline"] for lv in fault["levels"]] == [
            "2026-11-23T14:00:00+00:00",
            "2026-11-24T14:00:00+00:00",
            "2026-11-26T10:00:00+00:00",
        ]
        assert [d["percent"] for d in fault["late_days"]] == ["5", "5", "1", "1", "1", "1"]
        assert fault["severity"] == "defect_with_workaround"

    def test_notice_violations(self) -> None:
        """Notice violations are listed with their SLA and whether they were honoured."""
        violation = Violation("mw-1", ViolationKind.SHORT_NOTICE, "too short", rejected=True)
        doc = support_json([], {"voice": [violation]})
        assert doc["maintenance_notice_violations"] == [
            {
                "sla": "voice",
                "window": "mw-1",
                "rule": "short_notice",
                "rejected": True,
                "message": "too short",
            }
        ]


class TestSupportText:
    """``support_text``: readable section with lateness and method."""

    def test_lateness_and_method(self) -> None:
        """Late levels say by how much; the Business Day rule is stated."""
        text = support_text([november()])
        assert (
            "L2 restoration     due 2026-11-24 14:00 GMT, met 2026-11-25 11:00 GMT, LATE by 21h"
            in (text)
        )
        assert "credit 2026-11   13% of the annual fee = 15600.00 GBP (5 late day(s))" in text
        assert "A Business Day counts as 8h of support time" in text


class TestSupportCsv:
    """``support_csv``: one row per fault and level."""

    def test_rows(self) -> None:
        """Three levels for the critical fault, two for the minor one."""
        rows = list(csv.DictReader(io.StringIO(support_csv([november()]))))
        assert [(r["fault"], r["level"]) for r in rows] == [
            ("F-1", "1"),
            ("F-1", "2"),
            ("F-1", "3"),
            ("F-2", "1"),
            ("F-2", "2"),
        ]
        assert rows[1]["breached"] == "true"
        assert rows[1]["lateness_seconds"] == "75600"


class TestSupportClaim:
    """``support_claim``: the late faults with their times and credit."""

    def test_claim_lists_late_fault(self) -> None:
        """The claim names the fault, its due and provided times and the credit."""
        claim = support_claim([november()])
        assert 'F-1 "IVR down" (defect_with_workaround)' in claim
        assert "Solution due 2026-11-26 10:00 GMT; provided 2026-12-01 12:00 GMT." in claim
        # 13% of the fault's 14% began in November; its last late day began in December.
        assert "Credit: 13% of the annual Licence fee = 15600.00 GBP." in claim
        assert "The other 1 late day(s) of this fault began in other months" in claim
        assert "F-2" not in claim
        assert claim.count("Subject:") == 1

    def test_nothing_late(self) -> None:
        """Without late faults the claim says so."""
        empty = summarize(CONTRACT, [], local(2026, 12, 15))
        assert support_claim([empty]) == (
            "No support Service Credit is due (uma): no Solution was late in 2026-12.\n"
        )


class TestSupportSamples:
    """``support_samples``: gauges for open faults and credits."""

    def test_samples(self) -> None:
        """The solved fault has no deadline series; credits are ratios of the annual fee."""
        samples = {(s.name, s.labels): s.value for s in support_samples([november()], {"voice": 2})}
        assert ("slawatch_fault_open", ("uma", "F-1", "defect_with_workaround")) not in samples
        assert samples[("slawatch_fault_open", ("uma", "F-2", "minor"))] == 1.0
        deadline = ("uma", "F-2", "minor", "2")
        assert samples[("slawatch_fault_deadline_timestamp_seconds", deadline)] == (
            local(2026, 12, 7, 13).timestamp()
        )
        assert samples[("slawatch_fault_deadline_breached", deadline)] == 1.0
        assert samples[("slawatch_support_credit_ratio", ("uma", "month"))] == 0.13
        assert samples[("slawatch_support_credit_amount", ("uma", "year", "GBP"))] == 16800.0
        assert samples[("slawatch_maintenance_notice_violations", ("voice",))] == 2.0
        assert {name for name, _ in samples} <= set(HELP) == set(LABELS)


class TestRenderSupport:
    """``render_support`` and ``summarize_all``: the entry points the report uses."""

    def test_formats(self) -> None:
        """json gives the dict, the others text; an unknown format is refused."""
        faults = list(november().faults)
        summaries = summarize_all({"uma": CONTRACT}, [f.fault for f in faults], local(2026, 12, 15))
        assert [s.month_label for s in summaries] == ["2026-12"]
        assert isinstance(render_support(summaries, "json"), dict)
        assert str(render_support(summaries, "csv")).startswith("contract,fault,")
        assert "Subject: Service Credit claim" in str(render_support(summaries, "claim"))
        with pytest.raises(ValueError, match="format: expected one of json, text, csv, claim"):
            render_support(summaries, "pdf")


class TestLogNoticeViolations:
    """``log_notice_violations``: one warning per violation, fields not prose."""

    def test_logged(self) -> None:
        """The event name is constant; the window and rule are fields."""
        violation = Violation("mw-1", ViolationKind.DURING_SUPPORT_HOURS, "overlaps", False)
        with capture_logs() as logs:
            log_notice_violations("voice", [violation])
        assert logs == [
            {
                "event": "maintenance_notice_violation",
                "log_level": "warning",
                "sla": "voice",
                "window": "mw-1",
                "rule": "during_support_hours",
                "rejected": False,
                "detail": "overlaps",
            }
        ]


class TestContractOpen:
    """``FaultSummary.open`` follows the contract's Solution level per severity."""

    def test_minor_closed_by_its_level_2_correction(self) -> None:
        """A minor error with its correction recorded (Level 2) is closed; a critical fault
        with only a restoration is still open."""
        minor = open_fault("F-3", "uma", "Typo", Severity.MINOR, local(2026, 11, 30, 9))
        minor = record(minor, FaultEvent(EventKind.RESTORED, local(2026, 12, 1, 9)))
        critical = open_fault("F-4", "uma", "Down", Severity.BUSINESS_CRITICAL, local(2026, 12, 1))
        critical = record(critical, FaultEvent(EventKind.RESTORED, local(2026, 12, 1, 12)))
        summary = summarize(CONTRACT, [minor, critical], local(2026, 12, 15))
        assert [(f.fault.id, f.open) for f in summary.faults] == [("F-3", False), ("F-4", True)]
        names = {(s.name, s.labels[1]) for s in support_samples([summary])}
        assert ("slawatch_fault_open", "F-3") not in names
        assert ("slawatch_fault_open", "F-4") in names
