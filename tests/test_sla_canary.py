"""Canaries excuse instants, not buckets (issue 12, problem 3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from monitor.reports.results import parse_lines, tally_results
from monitor.runtime.state import LiveState
from monitor.sla.calendar import Month, month_grid
from monitor.sla.canary import CanaryTimeline, canary_cover, covered, failing_spans
from monitor.sla.month import compute_month
from monitor.sla.policy import BucketState, ServiceDef, SlaPolicy, Tally
from monitor.sla.render import _evidence
from probes.result import Outcome, ProbeResult
from tests.strategies import STANDARD_CREDIT

NOV = Month(2026, 11)
GRID = month_grid(NOV, "UTC", 300)
SVC = ServiceDef("voice", ("sip",))
POLICY = SlaPolicy(
    name="ujet-voice", service="voice", objective_percent=Decimal("99.999"), credit=STANDARD_CREDIT
)
CANARY_INTERVAL = 40.0


def t(hms: str) -> float:
    return datetime.fromisoformat(f"2026-11-10T{hms}+00:00").timestamp()


BUCKET = GRID.index_of(t("14:05:00"))
VENDOR_FAILURES = [t("14:05:00") + 30 * n for n in range(10)]
CANARY = [("14:04:23", True), ("14:05:03", False), ("14:05:43", True), ("14:06:23", True)]


def _month(tallies: dict[str, dict[int, Tally]]) -> BucketState:
    full = {"sip": dict.fromkeys(GRID.starts(), Tally(ok=10))}
    full["sip"].update(tallies.get("sip", {}))
    result = compute_month(POLICY, SVC, NOV, full, [], canaries=("net",))
    assert BUCKET is not None
    return result.states[BUCKET]


class TestCover:
    def test_a_failure_covers_its_interval_cut_by_successes(self) -> None:
        """The 14:05:03 failure covers from just after 14:04:23 (the last success) to 14:05:43
        (the next success)."""
        timeline = CanaryTimeline(tuple((t(h), ok) for h, ok in CANARY), CANARY_INTERVAL)
        assert failing_spans(timeline) == [(t("14:04:23") + 1e-6, t("14:05:43"))]

    def test_every_canary_must_fail_at_the_instant(self) -> None:
        """Two canaries: only the instants both cover."""
        a = CanaryTimeline(((t("14:05:00"), False),), 30.0)
        b = CanaryTimeline(((t("14:05:20"), False),), 30.0)
        cover = canary_cover({"a": a, "b": b})
        assert cover == ((t("14:04:50"), t("14:05:30")),)
        assert covered(cover, t("14:05:10"))
        assert not covered(cover, t("14:05:40"))

    @given(
        st.lists(
            st.tuples(st.integers(0, 10_000_000).map(lambda ms: ms / 1000), st.booleans()),
            max_size=40,
        )
    )
    def test_a_success_is_never_covered(self, probes: list[tuple[float, bool]]) -> None:
        """An instant at which a canary succeeded (and did not also fail) is never covered
        (instants in milliseconds, as probes start)."""
        timeline = CanaryTimeline(tuple(probes), 30.0)
        cover = canary_cover({"c": timeline})
        failed_at = {epoch for epoch, ok in probes if not ok}
        for epoch, ok in probes:
            if ok and epoch not in failed_at:
                assert not covered(cover, epoch)


class TestThe1405Case:
    """Vendor failed 10 of 10 probes 14:05-14:10; the canary failed once at 14:05:03 and was
    back at 14:05:43: the bucket is unavailable (before: excluded as customer_network)."""

    def test_results_file(self) -> None:
        """From a results file: 2 failures excused, 8 not, the bucket is unavailable."""
        lines = [
            json.dumps({"ts": _iso(epoch), "target": "sip", "ok": False, "error": "timeout"})
            for epoch in VENDOR_FAILURES
        ] + [
            json.dumps({"ts": _iso(t(h)), "target": "net", "ok": ok, "error": None})
            for h, ok in CANARY
        ]
        tallies = tally_results(parse_lines(lines), GRID, canaries={"net": CANARY_INTERVAL})
        cell = tallies["sip"][GRID.bucket_start(BUCKET or 0)]
        assert (cell.failed, cell.excused) == (10, 2)
        assert _month({"sip": dict(tallies["sip"])}) is BucketState.UNAVAILABLE

    def test_the_outage_counts_only_proven_failures(self) -> None:
        """The claim's evidence says 8 failed (the proof) and 2 more excused, never "10 of 10"."""
        full = {"sip": dict.fromkeys(GRID.starts(), Tally(ok=10))}
        full["sip"][GRID.bucket_start(BUCKET or 0)] = Tally(
            failed=10, reasons={"timeout": 10}, excused=2
        )
        result = compute_month(POLICY, SVC, NOV, full, [], canaries=("net",))
        (outage,) = result.outages
        assert (dict(outage.failed_targets), outage.excused, outage.probes) == ({"sip": 8}, 2, 10)
        assert result.to_json()["outages"][0]["excused"] == 2
        text = _evidence(outage)
        assert text.startswith("8 of 10 probes failed (2 more failed while every canary")

    def test_daemon_sees_the_canary_failure_after_the_vendor_failure(self) -> None:
        """Live: the vendor's 14:05:00 failure arrives before the canary's 14:05:03 failure
        and is excused afterwards; the canary's success at 14:05:43 ends the cover."""
        state = LiveState()
        state.set_canaries({"net": CANARY_INTERVAL})
        events = [(epoch, "sip", False) for epoch in VENDOR_FAILURES]
        events += [(t(h), "net", ok) for h, ok in CANARY]
        for epoch, target, ok in sorted(events):
            outcome = Outcome.UP if ok else Outcome.TIMEOUT
            state.record(ProbeResult(target, outcome, epoch, 0.01, "" if ok else "timeout"), (300,))
        cell = state.tallies(300)["sip"][GRID.bucket_start(BUCKET or 0)]
        assert (cell.failed, cell.excused) == (10, 2)
        assert _month({"sip": dict(state.tallies(300)["sip"])}) is BucketState.UNAVAILABLE

    def test_a_bucket_whose_every_failure_is_excused_is_customer_network(self) -> None:
        """The canary down across the whole bucket: every failure excused, bucket excluded."""
        state = LiveState()
        state.set_canaries({"net": CANARY_INTERVAL})
        events = [(epoch, "sip", False) for epoch in VENDOR_FAILURES]
        events += [(t("14:04:30") + 40 * n, "net", False) for n in range(9)]
        for epoch, target, _ok in sorted(events):
            state.record(ProbeResult(target, Outcome.DOWN, epoch, 0.01, "timeout"), (300,))
        cell = state.tallies(300)["sip"][GRID.bucket_start(BUCKET or 0)]
        assert cell.excused == cell.failed == 10
        assert _month({"sip": dict(state.tallies(300)["sip"])}) is BucketState.EXCLUDED


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


