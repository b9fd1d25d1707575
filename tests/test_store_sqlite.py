"""SqliteStore on real files: WAL, crashes, migrations, refusing wrong files, shared files."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.sla.policy import ExclusionKind, ExclusionWindow, Tally
from monitor.store import schema
from monitor.store.base import (
    EvidenceRow,
    StoreError,
    StoreOpenError,
    TallyRow,
    WriteBatch,
    record_downtime,
)
from monitor.store.sqlite import SqliteStore
from monitor.store.sqlite_availability import PRUNE_CHUNK
from probes.result import Outcome
from tests.procs import spawn_peer, stop_group

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from monitor.store.base import EvidenceRow, TallyRow, WriteBatch
    from monitor.store.sqlite import SqliteStore
    from probes.result import Outcome

    async def main(path):
        store = SqliteStore(path, "v1")
        await store.open()
        i = 0
        while True:
            await store.write_batch(WriteBatch(
                tallies=[TallyRow("v1", "web", 300 * i, 300, i, 1, {"timeout": 1})],
                evidence=[EvidenceRow("v1", 300.0 * i, "web", Outcome.TIMEOUT, "timeout", 1.0)],
                heartbeat=300.0 * i + 299,
            ))
            print(i, flush=True)  # only after the commit returned
            i += 1

    asyncio.run(main(sys.argv[1]))
    """
)


def tally(start: int, ok: int) -> TallyRow:
    return TallyRow("v1", "web", start, 300, ok, 0)


def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def opened(path: Path, **options: object) -> SqliteStore:
    store = SqliteStore(path, "v1", **options)  # type: ignore[arg-type]
    await store.open()
    return store


async def open_error(path: Path) -> str:
    store = SqliteStore(path, "v1")
    with pytest.raises(StoreOpenError) as caught:
        await store.open()
    return str(caught.value)


class TestOpen:
    async def test_creates_parent_directories_in_wal_mode(self, tmp_path: Path) -> None:
        """A new database is made under missing directories, in WAL mode, at the latest schema."""
        path = tmp_path / "state" / "deep" / "slawatch.db"
        store = await opened(path)
        await store.write_batch(WriteBatch(heartbeat=1.0))
        assert store.schema_version_at_open == 0
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
            assert conn.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
        await store.close()

    async def test_text_file_is_refused(self, tmp_path: Path) -> None:
        """A file that is not SQLite at all is refused, naming the file."""
        path = tmp_path / "notes.db"
        path.write_text("hello\n")
        assert await open_error(path) == (
            f"{path}: not a slawatch database (not an SQLite file); {schema.RECOVERY}"
        )

    async def test_other_programs_database_is_refused(self, tmp_path: Path) -> None:
        """An SQLite file of another program is left untouched and refused."""
        path = tmp_path / "other.db"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE photos (id INTEGER)")
        message = await open_error(path)
        assert message == (
            f"{path}: not a slawatch database (application_id is 0 and it holds tables photos); "
            f"{schema.RECOVERY}"
        )
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 0

    async def test_foreign_application_id_is_refused(self, tmp_path: Path) -> None:
        """An SQLite file stamped by another application is refused with both ids shown."""
        path = tmp_path / "other.db"
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA application_id = 42")
        assert await open_error(path) == (
            f"{path}: not a slawatch database (application_id 0x0000002a, expected 0x534c4157); "
            f"{schema.RECOVERY}"
        )

    async def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        """A database written by a newer slawatch is not opened (it could not be read right)."""
        path = tmp_path / "slawatch.db"
        await (await opened(path)).close()
        with sqlite3.connect(path) as conn:
            conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
        assert await open_error(path) == (
            f"{path}: schema version {schema.SCHEMA_VERSION + 1} was written by a newer "
            f"slawatch; this build knows versions up to {schema.SCHEMA_VERSION}"
        )

    async def test_corrupt_file_is_refused(self, tmp_path: Path) -> None:
        """Garbage over the table pages is reported as corruption, naming the file."""
        path = tmp_path / "slawatch.db"
        store = await opened(path)
        rows = [tally(300 * i, i) for i in range(2000)]
        await store.write_batch(WriteBatch(tallies=rows))
        await store.close()
        data = bytearray(path.read_bytes())
        page = 4096
        data[2 * page : len(data) - page] = b"\xa5" * (len(data) - 3 * page)
        path.write_bytes(bytes(data))
        message = await open_error(path)
        assert message.startswith(f"{path}: ")
        assert "corrupt" in message

    async def test_directory_in_place_of_file(self, tmp_path: Path) -> None:
        """A directory at the database path is refused with what was expected."""
        assert (
            await open_error(tmp_path) == f"{tmp_path}: expected a database file, got a directory"
        )

    async def test_awkward_path_and_memory(self, tmp_path: Path) -> None:
        """Paths with spaces and URI characters work read-write and read-only; ``:memory:``
        works for throwaway use."""
        path = tmp_path / "my state #1" / "slawatch?.db"
        writer = await opened(path)
        await writer.write_batch(WriteBatch(tallies=[tally(0, 2)]))
        reader = SqliteStore(path, "v1", read_only=True)
        await reader.open()
        assert (await reader.load_tallies(0, 300))["web"][0].ok == 2
        await reader.close()
        await writer.close()
        memory = await opened(Path(":memory:"))
        await memory.write_batch(WriteBatch(tallies=[tally(0, 1)]))
        assert (await memory.load_tallies(0, 300))["web"][0].ok == 1
        await memory.close()

    def test_bad_synchronous_value(self, tmp_path: Path) -> None:
        """Only NORMAL and FULL are accepted for synchronous."""
        with pytest.raises(ValueError, match="synchronous: expected NORMAL or FULL, got 'OFF'"):
            SqliteStore(tmp_path / "x.db", "v1", synchronous="OFF")  # type: ignore[arg-type]


