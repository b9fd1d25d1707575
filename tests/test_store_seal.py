"""Issue 17, problem 4: a sealed month keeps the figures a claim cited.

After ``slawatch month seal``, editing the configuration (here a credit tier) no longer
changes what ``slawatch report`` shows for that month: the sealed figures are shown, the
difference a recomputation makes is stated, ``--recompute`` shows the new figures, the claim
cites the seal's digest, and ``slawatch store check`` verifies the seal's digest."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from monitor.cli import main as cli
from tests.test_store_integrity import config_in, database, write_day

AFTER = "2026-12-02T00:00:00Z"
TIER = "{below: 99.999, at_least: 99.9, credit_percent: 10}"

pytestmark = pytest.mark.timeout(120)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def report(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    argv = ["report", "--config", str(config), "--month", "2026-11", "--as-of", AFTER]
    return run(capsys, *argv, "--service", "voice", *extra)


@pytest.fixture
def sealed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """A store with November's voice month (one unavailable bucket), sealed; the config and
    the seal's digest."""
    config = config_in(tmp_path)
    asyncio.run(write_day(database(config)))
    status, out, err = run(
        capsys, "month", "seal", "--config", str(config), "--month", "2026-11", "--as-of", AFTER
    )
    assert (status, err) == (0, "")
    line = next(x for x in out.splitlines() if x.startswith("ujet-voice 2026-11: sealed"))
    digest = line.split("(")[1].rstrip(")")
    assert digest.startswith("sha256:")
    return config, digest


