"""SQLite schema, forward migrations, and the checks that make ``open()`` refuse a wrong file.

The schema version lives in ``PRAGMA user_version`` and the file's identity in ``PRAGMA
application_id`` ("SLAW"), so a database from another program (or a newer slawatch) is refused
with the file named instead of being "migrated" into something else. Each migration runs in
one transaction together with the ``user_version`` bump: a crash mid-migration leaves the
previous version intact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from probes.reasons import MONITOR_PREFIXES, MONITOR_REASONS

APPLICATION_ID = 0x534C4157  # "SLAW"
_SQLITE_MAGIC = b"SQLite format 3\x00"

_STATES = "'available','unavailable','excluded','unknown','pending'"
_OUTCOMES = "'up','down','timeout','error'"


def _move_monitor_errors() -> str:
    """SQL moving the monitor-side reasons (``probes.reasons``) of every stored tally from
    ``failed``/``reasons`` to ``errors``/``error_reasons``."""
    exact = ", ".join(f"'{r}'" for r in sorted(MONITOR_REASONS))
    prefixes = " OR ".join(f"key GLOB '{p}*'" for p in MONITOR_PREFIXES)
    # An exception's class name (the reason of an unexpected error): one capitalised identifier.
    mine = (
        f"(key IN ({exact}) OR {prefixes} "
        "OR (key GLOB '[A-Z]*' AND key NOT GLOB '*[^A-Za-z0-9_]*'))"
    )
    moved = f"SELECT coalesce(sum(value), 0) FROM json_each(tallies.reasons) WHERE {mine}"
    return f"""UPDATE tallies SET
        errors = errors + ({moved}),
        failed = failed - ({moved}),
        error_reasons = (SELECT json_group_object(key, value) FROM json_each(tallies.reasons)
            WHERE {mine}),
        reasons = (SELECT json_group_object(key, value) FROM json_each(tallies.reasons)
            WHERE NOT {mine})
        WHERE EXISTS (SELECT 1 FROM json_each(tallies.reasons) WHERE {mine})"""


_LOCATED_TABLES = ("tallies", "evidence", "service_buckets", "gaps", "heartbeats")

# Issue 20 (monitor.store.snapshots): a guard row per target of a snapshotted SLA-month is
# spoiled by any tally written into the month before its judged_through, or by anyone but the
# daemon that armed it (whose write transactions hold a row in snapshot_writer).
_SPOIL = """UPDATE snapshot_guard SET spoiled = 1
    WHERE spoiled = 0 AND target = {row}.target AND vantage = {row}.vantage
        AND bucket_seconds = {row}.bucket_seconds
        AND {row}.bucket_start >= month_start AND {row}.bucket_start < month_end
        AND ({row}.bucket_start < judged_through OR NOT EXISTS (
            SELECT 1 FROM snapshot_writer AS w WHERE w.vantage = {row}.vantage));"""

_SNAPSHOTS: tuple[str, ...] = (
    """CREATE TABLE month_snapshots (
        vantage TEXT NOT NULL,
        sla TEXT NOT NULL,
        month TEXT NOT NULL,
        bucket_seconds INTEGER NOT NULL CHECK (bucket_seconds > 0),
        judged_through INTEGER NOT NULL,
        inputs TEXT NOT NULL,
        state BLOB NOT NULL,
        PRIMARY KEY (vantage, sla, month)
    ) STRICT""",
    """CREATE TABLE snapshot_guard (
        vantage TEXT NOT NULL,
        sla TEXT NOT NULL,
        month TEXT NOT NULL,
        target TEXT NOT NULL,
        bucket_seconds INTEGER NOT NULL CHECK (bucket_seconds > 0),
        month_start INTEGER NOT NULL,
        month_end INTEGER NOT NULL,
        judged_through INTEGER NOT NULL,
        spoiled INTEGER NOT NULL DEFAULT 0 CHECK (spoiled IN (0, 1)),
        PRIMARY KEY (target, vantage, sla, month)
    ) STRICT, WITHOUT ROWID""",
    # The key leads with the target: the triggers run once per tally written, and look up
    # that target's guard rows only (a key led by the vantage made the planner scan them all).
    "CREATE INDEX snapshot_guard_by_month ON snapshot_guard (vantage, sla, month)",
    # The daemon's own write transactions insert and delete a row here (never committed).
    "CREATE TABLE snapshot_writer (vantage TEXT PRIMARY KEY) STRICT",
    f"CREATE TRIGGER tallies_guard_insert AFTER INSERT ON tallies BEGIN "
    f"{_SPOIL.format(row='NEW')} END",
    f"CREATE TRIGGER tallies_guard_update AFTER UPDATE ON tallies BEGIN "
    f"{_SPOIL.format(row='NEW')} {_SPOIL.format(row='OLD')} END",
    f"CREATE TRIGGER tallies_guard_delete AFTER DELETE ON tallies BEGIN "
    f"{_SPOIL.format(row='OLD')} END",
)


# Issue 20 (vm26, monitor.runtime.verdict_resume): a snapshot also vouches for its SLA's stored
# verdicts in [verdicts_from, verdicts_through) (stored as judged when it was saved); any later
# write that changes or removes one of them, by anyone, pulls verdicts_through down to its
# bucket. A rewrite that stores the same verdict again changes nothing.
_UNVOUCH = """UPDATE month_snapshots SET verdicts_through = {row}.bucket_start
    WHERE vantage = {row}.vantage AND sla = {row}.sla
        AND {row}.bucket_start >= verdicts_from AND {row}.bucket_start < verdicts_through;"""

_VERDICT_MARKS: tuple[str, ...] = (
    "ALTER TABLE month_snapshots ADD COLUMN verdicts_from INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE month_snapshots ADD COLUMN verdicts_through INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE month_snapshots ADD COLUMN verdicts_digest TEXT NOT NULL DEFAULT ''",
    f"CREATE TRIGGER verdicts_vouch_insert AFTER INSERT ON service_buckets BEGIN "
    f"{_UNVOUCH.format(row='NEW')} END",
    f"CREATE TRIGGER verdicts_vouch_update AFTER UPDATE ON service_buckets "
    f"WHEN OLD.state IS NOT NEW.state OR OLD.kind IS NOT NEW.kind "
    f"OR OLD.service IS NOT NEW.service OR OLD.location IS NOT NEW.location "
    f"OR OLD.bucket_start IS NOT NEW.bucket_start OR OLD.sla IS NOT NEW.sla "
    f"OR OLD.vantage IS NOT NEW.vantage BEGIN "
    f"{_UNVOUCH.format(row='NEW')} {_UNVOUCH.format(row='OLD')} END",
    f"CREATE TRIGGER verdicts_vouch_delete AFTER DELETE ON service_buckets BEGIN "
    f"{_UNVOUCH.format(row='OLD')} END",
)


MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: availability evidence (issue 3).
    (
        """CREATE TABLE tallies (
            vantage TEXT NOT NULL,
            target TEXT NOT NULL,
            bucket_start INTEGER NOT NULL CHECK (bucket_start >= 0),
            bucket_seconds INTEGER NOT NULL CHECK (bucket_seconds > 0),
            ok INTEGER NOT NULL CHECK (ok >= 0),
            failed INTEGER NOT NULL CHECK (failed >= 0),
            reasons TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (vantage, bucket_start, target, bucket_seconds)
        ) STRICT, WITHOUT ROWID""",
        # Time leads the key so a flush's upserts (every target, the current bucket) land on
        # a few adjacent pages and a month reads as one range; this index serves one target.
        "CREATE INDEX tallies_by_target ON tallies (vantage, target, bucket_start)",
        f"""CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            vantage TEXT NOT NULL,
            ts REAL NOT NULL,
            target TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ({_OUTCOMES})),
            reason TEXT NOT NULL,
            duration REAL NOT NULL,
            details TEXT NOT NULL DEFAULT '{{}}'
        ) STRICT""",
        "CREATE INDEX evidence_by_ts ON evidence (ts)",
        "CREATE INDEX evidence_by_target_ts ON evidence (target, ts)",
        f"""CREATE TABLE service_buckets (
            vantage TEXT NOT NULL,
            sla TEXT NOT NULL,
            service TEXT NOT NULL,
            bucket_start INTEGER NOT NULL CHECK (bucket_start >= 0),
            state TEXT NOT NULL CHECK (state IN ({_STATES})),
            kind TEXT,
            PRIMARY KEY (vantage, sla, bucket_start),
            CHECK ((state = 'excluded') = (kind IS NOT NULL))
        ) STRICT, WITHOUT ROWID""",
        """CREATE TABLE gaps (
            id INTEGER PRIMARY KEY,
            vantage TEXT NOT NULL,
            start_ts REAL NOT NULL,
            end_ts REAL NOT NULL,
            reason TEXT NOT NULL,
            CHECK (end_ts > start_ts)
        ) STRICT""",
        "CREATE INDEX gaps_by_start ON gaps (start_ts)",
        """CREATE TABLE heartbeats (
            vantage TEXT PRIMARY KEY,
            ts REAL NOT NULL
        ) STRICT""",
        """CREATE TABLE kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) STRICT""",
    ),
    # 2: exclusions recorded through the API (issue 3) and support faults (issue 5).
    (
        """CREATE TABLE exclusions (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            start_ts REAL NOT NULL,
            end_ts REAL NOT NULL,
            start_iso TEXT NOT NULL,
            end_iso TEXT NOT NULL,
            reason TEXT NOT NULL,
            services TEXT NOT NULL DEFAULT '[]',
            announced_iso TEXT,
            source TEXT NOT NULL,
            added_by TEXT NOT NULL,
            CHECK (end_ts > start_ts)
        ) STRICT""",
        """CREATE TABLE faults (
            fault_id TEXT PRIMARY KEY,
            contract TEXT NOT NULL,
            alert_key TEXT UNIQUE,
            is_open INTEGER NOT NULL CHECK (is_open IN (0, 1)),
            doc TEXT NOT NULL
        ) STRICT""",
        "CREATE INDEX faults_by_contract ON faults (contract, is_open)",
        """CREATE TABLE fault_events (
            fault_id TEXT NOT NULL REFERENCES faults (fault_id) ON DELETE CASCADE,
            seq INTEGER NOT NULL CHECK (seq > 0),
            event TEXT NOT NULL,
            PRIMARY KEY (fault_id, seq)
        ) STRICT, WITHOUT ROWID""",
    ),
    # 3: the monitor's own failures apart from the vendor's, and canary-excused failures
    # (issues 11 and 12). Existing rows counted monitor errors as failures: move them.
    (
        "ALTER TABLE tallies ADD COLUMN errors INTEGER NOT NULL DEFAULT 0 CHECK (errors >= 0)",
        "ALTER TABLE tallies ADD COLUMN error_reasons TEXT NOT NULL DEFAULT '{}'",
        "ALTER TABLE tallies ADD COLUMN excused INTEGER NOT NULL DEFAULT 0 CHECK (excused >= 0)",
        _move_monitor_errors(),
    ),
    # 4: the evidence store over years (issue 17): a checksum per stored tally and evidence
    # row (damage inside a row's payload passes SQLite's own checks), and the sealed months.
    (
        "ALTER TABLE tallies ADD COLUMN crc INTEGER",
        "ALTER TABLE evidence ADD COLUMN crc INTEGER",
        """CREATE TABLE month_seals (
            sla TEXT NOT NULL,
            month TEXT NOT NULL,
            sealed_at REAL NOT NULL,
            config_hash TEXT NOT NULL,
            tallies_digest TEXT NOT NULL,
            doc TEXT NOT NULL,
            digest TEXT NOT NULL,
            PRIMARY KEY (sla, month)
        ) STRICT""",
    ),
    # 5: monitoring locations (issue 14): every row names the location of the vantage point
    # (member) that wrote it. Rows written before were one location of one member, named
    # like the vantage, which is also what a daemon without ``monitor.location`` writes.
    (
        *(
            statement
            for table in _LOCATED_TABLES
            for statement in (
                f"ALTER TABLE {table} ADD COLUMN location TEXT NOT NULL DEFAULT ''",
                f"UPDATE {table} SET location = vantage",
            )
        ),
        # One location's tallies summed over its members: a range of one location's rows.
        "CREATE INDEX tallies_by_location ON tallies (location, bucket_start, target)",
    ),
    # 6: one probe is one evidence row. A batch whose commit was not acknowledged (the
    # connection or the disk failed after COMMIT) is sent again; the row must not count twice
    # in a claim's evidence. A probe is its vantage point, target and start instant.
    (
        "DELETE FROM evidence WHERE rowid NOT IN "
        "(SELECT min(rowid) FROM evidence GROUP BY vantage, target, ts)",
        "CREATE UNIQUE INDEX evidence_once ON evidence (vantage, target, ts)",
    ),
    # 7: persisted running months and the guard proving their tallies unchanged (issue 20).
    _SNAPSHOTS,
    # 8: the stored verdicts a snapshot vouches for (issue 20, vm26).
    _VERDICT_MARKS,
    # 9: a whole month's snapshot carries the counts its money reads (issue 20, sm32).
    ("ALTER TABLE month_snapshots ADD COLUMN settled TEXT NOT NULL DEFAULT ''",),
)

SCHEMA_VERSION = len(MIGRATIONS)


RECOVERY = (
    "restore it from a backup (docs/storage.md) or move it away; "
    "`slawatch store check` lists the damage"
)
"""What to do, appended to every refusal of a damaged or foreign file."""


class SchemaError(Exception):
    """Raised by :func:`check_file` and :func:`migrate` with a message naming the file."""


def check_magic(path: Path) -> bool:
    """Whether ``path`` holds data to verify (False: absent or empty, i.e. a new database).

    Raises ``SchemaError`` when the file is not an SQLite database at all, before sqlite3
    gets to misreport it later as a generic I/O error.
    """
    if not path.exists():
        return False
    if path.is_dir():
        raise SchemaError(f"{path}: expected a database file, got a directory")
    with path.open("rb") as handle:
        head = handle.read(len(_SQLITE_MAGIC))
    if not head:
        # An empty file is never a store slawatch made (``slawatch store init`` and the
        # daemon write the schema at once): it is a truncated or replaced database, and
        # taking it for a new one would silently drop every month's evidence (issue 17).
        raise SchemaError(f"{path}: file is empty (0 bytes), not a slawatch database; {RECOVERY}")
    if head != _SQLITE_MAGIC:
        raise SchemaError(f"{path}: not a slawatch database (not an SQLite file); {RECOVERY}")
    return True


def quick_check_problems(rows: Sequence[Sequence[object]]) -> str | None:
    """The first problems ``PRAGMA quick_check`` returned as one line, None if it found
    none."""
    problems = [str(row[0]) for row in rows]
    return None if problems == ["ok"] else "; ".join(problems[:5])


def quick_check(conn: sqlite3.Connection) -> str | None:
    """rd28 (issue 20): ``PRAGMA quick_check`` on ``conn`` (the daemon's: a read-only
    connection of its own, so in WAL mode the writer goes on meanwhile; the check reads the
    snapshot it began with): the problems as one line, None if it found none."""
    try:
        return quick_check_problems(conn.execute("PRAGMA quick_check").fetchall())
    except sqlite3.OperationalError as exc:
        if "interrupt" in str(exc):
            raise  # closed meanwhile: no finding
        return f"reading it failed: {exc}"
    except sqlite3.DatabaseError as exc:
        return f"reading it failed: {exc}"


def check_file(
    conn: sqlite3.Connection, path: Path, *, integrity: bool = True, new: bool = False
) -> int:
    """Verify identity and (unless ``integrity`` is False) integrity; return the current
    schema version (0: empty file). ``quick_check`` reads the whole file: about 5 ms per MiB
    measured, so a reader opening a large database may skip it while the daemon keeps it."""
    try:
        app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        rows = conn.execute("PRAGMA quick_check").fetchall() if integrity else [("ok",)]
    except sqlite3.DatabaseError as exc:
        raise SchemaError(
            f"{path}: corrupt or not a database (reading its header failed: {exc}); {RECOVERY}"
        ) from exc
    shown = quick_check_problems(rows)
    if shown is not None:
        raise SchemaError(
            f"{path}: database is corrupt (PRAGMA quick_check failed: {shown}); {RECOVERY}"
        )
    if app_id == 0:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        if tables or not new:
            # ``new``: this process just created the file. An SQLite file that existed before
            # without our application_id was made by someone else (or by a crash before the
            # first migration committed): refused, never adopted.
            what = f"it holds tables {', '.join(tables[:5])}" if tables else "it holds no tables"
            raise SchemaError(
                f"{path}: not a slawatch database (application_id is 0 and {what}); {RECOVERY}"
            )
        return 0
    if app_id != APPLICATION_ID:
        raise SchemaError(
            f"{path}: not a slawatch database (application_id 0x{app_id:08x}, "
            f"expected 0x{APPLICATION_ID:08x}); {RECOVERY}"
        )
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{path}: schema version {version} was written by a newer slawatch; "
            f"this build knows versions up to {SCHEMA_VERSION}"
        )
    return version


def migrate(
    conn: sqlite3.Connection, path: Path, current: int, target: int = SCHEMA_VERSION
) -> int:
    """Apply migrations ``current+1 .. target``, each atomically with its version bump.

    ``conn`` must be in autocommit mode (``isolation_level=None``) so the explicit
    transactions here are the only ones.
    """
    for version in range(current + 1, target + 1):
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in MIGRATIONS[version - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            # PRAGMA does not take parameters; version is an int from range(), not input.
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise SchemaError(
                f"{path}: migration to schema version {version} failed: {exc}"
            ) from exc
    return target


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` .. ``COMMIT``, rolled back on any exception.

    IMMEDIATE takes the write lock up front, so a read-then-write (insert-or-get) cannot be
    interleaved by another process sharing the file.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
