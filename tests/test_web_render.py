"""The web view's pure parts: heat-map rows from a computed month, and every page's HTML."""

from __future__ import annotations

import re
import urllib.parse
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.cli import main as cli
from monitor.reports.claim_pack import render_claim
from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import MonthResult, compute_month
from monitor.sla.policy import BucketState, SlaPolicy
from monitor.support.contract import SupportContract, summarize
from monitor.support.faults import Severity, open_fault
from monitor.web.recent import RecentResults
from monitor.web.render import (
    Nav,
    claim_href,
    render_overview,
    render_sla_month,
    render_support,
    render_target,
)
from monitor.web.view import TargetView, build_heatmap, cell_seconds_for
from probes.result import Outcome, ProbeResult
from tests import web_sample
from tests.strategies import engine_scenarios

SAMPLES = Path(__file__).resolve().parent.parent / "config" / "samples"


class _Cells(HTMLParser):
    """Collects each heat-map cell: data-t -> (group class, state, title)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[int, tuple[str, str, str]] = {}
        self.rows: dict[str, int] = {}
        self._group: tuple[str, str] | None = None
        self._title: list[str] | None = None
        self._group_title = ""
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in ("src", "href"):
            value = a.get(name) or ""
            if value.startswith(("http:", "https:", "//")):
                self.external.append(value)
        if tag == "link":
            self.external.append(str(a))
        if tag == "svg" and "data-day" in a:
            self.rows[str(a["data-day"])] = int(str(a["data-cells"]))
        elif tag == "g" and "data-state" in a:
            self._group = (str(a["class"]), str(a["data-state"]))
        elif tag == "title" and self._group is not None:
            self._title = []
        elif tag == "rect" and "data-t" in a and self._group is not None:
            self.cells[int(str(a["data-t"]))] = (*self._group, self._group_title)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        if self._title is not None:
            self._title.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._title is not None:
            self._group_title = "".join(self._title)
            self._title = None
        elif tag == "g":
            self._group = None


def cells_of(html: str) -> _Cells:
    parser = _Cells()
    parser.feed(html)
    return parser


def sla_page(result: MonthResult, policy: SlaPolicy | None = None, **kw: Any) -> str:
    return render_sla_month(result, policy=policy, claim_text=render_claim([result]), **kw)


class TestHeatmapRows:
    def test_london_march_and_october_rows_follow_dst(self) -> None:
        """A row per local day; 29 March 2026 has 276 five-minute cells, 25 October 300."""
        for month, short, long_ in ((Month(2026, 3), 29, None), (Month(2026, 10), None, 25)):
            _, result = web_sample.sample_month(month)
            heat = build_heatmap(result)
            assert len(heat.rows) == 31
            for row in heat.rows:
                expected = 276 if row.day.day == short else 300 if row.day.day == long_ else 288
                assert row.cells == expected, row.day
            assert sum(row.cells for row in heat.rows) == result.buckets_total

    @given(engine_scenarios())
    def test_every_cell_shows_its_bucket_state(self, scenario: dict[str, Any]) -> None:
        """Property: every bucket appears once, in its local day's row, with its own state."""
        policy, service, month = scenario["policy"], scenario["service"], scenario["month"]
        result = compute_month(
            policy,
            service,
            month,
            scenario["tallies"],
            scenario["exclusions"],
            canaries=scenario["canaries"],
        )
        heat = build_heatmap(result)
        start = int(result.start.timestamp())
        seen = []
        for row in heat.rows:
            position = 0
            for run in row.runs:
                assert run.first == position
                position += len(run.starts)
                for epoch in run.starts:
                    index = (epoch - start) // result.bucket_seconds
                    assert run.state is result.states[index]
                    if run.state is BucketState.UNAVAILABLE:
                        outage = result.outages[run.outage or 0]
                        assert outage.start.timestamp() <= epoch < outage.end.timestamp()
                    seen.append(epoch)
            assert position == row.cells
        assert seen == list(month_grid(month, policy.timezone, policy.bucket_seconds).starts())

    def test_short_buckets_are_grouped_into_five_minute_cells(self) -> None:
        """10-second buckets draw 288 cells a day; a cell with unavailable buckets is
        unavailable and its tooltip counts the buckets and names every outage's reason."""
        policy = SlaPolicy(
            name="demo",
            service="voice",
            objective_percent=Decimal("99.9"),
            credit=web_sample.CREDIT,
            bucket_seconds=10,
            timezone="UTC",
        )
        month = Month(2026, 11)
        grid = month_grid(month, "UTC", 10)
        failing = int(datetime(2026, 11, 3, 17, 2, 30, tzinfo=UTC).timestamp())
        again = failing + 60  # a second outage in the same 5-minute cell
        reasons = {failing: "timeout", again: "connection_refused"}
        tallies = {
            "sip-edge": {
                e: web_sample.down(reasons[e]) if e in reasons else web_sample.OK
                for e in grid.starts()
            },
            "ivr-api": dict.fromkeys(grid.starts(), web_sample.OK),
        }
        result = compute_month(policy, web_sample.SERVICE, month, tallies, [])
        assert cell_seconds_for(10) == 300
        cells = cells_of(sla_page(result, policy))
        assert set(cells.rows.values()) == {288}
        cell = int(datetime(2026, 11, 3, 17, 0, tzinfo=UTC).timestamp())
        css, state, title = cells.cells[cell]
        assert (css, state) == ("u", "unavailable")
        assert "30 buckets: 2 unavailable, 28 available" in title
        assert "2 outages" in title
        assert "timeout ×10" in title
        assert "connection_refused ×10" in title
        assert cells.cells[cell + 300][1] == "available"


