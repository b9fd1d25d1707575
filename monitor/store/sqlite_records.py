"""Synchronous SQLite access for records kept whole: exclusion windows added through the API,
support faults with their event history, and small key/value state."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from monitor.sla.policy import ExclusionWindow
from monitor.store.base import (
    ExclusionExistsError,
    FaultConflictError,
    FaultRecord,
    MonthSeal,
    encode_json,
    exclusion_from_stored,
)
from monitor.store.schema import transaction
from monitor.store.seals import canonical

# -- exclusions ---------------------------------------------------------------------------------


def add_exclusion(conn: sqlite3.Connection, window: ExclusionWindow, added_by: str) -> None:
    """Insert ``window`` as given. Both the epoch (for ordering) and the ISO text (which keeps
    the offset the operator wrote) are stored."""
    row = (
        window.id,
        window.kind.value,
        window.start.timestamp(),
        window.end.timestamp(),
        window.start.isoformat(),
        window.end.isoformat(),
        window.reason,
        encode_json("exclusion services", sorted(window.services)),
        None if window.announced_at is None else window.announced_at.isoformat(),
        window.source,
        added_by,
    )
    try:
        with transaction(conn):
            conn.execute(
                "INSERT INTO exclusions (id, kind, start_ts, end_ts, start_iso, end_iso, "
                "reason, services, announced_iso, source, added_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
    except sqlite3.IntegrityError as exc:
        raise ExclusionExistsError(f"exclusion {window.id!r} already exists") from exc


def _exclusion_from_row(row: sqlite3.Row) -> ExclusionWindow:
    return exclusion_from_stored(
        row["id"],
        row["kind"],
        row["start_iso"],
        row["end_iso"],
        row["reason"],
        row["services"],
        row["announced_iso"],
        row["source"],
    )


def list_exclusions(conn: sqlite3.Connection) -> list[ExclusionWindow]:
    rows = conn.execute("SELECT * FROM exclusions ORDER BY start_ts, id")
    return [_exclusion_from_row(row) for row in rows]


def delete_exclusion(conn: sqlite3.Connection, exclusion_id: str) -> bool:
    with transaction(conn):
        cursor = conn.execute("DELETE FROM exclusions WHERE id = ?", (exclusion_id,))
        return cursor.rowcount > 0


# -- faults -------------------------------------------------------------------------------------


def insert_fault_if_absent(
    conn: sqlite3.Connection,
    contract: str,
    fault_id: str,
    doc: str,
    alert_key: str | None,
    is_open: bool,
) -> tuple[str, bool]:
    """Insert-or-get in one write transaction: the fault already holding ``alert_key`` (or
    ``fault_id``) is returned with ``created=False``. The UNIQUE alert_key is the backstop
    for writers outside this process."""
    with transaction(conn):
        if alert_key is not None:
            row = conn.execute(
                "SELECT fault_id FROM faults WHERE alert_key = ?", (alert_key,)
            ).fetchone()
            if row is not None:
                return str(row[0]), False
        row = conn.execute(
            "SELECT alert_key FROM faults WHERE fault_id = ?", (fault_id,)
        ).fetchone()
        if row is not None:
            if row[0] == alert_key:
                return fault_id, False
            raise FaultConflictError(
                f"fault {fault_id!r} already exists for alert {row[0]!r}, not {alert_key!r}"
            )
        conn.execute(
            "INSERT INTO faults (fault_id, contract, alert_key, is_open, doc) "
            "VALUES (?, ?, ?, ?, ?)",
            (fault_id, contract, alert_key, int(is_open), doc),
        )
        return fault_id, True


def save_fault(
    conn: sqlite3.Connection,
    contract: str,
    fault_id: str,
    doc: str,
    alert_key: str | None,
    is_open: bool,
) -> None:
    """Insert or replace the fault's document (its event history is kept)."""
    try:
        with transaction(conn):
            conn.execute(
                "INSERT INTO faults (fault_id, contract, alert_key, is_open, doc) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (fault_id) DO UPDATE SET "
                "contract = excluded.contract, alert_key = excluded.alert_key, "
                "is_open = excluded.is_open, doc = excluded.doc",
                (fault_id, contract, alert_key, int(is_open), doc),
            )
    except sqlite3.IntegrityError as exc:
        raise FaultConflictError(
            f"fault {fault_id!r}: alert_key {alert_key!r} belongs to another fault"
        ) from exc