class TestSealedMonth:
    def test_unchanged_month_reports_the_seal(
        self, sealed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With nothing changed the report carries the seal and no differences."""
        config, digest = sealed
        status, out, _ = report(config, capsys, "--format", "json")
        assert status == 0
        (voice,) = json.loads(out)["reports"]
        assert voice["seal"]["digest"] == digest
        assert voice["seal"]["differences"] == []
        assert voice["credit_percent"] == 10.0

    def test_edited_config_keeps_sealed_figures_and_says_so(
        self, sealed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A credit tier edited after sealing: the report still shows the sealed 10%, states
        the recomputed 15%, --recompute shows 15%, the claim is refused until --recompute."""
        config, digest = sealed
        text = config.read_text(encoding="utf-8")
        assert TIER in text
        config.write_text(text.replace(TIER, TIER.replace("10}", "15}"), 1), encoding="utf-8")
        status, out, _ = report(config, capsys, "--format", "json")
        assert status == 0
        (voice,) = json.loads(out)["reports"]
        assert voice["credit_percent"] == 10.0
        assert voice["credit_amount"] == "1000.00"
        assert "credit_percent: sealed 10.0, recomputed 15.0" in voice["seal"]["differences"]
        status, out, _ = report(config, capsys, "--format", "text")
        assert status == 0
        assert f"ujet-voice 2026-11: SEALED figures (seal {digest})" in out
        assert "THE MONTH DIFFERS" in out
        assert "credit_percent: sealed 10.0, recomputed 15.0" in out
        status, out, err = report(config, capsys, "--format", "json", "--recompute")
        assert status == 0
        (voice,) = json.loads(out)["reports"]
        assert voice["credit_percent"] == 15.0
        assert "seal" not in voice
        assert "which differs: credit_percent: sealed 10.0, recomputed 15.0" in err
        status, out, err = report(config, capsys, "--format", "claim")
        assert (status, out) == (2, "")
        assert "month is sealed and today's recomputation differs" in err

    def test_claim_cites_the_seal(
        self, sealed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The claim text of a sealed, unchanged month names the seal's digest."""
        config, digest = sealed
        status, out, _ = report(config, capsys, "--format", "claim")
        assert status == 0
        assert f"Sealed figures: ujet-voice 2026-11 seal {digest}" in out

    def test_a_seal_is_never_replaced(
        self, sealed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Sealing again, even with another configuration, keeps the first seal."""
        config, digest = sealed
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace(TIER, TIER.replace("10}", "15}"), 1), encoding="utf-8")
        status, out, _ = run(
            capsys,
            "month",
            "seal",
            "--config",
            str(config),
            "--month",
            "2026-11",
            "--as-of",
            AFTER,
            "--service",
            "voice",
        )
        assert status == 0
        assert out == f"ujet-voice 2026-11: already sealed ({digest})\n"

    def test_an_open_month_is_not_sealed(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A month that has not ended cannot be sealed."""
        config = config_in(tmp_path)
        asyncio.run(write_day(database(config)))
        status, _, err = run(
            capsys,
            "month",
            "seal",
            "--config",
            str(config),
            "--month",
            "2026-11",
            "--as-of",
            "2026-11-20T00:00:00Z",
        )
        assert status == 2
        assert "has not ended yet" in err

    def test_store_check_verifies_seals(
        self, sealed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A sealed document edited in the file fails its digest in ``store check``."""
        config, _ = sealed
        status, out, _ = run(capsys, "store", "check", "--config", str(config))
        assert status == 0
        assert "3 sealed months verified" in out
        with sqlite3.connect(database(config)) as conn:
            conn.execute(
                "UPDATE month_seals SET doc = replace(doc, '\"credit_percent\":10.0', "
                "'\"credit_percent\":0.0') WHERE sla = 'ujet-voice'"
            )
        status, _, err = run(capsys, "store", "check", "--config", str(config))
        assert status == 1
        assert "month_seals ujet-voice 2026-11: digest mismatch" in err


class TestRollUp:
    """Issue 17, problem 3: a sealed month's tallies go after its dispute period; the
    month stays provable from its seal."""

    def test_roll_up_waits_for_the_dispute_period(
        self, sealed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Before the claim window plus the dispute period is over, nothing is dropped."""
        config, _ = sealed
        argv = ["month", "roll-up", "--config", str(config), "--month", "2026-11"]
        status, _, err = run(capsys, *argv, "--as-of", AFTER)
        assert status == 2
        assert "dispute period runs until" in err
        with sqlite3.connect(database(config)) as conn:
            assert conn.execute("SELECT count(*) FROM tallies").fetchone()[0] == 288

    def test_an_unsealed_month_is_not_rolled_up(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without a seal the tallies are the only proof: they stay."""
        config = config_in(tmp_path)
        asyncio.run(write_day(database(config)))
        argv = ["month", "roll-up", "--config", str(config), "--month", "2026-11"]
        status, _, err = run(capsys, *argv, "--as-of", "2027-06-01T00:00:00Z")
        assert status == 2
        assert "not sealed" in err

    def test_rolled_up_month_reports_its_seal(
        self, sealed: tuple[Path, str], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """After the roll-up the tallies are gone, the report still shows the sealed figures
        (and that a recomputation now differs), the seal holds every bucket's verdict, and the
        store passes its checks."""
        config, digest = sealed
        argv = ["month", "roll-up", "--config", str(config), "--month", "2026-11"]
        status, out, _ = run(capsys, *argv, "--as-of", "2027-04-01T00:00:00Z")
        assert status == 0
        assert out.startswith("2026-11: 288 tally rows rolled up")
        with sqlite3.connect(database(config)) as conn:
            assert conn.execute("SELECT count(*) FROM tallies").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM evidence").fetchone()[0] == 1
            doc = json.loads(
                conn.execute("SELECT doc FROM month_seals WHERE sla = 'ujet-voice'").fetchone()[0]
            )
        assert sum(count for _, count in doc["states"]) == doc["report"]["buckets_total"]
        assert ["unavailable", 1] in doc["states"]
        status, out, _ = report(config, capsys, "--format", "json")
        assert status == 0
        (voice,) = json.loads(out)["reports"]
        assert voice["seal"]["digest"] == digest
        assert voice["buckets_unavailable"] == 1
        assert "buckets_unavailable: sealed 1, recomputed 0" in voice["seal"]["differences"]
        assert run(capsys, "store", "check", "--config", str(config))[0] == 0


class TestDaemonSeals:
    async def test_daemon_seals_a_month_when_its_claim_window_opens(self, tmp_path: Path) -> None:
        """The daemon's maintenance seals last month an hour after it ends (its last flushes
        in), not before; months without one measured bucket are left unsealed."""
        from datetime import UTC, datetime

        from monitor.config import load_config
        from monitor.runtime.daemon import Daemon

        config_path = config_in(tmp_path)
        await write_day(database(config_path))
        daemon = Daemon(load_config(config_path), config_path)
        await daemon.store.open()
        try:
            early = datetime(2026, 12, 1, 0, 30, tzinfo=UTC).timestamp()
            await daemon._seal_closed_months(early)
            assert await daemon.store.load_month_seal("ujet-voice", "2026-11") is None
            later = datetime(2026, 12, 1, 2, 0, tzinfo=UTC).timestamp()
            await daemon._seal_closed_months(later)
            seal = await daemon.store.load_month_seal("ujet-voice", "2026-11")
            assert seal is not None
            assert seal.doc["report"]["buckets_unavailable"] == 1
            assert await daemon.store.load_month_seal("ujet-ivr", "2026-11") is None
        finally:
            await daemon.store.close()
