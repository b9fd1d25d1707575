"""SQLite side of ``monitor.store.snapshots``: plain functions over a connection, run in the
store's worker thread (schema 7 holds the tables and triggers, ``monitor.store.schema``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from monitor.store.schema import transaction
from monitor.store.snapshots import MonthSnapshot, SnapshotGuard


def _guard_of(conn: sqlite3.Connection, vantage: str, sla: str, month: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT target, judged_through, spoiled FROM snapshot_guard "
        "WHERE vantage = ? AND sla = ? AND month = ?",
        (vantage, sla, month),
    ).fetchall()


def load(
    conn: sqlite3.Connection, vantage: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[MonthSnapshot, tuple[str, ...]]]:
    out: dict[tuple[str, str], tuple[MonthSnapshot, tuple[str, ...]]] = {}
    conn.execute("BEGIN")  # one read snapshot of the database for every key
    try:
        for sla, month in keys:
            row = conn.execute(
                "SELECT bucket_seconds, judged_through, inputs, state FROM month_snapshots "
                "WHERE vantage = ? AND sla = ? AND month = ?",
                (vantage, sla, month),
            ).fetchone()
            if row is None:
                continue
            guard = _guard_of(conn, vantage, sla, month)
            through = int(row["judged_through"])
            if not guard or any(g["spoiled"] or int(g["judged_through"]) != through for g in guard):
                continue
            out[(sla, month)] = (
                MonthSnapshot(
                    sla,
                    month,
                    int(row["bucket_seconds"]),
                    through,
                    str(row["inputs"]),
                    bytes(row["state"]),
                ),
                tuple(sorted(str(g["target"]) for g in guard)),
            )
    finally:
        conn.execute("COMMIT")
    return out


def arm(
    conn: sqlite3.Connection, vantage: str, guards: Sequence[SnapshotGuard]
) -> set[tuple[str, str]]:
    kept: set[tuple[str, str]] = set()
    with transaction(conn):
        for g in guards:
            rows = _guard_of(conn, vantage, g.sla, g.month)
            targets = sorted(set(g.targets))
            if g.mode == "ahead" and rows and sorted(str(r["target"]) for r in rows) == targets:
                continue  # armed before: it has seen every write since
            if (
                g.mode != "ahead"
                and g.keep_through is not None
                and rows
                and sorted(str(r["target"]) for r in rows) == targets
                and all(
                    not r["spoiled"] and int(r["judged_through"]) == g.keep_through for r in rows
                )
            ):
                kept.add(g.key)
                continue
            spoiled = _starts_spoiled(conn, vantage, g, targets)
            conn.execute(
                "DELETE FROM snapshot_guard WHERE vantage = ? AND sla = ? AND month = ?",
                (vantage, g.sla, g.month),
            )
            conn.execute(
                "DELETE FROM month_snapshots WHERE vantage = ? AND sla = ? AND month = ?",
                (vantage, g.sla, g.month),
            )
            conn.executemany(
                "INSERT INTO snapshot_guard (vantage, sla, month, target, bucket_seconds, "
                "month_start, month_end, judged_through, spoiled) VALUES (?,?,?,?,?,?,?,?,?)",
                [
                    (
                        vantage,
                        g.sla,
                        g.month,
                        target,
                        g.bucket_seconds,
                        g.month_start,
                        g.month_end,
                        g.month_start,
                        int(spoiled),
                    )
                    for target in targets
                ],
            )
    return kept


def _starts_spoiled(
    conn: sqlite3.Connection, vantage: str, g: SnapshotGuard, targets: Sequence[str]
) -> bool:
    """Whether a new guard for ``g`` cannot vouch for the month the caller holds (see
    ``SnapshotGuard.mode``); read before the old guard rows are deleted."""
    if g.mode == "fresh":
        return False
    if g.mode == "ahead":
        return any(
            conn.execute(
                "SELECT 1 FROM tallies WHERE vantage = ? AND target = ? AND bucket_start >= ? "
                "AND bucket_start < ? AND bucket_seconds = ? LIMIT 1",
                (vantage, target, g.month_start, g.month_end, g.bucket_seconds),
            ).fetchone()
            is not None
            for target in targets
        )
    return not all(
        conn.execute(
            "SELECT 1 FROM snapshot_guard WHERE target = ? AND vantage = ? AND month = ? "
            "AND bucket_seconds = ? AND month_start = ? AND month_end = ? LIMIT 1",
            (target, vantage, g.month, g.bucket_seconds, g.month_start, g.month_end),
        ).fetchone()
        is not None
        and conn.execute(
            "SELECT 1 FROM snapshot_guard WHERE target = ? AND vantage = ? AND month = ? "
            "AND bucket_seconds = ? AND spoiled = 1 LIMIT 1",
            (target, vantage, g.month, g.bucket_seconds),
        ).fetchone()
        is None
        for target in targets
    )


def save(
    conn: sqlite3.Connection,
    vantage: str,
    snapshots: Sequence[MonthSnapshot],
    drop_before: int | None,
) -> int:
    written = 0
    with transaction(conn):
        if drop_before is not None:
            old = conn.execute(
                "SELECT DISTINCT sla, month FROM snapshot_guard "
                "WHERE vantage = ? AND month_end <= ?",
                (vantage, drop_before),
            ).fetchall()
            for row in old:
                for table in ("snapshot_guard", "month_snapshots"):
                    conn.execute(
                        f"DELETE FROM {table} WHERE vantage = ? AND sla = ? AND month = ?",
                        (vantage, row["sla"], row["month"]),
                    )
        for s in snapshots:
            guard = _guard_of(conn, vantage, s.sla, s.month)
            if not guard or any(g["spoiled"] for g in guard):
                continue  # never armed by this daemon, or spoiled: the snapshot is not proven
            conn.execute(
                "UPDATE snapshot_guard SET judged_through = ? "
                "WHERE vantage = ? AND sla = ? AND month = ?",
                (s.judged_through, vantage, s.sla, s.month),
            )
            conn.execute(
                "INSERT INTO month_snapshots (vantage, sla, month, bucket_seconds, "
                "judged_through, inputs, state) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (vantage, sla, month) DO UPDATE SET "
                "bucket_seconds = excluded.bucket_seconds, "
                "judged_through = excluded.judged_through, inputs = excluded.inputs, "
                "state = excluded.state",
                (vantage, s.sla, s.month, s.bucket_seconds, s.judged_through, s.inputs, s.state),
            )
            written += 1
    return written
