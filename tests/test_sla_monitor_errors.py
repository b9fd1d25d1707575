"""The monitor's own failures never count against the vendor (issue 11, defect 1)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from monitor.reports.full import compose
from monitor.runtime.state import LiveState, add_result, merge
from monitor.sla.buckets import target_verdict
from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import MonthResult, compute_month
from monitor.sla.policy import (
    BucketRule,
    BucketRuleKind,
    BucketState,
    ServiceDef,
    SlaPolicy,
    Tally,
)
from monitor.sla.render import render
from monitor.store import schema
from monitor.store.sqlite import SqliteStore
from probes.result import Outcome, ProbeResult
from tests.strategies import STANDARD_CREDIT, unproven_scenarios, unproven_tallies

NOV = Month(2026, 11)
GRID = month_grid(NOV, "UTC", 300)
SVC = ServiceDef("voice", ("sip",))
POLICY = SlaPolicy(
    name="ujet-voice", service="voice", objective_percent=Decimal("99.999"), credit=STANDARD_CREDIT
)


def result(outcome: Outcome, reason: str = "", at: float | None = None) -> ProbeResult:
    start = GRID.bucket_start(100) + 7 if at is None else at
    return ProbeResult("sip", outcome, start, 0.01, reason)


def month_of(records: list[ProbeResult]) -> MonthResult:
    state = LiveState()
    for record in records:
        state.record(record, (300,))
    tallies = {"sip": dict.fromkeys(GRID.starts(), Tally(ok=10))}
    tallies["sip"].update(state.tallies(300)["sip"])
    return compute_month(POLICY, SVC, NOV, tallies, [])


class TestTally:
    def test_an_error_outcome_is_a_monitor_error_not_a_failure(self) -> None:
        """secret_unavailable, probe_error, an exception name: counted in errors only."""
        tally = None
        for reason in ("secret_unavailable", "probe_error", "RuntimeError", "local_emfile"):
            tally = add_result(tally, result(Outcome.ERROR, reason))
        assert tally is not None
        assert (tally.ok, tally.failed, tally.errors) == (0, 0, 4)
        assert dict(tally.error_reasons) == {
            "secret_unavailable": 1,
            "probe_error": 1,
            "RuntimeError": 1,
            "local_emfile": 1,
        }
        assert dict(tally.reasons) == {}

    def test_a_vendor_failure_is_a_failure(self) -> None:
        """A timeout stays the vendor's failure."""
        tally = add_result(None, result(Outcome.TIMEOUT, "timeout"))
        assert (tally.failed, tally.errors, dict(tally.reasons)) == (1, 0, {"timeout": 1})

    def test_merge_keeps_errors_apart(self) -> None:
        """Merging a stored row with this run's keeps errors, error reasons and excused apart."""
        a = Tally(ok=1, failed=2, reasons=MappingProxyType({"timeout": 2}), excused=1)
        b = Tally(errors=3, error_reasons=MappingProxyType({"probe_error": 3}))
        merged = merge(a, b)
        assert (merged.ok, merged.failed, merged.errors, merged.excused) == (1, 2, 3, 1)
        assert dict(merged.error_reasons) == {"probe_error": 3}


class TestMonth:
    def test_a_moved_password_file_is_unknown_not_downtime(self) -> None:
        """21 probes failing with secret_unavailable: the bucket is unknown (monitor error),
        no outage, full credit-free uptime, and the report and the claim say so."""
        records = [result(Outcome.ERROR, "secret_unavailable") for _ in range(21)]
        month = month_of(records)
        assert month.states[100] is BucketState.UNKNOWN
        assert month.buckets_unavailable == 0
        assert month.outages == ()
        assert month.uptime_percent == 100
        assert month.buckets_unknown_monitor_error == 1
        assert dict(month.monitor_errors) == {"secret_unavailable": 21}
        text = render([month], "text")
        assert "monitor errors   secret_unavailable x21" in text
        assert "1 bucket(s) unknown for monitor error" in text
        assert render([month], "json").count('"secret_unavailable": 21') == 1
        claim = compose([month], "claim", None, None)
        assert "No service credit is due" in claim
        assert "secret_unavailable" not in claim

    def test_errors_beside_a_vendor_failure_do_not_hide_it(self) -> None:
        """A real timeout in the bucket still makes it unavailable under any_failed, and the
        outage lists only the vendor's reason."""
        records = [result(Outcome.ERROR, "probe_error"), result(Outcome.TIMEOUT, "timeout")]
        month = month_of(records)
        assert month.states[100] is BucketState.UNAVAILABLE
        assert dict(month.outages[0].errors) == {"timeout": 1}

    def test_ok_probes_and_errors_only_is_unknown(self) -> None:
        """9 ok and 1 monitor error under any_failed: the error might have been a failure,
        so the bucket is unknown, never unavailable."""
        tally = Tally(ok=9, errors=1, error_reasons=MappingProxyType({"probe_error": 1}))
        assert target_verdict(tally, BucketRule()) is BucketState.UNKNOWN
        rule = BucketRule(kind=BucketRuleKind.ALL_FAILED)
        assert target_verdict(tally, rule) is BucketState.AVAILABLE


