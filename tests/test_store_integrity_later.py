"""Issue 20, rd28: the daemon's store file is opened without ``PRAGMA quick_check`` (it reads
the whole file: tens of seconds for a month's end at 10,000 SLAs) and checked after ready
(``SqliteStore.check_integrity``, on a read-only connection of its own). Damage found: the
store says what, refuses every later write, and ``/readyz`` names it (``Health.problems``); a
whole file checks clean and stays writable; ``slawatch report`` still checks at open
(tests/test_store_integrity.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from monitor.runtime.health import Health
from monitor.store.base import IntegrityChecking, StoreError, TallyRow, WriteBatch
from monitor.store.sqlite import SqliteStore
from tests.test_store_integrity import START, write_day

pytestmark = pytest.mark.timeout(120)


def damage_tallies(path: Path) -> None:
    """The root page of the ``tallies`` table overwritten: damage inside the file that the
    open (identity, schema version, WAL) does not read, only a check or a query of it."""
    conn = sqlite3.connect(path)
    try:
        page = int(
            conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'tallies'").fetchone()[0]
        )
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    data = bytearray(path.read_bytes())
    data[(page - 1) * size : page * size] = b"\xa5" * size
    path.write_bytes(bytes(data))


def one_row(offset: int) -> WriteBatch:
    return WriteBatch(
        tallies=[TallyRow("sample", "sip-edge", START + 86_400 + offset, 300, ok=1, failed=0)],
        heartbeat=START + 86_400 + offset,
    )


class TestCheckedAfterOpen:
    async def test_a_damaged_file_opens_then_is_found_and_no_longer_written(
        self, tmp_path: Path
    ) -> None:
        """Opened without the check, the damaged file opens; the check names the damage,
        keeps it in ``corrupt``, and every write after it is refused with one line."""
        path = tmp_path / "slawatch.db"
        await write_day(path)
        damage_tallies(path)
        store = SqliteStore(path, vantage="sample", integrity_check=False)
        await store.open()
        try:
            assert isinstance(store, IntegrityChecking)
            found = await store.check_integrity()
            assert found is not None
            assert store.corrupt == found
            with pytest.raises(StoreError, match="database is corrupt, not written") as refused:
                await store.write_batch(one_row(0))
            assert "\n" not in str(refused.value)
            with pytest.raises(StoreError, match="database is corrupt"):
                await store.kv_set("k", 1)
        finally:
            await store.close()

    async def test_a_whole_file_checks_clean_while_written(self, tmp_path: Path) -> None:
        """A whole file: no finding, ``corrupt`` stays None, and writes go on during and
        after the check (it reads on a connection of its own)."""
        path = tmp_path / "slawatch.db"
        await write_day(path)
        store = SqliteStore(path, vantage="sample", integrity_check=False)
        await store.open()
        try:
            found, _ = await asyncio.gather(store.check_integrity(), store.write_batch(one_row(0)))
            assert found is None
            assert store.corrupt is None
            await store.write_batch(one_row(300))
            assert await store.last_heartbeat() == START + 86_400 + 300
        finally:
            await store.close()

    async def test_the_same_file_is_refused_at_open_when_checked_there(
        self, tmp_path: Path
    ) -> None:
        """The check at open (``integrity_check=True``, what ``slawatch report`` asks for)
        still refuses the damaged file: only the daemon defers it."""
        path = tmp_path / "slawatch.db"
        await write_day(path)
        damage_tallies(path)
        store = SqliteStore(path, vantage="sample")
        with pytest.raises(StoreError, match="corrupt"):
            await store.open()


class TestReadiness:
    def test_a_corrupt_store_is_a_readyz_problem(self) -> None:
        """``/readyz`` lists what the check found; nothing found, nothing listed."""
        health = Health()
        health.ready = True
        assert health.problems(0.0) == []
        health.store_corrupt = "*** in database main *** Page 3: btreeInitPage() returns error"
        assert health.problems(0.0) == [
            "store file corrupt (*** in database main *** Page 3: btreeInitPage() returns error)"
        ]