class TestOnePath:
    @given(
        st.lists(
            st.tuples(
                st.integers(0, 1200),
                st.sampled_from(["sip", "net", "net2"]),
                st.booleans(),
            ),
            max_size=60,
        ),
        st.booleans(),
    )
    def test_the_daemon_and_a_results_file_excuse_the_same_failures(
        self, events: list[tuple[int, str, bool]], two_canaries: bool
    ) -> None:
        """The same results, arriving in time order at the daemon or read from a file, give
        the same tallies, excused counts included (one path from results to money)."""
        canaries = {"net": 30.0, "net2": 45.0} if two_canaries else {"net": 30.0}
        base = t("14:00:00")
        ordered = sorted(events)
        state = LiveState()
        state.set_canaries(canaries)
        for offset, target, ok in ordered:
            outcome = Outcome.UP if ok else Outcome.TIMEOUT
            state.record(
                ProbeResult(target, outcome, base + offset, 0.01, "" if ok else "timeout"), (300,)
            )
        lines = [
            json.dumps(
                {
                    "ts": _iso(base + offset),
                    "target": target,
                    "ok": ok,
                    "error": None if ok else "timeout",
                }
            )
            for offset, target, ok in ordered
        ]
        from_file = tally_results(parse_lines(lines), GRID, canaries=canaries)
        live = state.tallies(300)
        assert dict(live.get("sip", {})) == dict(from_file.get("sip", {}))
