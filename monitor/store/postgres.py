"""``PostgresStore``: the :class:`~monitor.store.base.Store` on a shared PostgreSQL server.

Driver: psycopg 3 (async) with psycopg_pool (docs/storage-postgresql.md says why). This module
is imported only when ``monitor.store.backend`` is ``postgresql`` (``config/store.py`` imports
it lazily), so a SQLite install never needs psycopg.

Same semantics as ``SqliteStore`` (the contract suite runs unchanged against both):

* a ``write_batch`` is ONE transaction; any error rolls all of it back and raises
  ``StoreError`` (the caller keeps the batch to retry);
* tallies are upserts of absolute counts keyed on (vantage, bucket_start, target,
  bucket_seconds); the last write of a key wins;
* text is ordered bytewise (``COLLATE "C"``), as SQLite orders it, whatever the database's
  locale, so listings come back in the same order from either backend.

Connections run in autocommit; a transaction is an explicit ``conn.transaction()`` block. The
pool is small (``pool_size``): one daemon flushes once a second, the rest are short reads.
Concurrency that SQLite gets from its single writer is obtained here from the database:
``ON CONFLICT`` for insert-or-get, ``SELECT ... FOR UPDATE`` on the fault row before numbering
its next event.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from types import MappingProxyType
from typing import Any, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from monitor.sla.policy import BucketState, ExclusionKind, ExclusionWindow, Tally
from monitor.store import postgres_schema as pgschema
from monitor.store.base import (
    EvidenceRow,
    ExclusionExistsError,
    FaultConflictError,
    FaultRecord,
    Gap,
    MonthSeal,
    ServiceBucketRow,
    StoreClosedError,
    StoreError,
    StoreOpenError,
    TallyRow,
    WriteBatch,
    add_tally,
    check_tally_scope,
    encode_json,
    exclusion_from_stored,
)
from monitor.store.seals import canonical
from monitor.store.versions import SchemaStatus
from probes.result import Outcome

_NO_REASONS: Mapping[str, int] = MappingProxyType({})

PRUNE_CHUNK = 5000
"""Evidence rows deleted per transaction, so a long prune never holds a flush back for long."""

_SQL_TALLY = """
INSERT INTO tallies (vantage, target, bucket_seconds, bucket_start, ok, failed, reasons,
    errors, error_reasons, excused, location)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (vantage, bucket_start, target, bucket_seconds)
DO UPDATE SET ok = excluded.ok, failed = excluded.failed, reasons = excluded.reasons,
    errors = excluded.errors, error_reasons = excluded.error_reasons, excused = excluded.excused,
    location = excluded.location
"""
_SQL_EVIDENCE = """
INSERT INTO evidence (vantage, ts, target, outcome, reason, duration, details, location)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (vantage, target, ts) DO NOTHING
"""
_SQL_SERVICE_BUCKET = """
INSERT INTO service_buckets (vantage, sla, service, bucket_start, state, kind, location)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (vantage, sla, bucket_start)
DO UPDATE SET service = excluded.service, state = excluded.state, kind = excluded.kind,
    location = excluded.location
"""
# The latest write wins even if earlier (a wall clock stepped back), as in SQLite.
_SQL_HEARTBEAT = """
INSERT INTO heartbeats (vantage, ts, location) VALUES (%s, %s, %s)
ON CONFLICT (vantage) DO UPDATE SET ts = excluded.ts, location = excluded.location
"""
_TALLY_COLUMNS = (
    "target, bucket_start, bucket_seconds, ok, failed, reasons, errors, error_reasons, excused"
)

# Bulk path: above this many tallies a batch is COPYed into a temporary table and upserted with
# one INSERT .. SELECT (measured 2-3x faster than executemany at 10,000 rows,
# bench/store_pg_bench.py); below it executemany's pipeline is cheaper than the extra table.
COPY_THRESHOLD = 500
_ANY_LIMIT = 64
"""Above this many named targets a location read filters them in Python (see
``PostgresStore._location_tallies``)."""


def describe_dsn(dsn: str) -> str:
    """``postgresql://host:port/dbname`` for messages: never the password or other options."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "postgresql (unparseable dsn)"
    host = str(parts.get("host") or "localhost")
    port = str(parts.get("port") or "5432")
    dbname = str(parts.get("dbname") or parts.get("user") or "")
    return f"postgresql://{host}:{port}/{dbname}"


