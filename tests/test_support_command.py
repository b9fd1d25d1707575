"""``slawatch fault ...`` against a real config file and SQLite store in a temp directory."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.cli.fault import register, run

pytestmark = pytest.mark.timeout(30)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
CONFIG = """\
monitor: {{name: test, state_dir: "{state}"}}
targets:
  - name: web-login
    kind: http
    http: {{url: "http://127.0.0.1:1/"}}
support:
  contracts:
    - {{name: uma, annual_fee: "120000.00", currency: GBP}}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration whose store lives in ``tmp_path``."""
    path = tmp_path / "slawatch.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "var"), encoding="utf-8")
    return path


def fault(config: Path, *words: str) -> tuple[int, str, str]:
    """Run ``slawatch fault WORDS --config CONFIG``; (status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="slawatch")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fault", words[0], "--config", str(config), *words[1:]])
    out, err = io.StringIO(), io.StringIO()
    status = run(args, out, err, now=NOW)
    return status, out.getvalue(), err.getvalue()


class TestFaultCommand:
    """Each action, then the listing, through the real store."""

    def test_lifecycle(self, config: Path) -> None:
        """Open, ack, restore, reassess, solve; list shows the 13% credit as JSON."""
        status, out, _ = fault(
            config,
            "open",
            "--id",
            "F-1",
            "--title",
            "IVR down",
            "--severity",
            "business_critical",
            "--received-at",
            "2026-11-23T10:00:00Z",
        )
        assert status == 0
        assert out.startswith("fault F-1 opened\n")
        assert "L1 acknowledgement due 2026-11-23 14:00 GMT" in out
        assert fault(config, "ack", "F-1", "--at", "2026-11-23T11:00:00Z")[0] == 0
        assert fault(config, "restore", "F-1", "--at", "2026-11-25T11:00:00Z")[0] == 0
        assert (
            fault(
                config,
                "reassess",
                "F-1",
                "--severity",
                "defect_with_workaround",
                "--at",
                "2026-11-27T12:00:00Z",
            )[0]
            == 0
        )
        status, out, _ = fault(config, "solve", "F-1")
        assert (status, out.splitlines()[0]) == (0, "fault F-1 solve recorded")
        status, out, _ = fault(config, "list", "--format", "json")
        doc = json.loads(out)
        (contract,) = doc["contracts"]
        assert contract["credit_month_percent"] == "13"
        assert [e["kind"] for e in contract["faults"][0]["events"]] == [
            "opened",
            "acknowledged",
            "restored",
            "reassessed",
            "solved",
        ]

    def test_errors(self, config: Path) -> None:
        """Unknown fault, bad time and missing store are reported with status 2."""
        status, _, err = fault(config, "list")
        assert status == 2
        assert "no store at" in err
        fault(config, "open", "--id", "F-1", "--title", "x", "--severity", "minor")
        status, _, err = fault(config, "ack", "F-9")
        assert (status, err) == (2, "slawatch fault ack: fault 'F-9' does not exist\n")
        status, _, err = fault(config, "ack", "F-1", "--at", "2026-11-30 12:00")
        assert status == 2
        assert (
            "--at: expected an RFC 3339 timestamp with offset such as 2026-11-10T02:00:00Z "
            "or 'now', got '2026-11-30 12:00'" in err
        )

    def test_list_open_keeps_credit_totals(self, config: Path) -> None:
        """``list --open`` hides solved faults but the month's credit still counts them."""
        fault(
            config,
            "open",
            "--id",
            "F-1",
            "--title",
            "IVR down",
            "--severity",
            "business_critical",
            "--received-at",
            "2026-11-23T10:00:00Z",
        )
        fault(config, "solve", "F-1", "--at", "2026-11-28T12:00:00Z")
        status, out, _ = fault(config, "list", "--open", "--format", "json")
        (contract,) = json.loads(out)["contracts"]
        assert (status, contract["faults"], contract["credit_month_percent"]) == (0, [], "15")
