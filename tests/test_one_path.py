"""One path from results to money: the issue-10 reproduction, on every path.

``config/samples/report.yaml`` with ``ujet-ivr`` given ``maintenance_notice: {min_notice: 1h,
policy: reject}`` and its maintenance window announced 10 minutes ahead, over the sample's
six-bucket ivr outage (1 November 2026, 02:00-02:30 UTC). The window breaks the rule, so it is
refused: 6 unavailable buckets (of 2,733 counted as of 22 November: 99.78%, below 99.9%), a 25%
credit of the 4,000.00 fee, and one violation, whether
the month is read by ``slawatch report`` from the results file, by ``slawatch report`` from the
store, by the daemon (``/metrics``' month) or by ``/api/v1/report``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.cli import main as cli
from monitor.clock import FixedClock
from monitor.config import load_config
from monitor.http.reports import daemon_report
from monitor.reports.results import read_results, tally_results
from monitor.runtime.daemon import Daemon
from monitor.sla.calendar import Month, month_grid
from monitor.store.base import TallyRow, WriteBatch
from monitor.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(60)

SAMPLES = Path(__file__).resolve().parent.parent / "config" / "samples"
RESULTS = SAMPLES / "results-2026-11-01.jsonl"
MONTH = Month(2026, 11)
# Three weeks into November: the month runs in every path, and nothing depends on today.
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def short_notice_config(tmp_path: Path, *, notice: dict[str, Any]) -> Path:
    """The sample configuration with the ivr SLA's notice rule and a short-notice window."""
    data = yaml.safe_load((SAMPLES / "report.yaml").read_text(encoding="utf-8"))
    data["monitor"]["state_dir"] = str(tmp_path)
    (ivr,) = [s for s in data["slas"] if s["name"] == "ujet-ivr"]
    ivr["maintenance_notice"] = notice
    (window,) = data["exclusions"]
    window["announced_at"] = "2026-11-01T01:50:00Z"
    path = tmp_path / "report.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def store_results(config_path: Path) -> None:
    """Write the sample results into the store as the daemon would have (its tallies)."""
    config = load_config(config_path)
    results = read_results(RESULTS)
    seconds = {p.bucket_seconds for p in config.sla_policies()}
    rows = []
    for length in sorted(seconds):
        # The daemon judges canary cover as results arrive and stores what it excused.
        grid = month_grid(MONTH, "UTC", length)
        tallies = tally_results(results, grid, canaries=config.canary_intervals())
        rows += [
            TallyRow.of("sample", target, start, length, t)
            for target, buckets in tallies.items()
            for start, t in buckets.items()
        ]
    store = SqliteStore(config.monitor.database_path, vantage="sample")
    await store.open()
    try:
        # The daemon ran the whole time so far: no gap.
        await store.write_batch(WriteBatch(tallies=rows, heartbeat=NOW.timestamp()))
    finally:
        await store.close()