def _reasons(text: str) -> Mapping[str, int]:
    return _NO_REASONS if text == "{}" else MappingProxyType(json.loads(text))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _dedupe_tallies(rows: Sequence[TallyRow]) -> list[TallyRow]:
    """The last row per key, in first-seen order: one INSERT .. SELECT may not update a row
    twice, and "last write wins" is what executemany would have done."""
    last: dict[tuple[str, int, str, int], TallyRow] = {}
    for row in rows:
        last[(row.vantage, row.bucket_start, row.target, row.bucket_seconds)] = row
    return list(last.values())


class PostgresStore:
    """The PostgreSQL store reached by ``dsn`` (libpq connection string or URI) for the vantage
    point ``vantage``.

    ``pool_size`` bounds the connections this process holds; ``connect_timeout`` (seconds)
    bounds ``open()`` and the wait for a connection; ``statement_timeout`` (seconds) bounds any
    one statement, so a stuck server makes a flush fail (and be retried) instead of hanging.
    """

    backend = "postgresql"

    def __init__(
        self,
        dsn: str,
        vantage: str,
        *,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
        statement_timeout: float = 30.0,
        read_only: bool = False,
        location: str | None = None,
    ) -> None:
        if not vantage or vantage != vantage.strip():
            raise ValueError(f"vantage: expected a non-empty name, got {vantage!r}")
        if location is not None and (not location or location != location.strip()):
            raise ValueError(f"location: expected a non-empty name, got {location!r}")
        if isinstance(pool_size, bool) or pool_size < 1:
            raise ValueError(f"pool_size: expected a positive integer, got {pool_size!r}")
        for what, value in (
            ("connect_timeout", connect_timeout),
            ("statement_timeout", statement_timeout),
        ):
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{what}: expected a positive number of seconds, got {value!r}")
        self._dsn = dsn
        self._where = describe_dsn(dsn)
        try:
            self._dsn_options = str(conninfo_to_dict(dsn).get("options") or "")
        except psycopg.ProgrammingError as exc:
            raise ValueError(f"dsn: not a PostgreSQL connection string: {_one_line(exc)}") from exc
        self._vantage = vantage
        self._location = location or vantage
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._statement_timeout = statement_timeout
        self._read_only = read_only
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self.schema_version_at_open: int | None = None
        """The version found before migrating (0: empty schema); for logs and tests."""

    @property
    def vantage(self) -> str:
        return self._vantage

    @property
    def location(self) -> str:
        """The monitoring location of this vantage point (default: named like it)."""
        return self._location

    @property
    def dsn(self) -> str:
        """The connection string (secret: never log it; see ``where``)."""
        return self._dsn

    def session_lock(self, name: str) -> AdvisoryLock:
        """The advisory lock ``name`` of this schema, on a connection of its own."""
        return AdvisoryLock(self, name)

    def connect_kwargs(self) -> dict[str, Any]:
        """What every connection of this store is opened with (autocommit, timeouts, the
        dsn's own options such as a search_path), for a dedicated connection beside the pool
        (the accountant's advisory lock)."""
        return self._connect_kwargs()

    @property
    def where(self) -> str:
        """The server and database, without credentials (for logs and messages)."""
        return self._where

    def _connect_kwargs(self) -> dict[str, Any]:
        return {
            "autocommit": True,
            # libpq wants whole seconds, at least 2 (it treats 1 as 2 anyway).
            "connect_timeout": max(2, math.ceil(self._connect_timeout)),
            # Added to the dsn's own options (a search_path there must survive).
            "options": " ".join(
                part
                for part in (
                    self._dsn_options,
                    f"-c statement_timeout={int(self._statement_timeout * 1000)}",
                )
                if part
            ),
        }

    # -- plumbing --------------------------------------------------------------------------------
    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = self._pool
        if pool is None:
            raise StoreClosedError(f"{self._where}: store is not open")
        try:
            async with pool.connection(timeout=self._connect_timeout) as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreError(
                f"{self._where}: no connection within {self._connect_timeout:g} s "
                f"(server unreachable or pool of {self._pool_size} busy)"
            ) from exc
        except psycopg.Error as exc:
            raise StoreError(f"{self._where}: {_one_line(exc)}") from exc

    def _check_open(self) -> None:
        if self._pool is None:
            raise StoreClosedError(f"{self._where}: store is not open")

    def _check_writable(self) -> None:
        if self._read_only:
            raise StoreError(f"{self._where}: opened read-only, cannot write")

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            raise StoreError(f"{self._where}: store is already open")
        # Migrate (or check) on one direct connection first: a wrong or unreachable server
        # fails here with one line instead of as background pool warnings.
        status = await (self._status(migrate=False) if self._read_only else self._migrate())
        if self._read_only and status.version != status.known:
            raise StoreOpenError(
                f"{self._where}: schema version {status.version}, this build reads "
                f"{status.known}; run `slawatch store migrate` (or start the daemon) first"
            )
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self._dsn,
            min_size=1,
            max_size=self._pool_size,
            kwargs=self._connect_kwargs(),
            timeout=self._connect_timeout,
            open=False,
            name=f"slawatch-{self._vantage}",
            # A connection broken by a server restart is replaced at checkout, so the first
            # flush after an outage succeeds instead of failing once on the dead socket.
            check=AsyncConnectionPool.check_connection,
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            await pool.close()
            raise StoreOpenError(f"{self._where}: cannot connect: {_one_line(exc)}") from exc
        self._pool = pool

    async def close(self) -> None:
        """Wait for calls holding a connection, then close every connection. Idempotent."""
        pool = self._pool
        self._pool = None
        if pool is not None:
            await pool.close(timeout=5.0)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        try:
            return await psycopg.AsyncConnection.connect(self._dsn, **self._connect_kwargs())
        except psycopg.Error as exc:
            raise StoreOpenError(f"{self._where}: cannot connect: {_one_line(exc)}") from exc

    async def _status(self, *, migrate: bool) -> SchemaStatus:
        conn = await self._connect()
        try:
            version = await _found_version(conn, self._where)
            self.schema_version_at_open = version
            if migrate:
                version = await _apply_migrations(conn, self._where, version)
        except psycopg.Error as exc:
            raise StoreOpenError(f"{self._where}: {_one_line(exc)}") from exc
        finally:
            await conn.close()
        return SchemaStatus(self.backend, self._where, version, pgschema.SCHEMA_VERSION)

    async def _migrate(self) -> SchemaStatus:
        return await self._status(migrate=True)

    async def schema_version(self) -> SchemaStatus:
        """The schema version the database holds; changes nothing (see ``store.versions``)."""
        return await self._status(migrate=False)

    async def migrate(self) -> SchemaStatus:
        """Apply pending migrations (refusing a newer schema); the status after them."""
        self._check_writable()
        return await self._migrate()

    # -- availability ------------------------------------------------------------------------
    async def write_batch(self, batch: WriteBatch) -> None:
        self._check_writable()
        if batch.empty:
            return
        tallies = _dedupe_tallies(batch.tallies)
        try:
            async with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
                if len(tallies) >= COPY_THRESHOLD:
                    await _copy_tallies(cur, tallies)
                elif tallies:
                    await cur.executemany(_SQL_TALLY, [_tally_params(r) for r in tallies])
                if batch.evidence:
                    await cur.executemany(
                        _SQL_EVIDENCE, [_evidence_params(e) for e in batch.evidence]
                    )
                if batch.service_buckets:
                    await cur.executemany(
                        _SQL_SERVICE_BUCKET,
                        [
                            (
                                s.vantage,
                                s.sla,
                                s.service,
                                s.bucket_start,
                                s.state.value,
                                None if s.kind is None else s.kind.value,
                                s.location,
                            )
                            for s in batch.service_buckets
                        ],
                    )
                if batch.heartbeat is not None:
                    await cur.execute(
                        _SQL_HEARTBEAT, (self._vantage, batch.heartbeat, self._location)
                    )
        except StoreClosedError:
            raise
        except StoreError as exc:
            raise StoreError(f"batch refused, nothing written: {exc}") from exc

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
        if targets is not None and not targets:
            self._check_open()
            return {}
        if location is not None:
            return await self._location_tallies(start, end, targets, location, bucket_seconds)
        sql, params = _tally_query(vantage or self._vantage, start, end, targets, bucket_seconds)
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(sql, params)
            rows = await cur.fetchall()
        out: dict[str, dict[int, Tally]] = {}
        lengths: dict[tuple[str, int], int] = {}
        for target, bucket, seconds, ok, failed, reasons, errors, error_reasons, excused in rows:
            by_bucket = out.setdefault(target, {})
            if bucket in by_bucket:
                raise StoreError(
                    f"tallies of {target} at {bucket} are stored for bucket lengths "
                    f"{lengths[(target, bucket)]} and {seconds}: pass bucket_seconds"
                )
            lengths[(target, bucket)] = seconds
            by_bucket[bucket] = Tally(
                ok=ok,
                failed=failed,
                reasons=_reasons(reasons),
                errors=errors,
                error_reasons=_reasons(error_reasons),
                excused=excused,
            )
        return out

    async def _location_tallies(
        self,
        start: int,
        end: int,
        targets: Sequence[str] | None,
        location: str,
        bucket_seconds: int | None,
    ) -> dict[str, dict[int, Tally]]:
        """One location's tallies summed over its members (``base.load_tallies``).

        Many named targets are filtered here, not in SQL: ``target = ANY(array)`` compares
        each row with every element of a bound array (measured: 10,000 targets over 120,000
        rows ran past the 30 s statement timeout), while the location's rows of a range are
        one index range scan anyway."""
        wanted = None if targets is None or len(targets) <= _ANY_LIMIT else frozenset(targets)
        sql, params = _tally_query(
            location,
            start,
            end,
            targets if wanted is None else None,
            bucket_seconds,
            column="location",
        )
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(sql, params)
            rows = await cur.fetchall()
        out: dict[str, dict[int, Tally]] = {}
        lengths: dict[tuple[str, int], int] = {}
        for target, bucket, seconds, ok, failed, reasons, errors, error_reasons, excused in rows:
            if wanted is not None and target not in wanted:
                continue
            held = lengths.setdefault((target, bucket), seconds)
            if held != seconds:
                raise StoreError(
                    f"tallies of {target} at {bucket} in location {location} are stored for "
                    f"bucket lengths {held} and {seconds}: pass bucket_seconds"
                )
            add_tally(
                out.setdefault(target, {}),
                bucket,
                Tally(
                    ok=ok,
                    failed=failed,
                    reasons=_reasons(reasons),
                    errors=errors,
                    error_reasons=_reasons(error_reasons),
                    excused=excused,
                ),
            )
        return out

    async def locations(self) -> list[str]:
        return await self._distinct("location")

    async def load_tally_rows(
        self, start: int, end: int, targets: Sequence[str] | None = None
    ) -> list[TallyRow]:
        if targets is not None and not targets:
            self._check_open()
            return []
        sql = (
            f"SELECT vantage, {_TALLY_COLUMNS}, location FROM tallies "
            "WHERE bucket_start >= %s AND bucket_start < %s"
        )
        params: list[object] = [start, end]
        if targets is not None:
            sql += " AND target = ANY(%s)"
            params.append(list(targets))
        sql += ' ORDER BY vantage COLLATE "C", target COLLATE "C", bucket_start, bucket_seconds'
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(sql, params)
            rows = await cur.fetchall()
        return [
            TallyRow(
                vantage,
                target,
                bucket,
                seconds,
                ok,
                failed,
                json.loads(reasons),
                errors,
                json.loads(error_reasons),
                excused,
                location,
            )
            for vantage, target, bucket, seconds, ok, failed, reasons, errors, error_reasons, excused, location in rows  # noqa: E501
        ]

    async def vantages(self) -> list[str]:
        return await self._distinct("vantage")

    async def _distinct(self, column: Literal["vantage", "location"]) -> list[str]:
        """The distinct ``column`` of tallies and heartbeats, in byte order. A loose index scan
        (one seek per distinct value) rather than DISTINCT over every row."""
        sql = f"""
        WITH RECURSIVE seen(v) AS (
            SELECT min({column}) FROM tallies
            UNION ALL
            SELECT (SELECT min({column}) FROM tallies WHERE {column} > seen.v) FROM seen
            WHERE seen.v IS NOT NULL
        )
        SELECT v FROM (
            SELECT v FROM seen WHERE v IS NOT NULL UNION SELECT {column} FROM heartbeats
        ) AS found
        ORDER BY v COLLATE "C"
        """
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(sql)
            return [str(row[0]) for row in await cur.fetchall()]

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
        sql = (
            "SELECT id, vantage, ts, target, outcome, reason, duration, details, location "
            "FROM evidence "
            "WHERE ts >= %s AND ts < %s AND vantage = %s"
        )
        params: list[object] = [start, end, vantage or self._vantage]
        if target is not None:
            sql += " AND target = %s"
            params.append(target)
        sql += " ORDER BY ts, id LIMIT %s"
        params.append(limit)
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(sql, params)
            rows = await cur.fetchall()
        return [
            EvidenceRow(
                vantage=row_vantage,
                ts=ts,
                target=row_target,
                outcome=Outcome(outcome),
                reason=reason,
                duration=duration,
                details=json.loads(details),
                id=row_id,
                location=row_location,
            )
            for (
                row_id,
                row_vantage,
                ts,
                row_target,
                outcome,
                reason,
                duration,
                details,
                row_location,
            ) in rows
        ]

    async def load_service_buckets(
        self, sla: str, start: int, end: int, vantage: str | None = None
    ) -> list[ServiceBucketRow]:
        sql = (
            "SELECT vantage, sla, service, bucket_start, state, kind, location "
            "FROM service_buckets "
            "WHERE vantage = %s AND sla = %s AND bucket_start >= %s AND bucket_start < %s "
            "ORDER BY bucket_start"
        )
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(sql, (vantage or self._vantage, sla, start, end))
            rows = await cur.fetchall()
        return [
            ServiceBucketRow(
                vantage=v,
                sla=s,
                service=service,
                bucket_start=bucket,
                state=BucketState(state),
                kind=None if kind is None else ExclusionKind(kind),
                location=where,
            )
            for v, s, service, bucket, state, kind, where in rows
        ]

    async def prune_evidence(self, older_than: float) -> int:
        if not math.isfinite(older_than):
            raise ValueError(f"older_than: expected a finite epoch, got {older_than!r}")
        self._check_writable()
        total = 0
        while True:
            async with self._conn() as conn, conn.cursor() as cur:
                await cur.execute(
                    "DELETE FROM evidence WHERE id IN "
                    "(SELECT id FROM evidence WHERE ts < %s ORDER BY ts LIMIT %s)",
                    (older_than, PRUNE_CHUNK),
                )
                deleted = cur.rowcount
            total += deleted
            if deleted < PRUNE_CHUNK:
                return total

    async def record_gap(self, start: float, end: float, reason: str) -> Gap:
        gap = Gap(self._vantage, start, end, reason, self._location)
        self._check_writable()
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO gaps (vantage, start_ts, end_ts, reason, location) "
                "VALUES (%s, %s, %s, %s, %s)",
                (gap.vantage, gap.start, gap.end, gap.reason, gap.location),
            )
        return gap

    async def load_gaps(
        self, start: float, end: float, vantage: str | None = None, *, location: str | None = None
    ) -> list[Gap]:
        if location is not None and vantage is not None:
            raise ValueError("load_gaps: give vantage or location, not both")
        column = "vantage" if location is None else "location"
        sql = (
            "SELECT vantage, start_ts, end_ts, reason, location FROM gaps "
            f"WHERE {column} = %s AND start_ts < %s AND end_ts > %s ORDER BY start_ts, id"
        )
        name = location if location is not None else (vantage or self._vantage)
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(sql, (name, end, start))
            rows = await cur.fetchall()
        return [Gap(v, s, e, r, where) for v, s, e, r, where in rows]

    async def last_heartbeat(self, vantage: str | None = None) -> float | None:
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT ts FROM heartbeats WHERE vantage = %s", (vantage or self._vantage,)
            )
            row = await cur.fetchone()
        return None if row is None else float(row[0])

    # -- exclusions --------------------------------------------------------------------------
    async def add_exclusion(
        self, window: ExclusionWindow, *, source: str = "api"
    ) -> ExclusionWindow:
        if not source:
            raise ValueError("source: expected a non-empty name, got ''")
        self._check_writable()
        stored = dataclasses.replace(
            window, id=window.id or f"api-{uuid.uuid4().hex[:12]}", source=source
        )
        row = (
            stored.id,
            stored.kind.value,
            stored.start.timestamp(),
            stored.end.timestamp(),
            stored.start.isoformat(),
            stored.end.isoformat(),
            stored.reason,
            encode_json("exclusion services", sorted(stored.services)),
            None if stored.announced_at is None else stored.announced_at.isoformat(),
            stored.source,
            self._vantage,
        )
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO exclusions (id, kind, start_ts, end_ts, start_iso, end_iso, "
                "reason, services, announced_iso, source, added_by) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                row,
            )
            if cur.rowcount == 0:
                raise ExclusionExistsError(f"exclusion {stored.id!r} already exists")
        return stored

    async def list_exclusions(self) -> list[ExclusionWindow]:
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT id, kind, start_iso, end_iso, reason, services, announced_iso, source "
                'FROM exclusions ORDER BY start_ts, id COLLATE "C"'
            )
            rows = await cur.fetchall()
        return [exclusion_from_stored(*row) for row in rows]

    async def delete_exclusion(self, exclusion_id: str) -> bool:
        self._check_writable()
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute("DELETE FROM exclusions WHERE id = %s", (exclusion_id,))
            return cur.rowcount > 0

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
        self._check_writable()
        encoded = encode_json(f"fault {fault_id}: doc", dict(doc))
        async with self._conn() as conn, conn.cursor() as cur:
            # ON CONFLICT without a target covers both the id and the UNIQUE alert_key; an
            # uncommitted rival insert is waited for, so a racing delivery sees its row next.
            await cur.execute(
                "INSERT INTO faults (fault_id, contract, alert_key, is_open, doc) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (fault_id, contract, alert_key, is_open, encoded),
            )
            if cur.rowcount == 1:
                return fault_id, True
            if alert_key is not None:
                await cur.execute("SELECT fault_id FROM faults WHERE alert_key = %s", (alert_key,))
                row = await cur.fetchone()
                if row is not None:
                    return str(row[0]), False
            await cur.execute("SELECT alert_key FROM faults WHERE fault_id = %s", (fault_id,))
            row = await cur.fetchone()
        if row is not None and row[0] == alert_key:
            return fault_id, False
        holder = None if row is None else row[0]
        raise FaultConflictError(
            f"fault {fault_id!r} already exists for alert {holder!r}, not {alert_key!r}"
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
        self._check_writable()
        encoded = encode_json(f"fault {fault_id}: doc", dict(doc))
        try:
            async with self._conn() as conn:
                await conn.execute(
                    "INSERT INTO faults (fault_id, contract, alert_key, is_open, doc) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (fault_id) DO UPDATE SET "
                    "contract = excluded.contract, alert_key = excluded.alert_key, "
                    "is_open = excluded.is_open, doc = excluded.doc",
                    (fault_id, contract, alert_key, is_open, encoded),
                )
        except StoreError as exc:
            if isinstance(exc.__cause__, pg_errors.UniqueViolation):
                raise FaultConflictError(
                    f"fault {fault_id!r}: alert_key {alert_key!r} belongs to another fault"
                ) from exc
            raise

    async def append_fault_event(
        self, fault_id: str, event: Mapping[str, Any], *, is_open: bool | None = None
    ) -> int:
        self._check_writable()
        encoded = encode_json(f"fault {fault_id}: event", dict(event))
        async with self._conn() as conn, conn.transaction(), conn.cursor() as cur:
            # The row lock numbers concurrent appends one after the other.
            await cur.execute("SELECT 1 FROM faults WHERE fault_id = %s FOR UPDATE", (fault_id,))
            if await cur.fetchone() is None:
                raise FaultConflictError(f"fault {fault_id!r} does not exist")
            await cur.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM fault_events WHERE fault_id = %s",
                (fault_id,),
            )
            found = await cur.fetchone()
            assert found is not None
            seq = int(found[0])
            await cur.execute(
                "INSERT INTO fault_events (fault_id, seq, event) VALUES (%s, %s, %s)",
                (fault_id, seq, encoded),
            )
            if is_open is not None:
                await cur.execute(
                    "UPDATE faults SET is_open = %s WHERE fault_id = %s", (is_open, fault_id)
                )
        return seq

    async def _faults(self, where: str, params: Sequence[object]) -> list[FaultRecord]:
        async with self._conn() as conn, conn.cursor() as cur:
            # One query: each fault with its events in order (an ordered array per fault).
            await cur.execute(
                "SELECT f.fault_id, f.contract, f.alert_key, f.is_open, f.doc, "
                "coalesce((SELECT array_agg(e.event ORDER BY e.seq) FROM fault_events e "
                "WHERE e.fault_id = f.fault_id), '{}') "
                f'FROM faults f WHERE {where} ORDER BY f.fault_id COLLATE "C"',
                params,
            )
            rows = await cur.fetchall()
        return [
            FaultRecord(
                fault_id=fault_id,
                contract=contract,
                alert_key=alert_key,
                is_open=bool(is_open),
                doc=json.loads(doc),
                events=tuple(json.loads(e) for e in events),
            )
            for fault_id, contract, alert_key, is_open, doc, events in rows
        ]

    async def load_fault(self, fault_id: str) -> FaultRecord | None:
        found = await self._faults("f.fault_id = %s", (fault_id,))
        return found[0] if found else None

    async def load_faults(
        self, contract: str | None = None, open_only: bool = False
    ) -> list[FaultRecord]:
        clauses, params = ["true"], []
        if contract is not None:
            clauses.append("f.contract = %s")
            params.append(contract)
        if open_only:
            clauses.append("f.is_open")
        # The WHERE text is built only from the fixed clauses above; values are bound.
        return await self._faults(" AND ".join(clauses), params)

    async def fault_id_for_alert(self, alert_key: str) -> str | None:
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute("SELECT fault_id FROM faults WHERE alert_key = %s", (alert_key,))
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    # -- small state ---------------------------------------------------------------------------
    async def kv_get(self, key: str) -> Any:
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute("SELECT value FROM kv WHERE key = %s", (key,))
            row = await cur.fetchone()
        return None if row is None else json.loads(row[0])

    async def kv_set(self, key: str, value: object) -> None:
        self._check_writable()
        encoded = encode_json(f"kv {key}", value)
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO kv (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, encoded),
            )

    async def kv_delete(self, key: str) -> bool:
        self._check_writable()
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute("DELETE FROM kv WHERE key = %s", (key,))
            return cur.rowcount > 0

    # -- sealed months and retention (issue 17) ----------------------------------------------------
    async def save_month_seal(self, seal: MonthSeal) -> bool:
        self._check_writable()
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO month_seals (sla, month, sealed_at, config_hash, tallies_digest, "
                "doc, digest) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (sla, month) DO NOTHING",
                (
                    seal.sla,
                    seal.month,
                    seal.sealed_at,
                    seal.config_hash,
                    seal.tallies_digest,
                    canonical(dict(seal.doc)),
                    seal.digest,
                ),
            )
            return bool(cur.rowcount == 1)

    async def load_month_seal(self, sla: str, month: str) -> MonthSeal | None:
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT sealed_at, config_hash, tallies_digest, doc, digest FROM month_seals "
                "WHERE sla = %s AND month = %s",
                (sla, month),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return MonthSeal(
            sla, month, float(row[0]), str(row[1]), str(row[2]), json.loads(row[3]), str(row[4])
        )

    async def load_month_seals(self, slas: Sequence[str], month: str) -> dict[str, MonthSeal]:
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(
                "SELECT sla, sealed_at, config_hash, tallies_digest, doc, digest FROM month_seals "
                "WHERE month = %s AND sla = ANY(%s)",
                (month, sorted(set(slas))),
            )
            rows = await cur.fetchall()
        return {
            str(sla): MonthSeal(
                str(sla), month, float(at), str(config), str(tallies), json.loads(doc), str(digest)
            )
            for sla, at, config, tallies, doc, digest in rows
        }

    async def prune_tallies(self, start: int, end: int) -> int:
        self._check_writable()
        async with self._conn() as conn, conn.cursor() as cur:
            await cur.execute(
                "DELETE FROM tallies WHERE vantage = %s AND bucket_start >= %s "
                "AND bucket_start < %s",
                (self._vantage, start, end),
            )
            return int(cur.rowcount)


