"""Issue 20, rd28: the daemon's store file is opened without ``PRAGMA quick_check`` (it reads
the whole file: tens of seconds for a month's end at 10,000 SLAs) and checked after ready
(``SqliteStore.check_integrity``, on a read-only connection of its own). Damage found: the
store says what, refuses every later write, and ``/readyz`` names it (``Health.problems``); a
whole file checks clean and stays writable; ``slawatch report`` still checks at open
(tests/test_store_integrity.py)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from monitor.clock import FixedClock
from monitor.config import load_config
from monitor.http.server import serve
from monitor.runtime.daemon import Daemon
from monitor.runtime.health import Health
from monitor.store.base import IntegrityChecking, StoreError, TallyRow, WriteBatch
from monitor.store.sqlite import SqliteStore
from tests.daemon_harness import DaemonProcess, free_port
from tests.test_daemon_resilience import T0, _metrics, core_config, readyz, until
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


def damage_table(path: Path, table: str) -> None:
    """The root page of ``table`` overwritten (as :func:`damage_tallies`)."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()
    data = bytearray(path.read_bytes())
    data[(int(row[0]) - 1) * size : int(row[0]) * size] = b"\xa5" * size
    path.write_bytes(bytes(data))


async def _corrupt_gauge(port: int) -> float | None:
    """``slawatch_store_corrupt``'s value in ``/metrics`` (None: not exported)."""
    for line in (await _metrics(port)).splitlines():
        if line.startswith("slawatch_store_corrupt "):
            return float(line.split()[1])
    return None


class TestTheDaemonFindsTheDamage:
    """sc28 (issue 20): the whole chain, a real daemon on a real file. Clean, the check after
    ready leaves ``slawatch_store_corrupt`` at 0 and ``/readyz`` at 200. Damaged where the start
    does not read (the support faults' table, with no support SLA configured), the daemon starts;
    the check after ready finds it: ``slawatch_store_corrupt`` is 1 (``SlawatchStoreCorrupt``
    pages), ``/readyz`` is 503 naming it, and the store refuses the next write."""

    def test_damage_found_after_ready_is_exported_and_stops_the_writes(
        self, tmp_path: Path
    ) -> None:
        path = core_config(tmp_path)
        config = load_config(path)
        db = config.monitor.database_path

        async def run(at: float, damaged: bool) -> None:
            daemon = Daemon(config, path, clock=FixedClock(at))  # its own store, as it opens it
            await daemon.start()
            daemon.serving(await serve(daemon))
            assert daemon.listen_address is not None
            port = daemon.listen_address[1]
            try:
                if not damaged:
                    await until(lambda: _ready(port), "ready on a clean file")
                    assert await _corrupt_gauge(port) == 0.0
                    assert daemon.health.store_corrupt is None
                    return

                async def found() -> bool:
                    return await _corrupt_gauge(port) == 1.0

                await until(found, "slawatch_store_corrupt 1")
                status, text = await readyz(port)
                assert status == 503
                assert "store file corrupt" in text
                with pytest.raises(StoreError, match="database is corrupt, not written"):
                    await daemon.store.write_batch(one_row(0))
            finally:
                await daemon.stop()

        asyncio.run(asyncio.wait_for(run(T0, damaged=False), 60))
        damage_table(db, "fault_events")
        asyncio.run(asyncio.wait_for(run(T0 + 60, damaged=True), 90))


async def _ready(port: int) -> bool:
    return (await readyz(port))[0] == 200


def test_slawatch_run_checks_the_file_after_ready_not_at_open(tmp_path: Path) -> None:
    """tl31 (issue 20): ``slawatch run`` (the composition root, which builds the store it
    hands the daemon) opens the file without the quick check too: a file damaged where the
    start does not read starts, and ``/readyz`` then names the damage. Checked at open, the
    start read the whole file first (seconds at a month's end) and refused to start."""
    path = core_config(tmp_path)
    port = free_port()
    document = json.loads(path.read_text(encoding="utf-8"))
    document["monitor"]["listen"] = f"127.0.0.1:{port}"
    path.write_text(json.dumps(document), encoding="utf-8")
    config = load_config(path)

    async def first_run() -> None:  # a whole file, written by a daemon
        daemon = Daemon(config, path, clock=FixedClock(T0))
        await daemon.start()
        await daemon.stop()

    asyncio.run(asyncio.wait_for(first_run(), 60))
    damage_table(config.monitor.database_path, "fault_events")
    daemon = DaemonProcess(path, port, tmp_path / "daemon.log")
    try:
        deadline = time.monotonic() + 60
        status, text = 0, ""
        while time.monotonic() < deadline:
            assert daemon.proc.poll() is None, daemon.log()
            try:
                status, text = daemon.get("/readyz")
            except OSError:  # not listening yet (urllib's URLError is an OSError)
                time.sleep(0.2)
                continue
            if "store file corrupt" in text:
                break
            time.sleep(0.2)
        assert status == 503, daemon.log()
        assert "store file corrupt" in text
    finally:
        daemon.stop()
