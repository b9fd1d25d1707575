"""The store a command reads or writes: the one ``monitor.store`` names, as the daemon does.

``slawatch report``, ``claim``, ``fault``, ``evidence``, ``import`` and ``month seal`` /
``roll-up`` once opened the SQLite file whatever the configuration said, so a team on a shared
PostgreSQL (issue 14) could only read its month through the daemon's API. They now open,
through this module, the backend the daemon writes: SQLite at ``monitor.database`` (read-only
when the command only reads, so a running daemon keeps the file) or PostgreSQL from
``monitor.store.dsn``. The file operations of ``slawatch store`` (init, check, backup, status,
migrate) stay SQLite's: a PostgreSQL server has its own tools for those.
"""

from __future__ import annotations

from monitor.config import Config
from monitor.store.base import Store


def store_present(config: Config) -> bool:
    """Whether there is a store to read: the SQLite file exists; a PostgreSQL server is asked
    when the store is opened (an unreachable one fails there, in one line)."""
    if config.monitor.store.backend == "sqlite":
        return config.monitor.database_path.exists()
    return True


def store_name(config: Config) -> str:
    """Where the store is, for messages: the SQLite file's path, or the backend's name (the
    dsn is a secret and is never printed)."""
    if config.monitor.store.backend == "sqlite":
        return str(config.monitor.database_path)
    return "the PostgreSQL store (monitor.store.dsn)"


def cli_store(config: Config, *, read_only: bool, integrity_check: bool = True) -> Store:
    """The configured store for ``monitor.name`` at its location, not yet opened.

    ``integrity_check`` (SQLite only): run the file's quick check on open, as ``slawatch
    report`` does before it prints figures for money; a command that already read the file
    with the check, or only lists, passes False.
    Raises ``StoreOpenError`` (one line) when the dsn cannot be read or psycopg is missing.
    """
    monitor = config.monitor
    return monitor.store.build(
        monitor.name,
        monitor.database_path,
        read_only=read_only,
        location=monitor.location_name,
        integrity_check=integrity_check,
    )
