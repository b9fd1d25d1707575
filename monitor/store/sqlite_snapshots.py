"""SQLite side of ``monitor.store.snapshots``: plain functions over a connection, run in the
store's worker thread (schema 7 holds the tables and triggers, ``monitor.store.schema``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

from monitor.store.schema import transaction
from monitor.store.snapshots import MonthSnapshot, SnapshotGuard


def _guard_of(conn: sqlite3.Connection, vantage: str, sla: str, month: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT target, judged_through, spoiled FROM snapshot_guard "
        "WHERE vantage = ? AND sla = ? AND month = ?",
        (vantage, sla, month),
    ).fetchall()


_GUARD_ROW = tuple[str, int, int]
"""A guard row as read here: (target, judged_through, spoiled)."""

_MANY = 400
"""SLAs per batched read (two parameters per SLA and month stay far below SQLite's limit)."""


def _guards_of(
    conn: sqlite3.Connection, vantage: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[_GUARD_ROW]]:
    """The guard rows of every (SLA, month) of ``keys`` (read as :func:`_rows_of` says)."""
    out: dict[tuple[str, str], list[_GUARD_ROW]] = {}
    for key, rest in _rows_of(
        conn, "target, judged_through, spoiled", "snapshot_guard", vantage, keys
    ):
        out.setdefault(key, []).append(rest)
    return out


def _rows_of(
    conn: sqlite3.Connection,
    columns: str,
    table: str,
    vantage: str,
    keys: Sequence[tuple[str, str]],
) -> Iterator[tuple[tuple[str, str], tuple[Any, ...]]]:
    """``columns`` of ``table``'s rows of every (SLA, month) of ``keys``, each as (its key,
    its columns), a few hundred SLAs per statement (issue 20, me24: one indexed look-up per
    SLA instead of one statement per month; ``sla IN`` and ``month IN`` search the
    ``(vantage, sla, month)`` index, and rows of other months of those SLAs are dropped
    here).

    Plain tuples, not ``sqlite3.Row``s, taken as they come: both tables are STRICT, so each
    column is already of its declared type (TEXT a str, INTEGER an int, BLOB bytes). ov33
    (issue 20): at a start at 10,000 SLAs these reads are the store's worker's part of
    ``MonthSnapshots.restorable`` (20,000 snapshots, 50,000 guard rows), which the loop waits
    on; the row objects and the conversions were about a tenth of them (best of 10: guard
    rows 0.099 -> 0.088 s, snapshot loads 0.278 -> 0.256 s; the rest is SQLite's own
    stepping)."""
    wanted = set(keys)
    slas = sorted({sla for sla, _ in wanted})
    months = sorted({month for _, month in wanted})
    for lo in range(0, len(slas), _MANY):
        some = slas[lo : lo + _MANY]
        cursor = conn.execute(
            f"SELECT sla, month, {columns} FROM {table} "
            f"WHERE vantage = ? AND sla IN ({','.join('?' * len(some))}) "
            f"AND month IN ({','.join('?' * len(months))})",
            (vantage, *some, *months),
        )
        cursor.row_factory = None
        for row in cursor:
            key = row[:2]
            if key in wanted:
                yield key, row[2:]


def load(
    conn: sqlite3.Connection, vantage: str, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], tuple[MonthSnapshot, tuple[str, ...]]]:
    out: dict[tuple[str, str], tuple[MonthSnapshot, tuple[str, ...]]] = {}
    conn.execute("BEGIN")  # one read snapshot of the database for every key
    try:
        stored = dict(
            _rows_of(
                conn,
                "bucket_seconds, judged_through, inputs, state, verdicts_from, "
                "verdicts_through, verdicts_digest, settled",
                "month_snapshots",
                vantage,
                keys,
            )
        )
        guards = _guards_of(conn, vantage, [key for key in keys if key in stored])
        for key in keys:
            row = stored.get(key)
            if row is None:
                continue
            seconds, through, inputs, state, lo, hi, digest, settled = row
            guard = guards.get(key, [])
            if not guard or any(spoiled or judged != through for _, judged, spoiled in guard):
                continue
            out[key] = (
                MonthSnapshot(
                    key[0], key[1], seconds, through, inputs, state, lo, hi, digest, settled
                ),
                tuple(sorted(target for target, _, _ in guard)),
            )
    finally:
        conn.execute("COMMIT")
    return out


def arm(
    conn: sqlite3.Connection, vantage: str, guards: Sequence[SnapshotGuard]
) -> set[tuple[str, str]]:
    kept: set[tuple[str, str]] = set()
    with transaction(conn):
        # Every guard's rows read at once, inside the transaction; a key this call rewrites
        # is read again if it comes up a second time.
        before = _guards_of(conn, vantage, [(g.sla, g.month) for g in guards])
        rewritten: set[tuple[str, str]] = set()
        for g in guards:
            if g.key in rewritten:
                rows = [
                    (str(r["target"]), int(r["judged_through"]), int(r["spoiled"]))
                    for r in _guard_of(conn, vantage, g.sla, g.month)
                ]
            else:
                rows = before.get(g.key, [])
            targets = sorted(set(g.targets))
            if g.mode == "ahead" and rows and sorted(t for t, _, _ in rows) == targets:
                continue  # armed before: it has seen every write since
            if (
                g.mode != "ahead"
                and g.keep_through is not None
                and rows
                and sorted(t for t, _, _ in rows) == targets
                and all(not spoiled and judged == g.keep_through for _, judged, spoiled in rows)
            ):
                kept.add(g.key)
                continue
            spoiled = _starts_spoiled(conn, vantage, g, targets)
            rewritten.add(g.key)
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
                "judged_through, inputs, state, verdicts_from, verdicts_through, "
                "verdicts_digest, settled) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (vantage, sla, month) DO UPDATE SET "
                "bucket_seconds = excluded.bucket_seconds, "
                "judged_through = excluded.judged_through, inputs = excluded.inputs, "
                "state = excluded.state, verdicts_from = excluded.verdicts_from, "
                "verdicts_through = excluded.verdicts_through, "
                "verdicts_digest = excluded.verdicts_digest, settled = excluded.settled",
                (
                    vantage,
                    s.sla,
                    s.month,
                    s.bucket_seconds,
                    s.judged_through,
                    s.inputs,
                    s.state,
                    s.verdicts_from,
                    s.verdicts_through,
                    s.verdicts_digest,
                    s.settled,
                ),
            )
            written += 1
    return written
