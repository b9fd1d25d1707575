"""The reading and writing commands on the PostgreSQL store (issue 14's leftover).

``slawatch report``, ``month seal``, ``claim`` and ``evidence`` open the store that
``monitor.store`` names. The same day of tallies written to a SQLite file and to a real
PostgreSQL schema (tests/pg_cluster.py) gives the same report, the same seal digest and the same
claim evidence; ``slawatch store status`` and ``migrate`` ask the server, and the file
operations refuse a PostgreSQL configuration in one line instead of saying there is no store.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from monitor.cli import main as cli
from monitor.store.base import EvidenceRow, Store, TallyRow, WriteBatch
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore
from probes.result import Outcome
from tests import pg_cluster
from tests.test_store_integrity import CONFIG, START

AS_OF = "2026-12-02T00:00:00Z"
ENV = "SLAWATCH_TEST_CLI_DSN"

pytestmark = pytest.mark.timeout(120)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def configs(tmp_path: Path) -> tuple[Path, Path]:
    """The report sample twice: on a SQLite file, and on PostgreSQL (dsn from ``ENV``)."""
    text = CONFIG.read_text(encoding="utf-8")
    head = "monitor:\n  name: sample\n"
    sqlite_dir, pg_dir = tmp_path / "sqlite", tmp_path / "pg"
    sqlite_dir.mkdir()
    pg_dir.mkdir()
    on_sqlite = sqlite_dir / "report.yaml"
    on_sqlite.write_text(text.replace(head, f"{head}  state_dir: {sqlite_dir}\n"), "utf-8")
    on_pg = pg_dir / "report.yaml"
    store = f"  store: {{backend: postgresql, dsn: {{env: {ENV}}}}}\n"
    on_pg.write_text(text.replace(head, f"{head}  state_dir: {pg_dir}\n{store}"), "utf-8")
    return on_sqlite, on_pg


async def write_day(store: Store, vantage: str = "sample", location: str = "") -> None:
    """One day of sip-edge tallies with one failed bucket and its evidence, as a daemon's."""
    rows = [
        TallyRow(vantage, "sip-edge", START + 300 * i, 300, 1, 0, location=location)
        for i in range(288)
    ]
    failed = {"refused": 2}
    rows[121] = TallyRow(
        vantage, "sip-edge", START + 300 * 121, 300, 0, 2, failed, location=location
    )
    at = START + 300 * 121 + 10
    evidence = [
        EvidenceRow(vantage, at, "sip-edge", Outcome.DOWN, "refused", 0.1, location=location)
    ]
    await store.open()
    try:
        await store.write_batch(
            WriteBatch(tallies=rows, evidence=evidence, heartbeat=START + 86_400)
        )
    finally:
        await store.close()


