"""`slawatch import` against a real Prometheus holding a synthetic past month.

February 2026 of one blackbox-style target is written as OpenMetrics (a 60 s scrape stamped
exactly on every minute, so a sample sits on EVERY bucket edge), turned into TSDB blocks by
`promtool tsdb create-blocks-from openmetrics`, and served by a real Prometheus on loopback.
The month holds, on purpose:

- a failed sample exactly on a bucket's start (02-10 10:00:00): only that bucket is down;
  Prometheus 2.x's closed range selectors would also have put it in 09:55;
- a failed sample exactly on the month's start (02-01 00:00:00), one exactly on the next
  month's start (03-01 00:00:00, which is March's), and two failures inside 02-05 08:05;
- a scrape gap (no samples 02-12 03:02..03:12): buckets 03:00, 03:05, 03:10 unknown;
- a stale series (a NaN at 02-15 06:20, nothing until 06:41): 06:20..06:40, 5 buckets unknown;
- an exporter restart (02-20 12:00 and 12:01: up 0, no probe_success; its counters reset):
  bucket 12:00 unknown, never the vendor's failure.

Hand-computed: 28 days x 288 = 8064 buckets; 3 unavailable, 9 unknown, 8052 available;
claimable uptime 8061 / 8064 (unknown buckets are not proven unavailable).
"""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.cli.main import build_parser, main
from monitor.promsource import importer
from tests.peers import require_binary
from tests.test_deploy_contract import free_port, running, wait_http_ok

pytestmark = pytest.mark.timeout(240)

INSTANCE = "https://portal.example/health"


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


START = _epoch("2026-01-31T23:50:00")  # a margin before the month
END = _epoch("2026-03-01T00:10:00")
FAILED = {
    _epoch("2026-02-01T00:00:00"),
    _epoch("2026-02-05T08:07:00"),
    _epoch("2026-02-05T08:08:00"),
    _epoch("2026-02-10T10:00:00"),
    _epoch("2026-03-01T00:00:00"),
}
GAP = (_epoch("2026-02-12T03:02:00"), _epoch("2026-02-12T03:13:00"))
STALE_AT, STALE_UNTIL = _epoch("2026-02-15T06:20:00"), _epoch("2026-02-15T06:41:00")
RESTART = (_epoch("2026-02-20T12:00:00"), _epoch("2026-02-20T12:02:00"))


