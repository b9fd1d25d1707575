"""The report formats: json, text, csv and the claim letter."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType

import pytest

from monitor.reports.full import compose
from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import MonthResult, compute_month
from monitor.sla.policy import ExclusionKind, ExclusionWindow, ServiceDef, SlaPolicy, Tally
from monitor.sla.render import CSV_COLUMNS, render
from tests.strategies import STANDARD_CREDIT

GRID = month_grid(Month(2026, 3), "Europe/London", 300)
POLICY = SlaPolicy(
    name="ujet-voice",
    service="voice",
    objective_percent=Decimal("99.999"),
    credit=STANDARD_CREDIT,
    timezone="Europe/London",
)
SERVICE = ServiceDef("voice", ("sip", "ivr"))
REPORT_KEYS = {
    "service", "month", "timezone", "objective_percent", "buckets_total", "buckets_available",
    "buckets_unavailable", "buckets_excluded", "buckets_unknown", "uptime_percent",
    "uptime_percent_worst_case", "error_budget_buckets", "credit_percent", "credit_amount",
    "currency", "claim_deadline", "outages", "rules",
}  # fmt: skip


def _result(failures: tuple[int, ...] = (4000, 4001)) -> MonthResult:
    tallies = {name: dict.fromkeys(GRID.starts(), Tally(ok=10)) for name in ("sip", "ivr")}
    for index in failures:
        tallies["sip"][GRID.bucket_start(index)] = Tally(
            ok=8, failed=2, reasons=MappingProxyType({"timeout": 2})
        )
    window = ExclusionWindow(
        "mw-1",
        datetime(2026, 3, 10, 2, tzinfo=UTC),
        datetime(2026, 3, 10, 3, tzinfo=UTC),
        ExclusionKind.SCHEDULED_MAINTENANCE,
        reason="core switch upgrade",
    )
    return compute_month(POLICY, SERVICE, Month(2026, 3), tallies, [window])


class TestRender:
    def test_json_has_every_contract_key(self) -> None:
        """Each report object carries the issue's keys; exact ratio beside the rounded float."""
        document = json.loads(render([_result()], "json", {"lines": 3}))
        report = document["reports"][0]
        assert set(report) >= REPORT_KEYS
        assert report["buckets_total"] == 8916
        assert report["buckets_excluded"] == 12
        assert report["uptime_ratio_exact"] == "8902/8904"
        assert report["uptime_percent"] == round(100 * 8902 / 8904, 6)
        assert report["credit_amount"] == "1000.00"
        assert report["claim_deadline"] == "2026-05-01T00:00:00+01:00"
        assert report["outages"][0]["buckets"] == 2
        assert report["outages"][0]["errors"] == {"timeout": 4}
        assert report["rules"]["unknown_policy"] == "exclude"
        assert document["input"] == {"lines": 3}

    def test_csv_one_row_per_sla(self) -> None:
        """CSV has the fixed header and the scalar figures; outages become counts."""
        rows = list(csv.DictReader(io.StringIO(render([_result(), _result(())], "csv"))))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert rows[0]["uptime_ratio_exact"] == "8902/8904"
        assert (rows[0]["outages"], rows[0]["outage_buckets"]) == ("1", "2")
        assert rows[1]["credit_amount"] == "0.00"
        assert rows[1]["breached"] == "false"

    def test_text_shows_local_times(self) -> None:
        """The text report shows outages in the SLA's zone (BST after 29 March) and UTC."""
        text = render([_result()], "text")
        start = datetime.fromtimestamp(GRID.bucket_start(4000), UTC)
        assert start.strftime("%Y-%m-%d %H:%M") in text
        assert "BST" in text
        assert "BREACHED" in text
        assert "scheduled_maintenance: 12" in text

    def test_claim_has_the_contract_parts(self) -> None:
        """Subject "SLA Claim", the month, dates and times, uptime, credit, evidence."""
        claim = compose([_result()], "claim", None, None)
        assert claim.startswith("Subject: SLA Claim\n")
        assert "March 2026" in claim
        assert "99.9775%" in claim
        assert "1000.00 USD" in claim
        assert "4 of 40 probes failed; errors: timeout x4" in claim
        assert "scheduled_maintenance (mw-1, core switch upgrade)" in claim
        assert "ends 2026-05-01 00:00 BST" in claim

    def test_claim_states_how_unknown_periods_were_treated(self) -> None:
        """Unknown periods are declared in the claim, not claimed, with the worst-case figure
        and the coverage."""
        tallies = {name: dict.fromkeys(GRID.starts(), Tally(ok=10)) for name in ("sip", "ivr")}
        for index in (4000, 4001):
            tallies["sip"][GRID.bucket_start(index)] = Tally(
                failed=1, reasons=MappingProxyType({"timeout": 1})
            )
        for index in (10, 11, 12):
            del tallies["ivr"][GRID.bucket_start(index)]
        result = compute_month(POLICY, SERVICE, Month(2026, 3), tallies, [])
        claim = compose([result], "claim", None, None)
        assert "3 period(s) without enough monitoring evidence are not claimed" in claim
        assert "would give 99.9439%." in claim
        assert "Monitoring coverage: 99.96% (8913 of 8916 eligible buckets measured)." in claim

    def test_claim_when_nothing_is_owed(self) -> None:
        """A month without credit produces no claim, and says so."""
        assert "nothing to claim" in compose([_result(())], "claim", None, None)

    def test_unknown_format_is_named(self) -> None:
        """An unknown format names the choices."""
        with pytest.raises(ValueError, match="expected one of json, text, csv, got 'pdf'"):
            render([], "pdf")
