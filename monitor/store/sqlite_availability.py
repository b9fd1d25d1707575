"""Synchronous SQLite access for availability data: tallies, evidence, service verdicts, gaps
and heartbeats. Plain functions over a connection, run in the store's worker thread (and
usable directly by a synchronous tool holding its own connection)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from monitor.sla.policy import BucketState, ExclusionKind, Tally
from monitor.store.base import (
    EvidenceRow,
    Gap,
    ServiceBucketRow,
    StoreError,
    TallyRow,
    WriteBatch,
    add_tally,
    encode_json,
)
from monitor.store.checksum import evidence_crc, tally_crc
from monitor.store.schema import transaction
from probes.result import Outcome

_NO_REASONS: Mapping[str, int] = MappingProxyType({})

PRUNE_CHUNK = 5000
"""Evidence rows deleted per transaction: other writers get the lock between chunks."""

_SQL_TALLY = """
INSERT INTO tallies (vantage, target, bucket_seconds, bucket_start, ok, failed, reasons,
    errors, error_reasons, excused, crc, location)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (vantage, bucket_start, target, bucket_seconds)
DO UPDATE SET ok = excluded.ok, failed = excluded.failed, reasons = excluded.reasons,
    errors = excluded.errors, error_reasons = excluded.error_reasons, excused = excluded.excused,
    crc = excluded.crc, location = excluded.location
"""
_SQL_EVIDENCE = """
INSERT INTO evidence (vantage, ts, target, outcome, reason, duration, details, crc, location)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (vantage, target, ts) DO NOTHING
"""
_SQL_SERVICE_BUCKET = """
INSERT INTO service_buckets (vantage, sla, service, bucket_start, state, kind, location)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (vantage, sla, bucket_start)
DO UPDATE SET service = excluded.service, state = excluded.state, kind = excluded.kind,
    location = excluded.location
