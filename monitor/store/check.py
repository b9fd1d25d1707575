"""``slawatch store check``: every check a store file can fail, as a list of findings.

Synchronous and read-only, over its own connection, so it runs while a daemon writes the
file (WAL readers do not block the writer). Four layers, each naming what failed:

1. the file itself: present, not empty, an SQLite file, slawatch's ``application_id``, a
   schema version this build knows (:func:`monitor.store.schema.check_file`);
2. SQLite's full ``PRAGMA integrity_check`` (structure, indexes, NOT NULL and CHECK);
3. the row checksums (:mod:`monitor.store.checksum`): damage inside a row's payload, named by
   the row's key;
4. each sealed month's digest over its stored document.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

from monitor.store import schema
from monitor.store.checksum import evidence_crc, tally_crc

SHOWN = 20
"""Damaged rows named one by one; beyond that, counted."""


@dataclasses.dataclass
class CheckReport:
    """What ``check_store`` found: ``problems`` empty means the file passed every check."""

    path: Path
    problems: list[str] = dataclasses.field(default_factory=list)
    schema_version: int | None = None
    rows_verified: int = 0
    rows_unverifiable: int = 0
    seals_verified: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        """The report as text lines: the verdict first, then each problem."""
        if self.ok:
            return [
                f"{self.path}: ok (schema version {self.schema_version}, "
                f"{self.rows_verified} rows checksummed, {self.rows_unverifiable} rows written "
                f"before checksums, {self.seals_verified} sealed months verified)"
            ]
        head = f"{self.path}: {len(self.problems)} problem(s); {schema.RECOVERY}"
        return [head, *(f"  {problem}" for problem in self.problems)]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def check_store(path: Path) -> CheckReport:
    """Run every check on the store at ``path``; never raises for a damaged file."""
    report = CheckReport(path)
    try:
        if not schema.check_magic(path):
            report.problems.append("no database file here")
            return report
        conn = _connect(path)
    except (OSError, sqlite3.Error, schema.SchemaError) as exc:
        report.problems.append(str(exc).split("; restore")[0])
        return report
    try:
        try:
            report.schema_version = schema.check_file(conn, path, integrity=False)
            rows = conn.execute("PRAGMA integrity_check(100)").fetchall()
        except (sqlite3.Error, schema.SchemaError) as exc:
            report.problems.append(str(exc).split("; restore")[0])
            return report
        found = [str(row[0]) for row in rows]
        if found != ["ok"]:
            report.problems.extend(f"PRAGMA integrity_check: {line}" for line in found)
            return report
        try:
            _check_rows(conn, report)
            _check_seals(conn, report)
        except sqlite3.Error as exc:
            report.problems.append(f"reading rows failed: {exc}")
    finally:
        conn.close()
    return report


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}


def _check_rows(conn: sqlite3.Connection, report: CheckReport) -> None:
    damaged: list[str] = []
    if "crc" in _columns(conn, "tallies"):
        for row in conn.execute(
            "SELECT vantage, target, bucket_seconds, bucket_start, ok, failed, reasons, errors,"
            " error_reasons, excused, crc FROM tallies"
        ):
            *values, crc = row
            if crc is None:
                report.rows_unverifiable += 1
            elif tally_crc(*values) != crc:
                damaged.append(
                    f"tallies row (vantage {values[0]!r}, target {values[1]!r}, bucket_start "
                    f"{values[3]}): checksum mismatch (stored {crc}, computed "
                    f"{tally_crc(*values)})"
                )
            else:
                report.rows_verified += 1
    if "crc" in _columns(conn, "evidence"):
        for row in conn.execute(
            "SELECT id, vantage, ts, target, outcome, reason, duration, details, crc FROM evidence"
        ):
            row_id, *values, crc = row
            if crc is None:
                report.rows_unverifiable += 1
            elif evidence_crc(*values) != crc:
                damaged.append(
                    f"evidence row id {row_id} (target {values[2]!r}, ts {values[1]}): "
                    f"checksum mismatch (stored {crc}, computed {evidence_crc(*values)})"
                )
            else:
                report.rows_verified += 1
    report.problems.extend(damaged[:SHOWN])
    if len(damaged) > SHOWN:
        report.problems.append(f"... and {len(damaged) - SHOWN} more damaged rows")


def _check_seals(conn: sqlite3.Connection, report: CheckReport) -> None:
    from monitor.store.seals import seal_digest

    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'month_seals'"
    ).fetchone()
    if exists is None:
        return
    for sla, month, doc, digest in conn.execute(
        "SELECT sla, month, doc, digest FROM month_seals ORDER BY month, sla"
    ):
        try:
            computed = seal_digest(json.loads(doc))
        except ValueError as exc:
            report.problems.append(f"month_seals {sla} {month}: document unreadable: {exc}")
            continue
        if computed != digest:
            report.problems.append(
                f"month_seals {sla} {month}: digest mismatch (stored {digest}, computed {computed})"
            )
        else:
            report.seals_verified += 1