def append_fault_event(
    conn: sqlite3.Connection, fault_id: str, event: str, is_open: bool | None = None
) -> int:
    """Append to the fault's history (and set its open flag, if given) in one transaction;
    return the event's sequence number (1, 2, ...)."""
    try:
        with transaction(conn):
            row = conn.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM fault_events WHERE fault_id = ?",
                (fault_id,),
            ).fetchone()
            seq = int(row[0])
            conn.execute(
                "INSERT INTO fault_events (fault_id, seq, event) VALUES (?, ?, ?)",
                (fault_id, seq, event),
            )
            if is_open is not None:
                conn.execute(
                    "UPDATE faults SET is_open = ? WHERE fault_id = ?", (int(is_open), fault_id)
                )
            return seq
    except sqlite3.IntegrityError as exc:
        raise FaultConflictError(f"fault {fault_id!r} does not exist") from exc


def load_faults(
    conn: sqlite3.Connection,
    *,
    fault_id: str | None = None,
    contract: str | None = None,
    open_only: bool = False,
) -> list[FaultRecord]:
    clauses, params = ["1"], []
    if fault_id is not None:
        clauses.append("fault_id = ?")
        params.append(fault_id)
    if contract is not None:
        clauses.append("contract = ?")
        params.append(contract)
    if open_only:
        clauses.append("is_open = 1")
    # The WHERE text is built only from the fixed clauses above; values are bound.
    faults = conn.execute(
        f"SELECT * FROM faults WHERE {' AND '.join(clauses)} ORDER BY fault_id", params
    ).fetchall()
    out = []
    for row in faults:
        events = conn.execute(
            "SELECT event FROM fault_events WHERE fault_id = ? ORDER BY seq", (row["fault_id"],)
        )
        out.append(
            FaultRecord(
                fault_id=row["fault_id"],
                contract=row["contract"],
                alert_key=row["alert_key"],
                is_open=bool(row["is_open"]),
                doc=json.loads(row["doc"]),
                events=tuple(json.loads(event[0]) for event in events),
            )
        )
    return out


def fault_id_for_alert(conn: sqlite3.Connection, alert_key: str) -> str | None:
    row = conn.execute("SELECT fault_id FROM faults WHERE alert_key = ?", (alert_key,)).fetchone()
    return None if row is None else str(row[0])


# -- small state --------------------------------------------------------------------------------


def kv_get(conn: sqlite3.Connection, key: str) -> Any:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(row[0])


def kv_set(conn: sqlite3.Connection, key: str, value: str) -> None:
    with transaction(conn):
        conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def kv_delete(conn: sqlite3.Connection, key: str) -> bool:
    with transaction(conn):
        return conn.execute("DELETE FROM kv WHERE key = ?", (key,)).rowcount > 0


def save_month_seal(conn: sqlite3.Connection, seal: MonthSeal) -> bool:
    with transaction(conn):
        cursor = conn.execute(
            "INSERT INTO month_seals (sla, month, sealed_at, config_hash, tallies_digest, doc, "
            "digest) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sla, month) DO NOTHING",
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
        return cursor.rowcount == 1


SEALS_PER_QUERY = 500
"""SLA names bound in one ``IN`` list (SQLite allows 999 or more variables)."""


def load_month_seals(
    conn: sqlite3.Connection, slas: Sequence[str], month: str
) -> dict[str, MonthSeal]:
    found: dict[str, MonthSeal] = {}
    names = sorted(set(slas))
    for first in range(0, len(names), SEALS_PER_QUERY):
        some = names[first : first + SEALS_PER_QUERY]
        for sla, *row in conn.execute(
            "SELECT sla, sealed_at, config_hash, tallies_digest, doc, digest FROM month_seals "
            f"WHERE month = ? AND sla IN ({','.join('?' * len(some))})",
            (month, *some),
        ):
            found[str(sla)] = MonthSeal(
                str(sla),
                month,
                float(row[0]),
                str(row[1]),
                str(row[2]),
                json.loads(row[3]),
                str(row[4]),
            )
    return found


def load_month_seal(conn: sqlite3.Connection, sla: str, month: str) -> MonthSeal | None:
    row = conn.execute(
        "SELECT sealed_at, config_hash, tallies_digest, doc, digest FROM month_seals "
        "WHERE sla = ? AND month = ?",
        (sla, month),
    ).fetchone()
    if row is None:
        return None
    return MonthSeal(
        sla, month, float(row[0]), str(row[1]), str(row[2]), json.loads(row[3]), str(row[4])
    )
