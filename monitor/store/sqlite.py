"""``SqliteStore``: the embedded :class:`~monitor.store.base.Store`, stdlib ``sqlite3``.

One connection lives in one dedicated worker thread; every call is funnelled through a
single-thread executor, so calls are serialised in submission order (no locking in Python,
no "database is locked" between our own calls) and the event loop never blocks on disk.

Durability: WAL with ``synchronous=NORMAL``. A committed ``write_batch`` is in the WAL file
when the call returns, so it survives SIGKILL or a crash of the process, which is what
"a bucket is durable a few seconds after it closes" needs given a flush every second.
NORMAL skips the fsync per commit; only an OS crash or power loss can roll back commits made
since the WAL was last synced. To bound that window too, the store runs a passive checkpoint
(which syncs the WAL first) at most every ``checkpoint_interval`` seconds after a write.
``synchronous="FULL"`` fsyncs every commit instead; ``bench/store_bench.py`` measures both.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import math
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

from monitor.sla.policy import ExclusionWindow, Tally
from monitor.store import schema, sqlite_versions
from monitor.store import sqlite_availability as avail
from monitor.store import sqlite_records as records
from monitor.store import sqlite_snapshots as snaps
from monitor.store.base import (
    EvidenceRow,
    FaultRecord,
    Gap,
    MonthSeal,
    ServiceBucketRow,
    StoreClosedError,
    StoreError,
    StoreOpenError,
    TallyRow,
    WriteBatch,
    check_tally_scope,
    encode_json,
)
from monitor.store.snapshots import MonthSnapshot, SnapshotGuard
from monitor.store.versions import SchemaStatus

T = TypeVar("T")

CLOSE_BUSY_TIMEOUT_MS = 500


def _vacuum_into(conn: sqlite3.Connection, target: Path) -> Path:
    if target.exists():
        raise StoreError(f"{target}: backup destination already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    conn.execute("VACUUM INTO ?", (str(target),))
    return target


class SqliteStore:
    """The SQLite store at ``path`` for the vantage point ``vantage``.

    ``read_only=True`` is for tools reading a database a running daemon writes (reports,
    ``fault list``): no directory or file is created, nothing is migrated, writes raise
    ``StoreError``. ``integrity_check=False`` skips ``PRAGMA quick_check`` at open (it reads
    the whole file). ``path`` may be ``":memory:"`` for throwaway use (no WAL, no durability).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        vantage: str,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout_ms: int = 5000,
        checkpoint_interval: float | None = 5.0,
        read_only: bool = False,
        integrity_check: bool = True,
        location: str | None = None,
    ) -> None:
        if not vantage or vantage != vantage.strip():
            raise ValueError(f"vantage: expected a non-empty name, got {vantage!r}")
        if location is not None and (not location or location != location.strip()):
            raise ValueError(f"location: expected a non-empty name, got {location!r}")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous: expected NORMAL or FULL, got {synchronous!r}")
        self._path = Path(path)
        self._vantage = vantage
        self._location = location or vantage
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._checkpoint_interval = checkpoint_interval
        self._last_checkpoint = 0.0
        self._read_only = read_only
        self._integrity_check = integrity_check
        self.corrupt: str | None = None
        """rd28 (issue 20): what :meth:`check_integrity` found wrong with the file (None:
        nothing, or not checked); set, every write is refused."""
        self._checker: sqlite3.Connection | None = None  # the check's own connection, while it runs
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.checkpoint_failures = 0
        """Checkpoints that failed after their batch committed (the batch stays written)."""
        self._own_writes = False
        """Issue 20: set once this store armed snapshot guards (the daemon's own store)."""
        self.schema_version_at_open: int | None = None
        """The version found on disk before migrating (0: new file); for logs and tests."""

    @property
    def vantage(self) -> str:
        return self._vantage

    @property
    def location(self) -> str:
        """The monitoring location of this vantage point (default: named like it)."""
        return self._location

    @property
    def path(self) -> Path:
        return self._path

    # -- plumbing --------------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        executor = self._executor
        if executor is None or self._conn is None:
            raise StoreClosedError(f"{self._path}: store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, functools.partial(fn, *args))

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreClosedError(f"{self._path}: store is not open")
        return self._conn

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` in the worker thread."""
        return await self._run(lambda: fn(self._db(), *args))

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        self._writable()
        return await self._call(fn, *args)

    def _writable(self) -> None:
        if self._read_only:
            raise StoreError(f"{self._path}: opened read-only, cannot write")
        if self.corrupt is not None:  # rd28: nothing more recorded into a damaged file
            raise StoreError(f"{self._path}: database is corrupt, not written: {self.corrupt}")

    async def check_integrity(self) -> str | None:
        """rd28 (issue 20): ``PRAGMA quick_check`` of the open file, on a read-only connection
        in a thread of its own (the writer is not held up; about 5 ms per MiB): the problems
        found as one line (also kept in :attr:`corrupt`, and every later write refused), None
        if none. For a store opened with ``integrity_check=False`` that still wants the
        check, later (the daemon: after it is ready, docs/storage.md). :meth:`close`
        interrupts a check under way (``StoreClosedError``)."""
        if self._conn is None:
            raise StoreClosedError(f"{self._path}: store is not open")
        if str(self._path) == ":memory:":
            return None
        try:
            found = await asyncio.to_thread(self._check_integrity_sync)
        except asyncio.CancelledError:  # the thread ends at once, and closes its connection
            self._interrupt_check()
            raise
        except sqlite3.OperationalError as exc:
            raise StoreClosedError(f"{self._path}: integrity check interrupted: {exc}") from exc
        if found is not None:
            self.corrupt = found
        return found

    def _check_integrity_sync(self) -> str | None:
        uri = f"{self._path.resolve().as_uri()}?mode=ro"
        checker = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        self._checker = checker
        try:
            return schema.quick_check(checker)
        finally:
            self._checker = None
            checker.close()

    def _interrupt_check(self) -> None:
        checker = self._checker
        if checker is not None:
            with contextlib.suppress(sqlite3.ProgrammingError):  # closed meanwhile
                checker.interrupt()

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._executor is not None:
            raise StoreError(f"{self._path}: store is already open")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="slawatch-store")
        loop = asyncio.get_running_loop()
        try:
            self._conn = await loop.run_in_executor(executor, self._open_sync)
        except BaseException:
            executor.shutdown(wait=True)
            raise
        self._executor = executor

    def _open_sync(self) -> sqlite3.Connection:
        memory = str(self._path) == ":memory:"
        exists = False
        try:
            if not memory:
                if not self._read_only:
                    self._path.parent.mkdir(parents=True, exist_ok=True)
                exists = schema.check_magic(self._path)
                if self._read_only and not exists:
                    raise StoreOpenError(f"{self._path}: no slawatch database here to read")
        except OSError as exc:
            raise StoreOpenError(f"{self._path}: cannot open: {exc}") from exc
        except schema.SchemaError as exc:
            raise StoreOpenError(str(exc)) from exc
        try:
            if self._read_only:
                uri = f"{self._path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            else:
                conn = sqlite3.connect(self._path, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreOpenError(f"{self._path}: cannot open: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            found = schema.check_file(
                conn, self._path, integrity=self._integrity_check, new=memory or not exists
            )
            conn.execute("PRAGMA foreign_keys = ON")
            if self._read_only:
                if found != schema.SCHEMA_VERSION:
                    raise StoreOpenError(
                        f"{self._path}: schema version {found}, this build reads "
                        f"{schema.SCHEMA_VERSION}; open it read-write once (start the daemon) "
                        "to migrate"
                    )
            else:
                if not memory:
                    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                    if str(mode).lower() != "wal":
                        raise StoreOpenError(f"{self._path}: cannot switch to WAL (got {mode})")
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
                schema.migrate(conn, self._path, found)
        except schema.SchemaError as exc:
            conn.close()
            raise StoreOpenError(str(exc)) from exc
        except sqlite3.Error as exc:
            conn.close()
            raise StoreOpenError(f"{self._path}: cannot open: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self.schema_version_at_open = found
        return conn

    async def close(self) -> None:
        """Wait for every call already submitted, then checkpoint and close. Idempotent."""
        executor = self._executor
        if executor is None:
            return
        self._interrupt_check()  # rd28: a long integrity check does not hold up a stop
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(executor, self._close_sync)
        finally:
            self._executor = None
            executor.shutdown(wait=False)

    def _close_sync(self) -> None:
        conn = self._conn
        self._conn = None
        if conn is None:
            return
        try:
            if not self._read_only:
                # Close runs inside the SIGTERM budget (5 s): a reader holding a snapshot may
                # only delay the final checkpoint briefly, and ANALYZE (via optimize) only
                # samples instead of reading tables of millions of rows.
                conn.execute(f"PRAGMA busy_timeout = {CLOSE_BUSY_TIMEOUT_MS}")
                # Folds the WAL into the main file so a copy of just the .db file is complete;
                # if a reader prevents it, the WAL stays and is replayed at the next open.
                # On a full disk it fails: every commit is still in the WAL, so closing
                # without it loses nothing (issue 17: no traceback at SIGTERM).
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                    conn.execute("PRAGMA analysis_limit = 400")
                    conn.execute("PRAGMA optimize")
        finally:
            conn.close()

    async def backup(self, destination: str | os.PathLike[str]) -> Path:
        """A consistent copy of the whole database at ``destination`` (``VACUUM INTO``),
        taken while the store keeps running; the file must not exist yet."""
        return await self._call(_vacuum_into, Path(destination))

    # -- schema versions (issue 14: `slawatch store status/migrate`; see store/versions.py) --
    async def schema_version(self) -> SchemaStatus:
        return await asyncio.to_thread(sqlite_versions.status, self._path)

    async def migrate(self) -> SchemaStatus:
        if self._read_only:
            raise StoreError(f"{self._path}: opened read-only, cannot migrate")
        return await asyncio.to_thread(sqlite_versions.migrate, self._path)

    # -- availability ------------------------------------------------------------------------

    async def write_batch(self, batch: WriteBatch) -> None:
        self._writable()
        if batch.empty:
            return
        await self._run(self._write_batch_sync, batch)

    def _write_batch_sync(self, batch: WriteBatch) -> None:
        conn = self._db()
        try:
            avail.write_batch(conn, self._vantage, batch, self._location, own=self._own_writes)
        except sqlite3.Error as exc:
            raise StoreError(f"{self._path}: batch refused, nothing written: {exc}") from exc
        interval = self._checkpoint_interval
        if interval is None or self._synchronous == "FULL":
            return
        now = time.monotonic()
        if now - self._last_checkpoint >= interval:
            self._last_checkpoint = now
            # PASSIVE never waits for readers, so a report running elsewhere cannot stall a
            # flush; the checkpoint syncs the WAL first, which bounds what power loss can undo.
            # The batch is committed at this point: a checkpoint failing (disk full while
            # the WAL is copied into the main file) must not make the caller re-queue and
            # write the batch again (issue 17: duplicate evidence rows). The WAL keeps the
            # commit; the next checkpoint retries.
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                self._last_checkpoint = 0.0
                self.checkpoint_failures += 1

    async def load_tallies(
        self,
        start: int,
        end: int,
        targets: Sequence[str] | None = None,
        vantage: str | None = None,
        *,
        bucket_seconds: int | None = None,
        location: str | None = None,
    ) -> dict[str, dict[int, Tally]]:
        check_tally_scope(vantage, location)
        if location is not None:
            return await self._call(
                avail.location_tallies, start, end, targets, location, bucket_seconds
            )
        return await self._call(
            avail.tallies_by_target, start, end, targets, vantage or self._vantage, bucket_seconds
        )

    async def load_tally_rows(
        self, start: int, end: int, targets: Sequence[str] | None = None
    ) -> list[TallyRow]:
        return await self._call(avail.tally_rows, start, end, targets)

    async def vantages(self) -> list[str]:
        return await self._call(avail.vantages)

    async def locations(self) -> list[str]:
        return await self._call(avail.locations)

    async def load_evidence(
        self,
        start: float,
        end: float,
        target: str | None = None,
        limit: int = 1000,
        vantage: str | None = None,
    ) -> list[EvidenceRow]:
        if isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit: expected a positive integer, got {limit!r}")
        return await self._call(avail.evidence, start, end, target, limit, vantage or self._vantage)

    async def load_service_buckets(
        self, sla: str, start: int, end: int, vantage: str | None = None
    ) -> list[ServiceBucketRow]:
        return await self._call(avail.service_buckets, sla, start, end, vantage or self._vantage)

    async def prune_evidence(self, older_than: float) -> int:
        if not math.isfinite(older_than):
            raise ValueError(f"older_than: expected a finite epoch, got {older_than!r}")
        # One executor job per chunk, so the daemon's flushes interleave with a long prune.
        total = 0
        while True:
            deleted = await self._write(avail.prune_evidence_chunk, older_than)
            total += deleted
            if deleted < avail.PRUNE_CHUNK:
                return total

    async def record_gap(self, start: float, end: float, reason: str) -> Gap:
        gap = Gap(self._vantage, start, end, reason, self._location)
        await self._write(avail.record_gap, gap)
        return gap

    async def load_gaps(
        self, start: float, end: float, vantage: str | None = None, *, location: str | None = None
    ) -> list[Gap]:
        if location is not None:
            if vantage is not None:
                raise ValueError("load_gaps: give vantage or location, not both")
            return await self._call(avail.gaps, start, end, location, "location")
        return await self._call(avail.gaps, start, end, vantage or self._vantage)

    async def last_heartbeat(self, vantage: str | None = None) -> float | None:
        return await self._call(avail.last_heartbeat, vantage or self._vantage)

    # -- exclusions --------------------------------------------------------------------------
    async def add_exclusion(
        self, window: ExclusionWindow, *, source: str = "api"
    ) -> ExclusionWindow:
        if not source:
            raise ValueError("source: expected a non-empty name, got ''")
        stored = dataclasses.replace(
            window, id=window.id or f"api-{uuid.uuid4().hex[:12]}", source=source
        )
        await self._write(records.add_exclusion, stored, self._vantage)
        return stored

    async def list_exclusions(self) -> list[ExclusionWindow]:
        return await self._call(records.list_exclusions)

    async def delete_exclusion(self, exclusion_id: str) -> bool:
        return await self._write(records.delete_exclusion, exclusion_id)

    # -- faults --------------------------------------------------------------------------------
    async def insert_fault_if_absent(
        self,
        contract: str,
        fault_id: str,
        doc: Mapping[str, Any],
        alert_key: str | None,
        *,
        is_open: bool = True,
    ) -> tuple[str, bool]:
        encoded = encode_json(f"fault {fault_id}: doc", dict(doc))
        return await self._write(
            records.insert_fault_if_absent, contract, fault_id, encoded, alert_key, is_open
        )

    async def save_fault(
        self,
        contract: str,
        fault_id: str,
        doc: Mapping[str, Any],
        alert_key: str | None,
        *,
        is_open: bool = True,
    ) -> None:
        encoded = encode_json(f"fault {fault_id}: doc", dict(doc))
        await self._write(records.save_fault, contract, fault_id, encoded, alert_key, is_open)

    async def append_fault_event(
        self, fault_id: str, event: Mapping[str, Any], *, is_open: bool | None = None
    ) -> int:
        encoded = encode_json(f"fault {fault_id}: event", dict(event))
        return await self._write(records.append_fault_event, fault_id, encoded, is_open)

    async def load_fault(self, fault_id: str) -> FaultRecord | None:
        found = await self._call(lambda conn: records.load_faults(conn, fault_id=fault_id))
        return found[0] if found else None

    async def load_faults(
        self, contract: str | None = None, open_only: bool = False
    ) -> list[FaultRecord]:
        return await self._call(
            lambda conn: records.load_faults(conn, contract=contract, open_only=open_only)
        )

    async def fault_id_for_alert(self, alert_key: str) -> str | None:
        return await self._call(records.fault_id_for_alert, alert_key)

    # -- small state ---------------------------------------------------------------------------
    async def kv_get(self, key: str) -> Any:
        return await self._call(records.kv_get, key)

    async def kv_set(self, key: str, value: object) -> None:
        await self._write(records.kv_set, key, encode_json(f"kv {key}", value))

    async def kv_delete(self, key: str) -> bool:
        return await self._write(records.kv_delete, key)

    # -- sealed months -------------------------------------------------------------------------
    async def save_month_seal(self, seal: MonthSeal) -> bool:
        return await self._write(records.save_month_seal, seal)

    async def load_month_seal(self, sla: str, month: str) -> MonthSeal | None:
        return await self._call(records.load_month_seal, sla, month)

    async def load_month_seals(self, slas: Sequence[str], month: str) -> dict[str, MonthSeal]:
        return await self._call(records.load_month_seals, list(slas), month)

    # -- month snapshots (issue 20; monitor.store.snapshots) ------------------------------------
    async def load_month_snapshots(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[MonthSnapshot, tuple[str, ...]]]:
        return await self._call(snaps.load, self._vantage, list(keys))

    async def arm_month_snapshots(self, guards: Sequence[SnapshotGuard]) -> set[tuple[str, str]]:
        def arm(conn: sqlite3.Connection) -> set[tuple[str, str]]:
            kept = snaps.arm(conn, self._vantage, list(guards))
            # In the worker: every batch queued after this call is this daemon's own write.
            self._own_writes = True
            return kept

        return await self._write(arm)

    async def save_month_snapshots(
        self, snapshots: Sequence[MonthSnapshot], drop_before: int | None = None
    ) -> int:
        return await self._write(snaps.save, self._vantage, list(snapshots), drop_before)

    async def prune_tallies(self, start: int, end: int) -> int:
        total = 0
        while True:  # chunks, so the daemon's flushes interleave with a long roll-up
            deleted = await self._write(avail.prune_tallies_chunk, self._vantage, start, end)
            total += deleted
            if deleted < avail.PRUNE_CHUNK:
                return total