"""
# The latest write wins even if it is earlier: after the wall clock is stepped back, a
# heartbeat kept at the old, later value would make the next crash's gap empty.
_SQL_HEARTBEAT = """
INSERT INTO heartbeats (vantage, ts, location) VALUES (?, ?, ?)
ON CONFLICT (vantage) DO UPDATE SET ts = excluded.ts, location = excluded.location
"""


def write_batch(
    conn: sqlite3.Connection,
    vantage: str,
    batch: WriteBatch,
    location: str | None = None,
    *,
    own: bool = False,
) -> None:
    """Everything in ``batch`` in one transaction; the heartbeat is ``vantage``'s, at
    ``location`` (default: named like the vantage). The checksums cover what they covered
    before locations existed (a row's location is not part of its counts). ``own``: the
    writer is the daemon that armed the snapshot guards (``monitor.store.snapshots``): its
    rows in a snapshotted month after the snapshot do not spoil it."""
    tallies = [
        (*row, tally_crc(*row), r.location)
        for row, r in zip(_tally_values(batch), batch.tallies, strict=True)
    ]
    evidence = [
        (*row, evidence_crc(*row), e.location)
        for row, e in zip(_evidence_values(batch), batch.evidence, strict=True)
    ]
    verdicts = [
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
    ]
    with transaction(conn):
        if own and tallies:
            conn.execute("INSERT OR IGNORE INTO snapshot_writer (vantage) VALUES (?)", (vantage,))
        conn.executemany(_SQL_TALLY, tallies)
        if own and tallies:
            conn.execute("DELETE FROM snapshot_writer")
        conn.executemany(_SQL_EVIDENCE, evidence)
        conn.executemany(_SQL_SERVICE_BUCKET, verdicts)
        if batch.heartbeat is not None:
            conn.execute(_SQL_HEARTBEAT, (vantage, batch.heartbeat, location or vantage))


def _tally_values(
    batch: WriteBatch,
) -> list[tuple[str, str, int, int, int, int, str, int, str, int]]:
    return [
        (
            r.vantage,
            r.target,
            r.bucket_seconds,
            r.bucket_start,
            r.ok,
            r.failed,
            _reasons_json(r, "reasons", r.reasons),
            r.errors,
            _reasons_json(r, "error_reasons", r.error_reasons),
            r.excused,
        )
        for r in batch.tallies
    ]


_NO_REASONS_JSON = encode_json("no reasons", {})


def _reasons_json(row: TallyRow, field: str, reasons: Mapping[str, int]) -> str:
    """``encode_json`` of a tally's reasons; most tallies have none (fl24, issue 20: the
    write runs in the store's thread, but its Python work holds the GIL the loop needs).
    cpu28 (issue 20): the error's label is only built for reasons to encode, not twice for
    every row of every flush."""
    if not reasons:
        return _NO_REASONS_JSON
    return encode_json(f"tally {row.target}@{row.bucket_start}: {field}", dict(reasons))


def _evidence_values(batch: WriteBatch) -> list[tuple[str, float, str, str, str, float, str]]:
    return [
        (
            e.vantage,
            e.ts,
            e.target,
            e.outcome.value,
            e.reason,
            e.duration,
            encode_json(f"evidence {e.target}@{e.ts}: details", dict(e.details)),
        )
        for e in batch.evidence
    ]


_TALLY_COLUMNS = (
    "target, bucket_start, bucket_seconds, ok, failed, reasons, errors, error_reasons, excused"
)
_ROW_COLUMNS = _TALLY_COLUMNS + ", location"


def _tally_query(
    columns: str,
    vantage: str,
    start: int,
    end: int,
    targets: Sequence[str] | None,
    bucket_seconds: int | None,
) -> tuple[str, list[object]]:
    # A few named targets are read through their own index (seeks per target); without
    # names the primary key's (vantage, bucket_start) prefix is one contiguous range.
    index = "INDEXED BY tallies_by_target" if targets is not None else ""
    sql = (
        f"SELECT {columns} FROM tallies {index} "
        "WHERE vantage = ? AND bucket_start >= ? AND bucket_start < ?"
    )
    return _narrowed(sql, [vantage, start, end], targets, bucket_seconds)


def _narrowed(
    sql: str, params: list[object], targets: Sequence[str] | None, bucket_seconds: int | None
) -> tuple[str, list[object]]:
    """``sql`` and ``params`` narrowed to one bucket length and to named targets, if given."""
    if bucket_seconds is not None:
        sql += " AND bucket_seconds = ?"
        params.append(bucket_seconds)
    if targets is not None:
        sql += f" AND target IN ({','.join('?' * len(targets))})"
        params.extend(targets)
    return sql, params


def tally_rows(
    conn: sqlite3.Connection, start: int, end: int, targets: Sequence[str] | None
) -> list[TallyRow]:
    """Every vantage point's rows with ``start <= bucket_start < end``, ordered by vantage,
    target, bucket start, bucket length."""
    if targets is not None and not targets:
        return []
    out: list[TallyRow] = []
    for vantage in vantages(conn):
        sql, params = _tally_query(
            _ROW_COLUMNS,
            vantage,
            start,
            end,
            None if targets is None else list(targets),
            None,
        )
        cursor = conn.execute(sql + " ORDER BY target, bucket_start, bucket_seconds", params)
        cursor.row_factory = None
        out.extend(
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
            for (
                target,
                bucket,
                seconds,
                ok,
                failed,
                reasons,
                errors,
                error_reasons,
                excused,
                location,
            ) in cursor
        )
    return out


def tallies_by_target(
    conn: sqlite3.Connection,
    start: int,
    end: int,
    targets: Sequence[str] | None,
    vantage: str,
    bucket_seconds: int | None,
) -> dict[str, dict[int, Tally]]:
    """``target -> bucket start -> Tally`` for one vantage; the month-report hot path, so it
    skips the row objects (a month of 9 targets is ~78,000 rows)."""
    if targets is not None and not targets:
        return {}
    sql, params = _tally_query(
        _TALLY_COLUMNS,
        vantage,
        start,
        end,
        None if targets is None else list(targets),
        bucket_seconds,
    )
    cursor = conn.execute(sql, params)
    cursor.row_factory = None
    out: dict[str, dict[int, Tally]] = {}
    # tl31 (issue 20): equal rows give one Tally (frozen, so shared safely): a start reads
    # the last hour back for every target (120,000 rows at 10,000 targets), most of them
    # alike, and building a Tally per row was most of the read's time.
    made: dict[tuple[int, int, str, int, str, int], Tally] = {}
    # One bucket length asked: the primary key (vantage, bucket_start, target,
    # bucket_seconds) holds one row per target and bucket, so no bucket is read twice and no
    # length is kept for the error below.
    lengths: dict[tuple[str, int], int] | None = None if bucket_seconds is not None else {}
    for row in cursor:
        target, bucket = row[0], row[1]
        by_bucket = out.get(target)
        if by_bucket is None:
            by_bucket = out[target] = {}
        if lengths is not None:
            if bucket in by_bucket:
                raise StoreError(
                    f"tallies of {target} at {bucket} are stored for bucket lengths "
                    f"{lengths[(target, bucket)]} and {row[2]}: pass bucket_seconds"
                )
            lengths[(target, bucket)] = row[2]
        key = row[3:]
        tally = made.get(key)
        if tally is None:
            tally = made[key] = _tally(*key)
        by_bucket[bucket] = tally
    return out


def _tally(
    ok: int, failed: int, reasons: str, errors: int, error_reasons: str, excused: int
) -> Tally:
    return Tally(
        ok=ok,
        failed=failed,
        reasons=_NO_REASONS if reasons == "{}" else MappingProxyType(json.loads(reasons)),
        errors=errors,
        error_reasons=(
            _NO_REASONS if error_reasons == "{}" else MappingProxyType(json.loads(error_reasons))
        ),
        excused=excused,
    )


def location_tallies(
    conn: sqlite3.Connection,
    start: int,
    end: int,
    targets: Sequence[str] | None,
    location: str,
    bucket_seconds: int | None,
) -> dict[str, dict[int, Tally]]:
    """``target -> bucket start -> Tally`` of one location, summed over its members (see
    ``base.load_tallies(..., location=)``)."""
    if targets is not None and not targets:
        return {}
    sql = (
        f"SELECT {_TALLY_COLUMNS} FROM tallies INDEXED BY tallies_by_location "
        "WHERE location = ? AND bucket_start >= ? AND bucket_start < ?"
    )
    sql, params = _narrowed(sql, [location, start, end], targets, bucket_seconds)
    cursor = conn.execute(sql, params)
    cursor.row_factory = None
    out: dict[str, dict[int, Tally]] = {}
    lengths: dict[tuple[str, int], int] = {}
    for target, bucket, seconds, ok, failed, reasons, errors, error_reasons, excused in cursor:
        held = lengths.setdefault((target, bucket), seconds)
        if held != seconds:
            raise StoreError(
                f"tallies of {target} at {bucket} in location {location} are stored for "
                f"bucket lengths {held} and {seconds}: pass bucket_seconds"
            )
        add_tally(
            out.setdefault(target, {}),
            bucket,
            _tally(ok, failed, reasons, errors, error_reasons, excused),
        )
    return out


def locations(conn: sqlite3.Connection) -> list[str]:
    """Locations with a heartbeat or tallies (a loose index scan, as ``vantages``)."""
    sql = """
    WITH RECURSIVE seen(v) AS (
        SELECT min(location) FROM tallies
        UNION ALL
        SELECT (SELECT min(location) FROM tallies WHERE location > seen.v) FROM seen
        WHERE seen.v IS NOT NULL
    )
    SELECT v FROM seen WHERE v IS NOT NULL UNION SELECT location FROM heartbeats ORDER BY 1
    """
    return [str(row[0]) for row in conn.execute(sql)]


def vantages(conn: sqlite3.Connection) -> list[str]:
    """Vantage points with a heartbeat or tallies. The tallies part is a loose index scan
    (one seek per distinct vantage), not a scan of every row."""
    sql = """
    WITH RECURSIVE seen(v) AS (
        SELECT min(vantage) FROM tallies
        UNION ALL
        SELECT (SELECT min(vantage) FROM tallies WHERE vantage > seen.v) FROM seen
        WHERE seen.v IS NOT NULL
    )
    SELECT v FROM seen WHERE v IS NOT NULL UNION SELECT vantage FROM heartbeats ORDER BY 1
    """
    return [str(row[0]) for row in conn.execute(sql)]


def evidence(
    conn: sqlite3.Connection,
    start: float,
    end: float,
    target: str | None,
    limit: int,
    vantage: str,
) -> list[EvidenceRow]:
    sql = "SELECT * FROM evidence WHERE ts >= ? AND ts < ? AND vantage = ?"
    params: list[object] = [start, end, vantage]
    if target is not None:
        sql += " AND target = ?"
        params.append(target)
    sql += " ORDER BY ts, id LIMIT ?"
    params.append(limit)
    return [
        EvidenceRow(
            vantage=row["vantage"],
            ts=row["ts"],
            target=row["target"],
            outcome=Outcome(row["outcome"]),
            reason=row["reason"],
            duration=row["duration"],
            details=json.loads(row["details"]),
            id=row["id"],
            location=row["location"],
        )
        for row in conn.execute(sql, params)
    ]


def service_buckets(
    conn: sqlite3.Connection, sla: str, start: int, end: int, vantage: str
) -> list[ServiceBucketRow]:
    sql = (
        "SELECT * FROM service_buckets WHERE vantage = ? AND sla = ? "
        "AND bucket_start >= ? AND bucket_start < ? ORDER BY bucket_start"
    )
    return [
        ServiceBucketRow(
            vantage=row["vantage"],
            sla=row["sla"],
            service=row["service"],
            bucket_start=row["bucket_start"],
            state=BucketState(row["state"]),
            kind=None if row["kind"] is None else ExclusionKind(row["kind"]),
            location=row["location"],
        )
        for row in conn.execute(sql, (vantage, sla, start, end))
    ]


def prune_evidence_chunk(conn: sqlite3.Connection, older_than: float) -> int:
    """Delete up to ``PRUNE_CHUNK`` evidence rows with ``ts < older_than``; return how many."""
    with transaction(conn):
        cursor = conn.execute(
            "DELETE FROM evidence WHERE id IN "
            "(SELECT id FROM evidence WHERE ts < ? ORDER BY ts LIMIT ?)",
            (older_than, PRUNE_CHUNK),
        )
        return cursor.rowcount


def record_gap(conn: sqlite3.Connection, gap: Gap) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO gaps (vantage, start_ts, end_ts, reason, location) VALUES (?, ?, ?, ?, ?)",
            (gap.vantage, gap.start, gap.end, gap.reason, gap.location),
        )


def gaps(
    conn: sqlite3.Connection, start: float, end: float, vantage: str, column: str = "vantage"
) -> list[Gap]:
    """Gaps overlapping ``[start, end)`` of one vantage (``column`` "location": of every
    member of the location named ``vantage``)."""
    if column not in ("vantage", "location"):
        raise ValueError(f"column: expected vantage or location, got {column!r}")
    sql = (
        f"SELECT * FROM gaps WHERE {column} = ? AND start_ts < ? AND end_ts > ? "
        "ORDER BY start_ts, id"
    )
    return [
        Gap(row["vantage"], row["start_ts"], row["end_ts"], row["reason"], row["location"])
        for row in conn.execute(sql, (vantage, end, start))
    ]


def last_heartbeat(conn: sqlite3.Connection, vantage: str) -> float | None:
    row = conn.execute("SELECT ts FROM heartbeats WHERE vantage = ?", (vantage,)).fetchone()
    return None if row is None else float(row[0])


def prune_tallies_chunk(conn: sqlite3.Connection, vantage: str, start: int, end: int) -> int:
    """Delete up to ``PRUNE_CHUNK`` of ``vantage``'s tallies in ``[start, end)``."""
    with transaction(conn):
        cursor = conn.execute(
            # WITHOUT ROWID: the chunk is chosen by primary key.
            "DELETE FROM tallies WHERE (vantage, bucket_start, target, bucket_seconds) IN "
            "(SELECT vantage, bucket_start, target, bucket_seconds FROM tallies "
            "WHERE vantage = ? AND bucket_start >= ? AND bucket_start < ? LIMIT ?)",
            (vantage, start, end, PRUNE_CHUNK),
        )
        return cursor.rowcount