class TestMigration:
    async def test_version_1_file_is_migrated_with_data_kept(self, tmp_path: Path) -> None:
        """A file at schema 1 (no exclusions, no faults) gains them and keeps its tallies."""
        path = tmp_path / "slawatch.db"
        conn = sqlite3.connect(path, isolation_level=None)
        schema.migrate(conn, path, 0, target=1)
        conn.execute("INSERT INTO tallies VALUES ('v1', 'web', 600, 300, 7, 1, '{\"timeout\":1}')")
        conn.close()
        store = await opened(path)
        try:
            assert store.schema_version_at_open == 1
            loaded = await store.load_tallies(0, 3600)
            assert loaded == {"web": {600: Tally(ok=7, failed=1, reasons={"timeout": 1})}}
            await store.insert_fault_if_absent("c1", "F-1", {}, "alert-1")
            assert await store.fault_id_for_alert("alert-1") == "F-1"
        finally:
            await store.close()
        with sqlite3.connect(path) as check:
            assert check.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION

    def test_failed_migration_leaves_previous_version(self, tmp_path: Path) -> None:
        """A migration that fails part-way rolls back entirely, version included."""
        path = tmp_path / "slawatch.db"
        conn = sqlite3.connect(path, isolation_level=None)
        schema.migrate(conn, path, 0, target=1)
        conn.execute("CREATE TABLE faults (x INTEGER)")  # collides with migration 2
        with pytest.raises(schema.SchemaError, match="migration to schema version 2 failed"):
            schema.migrate(conn, path, 1)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "exclusions" not in tables
        conn.close()


