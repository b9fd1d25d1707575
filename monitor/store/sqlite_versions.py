"""``schema_version()`` / ``migrate()`` for the SQLite file (see ``monitor.store.versions``).

Kept apart from ``sqlite.py``: these open their own short-lived connection and work whether
or not a ``SqliteStore`` has the file open (WAL lets a reader in beside the daemon; a
migration waits for the write lock like any writer).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from monitor.store import schema
from monitor.store.base import StoreOpenError
from monitor.store.versions import SchemaStatus

BACKEND = "sqlite"


def status(path: Path) -> SchemaStatus:
    """The version the file holds (0: absent or empty); the file is neither created nor
    changed. Refuses a file that is not a slawatch database."""
    try:
        if not schema.check_magic(path):
            return SchemaStatus(BACKEND, str(path), 0, schema.SCHEMA_VERSION)
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except (OSError, sqlite3.Error) as exc:
        raise StoreOpenError(f"{path}: cannot open: {exc}") from exc
    except schema.SchemaError as exc:
        raise StoreOpenError(str(exc)) from exc
    try:
        version = _version_allowing_newer(conn, path)
    finally:
        conn.close()
    return SchemaStatus(BACKEND, str(path), version, schema.SCHEMA_VERSION)


def _version_allowing_newer(conn: sqlite3.Connection, path: Path) -> int:
    # ``status`` reports a newer file instead of refusing it: that is what the operator asks.
    try:
        return schema.check_file(conn, path, integrity=False)
    except schema.SchemaError as exc:
        if "newer slawatch" not in str(exc):
            raise StoreOpenError(str(exc)) from exc
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(path: Path) -> SchemaStatus:
    """Apply pending migrations (creating the file if absent); refuse a newer file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        exists = schema.check_magic(path)
        conn = sqlite3.connect(path, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StoreOpenError(f"{path}: cannot open: {exc}") from exc
    except schema.SchemaError as exc:
        raise StoreOpenError(str(exc)) from exc
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        # A file this call creates is new; one that existed without our identity is refused.
        found = schema.check_file(conn, path, integrity=False, new=not exists)
        version = schema.migrate(conn, path, found)
    except schema.SchemaError as exc:
        raise StoreOpenError(str(exc)) from exc
    finally:
        conn.close()
    return SchemaStatus(BACKEND, str(path), version, schema.SCHEMA_VERSION)
