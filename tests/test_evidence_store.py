"""Claim and evidence export from the daemon's store (no results file): the failed probe runs
kept as evidence, cited by digest in the claim (issue 12, problem 6)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import pytest

from monitor.cli import main as cli
from monitor.store.base import EvidenceRow, TallyRow, WriteBatch
from monitor.store.sqlite import SqliteStore
from probes.result import Outcome
from tests.test_claim_pack import SAMPLE

pytestmark = pytest.mark.timeout(60)

AS_OF = "2026-12-03T00:00:00Z"
FIRST = 1794664457.0  # 2026-11-14T13:54:17Z
LAST = 1794664577.0  # 2026-11-14T13:56:17Z


async def fill(path: Path) -> None:
    """An hour of sip-edge tallies on 14 November with two failing buckets, and the two
    failed runs as evidence."""
    store = SqliteStore(path, "sample")
    await store.open()
    try:
        start = 1794663000  # 2026-11-14T13:30:00Z
        tallies = []
        for bucket in range(start, start + 3600, 300):
            failed = 1 if bucket in (1794664200, 1794664500) else 0
            reasons = {"timeout": 1} if failed else {}
            tallies.append(TallyRow("sample", "sip-edge", bucket, 300, 5 - failed, failed, reasons))
        evidence = [
            EvidenceRow("sample", ts, "sip-edge", Outcome.TIMEOUT, "timeout", 2.0)
            for ts in (FIRST, LAST)
        ]
        await store.write_batch(WriteBatch(tallies=tallies, evidence=evidence))
    finally:
        await store.close()


class TestFromStore:
    """`report --format claim` and `evidence export` read the same stored evidence."""

    def test_claim_cites_the_exported_store_evidence(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """First and last failure come from the stored runs; the digests match the export."""
        monkeypatch.chdir(tmp_path)
        Path("slawatch.yaml").write_text(SAMPLE.CONFIG.format(state_dir="."), encoding="utf-8")
        asyncio.run(fill(Path("slawatch.db")))
        common = ["--config", "slawatch.yaml", "--month", "2026-11", "--as-of", AS_OF]
        assert cli.main(["report", *common, "--service", "voice",
                         "--format", "claim"]) == 0  # fmt: skip
        claim = capsys.readouterr().out
        assert "first failure 2026-11-14 08:54:17 EST (13:54:17 UTC)" in claim
        assert "last failure 2026-11-14 08:56:17 EST (13:56:17 UTC)" in claim
        assert "every failed probe run kept" in claim
        assert "2 record(s), 2 failed, from store sample" in claim
        assert cli.main(["evidence", "export", *common, "--sla", "ujet-voice", "--out", "ev"]) == 0
        cited = re.findall(r"^  ([0-9a-f]{64})  (evidence-\S+)$", claim, re.M)
        assert len(cited) == 2
        for digest, name in cited:
            assert hashlib.sha256((Path("ev") / name).read_bytes()).hexdigest() == digest
        rows = (Path("ev") / "evidence-2026-11-ujet-voice.jsonl").read_text().splitlines()
        assert len(rows) == 2
        assert '"vantage":"sample"' in rows[0]
        assert '"duration_seconds":2.0' in rows[0]

    def test_no_store_is_one_line(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without a results file or a store, the export says what it expected."""
        monkeypatch.chdir(tmp_path)
        Path("slawatch.yaml").write_text(SAMPLE.CONFIG.format(state_dir="."), encoding="utf-8")
        argv = ["evidence", "export", "--config", "slawatch.yaml", "--month", "2026-11"]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("slawatch evidence export: --results: not given, and no store at")
        assert err.count("\n") == 1