class TestSlaMonthPage:
    def test_outage_cells_carry_times_state_and_reason(self) -> None:
        """Each bucket of each outage is an unavailable cell found by its UTC start, whose
        tooltip names the local time, the reason and the failing target."""
        policy, result = web_sample.sample_month()
        cells = cells_of(sla_page(result, policy))
        assert len(cells.cells) == result.buckets_total
        for start, length, reason, target in web_sample.outage_spans(result.month):
            epoch = int(start.timestamp())
            for bucket in range(epoch, epoch + int(length.total_seconds()), 300):
                css, state, title = cells.cells[bucket]
                assert (css, state) == ("u", "unavailable")
                assert reason in title
                assert target in title
            assert cells.cells[epoch - 300][1] == "available"

    def test_tooltip_times_are_local_and_utc(self) -> None:
        """A summer outage reads in BST with its UTC times beside it."""
        policy, result = web_sample.sample_month()
        start, _, _, _ = web_sample.outage_spans(result.month)[0]
        title = cells_of(sla_page(result, policy)).cells[int(start.timestamp())][2]
        local = start.astimezone(_london())
        assert f"{local:%H:%M}" in title
        assert "BST" in title
        assert f"({start:%H:%M}–" in title
        assert "UTC" in title

    def test_exclusions_unknown_and_pending_are_drawn_by_kind(self) -> None:
        """Maintenance, a carrier fault, unmeasured hours and the future each get their class."""
        now = datetime(2026, 10, 28, 12, tzinfo=UTC)
        policy, result = web_sample.sample_month(now=now)
        cells = cells_of(sla_page(result, policy)).cells
        maintenance, carrier = web_sample.maintenance(result.month)
        assert cells[int(maintenance.start.timestamp())][:2] == ("xm", "excluded")
        assert cells[int(carrier.start.timestamp())][:2] == ("xt", "excluded")
        unmeasured = int(datetime(2026, 10, 20, 10, tzinfo=UTC).timestamp())
        assert cells[unmeasured][:2] == ("q", "unknown")
        assert cells[int(now.timestamp()) + 3600][:2] == ("p", "pending")

    def test_figures_tables_and_claim(self) -> None:
        """The page shows the month's own figures, outages, exclusions, the credit band and a
        claim draft whose download link holds exactly the claim text."""
        policy, result = web_sample.sample_month()
        claim = render_claim([result])
        html = render_sla_month(result, policy=policy, claim_text=claim)
        assert f"{float(result.uptime_percent or 0):.6f}%" in html
        assert f"{result.credit_amount:,} GBP" in html
        assert html.count('<tr id="outage-') == len(result.outages)
        assert "upgrade-sbc" in html
        assert "carrier trunk outage" in html
        assert '<tr class="current"><td>below 99.9% and at least 99.0%' in html
        href = re.search(r'href="(data:text/plain[^"]+)" download', html)
        assert href is not None
        assert urllib.parse.unquote(href.group(1).split(",", 1)[1]) == claim
        assert href.group(1) == claim_href(claim)

    def test_navigation_links(self) -> None:
        """Previous/next/overview links are there when given, absent in a standalone file."""
        policy, result = web_sample.sample_month()
        nav = Nav("/sla/v/2026-09", "/sla/v/2026-11", "/?month=2026-10")
        html = sla_page(result, policy, nav=nav)
        assert 'href="/sla/v/2026-09" rel="prev"' in html
        assert 'href="/sla/v/2026-11" rel="next"' in html
        alone = sla_page(result, policy, nav=nav, standalone=True)
        assert "/sla/v/2026-09" not in alone
        assert "<script" not in alone

    def test_standalone_page_requests_nothing(self) -> None:
        """No external URL, stylesheet link, or script source: it reads the same offline."""
        policy, result = web_sample.sample_month()
        html = sla_page(result, policy, standalone=True)
        parser = cells_of(html)
        assert parser.external == []
        assert "<link" not in html
        assert "src=" not in html
        assert "url(" not in html

    def test_text_is_escaped(self) -> None:
        """A reason with markup in it is shown as text, never as markup."""
        policy, result = web_sample.sample_month()
        outage = result.outages[0]
        hostile = MappingProxyType({"<script>alert(1)</script>": 3})
        patched = _replace(result, outages=(_replace(outage, errors=hostile), *result.outages[1:]))
        html = sla_page(patched, policy)
        assert "<script>alert(1)" not in html
        assert "&lt;script&gt;alert(1)" in html