class TestProperties:
    @given(unproven_tallies(), st.sampled_from(["any", "all", "half"]))
    def test_a_monitor_error_never_makes_a_bucket_worse(self, tally: Tally, kind: str) -> None:
        """One more monitor error never turns a bucket unavailable or unknown into
        unavailable: at most it makes a known bucket unknown."""
        rule = {
            "any": BucketRule(),
            "all": BucketRule(kind=BucketRuleKind.ALL_FAILED),
            "half": BucketRule(kind=BucketRuleKind.FAILED_FRACTION, failed_fraction=_HALF),
        }[kind]
        before = target_verdict(tally, rule)
        after = target_verdict(replace(tally, errors=tally.errors + 1), rule)
        assert after in (before, BucketState.UNKNOWN)

    @given(unproven_scenarios(), st.data())
    def test_adding_a_monitor_error_never_lowers_the_claimable_uptime(
        self, scenario: dict[str, Any], data: st.DataObject
    ) -> None:
        """The claimable uptime with one more monitor error is at least what it was, and every
        uptime stays within [0, 100]."""
        before = _compute(scenario)
        grid = scenario["grid"]
        target = data.draw(st.sampled_from(scenario["service"].targets))
        start = grid.bucket_start(data.draw(st.integers(0, grid.count - 1)))
        tallies = {name: dict(column) for name, column in scenario["tallies"].items()}
        old = tallies[target].get(start, Tally())
        tallies[target][start] = replace(old, errors=old.errors + 1)
        after = _compute(scenario, tallies)
        for figure in (after.uptime_percent, after.uptime_percent_worst_case):
            assert figure is None or 0 <= figure <= 100
        if before.uptime_percent is not None and after.uptime_percent is not None:
            assert after.uptime_percent >= before.uptime_percent


_HALF = Fraction(1, 2)


def _compute(scenario: dict[str, Any], tallies: Any = None) -> MonthResult:
    return compute_month(
        scenario["policy"],
        scenario["service"],
        scenario["month"],
        scenario["tallies"] if tallies is None else tallies,
        scenario["exclusions"],
        canaries=scenario["canaries"],
    )


class TestStoreMigration:
    async def test_stored_monitor_errors_move_out_of_failed(self, tmp_path: Path) -> None:
        """A database written before the split (schema 2) has its monitor-side reasons moved
        from failed/reasons to errors/error_reasons when it is opened."""
        path = tmp_path / "slawatch.db"
        conn = sqlite3.connect(path, isolation_level=None)
        schema.migrate(conn, path, 0, target=2)
        conn.execute(
            "INSERT INTO tallies (vantage, target, bucket_start, bucket_seconds, ok, failed, "
            "reasons) VALUES ('v1', 'sip', 600, 300, 1, 25, "
            """'{"secret_unavailable": 21, "timeout": 2, "local_emfile": 1, """
            """"RuntimeError": 1}')"""
        )
        conn.execute(
            "INSERT INTO tallies (vantage, target, bucket_start, bucket_seconds, ok, failed, "
            """reasons) VALUES ('v1', 'sip', 900, 300, 5, 1, '{"timeout": 1}')"""
        )
        conn.close()
        store = SqliteStore(path, "v1")
        await store.open()
        try:
            rows = {r.bucket_start: r for r in await store.load_tally_rows(0, 3600)}
        finally:
            await store.close()
        moved = rows[600]
        assert (moved.ok, moved.failed, moved.errors) == (1, 2, 23)
        assert dict(moved.reasons) == {"timeout": 2}
        assert dict(moved.error_reasons) == {
            "secret_unavailable": 21,
            "local_emfile": 1,
            "RuntimeError": 1,
        }
        kept = rows[900]
        assert (kept.failed, kept.errors, dict(kept.reasons)) == (1, 0, {"timeout": 1})

    async def test_round_trip_keeps_errors_and_excused(self, tmp_path: Path) -> None:
        """A tally with errors and excused failures reads back as written."""
        from monitor.store.base import TallyRow, WriteBatch

        tally = Tally(
            ok=3,
            failed=2,
            reasons=MappingProxyType({"timeout": 2}),
            errors=4,
            error_reasons=MappingProxyType({"probe_error": 4}),
            excused=1,
        )
        store = SqliteStore(tmp_path / "s.db", "v1")
        await store.open()
        try:
            await store.write_batch(WriteBatch(tallies=[TallyRow.of("v1", "sip", 600, 300, tally)]))
            loaded = await store.load_tallies(0, 3600)
        finally:
            await store.close()
        assert loaded == {"sip": {600: tally}}