@pytest.fixture
def both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The two configurations, each store holding the same day."""
    dsn = pg_cluster.cluster().schema_dsn(pg_cluster.schema_for(tmp_path))
    monkeypatch.setenv(ENV, dsn)
    on_sqlite, on_pg = configs(tmp_path)
    asyncio.run(write_day(SqliteStore(on_sqlite.parent / "slawatch.db", "sample")))
    asyncio.run(write_day(PostgresStore(dsn, "sample", connect_timeout=5)))
    return on_sqlite, on_pg


def report_json(capsys: pytest.CaptureFixture[str], config: Path) -> dict[str, Any]:
    argv = ["report", "--config", str(config), "--month", "2026-11", "--as-of", AS_OF]
    status, out, err = run(capsys, *argv, "--format", "json")
    assert (status, err) == (0, ""), err
    doc: dict[str, Any] = json.loads(out)
    return doc


class TestCommandsOnPostgres:
    def test_sqlite_path_is_where_the_sample_writes(self, both: tuple[Path, Path]) -> None:
        """The SQLite side of this test is the file the configuration names (so the two
        reports below really come from two stores)."""
        from monitor.config import load_config

        on_sqlite, _ = both
        assert load_config(on_sqlite).monitor.database_path == on_sqlite.parent / "slawatch.db"
        assert not (both[1].parent / "slawatch.db").exists()

    def test_report_reads_postgres_as_it_reads_sqlite(
        self, both: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The month from PostgreSQL equals the month from SQLite, outage and credit included;
        only where the input came from differs, and the dsn is never printed."""
        on_sqlite, on_pg = both
        from_sqlite, from_pg = report_json(capsys, on_sqlite), report_json(capsys, on_pg)
        voice = next(r for r in from_pg["reports"] if r["service"] == "voice")
        assert voice["buckets_unavailable"] == 1
        assert voice["outages"][0]["start"] == "2026-11-01T10:05:00Z"
        assert from_pg["input"]["database"] == "the PostgreSQL store (monitor.store.dsn)"
        assert "postgresql://" not in json.dumps(from_pg)
        from_sqlite.pop("input")
        from_pg.pop("input")
        assert from_pg == from_sqlite

    def test_seal_and_claim_on_postgres(
        self, both: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``month seal`` seals the PostgreSQL month; its sealed figures and tallies digest
        equal the SQLite seal's (the configuration hashes differ: the two files name different
        stores); a claim recorded on PostgreSQL is listed from it."""
        seals = []
        for config in both:
            argv = ["month", "seal", "--config", str(config), "--month", "2026-11"]
            status, out, err = run(capsys, *argv, "--as-of", AS_OF, "--service", "voice")
            assert (status, err) == (0, ""), err
            line = next(x for x in out.splitlines() if x.startswith("ujet-voice 2026-11: sealed"))
            digest = line.split("(")[1].rstrip(")")
            voice = next(
                r for r in report_json(capsys, config)["reports"] if r["service"] == "voice"
            )
            assert voice["seal"]["digest"] == digest
            assert voice["seal"]["differences"] == []
            seals.append(voice)
        on_sqlite, on_pg = seals
        assert on_pg["seal"]["tallies_digest"] == on_sqlite["seal"]["tallies_digest"]
        assert on_pg["seal"]["config_hash"] != on_sqlite["seal"]["config_hash"]
        on_sqlite.pop("seal")
        on_pg.pop("seal")
        assert on_pg == on_sqlite
        pg = str(both[1])
        argv = ["claim", "record", "--config", pg, "--sla", "ujet-voice", "--month", "2026-11"]
        status, _, err = run(capsys, *argv, "--reference", "T-1")
        assert (status, err) == (0, ""), err
        status, out, err = run(capsys, "claim", "list", "--config", pg)
        assert (status, err) == (0, "")
        assert out.startswith("ujet-voice 2026-11 filed ")
        assert out.rstrip().endswith(" T-1")
        status, out, _ = run(capsys, "claim", "list", "--config", str(both[0]))
        assert (status, out) == (0, "")

    def test_evidence_export_from_postgres(
        self, both: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``evidence export`` writes the same files, byte for byte, from either store: the
        failed probe behind the outage and the digests the claim cites."""
        written = []
        for config in both:
            out = config.parent / "evidence"
            argv = ["evidence", "export", "--config", str(config), "--month", "2026-11"]
            status, _, err = run(capsys, *argv, "--as-of", AS_OF, "--out", str(out))
            assert (status, err) == (0, ""), err
            files = {p.name: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
            assert "SHA256SUMS" in files
            written.append(files)
        assert written[1] == written[0]
        assert any(b"refused" in body for body in written[1].values())

    def test_located_outage_evidence_names_every_location_that_saw_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An SLA judged by a quorum of 2 of dublin and london: both locations failed bucket
        121, so it is unavailable, and the exported evidence holds both members' failed probes
        (each naming its vantage), not paris's (a location outside the SLA's ``of``)."""
        dsn = pg_cluster.cluster().schema_dsn(pg_cluster.schema_for(tmp_path))
        monkeypatch.setenv(ENV, dsn)
        config = configs(tmp_path)[1]
        text = config.read_text("utf-8").replace(
            "  name: sample\n", "  name: d1\n  location: dublin\n"
        )
        rule = "    locations: {down_when: quorum, quorum: 2, of: [dublin, london]}\n"
        text = text.replace("    service: voice\n", "    service: voice\n" + rule)
        config.write_text(text, "utf-8")
        for vantage, location in (("d1", "dublin"), ("l1", "london"), ("p1", "paris")):
            store = PostgresStore(dsn, vantage, connect_timeout=5, location=location)
            asyncio.run(write_day(store, vantage, location))
        voice = next(r for r in report_json(capsys, config)["reports"] if r["service"] == "voice")
        assert voice["buckets_unavailable"] == 1
        assert voice["outages"][0]["locations"] == ["dublin", "london"]
        out = tmp_path / "evidence"
        argv = ["evidence", "export", "--config", str(config), "--month", "2026-11"]
        status, _, err = run(capsys, *argv, "--as-of", AS_OF, "--out", str(out), "--sla", "voice")
        assert (status, err) == (0, ""), err
        lines = (out / "evidence-2026-11-ujet-voice.jsonl").read_text("utf-8").splitlines()
        vantages = sorted(json.loads(line)["vantage"] for line in lines)
        assert vantages == ["d1", "l1"]

    def test_store_commands_on_postgres(
        self, both: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``store status`` and ``store migrate`` ask the PostgreSQL server for its schema;
        the file operations (check, backup, init) refuse a PostgreSQL configuration in one line
        naming the backend instead of saying there is no store."""
        from monitor.store.postgres_schema import SCHEMA_VERSION

        config = str(both[1])
        status, out, err = run(capsys, "store", "status", "--config", config)
        assert (status, err) == (0, "")
        assert out.startswith("postgresql ")
        assert out.rstrip().endswith(f"schema version {SCHEMA_VERSION}, up to date")
        status, out, err = run(capsys, "store", "migrate", "--config", config)
        assert (status, err) == (0, "")
        assert out.rstrip().endswith(f"schema version {SCHEMA_VERSION} -> {SCHEMA_VERSION}")
        for command in ("check", "init"):
            status, out, err = run(capsys, "store", command, "--config", config)
            assert (status, out) == (2, "")
            assert len(err.splitlines()) == 1
            assert "monitor.store.backend is postgresql" in err
            assert "pg_dump" in err

    def test_migrate_a_fresh_postgres_schema(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """On an empty schema, ``store status`` reads version 0 with migrations pending and
        ``store migrate`` brings it to this build's version."""
        from monitor.store.postgres_schema import SCHEMA_VERSION

        monkeypatch.setenv(ENV, pg_cluster.cluster().schema_dsn(pg_cluster.schema_for(tmp_path)))
        config = str(configs(tmp_path)[1])
        status, out, err = run(capsys, "store", "status", "--config", config)
        assert (status, err) == (0, "")
        assert f"schema version 0, {SCHEMA_VERSION} migration(s) pending" in out
        status, out, err = run(capsys, "store", "migrate", "--config", config)
        assert (status, err) == (0, "")
        assert out.rstrip().endswith(f"schema version 0 -> {SCHEMA_VERSION}")