class TestOtherPages:
    def test_overview_lists_every_sla_and_contract(self) -> None:
        """Thirty SLAs with their figures and links, and a support contract with its credit."""
        results = [web_sample.sample_month(name=f"sla-{i:02d}")[1] for i in range(30)]
        now = datetime(2026, 11, 5, tzinfo=UTC)
        html = render_overview(
            results,
            [_support_summary()],
            month=Month(2026, 10),
            latest=Month(2026, 11),
            now=now,
            vantage="lon1",
        )
        assert html.count("<tr data-sla=") == 30
        assert 'href="/sla/sla-07/2026-10"' in html
        assert 'href="/support/uma"' in html
        assert '<option value="2026-10" selected>' in html
        assert "breached" in html

    def test_support_page_shows_levels_and_late_days(self) -> None:
        """A fault solved late: its three levels, the late day and the credit."""
        summary = _support_summary()
        html = render_support(summary, vantage="lon1")
        fault = summary.faults[0]
        assert fault.late_days, "the sample fault must be late"
        assert "L1 acknowledgement" in html
        assert "L3 solution" in html
        assert 'class="badge bad">late' in html
        assert f"{fault.credit_amount:,} GBP" in html
        assert '<svg class="tl"' in html

    def test_target_page_shows_latency_quality_and_failures(self) -> None:
        """Slots of the last day become latency and MOS charts; failures are listed."""
        recent = RecentResults()
        now = datetime(2026, 11, 5, 12, tzinfo=UTC).timestamp()
        for i in range(100):
            ok = i % 10 != 0
            recent.record(
                ProbeResult(
                    target="sip-call",
                    outcome=Outcome.UP if ok else Outcome.DOWN,
                    started_at=now - 80000 + i * 800,
                    duration_seconds=0.2 + i / 1000,
                    reason="" if ok else "low_mos",
                    details={"mos": 4.2 if ok else 2.9, "rtp_loss_ratio": 0.01},
                )
            )
        slots = recent.slots("sip-call", now)
        assert sum(s.probes for s in slots) == 100
        assert sum(s.failed for s in slots) == 10
        assert min(s.mos_min or 5 for s in slots) == 2.9
        view = TargetView(
            name="sip-call",
            kind="sip_call",
            role="probe",
            interval_seconds=60,
            services=("voice",),
            last=None,
            outcomes={"up": 90, "down": 10},
            slots=slots,
            slot_seconds=recent.slot_seconds,
            failures=(),
        )
        html = render_target(view, now=datetime.fromtimestamp(now, UTC), vantage="lon1")
        assert "10 failed of 100" in html
        assert "Call quality over the last day" in html
        assert "MOS 2.90" in html

    @given(
        st.lists(
            st.tuples(st.integers(0, 3 * 86400), st.booleans(), st.floats(0, 5)),
            max_size=200,
        ),
        st.integers(0, 3 * 86400),
    )
    def test_recent_slots_count_the_last_day(
        self, probes: list[tuple[int, bool, float]], now: int
    ) -> None:
        """Property: recorded in time order, the slots shown at ``now`` hold every probe of the
        slots overlapping the last day, no more, with the slowest duration of each."""
        recent = RecentResults()
        for at, ok, duration in sorted(probes):
            outcome = Outcome.UP if ok else Outcome.DOWN
            recent.record(ProbeResult("t", outcome, float(at), duration))
        last = max((at for at, _, _ in probes), default=0)
        horizon = last // 1800 * 1800 - 86400  # slots this old were dropped by later probes
        expected = [
            p
            for p in probes
            if p[0] // 1800 * 1800 > horizon
            and p[0] // 1800 * 1800 + 1800 > now - 86400
            and p[0] // 1800 * 1800 <= now
        ]
        slots = recent.slots("t", now)
        assert sum(s.probes for s in slots) == len(expected)
        assert sum(s.failed for s in slots) == sum(1 for p in expected if not p[1])
        if expected:
            assert max(s.duration_max for s in slots) == max(p[2] for p in expected)

    def test_recent_results_forget_older_than_a_day(self) -> None:
        """Slots older than a day are dropped when a new slot starts."""
        recent = RecentResults()
        for t in (0, 90_000):
            recent.record(ProbeResult("t", Outcome.UP, float(t), 0.1))
        assert [s.start for s in recent.slots("t", 90_001)] == [90_000]
        assert recent.slots("t", 1_000) == ()  # slot 0 was dropped, not merely hidden


