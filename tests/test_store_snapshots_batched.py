"""The snapshot guard's batched reads (issue 20, me24): ``sqlite_snapshots.load`` and ``arm``
read the guard rows and snapshots of a few hundred SLAs per statement instead of one statement
per month. On any store (guards of other months and SLAs, spoiled, moved on, missing, targets
changed; snapshots with and without guards) and any guards to arm (fresh, carry, ahead, kept or
not, the same month twice), they return the same and leave the same rows as the per-month
reads they replaced, which are kept here verbatim as the reference."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.store import sqlite_snapshots as snaps
from monitor.store.schema import transaction
from monitor.store.snapshots import MonthSnapshot, SnapshotGuard
from monitor.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(120)

VANTAGE = "v1"
SLAS = ("s0", "s1", "s2")
MONTHS = ("2026-11", "2026-12", "2027-01")
TARGETS = ("a", "b", "c")
THROUGH = (3000, 3300, 3600)
_guard_of = snaps._guard_of
_starts_spoiled = snaps._starts_spoiled


def reference_load(
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


def reference_arm(
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


_TEMPLATE: list[Path] = []


def _template(tmp: Path) -> Path:
    """An empty store's file with the current schema, made once per session."""
    if not _TEMPLATE:
        path = tmp / "template.db"

        async def make() -> None:
            store = SqliteStore(path, VANTAGE)
            await store.open()
            await store.close()

        asyncio.run(make())
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


def _copy(template: Path) -> sqlite3.Connection:
    source = sqlite3.connect(template)
    conn = sqlite3.connect(":memory:", isolation_level=None)
    source.backup(conn)
    source.close()
    conn.row_factory = sqlite3.Row
    return conn


GUARD_ROWS = st.lists(
    st.tuples(
        st.sampled_from(SLAS),
        st.sampled_from(MONTHS),
        st.sampled_from(TARGETS),
        st.sampled_from(THROUGH),
        st.booleans(),
    ),
    max_size=25,
)
SNAPSHOT_ROWS = st.lists(
    st.tuples(st.sampled_from(SLAS), st.sampled_from(MONTHS), st.sampled_from(THROUGH)),
    max_size=10,
)
KEYS = st.lists(st.tuples(st.sampled_from(SLAS), st.sampled_from(MONTHS)), max_size=12)
GUARDS = st.lists(
    st.builds(
        lambda key, targets, keep, mode: SnapshotGuard(
            key[0], key[1], targets, 300, 0, 6000, keep_through=keep, mode=mode
        ),
        st.tuples(st.sampled_from(SLAS), st.sampled_from(MONTHS)),
        st.lists(st.sampled_from(TARGETS), min_size=1, max_size=3, unique=True).map(tuple),
        st.sampled_from((None, *THROUGH)),
        st.sampled_from(("fresh", "carry", "ahead")),
    ),
    max_size=12,
)


def _fill(
    conn: sqlite3.Connection,
    guards: Sequence[tuple[str, str, str, int, bool]],
    snapshots: Sequence[tuple[str, str, int]],
) -> None:
    with transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO snapshot_guard (vantage, sla, month, target, bucket_seconds, "
            "month_start, month_end, judged_through, spoiled) VALUES (?,?,?,?,300,0,6000,?,?)",
            [(VANTAGE, s, m, t, j, int(x)) for s, m, t, j, x in guards],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO month_snapshots (vantage, sla, month, bucket_seconds, "
            "judged_through, inputs, state) VALUES (?,?,?,300,?,?,?)",
            [(VANTAGE, s, m, j, f"d{s}{m}", f"{s}{m}{j}".encode()) for s, m, j in snapshots],
        )


def _rows(conn: sqlite3.Connection) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    return (
        [tuple(r) for r in conn.execute("SELECT * FROM snapshot_guard ORDER BY 1, 2, 3, 4")],
        [tuple(r) for r in conn.execute("SELECT * FROM month_snapshots ORDER BY 1, 2, 3")],
    )


class TestBatchedGuardReads:
    """The batched ``load`` and ``arm`` against the per-month reads they replaced."""

    @settings(max_examples=300, deadline=None)
    @given(GUARD_ROWS, SNAPSHOT_ROWS, KEYS, GUARDS)
    def test_load_and_arm_equal_the_per_month_reads(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        guard_rows: list[tuple[str, str, str, int, bool]],
        snapshot_rows: list[tuple[str, str, int]],
        keys: list[tuple[str, str]],
        guards: list[SnapshotGuard],
    ) -> None:
        """Same snapshots loaded (with their guarded targets), same months kept, same rows
        left in both tables, on any store and any guards (the same month twice included)."""
        template = _template(tmp_path_factory.getbasetemp())
        new, old = _copy(template), _copy(template)
        for conn in (new, old):
            _fill(conn, guard_rows, snapshot_rows)
        loaded: dict[tuple[str, str], tuple[MonthSnapshot, tuple[str, ...]]] = snaps.load(
            new, VANTAGE, keys
        )
        assert loaded == reference_load(old, VANTAGE, keys)
        assert snaps.arm(new, VANTAGE, guards) == reference_arm(old, VANTAGE, guards)
        assert _rows(new) == _rows(old)

    def test_many_slas_are_read_in_several_statements(self, tmp_path: Path) -> None:
        """More SLAs than one statement holds (``_MANY``): every one is read, none twice."""
        template = _template(tmp_path)
        new, old = _copy(template), _copy(template)
        count = snaps._MANY * 2 + 7
        guard_rows = [(f"s{i}", "2026-12", "a", 3000, i % 5 == 0) for i in range(count)]
        snapshot_rows = [(f"s{i}", "2026-12", 3000) for i in range(count) if i % 3]
        for conn in (new, old):
            _fill(conn, guard_rows, snapshot_rows)
        keys = [(f"s{i}", month) for i in range(count) for month in ("2026-11", "2026-12")]
        loaded = snaps.load(new, VANTAGE, keys)
        assert loaded == reference_load(old, VANTAGE, keys)
        assert len(loaded) == len([i for i in range(count) if i % 3 and i % 5])
        guards = [
            SnapshotGuard(s, m, ("a",), 300, 0, 6000, keep_through=3000, mode="fresh")
            for s, m in keys
        ]
        assert snaps.arm(new, VANTAGE, guards) == reference_arm(old, VANTAGE, guards)
        assert _rows(new) == _rows(old)