# -- helpers ------------------------------------------------------------------------------------


def _tally_params(r: TallyRow) -> tuple[object, ...]:
    return (
        r.vantage,
        r.target,
        r.bucket_seconds,
        r.bucket_start,
        r.ok,
        r.failed,
        encode_json(f"tally {r.target}@{r.bucket_start}: reasons", dict(r.reasons)),
        r.errors,
        encode_json(f"tally {r.target}@{r.bucket_start}: error_reasons", dict(r.error_reasons)),
        r.excused,
        r.location,
    )


def _evidence_params(e: EvidenceRow) -> tuple[object, ...]:
    return (
        e.vantage,
        e.ts,
        e.target,
        e.outcome.value,
        e.reason,
        e.duration,
        encode_json(f"evidence {e.target}@{e.ts}: details", dict(e.details)),
        e.location,
    )


async def _copy_tallies(cur: psycopg.AsyncCursor[Any], rows: Sequence[TallyRow]) -> None:
    """COPY ``rows`` (unique keys) into a transaction-local table, then one upsert."""
    await cur.execute(
        "CREATE TEMPORARY TABLE IF NOT EXISTS tally_load "
        "(LIKE tallies INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    columns = (
        "vantage, target, bucket_seconds, bucket_start, ok, failed, reasons, errors, "
        "error_reasons, excused, location"
    )
    async with cur.copy(f"COPY tally_load ({columns}) FROM STDIN") as copy:
        for row in rows:
            await copy.write_row(_tally_params(row))
    await cur.execute(
        f"INSERT INTO tallies ({columns}) SELECT {columns} FROM tally_load "
        "ON CONFLICT (vantage, bucket_start, target, bucket_seconds) "
        "DO UPDATE SET ok = excluded.ok, failed = excluded.failed, reasons = excluded.reasons, "
        "errors = excluded.errors, error_reasons = excluded.error_reasons, "
        "excused = excluded.excused, location = excluded.location"
    )