class TestReportCommandHtml:
    def test_report_writes_one_self_contained_page(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`slawatch report --format html` prints the month page for the sample results."""
        status = cli.main(
            [
                "report",
                "--config",
                str(SAMPLES / "report.yaml"),
                "--results",
                str(SAMPLES / "results-2026-11-01.jsonl"),
                "--month",
                "2026-11",
                "--as-of",
                "2026-11-02T00:00:00Z",
                "--service",
                "voice",
                "--format",
                "html",
            ]
        )
        out = capsys.readouterr().out
        assert status == 0
        assert out.startswith("<!doctype html>")
        cells = cells_of(out)
        assert cells.external == []
        outage = int(datetime(2026, 11, 1, 10, 5, tzinfo=UTC).timestamp())
        assert cells.cells[outage][1] == "unavailable"
        assert "Subject: SLA Claim" in out


def _london() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/London")


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)


def _support_summary() -> Any:
    contract = SupportContract(name="uma", annual_fee=Decimal("24000.00"), currency="GBP")
    received = datetime(2026, 10, 5, 9, tzinfo=UTC)
    fault = open_fault("F-1", "uma", "IVR drops calls", Severity.BUSINESS_CRITICAL, received)
    return summarize(contract, [fault], received + timedelta(days=10), month=Month(2026, 10))
