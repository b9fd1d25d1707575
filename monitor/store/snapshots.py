"""Persisted running months and the guard that proves their tallies unchanged (issue 20).

Start-up at a month's end used to read every stored tally of every SLA's current and previous
month and judge them again: O(stored rows), more than an hour at 10,000 SLAs. The daemon now
writes each SLA-month's compact judged state (``monitor.sla.running_codec``, two bytes per
bucket or less) as a *snapshot* of its first buckets, up to ``judged_through`` (the start of
the first bucket not in it), and starts from it, reading only the tallies after it. A snapshot
is used only when the store proves that no tally it was judged from changed since:

- ``snapshot_guard`` holds one row per (vantage, SLA, month, target): the month's span, its
  bucket length, ``judged_through`` and ``spoiled``. Database triggers on ``tallies`` (insert,
  update, delete: late results, ``slawatch import``, spool replays, retention) set ``spoiled``
  for a row of the guarded target, vantage and bucket length inside the month when

  - its bucket is before ``judged_through`` (whoever writes it), or
  - it is written by anyone but the daemon that armed the guard (a *foreign* write: the
    running daemon never sees it, so no later snapshot of that month may be trusted either).

  The daemon's own writes are told apart by a marker row (``snapshot_writer``) that its store
  inserts and deletes inside each write transaction: never committed, visible only to that
  transaction's triggers.
- ``spoiled`` is sticky: only *arming* clears it, which the daemon does when it builds the
  month from the store (start-up, a reload that changed the SLA) before reading the tallies,
  so every write after that read is seen. A spoiled or missing snapshot is rebuilt from the
  tallies, as before.
- What else judging reads (the SLA, service, canaries, recorded gaps, the code's judging
  version) is in the snapshot's ``inputs`` digest; a different digest rebuilds too. Canary
  results reach a month only as the ``excused`` counts of its targets' tallies, which the
  guard covers.

The snapshot also vouches for the SLA's stored service verdicts up to a bucket (vm26,
``MonthSnapshot.verdicts_through``): triggers on ``service_buckets`` pull that bucket down to
any verdict written otherwise, or deleted, after the save (see
``monitor.runtime.verdict_resume``).

Backends that do not implement :class:`SnapshotStore` (PostgreSQL today) are read in full at
every start, as before, and their stored verdicts compared in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

ArmMode = Literal["fresh", "carry", "ahead"]


@dataclass(frozen=True, slots=True)
class MonthSnapshot:
    """One SLA-month's judged state up to ``judged_through`` (an epoch, a bucket start or the
    month's end), under the inputs whose digest is ``inputs``."""

    sla: str
    month: str
    bucket_seconds: int
    judged_through: int
    inputs: str
    state: bytes
    verdicts_from: int = 0
    verdicts_through: int = 0
    """Issue 20 (vm26): the SLA's stored service verdicts of buckets in ``[verdicts_from,
    verdicts_through)`` were stored as judged when the snapshot was taken, under the
    exclusions whose digest is ``verdicts_digest`` (``monitor.runtime.verdict_resume``). The
    store pulls ``verdicts_through`` down to the bucket of any later write that changes or
    removes one of them. Empty span (the default): vouches for none."""
    verdicts_digest: str = ""
    settled: str = ""
    """Issue 20 (sm32): for a snapshot of a whole month (``judged_through`` its end), the
    counts its money figures read and the windows they were counted under
    (``monitor.sla.settled``): the previous month's ``/metrics`` lines are taken from them at
    a start without building the month. Empty (the default, and any other snapshot): none."""


@dataclass(frozen=True, slots=True)
class SnapshotGuard:
    """Arm the guard of one SLA-month over ``targets`` (every leaf target of its service) for
    ``[month_start, month_end)``. ``keep_through``: the ``judged_through`` of the snapshot the
    caller loaded and means to start from (None: none, or not usable); the guard keeps it only
    if it is still unspoiled, otherwise it starts over from the month's start.

    ``mode`` says what the caller's month was built from, so what the new guard may assume:

    - ``fresh``: read from the store after this arm (start-up, before anything is read):
      the guard starts unspoiled;
    - ``carry``: rebuilt while running (a reload): rows after the eviction cutoff come from
      memory, which never saw a foreign write; the guard starts unspoiled only if every
      target already had an unspoiled guard for this month (armed earlier, so it saw every
      foreign write since);
    - ``ahead``: a month not yet begun (armed before the daemon starts it from memory): left
      as it is if armed already, else unspoiled only if the store holds no tally of it yet.
    """

    sla: str
    month: str
    targets: tuple[str, ...]
    bucket_seconds: int
    month_start: int
    month_end: int
    keep_through: int | None = None
    mode: ArmMode = "fresh"

    @property
    def key(self) -> tuple[str, str]:
        return (self.sla, self.month)


@runtime_checkable
class SnapshotStore(Protocol):
    """A store that keeps month snapshots and their guard (see the module docs)."""

    async def load_month_snapshots(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[MonthSnapshot, tuple[str, ...]]]:
        """The snapshots of ``keys`` (sla, month) whose guard is armed and unspoiled, with
        the targets the guard covers; the caller still compares the inputs digest."""
        ...

    async def arm_month_snapshots(self, guards: Sequence[SnapshotGuard]) -> set[tuple[str, str]]:
        """Arm ``guards`` in one transaction; returns the keys whose ``keep_through`` stood
        (their snapshot may be used). Every later write by this store is the daemon's own."""
        ...

    async def save_month_snapshots(
        self, snapshots: Sequence[MonthSnapshot], drop_before: int | None = None
    ) -> int:
        """Write the snapshots whose guard is armed and unspoiled (moving the guard's
        ``judged_through``); returns how many were written. Guards and snapshots of months
        ending at or before ``drop_before`` are deleted."""
        ...