def _tally_query(
    vantage: str,
    start: int,
    end: int,
    targets: Sequence[str] | None,
    bucket_seconds: int | None,
    *,
    column: str = "vantage",
) -> tuple[str, list[object]]:
    # ``column`` is "vantage" (one member) or "location" (every member of one location).
    sql = (
        f"SELECT {_TALLY_COLUMNS} FROM tallies "
        f"WHERE {column} = %s AND bucket_start >= %s AND bucket_start < %s"
    )
    params: list[object] = [vantage, start, end]
    if bucket_seconds is not None:
        sql += " AND bucket_seconds = %s"
        params.append(bucket_seconds)
    if targets is not None:
        sql += " AND target = ANY(%s)"
        params.append(list(targets))
    return sql, params


async def _found_version(conn: psycopg.AsyncConnection[Any], where: str) -> int:
    """The schema version in the connection's current schema (0: no slawatch tables yet).

    Raises ``StoreOpenError`` for a schema holding slawatch-named tables without the version
    table (another program's, or a damaged one) and for a version newer than this build.
    """
    cur = await conn.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
        ([pgschema.VERSION_TABLE, *pgschema.OWN_TABLES],),
    )
    present = {str(row[0]) for row in await cur.fetchall()}
    if pgschema.VERSION_TABLE not in present:
        if present:
            shown = ", ".join(sorted(present)[:5])
            raise StoreOpenError(
                f"{where}: not a slawatch schema (tables {shown} but no "
                f"{pgschema.VERSION_TABLE} table); use another database or search_path"
            )
        return 0
    cur = await conn.execute(f"SELECT coalesce(max(version), 0) FROM {pgschema.VERSION_TABLE}")
    row = await cur.fetchone()
    version = int(row[0]) if row is not None else 0
    _refuse_newer(where, version)
    return version


