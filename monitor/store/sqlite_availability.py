"""Synchronous SQLite access for availability data: tallies, evidence, service verdicts, gaps
and heartbeats. Plain functions over a connection, run in the store's worker thread (and
usable directly by a synchronous tool holding its own connection)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from types import MappingProxyType

from monitor.sla.policy import BucketState, ExclusionKind
from monitor.store.base import (
    EvidenceRow,
    Gap,
    ServiceBucketRow,
    TallyRow,
    WriteBatch,
    encode_json,
)
from monitor.store.schema import transaction
from probes.result import Outcome

PRUNE_CHUNK = 5000
"""Evidence rows deleted per transaction: other writers get the lock between chunks."""

_SQL_TALLY = """
INSERT INTO tallies (vantage, target, bucket_seconds, bucket_start, ok, failed, reasons)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (vantage, target, bucket_seconds, bucket_start)
DO UPDATE SET ok = excluded.ok, failed = excluded.failed, reasons = excluded.reasons
"""
_SQL_EVIDENCE = """
INSERT INTO evidence (vantage, ts, target, outcome, reason, duration, details)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
_SQL_SERVICE_BUCKET = """
INSERT INTO service_buckets (vantage, sla, service, bucket_start, state, kind)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (vantage, sla, bucket_start)
DO UPDATE SET service = excluded.service, state = excluded.state, kind = excluded.kind
"""
# max(): a heartbeat never moves backwards, so a late retry of an old batch cannot shrink
# the next start-up's downtime gap.
_SQL_HEARTBEAT = """
INSERT INTO heartbeats (vantage, ts) VALUES (?, ?)
ON CONFLICT (vantage) DO UPDATE SET ts = max(ts, excluded.ts)
"""


def write_batch(conn: sqlite3.Connection, vantage: str, batch: WriteBatch) -> None:
    """Everything in ``batch`` in one transaction; the heartbeat is ``vantage``'s."""
    tallies = [
        (
            r.vantage,
            r.target,
            r.bucket_seconds,
            r.bucket_start,
            r.ok,
            r.failed,
            encode_json(f"tally {r.target}@{r.bucket_start}: reasons", dict(r.reasons)),
        )
        for r in batch.tallies
    ]
    evidence = [
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
    verdicts = [
        (
            s.vantage,
            s.sla,
            s.service,
            s.bucket_start,
            s.state.value,
            None if s.kind is None else s.kind.value,
        )
        for s in batch.service_buckets
    ]
    with transaction(conn):
        conn.executemany(_SQL_TALLY, tallies)
        conn.executemany(_SQL_EVIDENCE, evidence)
        conn.executemany(_SQL_SERVICE_BUCKET, verdicts)
        if batch.heartbeat is not None:
            conn.execute(_SQL_HEARTBEAT, (vantage, batch.heartbeat))


def tally_rows(
    conn: sqlite3.Connection,
    start: int,
    end: int,
    targets: Sequence[str] | None,
    vantage: str | None,
    bucket_seconds: int | None,
) -> list[TallyRow]:
    """Rows with ``start <= bucket_start < end``; ``None`` filters match everything."""
    sql = "SELECT * FROM tallies WHERE bucket_start >= ? AND bucket_start < ?"
    params: list[object] = [start, end]
    if vantage is not None:
        sql += " AND vantage = ?"
        params.append(vantage)
    if bucket_seconds is not None:
        sql += " AND bucket_seconds = ?"
        params.append(bucket_seconds)
    if targets is not None:
        wanted = list(targets)
        if not wanted:
            return []
        sql += f" AND target IN ({','.join('?' * len(wanted))})"
        params.extend(wanted)
    sql += " ORDER BY vantage, target, bucket_start, bucket_seconds"
    return [
        TallyRow(
            vantage=row["vantage"],
            target=row["target"],
            bucket_start=row["bucket_start"],
            bucket_seconds=row["bucket_seconds"],
            ok=row["ok"],
            failed=row["failed"],
            reasons=MappingProxyType(json.loads(row["reasons"])),
        )
        for row in conn.execute(sql, params)
    ]


def vantages(conn: sqlite3.Connection) -> list[str]:
    sql = "SELECT vantage FROM heartbeats UNION SELECT vantage FROM tallies ORDER BY vantage"
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
            "INSERT INTO gaps (vantage, start_ts, end_ts, reason) VALUES (?, ?, ?, ?)",
            (gap.vantage, gap.start, gap.end, gap.reason),
        )


def gaps(conn: sqlite3.Connection, start: float, end: float, vantage: str) -> list[Gap]:
    """Gaps overlapping ``[start, end)``."""
    sql = (
        "SELECT * FROM gaps WHERE vantage = ? AND start_ts < ? AND end_ts > ? ORDER BY start_ts, id"
    )
    return [
        Gap(row["vantage"], row["start_ts"], row["end_ts"], row["reason"])
        for row in conn.execute(sql, (vantage, end, start))
    ]


def last_heartbeat(conn: sqlite3.Connection, vantage: str) -> float | None:
    row = conn.execute("SELECT ts FROM heartbeats WHERE vantage = ?", (vantage,)).fetchone()
    return None if row is None else float(row[0])
