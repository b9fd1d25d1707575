"""``slawatch report`` end to end through ``monitor.cli.main``, on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import main as cli
from monitor.cli import report as report_command
from monitor.reports import build as reporting
from monitor.sla.calendar import Month

SAMPLES = Path(__file__).resolve().parent.parent / "config" / "samples"
CONFIG = SAMPLES / "report.yaml"
RESULTS = SAMPLES / "results-2026-11-01.jsonl"
AS_OF = "2026-11-02T00:00:00Z"

pytestmark = pytest.mark.calendar


def report(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    argv = ["report", "--config", str(CONFIG), "--results", str(RESULTS), "--month", "2026-11"]
    status = cli.main([*argv, "--as-of", AS_OF, *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class TestReportCommand:
    def test_registered_in_the_cli(self) -> None:
        """The report command's module is one of the CLI's command modules."""
        assert report_command in cli.COMMAND_MODULES

    def test_json_for_the_sample(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The sample day: a 3-bucket voice outage, ivr maintenance excluded, a canary blip
        that excuses web's simultaneous failure (only web had a failure at that instant)."""
        status, out, err = report(capsys, "--format", "json")
        assert (status, err) == (0, "")
        reports = {r["service"]: r for r in json.loads(out)["reports"]}
        voice = reports["voice"]
        assert voice["buckets_unavailable"] == 3
        assert voice["buckets_pending"] == 8640 - 288
        assert voice["excluded_by_kind"] == {}
        assert voice["outages"][0]["start"] == "2026-11-01T10:05:00Z"
        assert voice["outages"][0]["end"] == "2026-11-01T10:20:00Z"
        assert voice["credit_amount"] == "1000.00"
        assert reports["ivr"]["excluded_by_kind"] == {"scheduled_maintenance": 6}
        assert reports["web"]["excluded_by_kind"] == {
            "customer_network": 1,
            "scheduled_maintenance": 30,
        }
        assert reports["ivr"]["buckets_unknown"] == 2
        assert reports["web"]["buckets_excluded"] == 31
        assert json.loads(out)["input"]["results"] == 1150

    def test_service_filter_and_claim(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--service narrows to one SLA; the claim cites the outage in local time."""
        status, out, _ = report(capsys, "--service", "voice", "--format", "claim")
        assert status == 0
        assert out.startswith("Subject: SLA Claim")
        assert "2026-11-01 10:05 GMT to 10:20 GMT" in out
        assert "ujet-ivr" not in out

    def test_unknown_service_is_refused(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown --service exits 2 naming the known services."""
        status, out, err = report(capsys, "--service", "fax")
        assert (status, out) == (2, "")
        assert "--service: expected one of ivr, voice, web, got 'fax'" in err

    def test_invalid_lines_refuse_unless_skipped(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad line stops the report with its number; --skip-invalid counts and skips it."""
        results = tmp_path / "r.jsonl"
        lines = RESULTS.read_text(encoding="utf-8").splitlines()
        lines.insert(2, '{"ts": "2026-11-01T00:00:00Z", "target": "sip-edge", "ok": "maybe"}')
        results.write_text("\n".join(lines) + "\n", encoding="utf-8")
        argv = ["report", "--config", str(CONFIG), "--results", str(results), "--month", "2026-11"]
        assert cli.main([*argv, "--as-of", AS_OF]) == 2
        err = capsys.readouterr().err
        assert f"{results}:3: ok: expected true or false, got 'maybe'" in err
        assert cli.main([*argv, "--as-of", AS_OF, "--skip-invalid", "--format", "json"]) == 0
        captured = capsys.readouterr()
        assert json.loads(captured.out)["input"]["invalid_lines_skipped"] == 1
        assert "skipped 1 invalid line(s); first:" in captured.err

    def test_targets_missing_from_the_config_are_noted(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Results for a target the config does not name are ignored with a note."""
        results = tmp_path / "r.jsonl"
        results.write_text('{"ts": 1793491200, "target": "old-probe", "ok": false}\n', "utf-8")
        argv = ["report", "--config", str(CONFIG), "--results", str(results), "--month", "2026-11"]
        assert cli.main([*argv, "--as-of", AS_OF, "--format", "csv"]) == 0
        assert "targets not in the config: old-probe" in capsys.readouterr().err

    @pytest.mark.parametrize(
        ("flag", "value", "message"),
        [
            ("--month", "2026-13", "month: expected YYYY-MM"),
            ("--as-of", "2026-11-02T00:00:00", "--as-of: expected a UTC offset"),
            ("--results", "/nonexistent/r.jsonl", "No such file"),
        ],
    )
    def test_bad_arguments_exit_2(
        self, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
    ) -> None:
        """Bad month, naive --as-of and a missing file each exit 2 with a clear message."""
        args = {"--month": "2026-11", "--as-of": AS_OF, "--results": str(RESULTS)}
        args[flag] = value
        argv = ["report", "--config", str(CONFIG)]
        for key, text in args.items():
            argv += [key, text]
        assert cli.main(argv) == 2
        assert message in capsys.readouterr().err

    def test_bad_config_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A config error is printed with its file and line."""
        config = tmp_path / "bad.yaml"
        config.write_text("targets: 5\n", encoding="utf-8")
        argv = ["report", "--config", str(config), "--results", str(RESULTS), "--month", "2026-11"]
        assert cli.main(argv) == 2
        assert f"{config}:1" in capsys.readouterr().err


class TestBuildReports:
    def test_a_past_month_is_complete(self) -> None:
        """now=None: no pending buckets; the days without results are unknown, not available."""
        from monitor.config import load_config
        from monitor.reports.results import read_results

        config = load_config(CONFIG)
        results = reporting.build_reports(
            config,
            reporting.grid_tallies(read_results(RESULTS), config.canary_intervals()),
            Month(2026, 11),
            "voice",
        )
        (voice,) = results
        assert voice.buckets_pending == 0
        assert voice.buckets_unknown == 8640 - 288
        assert voice.uptime_percent_worst_case is not None
        assert voice.uptime_percent_worst_case < 4

    def test_slas_with_different_buckets_each_get_their_grid(self) -> None:
        """A 5-minute and a 15-minute SLA over one results file: tallied once per grid."""
        from monitor.config import parse_config_text
        from monitor.reports.results import parse_lines

        text = CONFIG.read_text(encoding="utf-8").replace(
            "  - name: web-portal\n    service: web\n",
            "  - name: web-portal\n    service: web\n    bucket: 15m\n",
        )
        config = parse_config_text(text, "two-grids.yaml")
        start = 1793491200  # 2026-11-01T00:00:00Z
        lines = [
            json.dumps({"ts": start + 60 * i, "target": "agent-login", "ok": i != 20})
            for i in range(60)
        ]
        lines += [
            json.dumps({"ts": start + 60 * i, "target": "sip-edge", "ok": i != 20})
            for i in range(60)
        ]
        source = reporting.grid_tallies(parse_lines(lines), config.canary_intervals())
        reports = reporting.build_reports(config, source, Month(2026, 11))
        by_service = {r.service: r for r in reports}
        assert by_service["web"].bucket_seconds == 900
        assert by_service["web"].buckets_total == 2880
        assert (by_service["web"].buckets_available, by_service["web"].buckets_unavailable) == (
            3,
            1,
        )
        assert (by_service["voice"].buckets_available, by_service["voice"].buckets_unavailable) == (
            11,
            1,
        )
        assert by_service["web"].outages[0].start.minute == 15


class TestReportFromStore:
    async def _write_store(self, path: Path) -> None:
        from monitor.store.base import TallyRow, WriteBatch
        from monitor.store.sqlite import SqliteStore

        start = 1793491200  # 2026-11-01T00:00:00Z
        rows = [
            TallyRow("sample", "sip-edge", start + 300 * i, 300, ok=1, failed=0)
            for i in range(288)
            if i != 121
        ]
        rows.append(TallyRow("sample", "sip-edge", start + 300 * 121, 300, 0, 2, {"timeout": 2}))
        store = SqliteStore(path, vantage="sample")
        await store.open()
        try:
            await store.write_batch(WriteBatch(tallies=rows, heartbeat=start + 86_400))
        finally:
            await store.close()

    def test_without_results_the_store_is_read(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No --results: the tallies the daemon stored give the same kind of report."""
        import asyncio

        asyncio.run(self._write_store(tmp_path / "slawatch.db"))
        config = tmp_path / "report.yaml"
        text = CONFIG.read_text(encoding="utf-8").replace(
            "monitor:\n  name: sample\n", f"monitor:\n  name: sample\n  state_dir: {tmp_path}\n"
        )
        config.write_text(text, encoding="utf-8")
        argv = ["report", "--config", str(config), "--month", "2026-11", "--service", "voice"]
        status = cli.main([*argv, "--as-of", AS_OF, "--format", "json"])
        captured = capsys.readouterr()
        assert (status, captured.err) == (0, "")
        document = json.loads(captured.out)
        (voice,) = document["reports"]
        assert document["input"]["source"] == "store"
        assert voice["buckets_unavailable"] == 1
        assert voice["buckets_available"] == 287
        assert voice["outages"][0]["start"] == "2026-11-01T10:05:00Z"
        assert voice["outages"][0]["errors"] == {"timeout": 2}

    def test_missing_store_is_explained(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """No --results and no database: exit 2 naming the path that was looked for."""
        config = tmp_path / "report.yaml"
        text = CONFIG.read_text(encoding="utf-8").replace(
            "monitor:\n  name: sample\n", f"monitor:\n  name: sample\n  state_dir: {tmp_path}\n"
        )
        config.write_text(text, encoding="utf-8")
        argv = ["report", "--config", str(config), "--month", "2026-11", "--as-of", AS_OF]
        assert cli.main(argv) == 2
        assert f"no store at {tmp_path / 'slawatch.db'}" in capsys.readouterr().err