def _refuse_newer(where: str, version: int) -> None:
    if version > pgschema.SCHEMA_VERSION:
        raise StoreOpenError(
            f"{where}: schema version {version} was written by a newer slawatch; "
            f"this build knows versions up to {pgschema.SCHEMA_VERSION}: upgrade slawatch"
        )


async def _apply_migrations(conn: psycopg.AsyncConnection[Any], where: str, found: int) -> int:
    """Apply ``found+1 .. SCHEMA_VERSION``, each in one transaction with its version row,
    under the schema's migration lock (re-reading the version once the lock is held, since
    another daemon may have migrated meanwhile)."""
    version = found
    while version < pgschema.SCHEMA_VERSION:
        async with conn.transaction():
            await conn.execute(pgschema.MIGRATION_LOCK)
            await conn.execute(pgschema.CREATE_VERSION_TABLE)
            version = await _found_version(conn, where)
            if version >= pgschema.SCHEMA_VERSION:
                break
            target = version + 1
            try:
                for statement in pgschema.MIGRATIONS[target - 1]:
                    await conn.execute(statement)  # fixed DDL text from MIGRATIONS
                await conn.execute(
                    f"INSERT INTO {pgschema.VERSION_TABLE} (version) VALUES (%s)", (target,)
                )
            except psycopg.Error as exc:
                raise StoreOpenError(
                    f"{where}: migration to schema version {target} failed: {_one_line(exc)}"
                ) from exc
            version = target
    return version


