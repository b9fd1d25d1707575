"""Membership of the daemons sharing one location's targets (issue 14, sharding).

A member is a daemon, named by its ``monitor.name``; a location is the set of members that share
its targets. Each member holds a **lease** in the database: a row (location, member) with an
expiry that it pushes forward at every heartbeat. The live members of a location are those
whose lease has not expired **by the database's clock** (``now()``), so a member host whose
clock is off never shortens or lengthens anybody's lease. Which member probes which target is
then decided by each member alone, from the same list (``monitor.sla.shard``): PostgreSQL is the
only coordinator, there is no election and no message between members.

This module holds the interface (no driver import); ``postgres_lease.py`` is the PostgreSQL
implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from monitor.store.base import StoreError


class LeaseHeldError(StoreError):
    """Another process holds a live lease under this member's name: two daemons with the same
    ``monitor.name`` would each probe the same share and split nothing."""


@dataclass(frozen=True)
class Membership:
    """What one heartbeat learnt: the live members of the location (sorted), as of the
    database's clock ``db_now`` (epoch seconds)."""

    location: str
    members: tuple[str, ...]
    db_now: float
    since: Mapping[str, float] = field(default_factory=dict)
    """Member -> when its current lease began (epoch seconds, the database's clock): it has
    been alive without a break since then."""


class LeaseTable(Protocol):
    """The lease table as the runtime's shard loop uses it."""

    @property
    def where(self) -> str: ...

    async def heartbeat(self) -> Membership:
        """Create or extend this member's lease and read the live members, in one
        transaction. Raises ``LeaseHeldError`` when another process holds a live lease under
        this name, ``StoreError`` when the database cannot be reached."""
        ...

    async def release(self) -> Membership | None:
        """Drop this member's lease (a clean stop): the others take its targets at their next
        heartbeat instead of waiting for the expiry. Returns the members still live after it
        (this one no longer among them), or ``None`` when the database cannot be reached (the
        lease then simply expires); never raises for that."""
        ...

    async def close(self) -> None: ...
