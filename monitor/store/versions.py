"""Schema versions of a store, for ``slawatch store status`` / ``slawatch store migrate``.

Both backends expose the same two calls (they work on a store that is NOT open, and do not
open it for probing or writing):

``await store.schema_version() -> SchemaStatus``
    Reads the version the database holds; changes nothing (a new, empty database reads 0).
``await store.migrate() -> SchemaStatus``
    Applies the pending forward migrations and returns the status after them. A database
    newer than this build raises ``StoreOpenError`` with a one-line message, as ``open()`` does.

``open()`` still migrates by itself (a one-host install needs no extra step); the command is
for operators who upgrade a shared PostgreSQL once, before restarting every daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """``version`` found in the database at ``where``; ``known`` is this build's latest."""

    backend: str
    where: str
    version: int
    known: int

    @property
    def pending(self) -> int:
        """Migrations this build would apply (0 when current or newer)."""
        return max(self.known - self.version, 0)

    @property
    def newer(self) -> bool:
        """Written by a newer slawatch: this build refuses to open it."""
        return self.version > self.known

    def line(self) -> str:
        """One line for ``slawatch store status``."""
        if self.newer:
            state = f"NEWER than this build (knows up to {self.known}): upgrade slawatch"
        elif self.pending:
            state = f"{self.pending} migration(s) pending (up to {self.known})"
        else:
            state = "up to date"
        return f"{self.backend} {self.where}: schema version {self.version}, {state}"


@runtime_checkable
class VersionedStore(Protocol):
    """What ``slawatch store status`` / ``store migrate`` call on either backend."""

    async def schema_version(self) -> SchemaStatus: ...

    async def migrate(self) -> SchemaStatus: ...