def cli_report(capsys: pytest.CaptureFixture[str], config: Path, *extra: str) -> dict[str, Any]:
    argv = ["report", "--config", str(config), "--month", str(MONTH), "--service", "ivr"]
    status = cli.main([*argv, *extra, "--as-of", NOW.isoformat(), "--format", "json"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    document: dict[str, Any] = json.loads(captured.out)
    return document


async def daemon_paths(config_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The daemon's month (what /metrics shows) and /api/v1/report's document, in process."""
    daemon = Daemon(load_config(config_path), config_path, clock=FixedClock(NOW.timestamp()))
    await daemon.store.open()
    try:
        await daemon._load_history(NOW.timestamp())
        policy = daemon.accounting.policy("ujet-ivr")
        live = daemon.accounting.month_result(policy, NOW, MONTH).to_json()
        text, _ = await daemon_report(daemon, "ivr", str(MONTH), "json")
    finally:
        await daemon.store.close()
    return live, json.loads(text)


def figures(report: dict[str, Any]) -> tuple[int, int, Decimal, int]:
    return (
        report["buckets_unavailable"],
        report["buckets_excluded"],
        Decimal(str(report["credit_amount"])),
        len(report["outages"]),
    )


class TestShortNoticeWindow:
    def test_every_path_gives_one_credit(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Refused for short notice: 6 unavailable buckets and 400.00 on all four paths, and
        the refusal is reported as a violation wherever a report is printed."""
        config = short_notice_config(tmp_path, notice={"min_notice": "1h", "policy": "reject"})
        asyncio.run(store_results(config))
        from_results = cli_report(capsys, config, "--results", str(RESULTS))
        from_store = cli_report(capsys, config)
        live, api = asyncio.run(daemon_paths(config))
        # The canary's failure in the sample covers no instant of the ivr outage (canaries
        # excuse instants, not buckets), so nothing is excluded; the claimable reading counts
        # the 6 proven buckets over the month less exclusions: 99.93%, the 10% tier of 4000.00.
        expected = (6, 0, Decimal("400.00"), 1)
        assert figures(from_results["reports"][0]) == expected
        assert figures(from_store["reports"][0]) == expected
        assert figures(live) == expected
        assert figures(api["reports"][0]) == expected
        for document in (from_results, from_store, api):
            (violation,) = document["support"]["maintenance_notice_violations"]
            assert (violation["sla"], violation["window"]) == ("ujet-ivr", "mw-2026-11-01")
            assert (violation["rule"], violation["rejected"]) == ("short_notice", True)

    def test_flag_policy_honours_the_window_and_still_reports_it(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Under policy flag the window is honoured (no credit) and reported, on all paths."""
        config = short_notice_config(tmp_path, notice={"min_notice": "1h", "policy": "flag"})
        asyncio.run(store_results(config))
        from_results = cli_report(capsys, config, "--results", str(RESULTS))
        from_store = cli_report(capsys, config)
        live, api = asyncio.run(daemon_paths(config))
        expected = (0, 6, Decimal("0.00"), 0)
        for report in (from_results["reports"][0], from_store["reports"][0], live):
            assert figures(report) == expected
        assert figures(api["reports"][0]) == expected


class TestRecurringWindowUnderNoticeRule:
    def test_occurrences_are_announced_by_their_schedule(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A recurring maintenance window carries no announced_at: its schedule in the
        configuration is its notice, so a minimum-notice rule honours every occurrence and
        reports no violation, on every path."""
        data = yaml.safe_load((SAMPLES / "report.yaml").read_text(encoding="utf-8"))
        data["monitor"]["state_dir"] = str(tmp_path)
        (web,) = [s for s in data["slas"] if s["name"] == "web-portal"]
        web["maintenance_notice"] = {"min_notice": "1h", "policy": "reject"}
        config = tmp_path / "report.yaml"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        asyncio.run(store_results(config))
        argv = ["report", "--config", str(config), "--month", str(MONTH), "--service", "web"]
        documents = []
        for extra in (["--results", str(RESULTS)], []):
            assert cli.main([*argv, *extra, "--as-of", NOW.isoformat(), "--format", "json"]) == 0
            documents.append(json.loads(capsys.readouterr().out))
        daemon = Daemon(load_config(config), config, clock=FixedClock(NOW.timestamp()))

        async def live() -> tuple[dict[str, Any], dict[str, Any]]:
            await daemon.store.open()
            try:
                await daemon._load_history(NOW.timestamp())
                policy = daemon.accounting.policy("web-portal")
                month = daemon.accounting.month_result(policy, NOW, MONTH).to_json()
                text, _ = await daemon_report(daemon, "web", str(MONTH), "json")
                return month, json.loads(text)
            finally:
                await daemon.store.close()

        month, api = asyncio.run(live())
        reports = [documents[0]["reports"][0], documents[1]["reports"][0], month]
        reports.append(api["reports"][0])
        # Every Sunday occurrence of the month is honoured (the figure the report always gave).
        assert {r["excluded_by_kind"].get("scheduled_maintenance") for r in reports} == {30}
        assert len({json.dumps(r, sort_keys=True) for r in reports}) == 1
        for document in (*documents, api):
            assert document["support"]["maintenance_notice_violations"] == []


class TestMonthWindows:
    """``accounting.month_windows``: the notice rule, decided once for every path."""

    def config(self, tmp_path: Path) -> Path:
        data = yaml.safe_load((SAMPLES / "report.yaml").read_text(encoding="utf-8"))
        data["monitor"]["state_dir"] = str(tmp_path)
        data["support"] = {"contracts": [{"name": "uma", "annual_fee": 10, "currency": "GBP"}]}
        for sla in data["slas"]:
            sla["maintenance_notice"] = {"outside_support_hours_of": "uma", "policy": "reject"}
        # Tuesday 10 November 2026, 10:00-11:00 UTC: Support Hours, and never announced.
        data["exclusions"] = [
            {
                "id": "mw-day",
                "kind": "scheduled_maintenance",
                "start": "2026-11-10T10:00:00Z",
                "end": "2026-11-10T11:00:00Z",
                "services": ["web"],
            }
        ]
        data["recurring_exclusions"][0]["rrule"] = "FREQ=WEEKLY;BYDAY=TU;BYHOUR=16;BYMINUTE=30"
        path = tmp_path / "notice.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path

    def test_refused_windows_are_violations(self, tmp_path: Path) -> None:
        """An unannounced daytime window is refused under reject, with both rules it broke;
        a recurring occurrence needs no announcement but must still avoid Support Hours."""
        from monitor.accounting import inputs_from_config, month_windows

        inputs = inputs_from_config(load_config(self.config(tmp_path)))
        found = month_windows(inputs, inputs.policy("web-portal"), MONTH)
        assert "mw-day" not in {w.id for w in found.honoured}
        by_window: dict[str, list[str]] = {}
        for violation in found.violations:
            by_window.setdefault(violation.window_id, []).append(violation.kind.value)
        assert by_window.pop("mw-day") == ["no_notice", "during_support_hours"]
        # 16:30-17:00 on Tuesdays overlaps Support Hours (to 17:00): refused, for that only.
        assert by_window
        assert all(kinds == ["during_support_hours"] for kinds in by_window.values())
        assert not any(w.source.startswith("recurring:") for w in found.honoured)
        assert all(v.rejected for v in found.violations)

    def test_without_a_rule_every_window_is_honoured(self, tmp_path: Path) -> None:
        """No maintenance_notice: every window is honoured and nothing is reported."""
        from monitor.accounting import inputs_from_config, month_windows

        data = yaml.safe_load(self.config(tmp_path).read_text(encoding="utf-8"))
        for sla in data["slas"]:
            del sla["maintenance_notice"]
        path = tmp_path / "plain.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        inputs = inputs_from_config(load_config(path))
        found = month_windows(inputs, inputs.policy("web-portal"), MONTH)
        assert found.violations == ()
        assert "mw-day" in {w.id for w in found.honoured}
