"""The ``monitor.store`` section: which database holds this daemon's state, and building it.

``sqlite`` (the default) needs nothing: the file is ``monitor.database`` under
``monitor.state_dir``, as before. ``postgresql`` needs ``dsn`` as a secret (``{env: NAME}`` or
``{file: PATH}``: a connection string or URI carries a password), and takes pool and timeout
settings. The PostgreSQL module (and psycopg) is imported only when that backend is built, so
a one-host install never needs the ``postgresql`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

from monitor.config.fieldtypes import Secret, duration_field
from monitor.store.base import Store, StoreOpenError


class StoreSettings(BaseModel):
    """``monitor.store``: ``{backend: sqlite | postgresql, dsn: {env: ...}, pool_size, ...}``."""

    # Unknown keys refused, frozen: as sections.StrictModel (not imported: sections imports us).
    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: Literal["sqlite", "postgresql"] = "sqlite"
    dsn: Secret | None = None
    pool_size: Annotated[StrictInt, Field(ge=1, le=100)] = 4
    connect_timeout: Annotated[float, duration_field(minimum=1.0, maximum=300.0)] = 10.0
    statement_timeout: Annotated[float, duration_field(minimum=1.0, maximum=3600.0)] = 30.0
    # While writes fail: failure evidence rows held in memory; older ones go to the spool file
    # <state_dir>/evidence-spool.jsonl and are written back when the store answers again.
    spool_after: Annotated[StrictInt, Field(ge=0, le=1_000_000)] = 20_000

    @model_validator(mode="after")
    def _dsn_matches_backend(self) -> StoreSettings:
        if self.backend == "postgresql" and self.dsn is None:
            raise ValueError(
                "backend postgresql needs dsn: {env: VARIABLE} or {file: /path} holding a "
                "connection string such as postgresql://slawatch@db.example/slawatch"
            )
        if self.backend == "sqlite" and self.dsn is not None:
            raise ValueError("dsn is for backend postgresql; the sqlite file is monitor.database")
        return self

    def build(
        self,
        vantage: str,
        sqlite_path: Path,
        *,
        read_only: bool = False,
        location: str | None = None,
        integrity_check: bool | None = None,
    ) -> Store:
        """The store this section names, not yet opened, for ``vantage`` at ``location``
        (``monitor.location``; default: named like the vantage). ``integrity_check`` (SQLite:
        the file's quick check at open) defaults to a writable store only; ``slawatch report``
        asks for it read-only too, before it prints figures for money. Raises
        ``StoreOpenError`` (one line) when the dsn secret cannot be read or the driver is not
        installed."""
        if self.backend == "sqlite":
            from monitor.store.sqlite import SqliteStore

            return SqliteStore(
                sqlite_path,
                vantage,
                read_only=read_only,
                integrity_check=not read_only if integrity_check is None else integrity_check,
                location=location,
            )
        from probes.fields import SecretUnavailable

        assert self.dsn is not None  # the validator above
        try:
            dsn = self.dsn.read()
        except SecretUnavailable as exc:
            raise StoreOpenError(f"monitor.store.dsn: {exc}") from exc
        try:
            from monitor.store.postgres import PostgresStore
        except ImportError as exc:
            raise StoreOpenError(
                "monitor.store.backend is postgresql but psycopg is not installed: "
                "pip install 'slawatch[postgresql]'"
            ) from exc
        return PostgresStore(
            dsn,
            vantage,
            pool_size=self.pool_size,
            connect_timeout=self.connect_timeout,
            statement_timeout=self.statement_timeout,
            read_only=read_only,
            location=location,
        )
