"""The ``shard_leases`` table on PostgreSQL (schema migration 4; ``monitor.store.lease``).

One dedicated connection, apart from the store's pool: a flush that holds every pooled
connection (a full flush after an outage) must not delay a heartbeat past the lease, or the
other members would take this member's targets while it still probes them. The connection is
dropped on any error and made again at the next heartbeat, each attempt bounded by the
heartbeat period so that the shard loop never hangs on a dead server.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import uuid
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from monitor.store.base import StoreError
from monitor.store.lease import LeaseHeldError, Membership
from monitor.store.postgres import describe_dsn

# One statement takes or extends the lease. The update applies only when the row is ours (same
# holder) or its lease has expired: a live lease of another process is never taken over, and
# no row comes back, which is how a same-named daemon is recognised.
_TAKE = """
INSERT INTO shard_leases AS l (location, member, holder, started_at, heartbeat_at, expires_at)
VALUES (%(location)s, %(member)s, %(holder)s, now(), now(),
        now() + make_interval(secs => %(lease)s))
ON CONFLICT (location, member) DO UPDATE
SET holder = excluded.holder,
    started_at = CASE WHEN l.holder = excluded.holder THEN l.started_at ELSE now() END,
    heartbeat_at = now(),
    expires_at = excluded.expires_at
WHERE l.holder = excluded.holder OR l.expires_at <= now()
RETURNING holder
"""

_HELD_BY = """
SELECT holder, extract(epoch FROM now() - heartbeat_at), extract(epoch FROM expires_at - now())
FROM shard_leases WHERE location = %s AND member = %s
"""

_LIVE = """
SELECT member, extract(epoch FROM now()), extract(epoch FROM started_at) FROM shard_leases
WHERE location = %s AND expires_at > now() ORDER BY member COLLATE "C"
"""


def new_holder() -> str:
    """This process's identity in the lease table: host, pid and a random part (a restarted
    daemon with the same pid is a different holder)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class PostgresLeases:
    """This member's lease in ``location`` on the database at ``dsn``."""

    def __init__(
        self,
        dsn: str,
        *,
        location: str,
        member: str,
        lease_seconds: float,
        timeout: float,
        holder: str | None = None,
    ) -> None:
        self._dsn = dsn
        self._where = describe_dsn(dsn)
        self._options = str(conninfo_to_dict(dsn).get("options") or "")
        self.location = location
        self.member = member
        self.lease_seconds = lease_seconds
        self.timeout = timeout
        self.holder = holder or new_holder()
        self._conn: psycopg.AsyncConnection[Any] | None = None

    @property
    def where(self) -> str:
        return self._where

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            options = f"{self._options} -c statement_timeout={int(self.timeout * 1000)}".strip()
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=max(2, math.ceil(self.timeout)),
                options=options,
            )
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def heartbeat(self) -> Membership:
        params = {
            "location": self.location,
            "member": self.member,
            "holder": self.holder,
            "lease": self.lease_seconds,
        }
        try:
            conn = await self._connection()
            async with conn.transaction():
                cur = await conn.execute(_TAKE, params)
                taken = await cur.fetchone()
                if taken is None:
                    cur = await conn.execute(_HELD_BY, (self.location, self.member))
                    row = await cur.fetchone()
                    raise LeaseHeldError(self._held_message(row))
                cur = await conn.execute(_LIVE, (self.location,))
                rows = await cur.fetchall()
        except psycopg.Error as exc:
            await self._drop()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise StoreError(f"{self._where}: shard lease: {first}") from exc
        return _membership(self.location, rows)

    def _held_message(self, row: tuple[Any, ...] | None) -> str:
        held = ""
        if row is not None:
            held = (
                f" (held by {row[0]}, last heartbeat {float(row[1]):.1f} s ago, "
                f"expires in {float(row[2]):.1f} s)"
            )
        return (
            f"monitor.name {self.member!r}: another daemon holds a live lease in location "
            f"{self.location!r}{held}; each member of a location needs its own monitor.name"
        )

    async def release(self) -> Membership | None:
        try:
            conn = await self._connection()
            async with conn.transaction():
                await conn.execute(
                    "DELETE FROM shard_leases WHERE location = %s AND member = %s AND holder = %s",
                    (self.location, self.member, self.holder),
                )
                cur = await conn.execute(_LIVE, (self.location,))
                rows = await cur.fetchall()
        except psycopg.Error:
            await self._drop()  # the lease expires by itself
            return None
        return _membership(self.location, rows)

    async def close(self) -> None:
        await self._drop()


def _membership(location: str, rows: list[tuple[Any, ...]]) -> Membership:
    """A ``Membership`` from rows of ``_LIVE``: (member, database now, lease start)."""
    return Membership(
        location,
        tuple(str(r[0]) for r in rows),
        float(rows[0][1]) if rows else math.nan,
        {str(r[0]): float(r[2]) for r in rows},
    )