class TestCrash:
    def test_sigkill_mid_stream_loses_nothing_committed(self, tmp_path: Path) -> None:
        """A writer killed with SIGKILL keeps every batch it reported as committed, and a
        restart turns the time since the last heartbeat into a gap."""
        path = tmp_path / "slawatch.db"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
        child = spawn_peer(
            [sys.executable, "-c", WRITER, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        try:
            assert child.stdout is not None
            reported = -1
            while reported < 150:
                line = child.stdout.readline()
                assert line, f"writer exited early with {child.wait()}"
                reported = int(line)
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=5)
            reported = max([reported, *(int(line) for line in child.stdout.read().split())])
        finally:
            stop_group(child)  # a failed assertion above must not leave the writer running
            if child.stdout is not None:
                child.stdout.close()
        assert Path(f"{path}-wal").exists()

        async def check() -> None:
            store = await opened(path)
            try:
                by_start = (await store.load_tallies(0, 10**9))["web"]
                tallies = {start // 300: t.ok for start, t in by_start.items()}
                assert all(tallies[i] == i for i in range(reported + 1))
                evidence = await store.load_evidence(0, 1e12, limit=100_000)
                # Whole batches only: the kill may land mid-transaction, which must leave
                # either all of a batch (tally, evidence, heartbeat) or none of it.
                assert [e.ts for e in evidence] == [300.0 * i for i in sorted(tallies)]
                assert sorted(tallies) == list(range(len(tallies)))
                assert len(tallies) >= reported + 1
                heartbeat = await store.last_heartbeat()
                assert heartbeat == 300.0 * (len(tallies) - 1) + 299
                gap = await record_downtime(store, heartbeat + 60)
                assert gap is not None
                assert (gap.start, gap.end) == (heartbeat, heartbeat + 60)
            finally:
                await store.close()

        asyncio.run(check())


class TestSharedFile:
    async def test_two_connections_write_concurrently(self, tmp_path: Path) -> None:
        """Two stores (two vantage points) on one file interleave writes without losing any."""
        path = tmp_path / "slawatch.db"
        first, second = await opened(path), SqliteStore(path, "v2")
        await second.open()
        try:

            async def write(store: SqliteStore) -> None:
                for i in range(40):
                    row = TallyRow(store.vantage, "web", 300 * i, 300, i, 0)
                    await store.write_batch(WriteBatch(tallies=[row], heartbeat=float(i)))

            await asyncio.gather(write(first), write(second))
            rows = await first.load_tally_rows(0, 10**6)
            assert len(rows) == 80
        finally:
            await first.close()
            await second.close()


class TestDurability:
    async def test_checkpoint_puts_batches_into_the_main_file(self, tmp_path: Path) -> None:
        """With a checkpoint after each write, the .db file alone (no WAL) holds the batch;
        without checkpoints the batch is only in the WAL."""
        for interval, expected in ((0.0, 1), (None, 0)):
            path = tmp_path / f"cp-{interval}" / "slawatch.db"
            store = await opened(path, checkpoint_interval=interval)
            await store.write_batch(WriteBatch(tallies=[tally(0, 1)]))
            copy = path.with_name("copy.db")
            shutil.copyfile(path, copy)
            with sqlite3.connect(copy) as conn:
                found = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name = 'tallies'"
                ).fetchone()[0]
                if found:
                    found = conn.execute("SELECT count(*) FROM tallies").fetchone()[0]
            assert found == expected, interval
            await store.close()

    async def test_full_synchronous_round_trip(self, tmp_path: Path) -> None:
        """synchronous=FULL is a working mode, not just an accepted word."""
        store = await opened(tmp_path / "full.db", synchronous="FULL")
        await store.write_batch(WriteBatch(tallies=[tally(0, 4)]))
        assert (await store.load_tallies(0, 300))["web"][0].ok == 4
        await store.close()

    async def test_close_waits_for_submitted_writes(self, tmp_path: Path) -> None:
        """Writes submitted before close() are committed before the file is closed."""
        path = tmp_path / "slawatch.db"
        store = await opened(path)
        pending = [
            asyncio.ensure_future(store.write_batch(WriteBatch(tallies=[tally(300 * i, i)])))
            for i in range(30)
        ]
        await asyncio.sleep(0)
        await store.close()
        await asyncio.gather(*pending)
        assert wal_size(path) == 0
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM tallies").fetchone()[0] == 30


class TestRetention:
    async def test_prune_works_in_chunks(self, tmp_path: Path) -> None:
        """Pruning more rows than one chunk deletes all of them and reports the total."""
        store = await opened(tmp_path / "slawatch.db")
        try:
            rows = [
                EvidenceRow("v1", float(i), "web", Outcome.DOWN, "refused", 0.1)
                for i in range(PRUNE_CHUNK * 2 + 10)
            ]
            await store.write_batch(WriteBatch(evidence=rows))
            assert await store.prune_evidence(float(PRUNE_CHUNK * 2 + 5)) == PRUNE_CHUNK * 2 + 5
            assert len(await store.load_evidence(0, 1e9)) == 5
        finally:
            await store.close()


class TestExclusionsStored:
    async def test_kind_stays_an_enum_after_reopen(self, tmp_path: Path) -> None:
        """An API exclusion read back after a restart is a full ExclusionWindow."""
        path = tmp_path / "slawatch.db"
        store = await opened(path)
        start = datetime(2026, 11, 1, tzinfo=UTC)
        await store.add_exclusion(
            ExclusionWindow("x", start, start.replace(hour=1), ExclusionKind.SUSPENSION)
        )
        await store.close()
        store = await opened(path)
        [window] = await store.list_exclusions()
        await store.close()
        assert window.kind is ExclusionKind.SUSPENSION


class TestReadOnly:
    async def test_reader_sees_daemon_writes_and_cannot_write(self, tmp_path: Path) -> None:
        """A read-only store reads what the open writer committed and refuses to write."""
        path = tmp_path / "slawatch.db"
        writer = await opened(path)
        reader = SqliteStore(path, "v1", read_only=True)
        await reader.open()
        try:
            await writer.write_batch(WriteBatch(tallies=[tally(0, 3)]))
            assert (await reader.load_tallies(0, 300))["web"][0].ok == 3
            with pytest.raises(StoreError, match="opened read-only, cannot write"):
                await reader.write_batch(WriteBatch(heartbeat=1.0))
            with pytest.raises(StoreError, match="opened read-only, cannot write"):
                await reader.kv_set("x", 1)
        finally:
            await reader.close()
            await writer.close()

    async def test_missing_file_is_not_created(self, tmp_path: Path) -> None:
        """Reading a database that does not exist fails without creating anything."""
        path = tmp_path / "nowhere" / "slawatch.db"
        store = SqliteStore(path, "v1", read_only=True)
        with pytest.raises(StoreOpenError, match="no slawatch database here to read"):
            await store.open()
        assert not path.parent.exists()

    async def test_old_schema_is_not_migrated_by_a_reader(self, tmp_path: Path) -> None:
        """A reader refuses a file at an older schema instead of migrating it."""
        path = tmp_path / "slawatch.db"
        conn = sqlite3.connect(path, isolation_level=None)
        schema.migrate(conn, path, 0, target=1)
        conn.close()
        store = SqliteStore(path, "v1", read_only=True)
        with pytest.raises(
            StoreOpenError, match=f"schema version 1, this build reads {schema.SCHEMA_VERSION}"
        ):
            await store.open()


class TestIntegrityCheckOption:
    async def test_skipping_quick_check_is_observable(self, tmp_path: Path) -> None:
        """Damage in table pages only quick_check would see is reported with the check on
        and not with it off (identity checks still run)."""
        path = tmp_path / "slawatch.db"
        store = await opened(path)
        await store.write_batch(WriteBatch(tallies=[tally(300 * i, i) for i in range(3000)]))
        await store.close()
        data = bytearray(path.read_bytes())
        data[len(data) - 2 * 4096 : len(data) - 4096] = b"\xa5" * 4096
        path.write_bytes(bytes(data))
        assert "corrupt" in await open_error(path)
        unchecked = SqliteStore(path, "v1", integrity_check=False)
        await unchecked.open()
        await unchecked.close()


class TestBackup:
    async def test_vacuum_into_copy_is_a_complete_database(self, tmp_path: Path) -> None:
        """A backup taken while the store is open opens as a slawatch database with the data;
        an existing destination is refused."""
        store = await opened(tmp_path / "slawatch.db")
        try:
            await store.write_batch(WriteBatch(tallies=[tally(0, 6)], heartbeat=9.0))
            copy = await store.backup(tmp_path / "backups" / "copy.db")
            with pytest.raises(StoreError, match="backup destination already exists"):
                await store.backup(copy)
        finally:
            await store.close()
        restored = SqliteStore(copy, "v1", read_only=True)
        await restored.open()
        try:
            assert (await restored.load_tallies(0, 300))["web"][0].ok == 6
            assert await restored.last_heartbeat() == 9.0
        finally:
            await restored.close()


class TestCloseBudget:
    async def test_close_is_quick_while_a_reader_holds_a_snapshot(self, tmp_path: Path) -> None:
        """A report holding a read transaction cannot stretch close() past the SIGTERM budget;
        what was written stays readable."""
        path = tmp_path / "slawatch.db"
        store = await opened(path)
        await store.write_batch(WriteBatch(tallies=[tally(0, 1)]))
        reader = sqlite3.connect(path, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM tallies").fetchall()
        await store.write_batch(WriteBatch(tallies=[tally(300, 2)]))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await store.close()
        assert loop.time() - started < 2.0
        reader.execute("COMMIT")
        reader.close()
        again = await opened(path)
        assert set((await again.load_tallies(0, 600))["web"]) == {0, 300}
        await again.close()
