"""Issue 17, problem 1: a store file that is empty, foreign or damaged is refused in one line
naming the file, the check and what to do, by the daemon and by ``slawatch report``; damage
inside a row's payload is found by ``slawatch store check``, which names the row; the
backup/restore drill of docs/storage.md."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import main as cli
from monitor.config import load_config
from monitor.store import schema
from monitor.store.base import EvidenceRow, StoreOpenError, TallyRow, WriteBatch
from monitor.store.check import check_store
from monitor.store.sqlite import SqliteStore
from probes.result import Outcome

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "samples" / "report.yaml"
START = 1793491200  # 2026-11-01T00:00:00Z
AS_OF = "2026-11-02T00:00:00Z"

pytestmark = pytest.mark.timeout(120)


def config_in(tmp_path: Path) -> Path:
    """The sample configuration with its store under ``tmp_path``."""
    path = tmp_path / "report.yaml"
    text = CONFIG.read_text(encoding="utf-8").replace(
        "monitor:\n  name: sample\n", f"monitor:\n  name: sample\n  state_dir: {tmp_path}\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


def database(config: Path) -> Path:
    return load_config(config).monitor.database_path


async def write_day(path: Path) -> None:
    """One day of tallies for sip-edge, one failed bucket, and its failure evidence."""
    rows = [
        TallyRow("sample", "sip-edge", START + 300 * i, 300, ok=1, failed=0)
        for i in range(288)
        if i != 121
    ]
    rows.append(
        TallyRow("sample", "sip-edge", START + 300 * 121, 300, 0, 2, {"connection refused": 2})
    )
    evidence = [
        EvidenceRow("sample", START + 300 * 121 + 10, "sip-edge", Outcome.DOWN, "refused", 0.1)
    ]
    store = SqliteStore(path, vantage="sample")
    await store.open()
    try:
        await store.write_batch(
            WriteBatch(tallies=rows, evidence=evidence, heartbeat=START + 86_400)
        )
    finally:
        await store.close()


def run_daemon(config: Path) -> subprocess.CompletedProcess[str]:
    """``slawatch run`` as its own process (its exit status and stderr are the contract)."""
    return subprocess.run(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def report(config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    argv = ["report", "--config", str(config), "--month", "2026-11", "--as-of", AS_OF]
    status = cli.main([*argv, "--service", "voice", "--format", "json"])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


class TestRefusedFiles:
    """Empty, foreign and corrupt files are refused, never replaced or read."""

    async def test_empty_file_is_refused_and_kept(self, tmp_path: Path) -> None:
        """A 0-byte file (a truncated store) is not taken for a new database: refused in one
        line naming the file and what to do, and left as it was."""
        path = tmp_path / "slawatch.db"
        path.touch()
        store = SqliteStore(path, "v1")
        with pytest.raises(StoreOpenError) as caught:
            await store.open()
        assert str(caught.value) == (
            f"{path}: file is empty (0 bytes), not a slawatch database; {schema.RECOVERY}"
        )
        assert path.stat().st_size == 0

    async def test_sqlite_file_without_tables_is_refused(self, tmp_path: Path) -> None:
        """An SQLite file slawatch did not make (no application_id) is not adopted, even
        without tables."""
        path = tmp_path / "slawatch.db"
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA user_version = 7")
        store = SqliteStore(path, "v1")
        with pytest.raises(StoreOpenError, match="application_id is 0 and it holds no tables"):
            await store.open()

    async def test_no_file_still_creates_a_store(self, tmp_path: Path) -> None:
        """Where no file exists the daemon's open creates the store, as on a fresh machine."""
        path = tmp_path / "new" / "slawatch.db"
        store = SqliteStore(path, "v1")
        await store.open()
        await store.close()
        assert check_store(path).ok

    def test_daemon_refuses_an_empty_store_in_one_line(self, tmp_path: Path) -> None:
        """``slawatch run`` on a 0-byte store exits non-zero with one line, no traceback."""
        config = config_in(tmp_path)
        database(config).parent.mkdir(parents=True, exist_ok=True)
        database(config).touch()
        done = run_daemon(config)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().splitlines()[-1] == (
            f"slawatch run: {database(config)}: file is empty (0 bytes), not a slawatch "
            f"database; {schema.RECOVERY}"
        )

    def test_daemon_refuses_a_garbage_file_in_one_line(self, tmp_path: Path) -> None:
        """A file of garbage: one line naming it and the failed check, exit status 1."""
        config = config_in(tmp_path)
        database(config).parent.mkdir(parents=True, exist_ok=True)
        database(config).write_bytes(b"\x00\x17garbage" * 500)
        done = run_daemon(config)
        assert done.returncode == 1
        assert "Traceback" not in done.stderr
        line = done.stderr.strip().splitlines()[-1]
        assert line.startswith(f"slawatch run: {database(config)}: not a slawatch database")
        assert line.endswith(schema.RECOVERY)

    def test_report_runs_the_integrity_check(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``slawatch report`` refuses a store whose pages are damaged instead of printing
        figures from it: exit 2, one line naming the file and the failed check."""
        config = config_in(tmp_path)
        path = database(config)
        asyncio.run(write_day(path))
        assert report(config, capsys)[0] == 0
        data = bytearray(path.read_bytes())
        page = 4096
        data[2 * page : len(data) - page] = b"\xa5" * (len(data) - 3 * page)
        path.write_bytes(bytes(data))
        status, out, err = report(config, capsys)
        assert (status, out) == (2, "")
        assert len(err.strip().splitlines()) == 1
        assert err.startswith(f"slawatch report: {path}: ")
        assert "corrupt" in err
        assert err.strip().endswith(schema.RECOVERY)

    def test_report_refuses_an_empty_store(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A 0-byte store gives the report the same one-line refusal as the daemon."""
        config = config_in(tmp_path)
        database(config).parent.mkdir(parents=True, exist_ok=True)
        database(config).touch()
        status, out, err = report(config, capsys)
        assert (status, out) == (2, "")
        assert "file is empty (0 bytes)" in err
        assert len(err.strip().splitlines()) == 1


class TestRowChecksums:
    """Damage inside a row's payload passes SQLite's checks; the row checksum finds it."""

    def test_flipped_byte_in_a_reason_is_named_by_row(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """One byte flipped inside a tally's reasons: integrity_check still says ok, but
        ``slawatch store check`` exits 1 naming that tally row."""
        path = tmp_path / "slawatch.db"
        asyncio.run(write_day(path))
        assert cli.main(["store", "check", "--database", str(path)]) == 0
        assert "ok (schema version" in capsys.readouterr().out
        data = bytearray(path.read_bytes())
        at = data.find(b"connection refused")
        assert at > 0
        assert data.find(b"connection refused", at + 1) == -1
        data[at] = ord("C")
        path.write_bytes(bytes(data))
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert cli.main(["store", "check", "--database", str(path)]) == 1
        err = capsys.readouterr().err
        assert f"{path}: 1 problem(s)" in err
        assert (
            f"tallies row (vantage 'sample', target 'sip-edge', bucket_start "
            f"{START + 300 * 121}): checksum mismatch" in err
        )

    def test_flipped_byte_in_evidence_is_named_by_id(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A changed evidence reason is found and named by its row id."""
        path = tmp_path / "slawatch.db"
        asyncio.run(write_day(path))
        data = bytearray(path.read_bytes())
        at = data.find(b"refused", data.find(b"sip-edge"))
        while data[at - 1 : at] == b" ":  # skip the tally's "connection refused"
            at = data.find(b"refused", at + 1)
        data[at] = ord("R")
        path.write_bytes(bytes(data))
        assert cli.main(["store", "check", "--database", str(path)]) == 1
        assert "evidence row id 1 (target 'sip-edge'" in capsys.readouterr().err


class TestInitAndBackup:
    """``slawatch store init`` and the restore drill of docs/storage.md."""

    def test_init_creates_and_refuses_existing(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """init makes a store that passes every check; a second init refuses the file."""
        path = tmp_path / "slawatch.db"
        assert cli.main(["store", "init", "--database", str(path)]) == 0
        assert check_store(path).ok
        assert cli.main(["store", "init", "--database", str(path)]) == 2
        assert "already exists" in capsys.readouterr().err

    def test_restore_drill(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """docs/storage.md's drill: back up, lose the store (truncated to 0 bytes: refused),
        put the backup in its place, check it, and the month reads as before."""
        config = config_in(tmp_path)
        path = database(config)
        asyncio.run(write_day(path))
        status, before, _ = report(config, capsys)
        assert status == 0
        backup = tmp_path / "backups" / "slawatch-2026-11-02.db"
        assert cli.main(["store", "backup", "--config", str(config), str(backup)]) == 0
        assert "backup written and checked" in capsys.readouterr().out
        path.write_bytes(b"")
        assert report(config, capsys)[0] == 2
        path.write_bytes(backup.read_bytes())
        assert cli.main(["store", "check", "--config", str(config)]) == 0
        capsys.readouterr()
        status, after, _ = report(config, capsys)
        assert (status, after) == (0, before)

    async def test_backup_while_writing_is_consistent(self, tmp_path: Path) -> None:
        """A backup taken while the store commits batches is one consistent snapshot."""
        from monitor.cli.store import backup_store

        path = tmp_path / "slawatch.db"
        store = SqliteStore(path, "sample")
        await store.open()
        try:
            for i in range(50):
                rows = [TallyRow("sample", f"t{n}", START + 300 * i, 300, 1, 0) for n in range(20)]
                await store.write_batch(WriteBatch(tallies=rows, heartbeat=START + 300 * i))
                if i == 25:
                    await asyncio.to_thread(backup_store, path, tmp_path / "copy.db")
        finally:
            await store.close()
        report_ = check_store(tmp_path / "copy.db")
        assert report_.ok, report_.lines()
        with sqlite3.connect(tmp_path / "copy.db") as conn:
            assert conn.execute("SELECT count(*) FROM tallies").fetchone()[0] == 26 * 20


class TestStatusAndMigrate:
    def test_migrate_an_old_file_and_report_status(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``store status`` names the file's version, ``store migrate`` brings it forward."""
        path = tmp_path / "slawatch.db"
        conn = sqlite3.connect(path, isolation_level=None)
        schema.migrate(conn, path, 0, target=1)
        conn.close()
        assert cli.main(["store", "status", "--database", str(path)]) == 0
        assert capsys.readouterr().out == (
            f"{path}: schema version 1 (this build: {schema.SCHEMA_VERSION})\n"
        )
        assert cli.main(["store", "migrate", "--database", str(path)]) == 0
        assert capsys.readouterr().out == f"{path}: schema version 1 -> {schema.SCHEMA_VERSION}\n"
        assert check_store(path).ok
        assert cli.main(["store", "migrate", "--database", str(tmp_path / "none.db")]) == 2
        assert "no store to migrate" in capsys.readouterr().err


class TestCheckpointFailure:
    async def test_failed_checkpoint_after_commit_is_not_a_failed_batch(
        self, tmp_path: Path
    ) -> None:
        """The main file cannot grow (RLIMIT_FSIZE at its size: the WAL still has room, the
        checkpoint that follows the commit fails): ``write_batch`` reports success, the rows
        are stored once, and the checkpoint failure is counted, not raised (issue 17: a
        re-queued committed batch wrote duplicate evidence)."""
        import resource

        path = tmp_path / "slawatch.db"
        store = SqliteStore(path, "v1", checkpoint_interval=0.0)
        await store.open()
        try:
            first = [TallyRow("v1", f"t{n}", 0, 300, 1, 0) for n in range(20_000)]
            await store.write_batch(WriteBatch(tallies=first))
            size = path.stat().st_size
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            evidence = [
                EvidenceRow("v1", 1000.0 + i, "web", Outcome.DOWN, "refused" * 20, 0.1)
                for i in range(300)
            ]
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
            try:
                await store.write_batch(WriteBatch(evidence=evidence))
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
            assert store.checkpoint_failures >= 1
            stored = await store.load_evidence(0, 1e9, limit=10_000)
            assert len(stored) == 300
        finally:
            await store.close()
        assert check_store(path).ok