class AdvisoryLock:
    """A PostgreSQL session advisory lock on its own connection (``pg_try_advisory_lock``),
    keyed on ``name`` and the schema, so two slawatch schemas in one database elect apart.

    The lock lives as long as the connection: when the holding process dies, the server
    closes the session and the lock is free for the next ``try_hold`` of another process.
    The connection is not from the pool: a pooled connection is shared and may be replaced.
    """

    def __init__(self, store: PostgresStore, name: str) -> None:
        self._store = store
        self._name = name
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._held = False

    async def try_hold(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._held = False
                self._conn = await psycopg.AsyncConnection.connect(
                    self._store.dsn, **self._store.connect_kwargs()
                )
            cur = await self._conn.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s || current_schema()))",
                (f"slawatch-{self._name}:",),
            )
            row = await cur.fetchone()
            # Session advisory locks stack: each success while held adds a level. Release the
            # extra level at once, so one unlock (or the session's end) frees it.
            if row is not None and bool(row[0]) and self._held:
                await self._conn.execute(
                    "SELECT pg_advisory_unlock(hashtext(%s || current_schema()))",
                    (f"slawatch-{self._name}:",),
                )
            self._held = row is not None and bool(row[0])
        except psycopg.Error:
            await self.release()
        return self._held

    async def release(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None and not conn.closed:
            with suppress(psycopg.Error):
                await conn.close()
