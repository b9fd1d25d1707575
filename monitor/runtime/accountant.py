"""One accountant among the daemons sharing a database (issue 14).

Every daemon computes the same month from the shared store, but only one exports the contract
series that page (the per-SLA families of the SLAs judged by locations), so the shipped
Prometheus rules alert once. The accountant is elected with a PostgreSQL session advisory lock
held on a dedicated connection (``Store.session_lock``): tried at every flush, released by the
server when the holder's connection closes (process killed, host gone), so another daemon
takes over at its next flush. On SQLite there is one daemon, always the accountant.

``slawatch_accountant`` (1/0) is exported by every daemon.
"""

from __future__ import annotations

import structlog

from monitor.store.base import SessionLock, SessionLocking, Store

log = structlog.get_logger(__name__)

LOCK_NAME = "accountant"


class Accountant:
    """Whether this daemon is the accountant, kept up to date by :meth:`refresh`."""

    def __init__(self, store: Store) -> None:
        self._lock: SessionLock | None = (
            store.session_lock(LOCK_NAME) if isinstance(store, SessionLocking) else None
        )
        self.holding = self._lock is None

    async def refresh(self) -> bool:
        """Try (again) to hold the lock; the state after it, logged when it changes."""
        if self._lock is None:
            return True
        try:
            held = await self._lock.try_hold()
        except Exception as exc:  # the lock reports its own errors as False; anything else too
            log.warning("accountant_lock_failed", error=str(exc))
            held = False
        if held != self.holding:
            log.info("accountant_changed", accountant=held)
        self.holding = held
        return held

    async def release(self) -> None:
        """At stop: let another daemon take over at once."""
        if self._lock is not None:
            await self._lock.release()
            self.holding = False