def openmetrics(lo: int, hi: int) -> str:
    """The synthetic month's samples in [lo, hi): probe_success, up, and an exporter counter
    that resets (its count restarts at each file; only the restart matters here)."""
    success, up, counter = [], [], []
    labels = f'{{job="blackbox",instance="{INSTANCE}"}}'
    count = 0
    for ts in range(max(lo, START), min(hi, END + 1), 60):
        if GAP[0] <= ts < GAP[1]:
            continue  # Prometheus was not scraping at all
        if RESTART[0] <= ts < RESTART[1]:
            up.append(f"up{labels} 0 {ts}")
            count = 0  # the exporter's counters start again
            continue
        up.append(f"up{labels} 1 {ts}")
        count += 1
        counter.append(f"blackbox_probes_total{labels} {count} {ts}")
        if ts == STALE_AT:
            success.append(f"probe_success{labels} NaN {ts}")
            continue
        if STALE_AT < ts < STALE_UNTIL:
            continue
        success.append(f"probe_success{labels} {0 if ts in FAILED else 1} {ts}")
    return "\n".join(
        [
            "# TYPE probe_success gauge",
            *success,
            "# TYPE up gauge",
            *up,
            "# TYPE blackbox_probes counter",
            *counter,
            "# EOF",
            "",
        ]
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@dataclass
class Served:
    base: str
    work: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """promtool writes the blocks; Prometheus serves them (retention long enough for them)."""
    prometheus = require_binary("prometheus")
    promtool = require_binary("promtool", "prometheus")
    work = tmp_path_factory.mktemp("prom-import")
    data = work / "data"
    # promtool re-reads its whole input for every 2-hour block it cuts: one file per day.
    for day in range(START // 86400 * 86400, END + 1, 86400):
        source = work / "day.om"
        source.write_text(openmetrics(day, day + 86400))
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(data)],
            check=True,
            timeout=60,
            capture_output=True,
        )
    (work / "prometheus.yml").write_text("global: {}\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        prometheus,
        f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={data}",
        "--storage.tsdb.retention.time=100y",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with running(args, work / "prometheus.log") as proc:
        wait_http_ok(base + "/-/ready", 30, proc)
        yield Served(base, work)


def config(directory: Path, url: str, *, extra_target_url: str | None = None) -> Path:
    targets: list[dict[str, Any]] = [
        {
            "name": "portal",
            "kind": "prometheus",
            "prometheus": {
                "url": url,
                "selector": f'probe_success{{job="blackbox",instance="{INSTANCE}"}}',
                "up": f'up{{job="blackbox",instance="{INSTANCE}"}}',
                "chunk": "1d",
            },
        }
    ]
    if extra_target_url is not None:
        targets.append(
            {
                "name": "other",
                "kind": "prometheus",
                "prometheus": {
                    "url": extra_target_url,
                    "selector": "probe_success",
                    "timeout": "2s",
                },
            }
        )
    document = {
        "monitor": {"name": "vantage-1", "state_dir": str(directory / "state")},
        "targets": targets,
        "services": [{"name": "portal", "targets": [t["name"] for t in targets]}],
        "slas": [
            {
                "name": "portal-sla",
                "service": "portal",
                "objective": 99.99,
                "bucket": "5m",
                "timezone": "UTC",
                "monthly_fee": "1000.00",
                "currency": "EUR",
                "credit_tiers": [{"below": 99.99, "credit_percent": 10}],
            }
        ],
    }
    path = directory / "slawatch.yaml"
    path.write_text(json.dumps(document, indent=2))
    return path


def tally_rows(database: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as conn:
        return sorted(conn.execute("SELECT * FROM tallies").fetchall())


class TestImportFromRealPrometheus:
    def test_report_matches_the_hand_computed_month(
        self, served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Edge sample, gap, stale series and exporter restart give exactly the expected month."""
        path = config(tmp_path, served.base)
        assert main(["import", "--config", str(path), "--month", "2026-02"]) == 0
        line = capsys.readouterr().out
        assert "8052" not in line  # the import reports samples and rows, not the verdicts
        assert (
            main(["report", "--config", str(path), "--month", "2026-02", "--format", "json"]) == 0
        )
        report = json.loads(capsys.readouterr().out)["reports"][0]
        assert report["buckets_total"] == 8064
        assert report["buckets_unavailable"] == 3
        assert report["buckets_unknown"] == 9
        assert report["buckets_available"] == 8052
        # Claimable: the 9 unknown buckets are not proven unavailable, so they count as available.
        assert report["uptime_ratio_exact"] == "8061/8064"
        starts = sorted(o["start"] for o in report["outages"])
        assert starts == [
            "2026-02-01T00:00:00Z",
            "2026-02-05T08:05:00Z",
            "2026-02-10T10:00:00Z",
        ]

    def test_running_twice_changes_nothing(
        self, served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The second import writes the very same rows (absolute counts, upserted)."""
        path = config(tmp_path, served.base)
        assert main(["import", "--config", str(path), "--month", "2026-02"]) == 0
        database = tmp_path / "state" / "slawatch.db"
        first = tally_rows(database)
        assert (
            main(["import", "--config", str(path), "--month", "2026-02", "--target", "portal"]) == 0
        )
        assert tally_rows(database) == first
        out = capsys.readouterr().out
        assert "duplicate timestamps dropped" in out

    def test_unreachable_prometheus_fails_cleanly_and_writes_nothing(
        self, served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """One target's Prometheus is down: a one-line error, exit 1, no database at all."""
        closed = f"http://127.0.0.1:{free_port()}"
        path = config(tmp_path, served.base, extra_target_url=closed)
        assert main(["import", "--config", str(path), "--month", "2026-02"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert f"prometheus {closed}: cannot reach it" in err
        assert "nothing was written" in err
        assert not (tmp_path / "state" / "slawatch.db").exists()

    def test_failure_after_an_earlier_import_leaves_the_store_as_it_was(
        self, served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """All or nothing over an existing store: a failing run adds and changes no row."""
        closed = f"http://127.0.0.1:{free_port()}"
        path = config(tmp_path, served.base, extra_target_url=closed)
        assert (
            main(["import", "--config", str(path), "--month", "2026-02", "--target", "portal"]) == 0
        )
        database = tmp_path / "state" / "slawatch.db"
        before = tally_rows(database)
        assert before
        assert main(["import", "--config", str(path), "--month", "2026-01"]) == 1
        assert tally_rows(database) == before
        assert "nothing was written" in capsys.readouterr().err

    def test_progress_bar_on_a_terminal_only(self, served: Served, tmp_path: Path) -> None:
        """A terminal on stderr gets a progress bar (one chunk per query); a pipe gets none."""
        path = config(tmp_path, served.base)
        argv = ["import", "--config", str(path), "--month", "2026-02"]
        out, tty = io.StringIO(), _Terminal()
        assert importer.run(build_parser("import").parse_args(argv), out, tty) == 0
        frames = tty.getvalue().split("\r")[1:]
        # 28 days + the margin chunk, for probe_success and for up.
        assert frames[-1].startswith("importing [##############################] 58/58 queries")
        assert len(frames) == 58
        assert out.getvalue().startswith("slawatch import: 2026-02: 1 target(s), ")
        piped_out, piped_err = io.StringIO(), io.StringIO()
        assert importer.run(build_parser("import").parse_args(argv), piped_out, piped_err) == 0
        assert piped_err.getvalue() == ""

    def test_bad_target_name_is_named(
        self, served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--target naming no target: exit 2 and the known names."""
        path = config(tmp_path, served.base)
        assert (
            main(["import", "--config", str(path), "--month", "2026-02", "--target", "nope"]) == 2
        )
        assert "--target: expected one of portal, got 'nope'" in capsys.readouterr().err
