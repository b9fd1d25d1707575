"""Issue 20: which SLAs the daemon's summary must ask, so a second costs what changed.

The daemon summarises every second (``Daemon._summarise``): it asks each SLA's current and
previous month, which brings the running months up to date (buckets elapsed, marked buckets
re-judged) before the flush writes their verdicts, the closed tallies leave memory and
``/metrics`` renders them. At 10,000 SLAs asking every SLA, even through the accounting's fast
path, cost 0.08-0.11 s every second, when between two bucket closes almost nothing moves.

A month's figures move only when (:class:`monitor.accounting.ChangeFeed`):

- one of its buckets elapses: for every SLA of a bucket length at once, at a boundary of its
  grid. A grid starts at a month's start in the SLA's zone, and every zone's offset is a whole
  number of quarter hours, so each boundary is a multiple of ``gcd(bucket, 900)`` seconds
  (UTC epoch): crossing one asks every SLA of that length (for a 5-minute bucket, exactly its
  closes; a month starts or ends only at one of them);
- the accounting says so: a tally of a judged bucket changed (a late result, a canary's
  cover), another location's input, a month built or forgotten, or new inputs (reload,
  exclusion added or removed: every SLA);
- it is judged by locations (issue 14): their tallies change without an event here, so those
  SLAs are asked every time, as before.

Everything else is the accounting's fast path answering with the result it already holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from monitor.sla.policy import SlaPolicy

if TYPE_CHECKING:
    from monitor.accounting import Accounting, AccountingInputs, ChangeFeed

ZONE_QUANTUM = 900
"""Every time zone's UTC offset is a multiple of 15 minutes (the IANA database's zones)."""


def boundary_step(bucket_seconds: int) -> int:
    """Seconds between two instants at which a bucket of this length may close in some zone."""
    return math.gcd(bucket_seconds, ZONE_QUANTUM)


class SummaryDue:
    """The daemon's record of what its summary already asked (see the module docs)."""

    def __init__(self) -> None:
        self._accounting: object = None
        self._feed: ChangeFeed | None = None
        self._inputs: AccountingInputs | None = None
        self._groups: dict[int, list[SlaPolicy]] = {}
        self._located: list[SlaPolicy] = []
        self._edges: dict[int, int] = {}
        self._position: dict[str, int] = {}

    def due(self, accounting: Accounting, now: float) -> tuple[ChangeFeed, Sequence[SlaPolicy]]:
        """(the feed to pause while asking, the SLAs to ask at ``now``, in configuration order).

        Taking them forgets them: the caller asks them all before its next call (the daemon's
        summary does, in slices). An SLA due because a boundary passed is asked with the
        boundary's instant or a later one, so no bucket close is missed between two calls."""
        feed = self._feed
        everything = False
        if feed is None or self._accounting is not accounting:
            self._accounting = accounting
            feed = self._feed = accounting.watch()
            everything = True
        moved, names = feed.take()
        feed.take_running()  # the running bucket's tallies: no month figure moves with them
        inputs = accounting.inputs
        if inputs is not self._inputs:
            self._inputs = inputs
            self._index(inputs)
            everything = True
        closed: set[int] = set()
        for size in self._groups:
            step = boundary_step(size)
            edge = int(now // step)
            if self._edges.get(size) != edge:
                self._edges[size] = edge
                closed.add(size)
        if everything or moved or len(closed) == len(self._groups):
            return feed, inputs.policies
        picked: list[SlaPolicy] = []
        for size in closed:
            picked.extend(self._groups[size])
        picked.extend(self._located)
        for name in names:
            try:
                picked.append(accounting.policy(name))
            except KeyError:  # an SLA a reload removed since
                continue
        # Each once, in configuration order (a few SLAs: no pass over all of them).
        position = self._position
        return feed, sorted({p.name: p for p in picked}.values(), key=lambda p: position[p.name])

    def forget(self) -> None:
        """A summary did not finish: the next call asks every SLA."""
        self._inputs = None

    def _index(self, inputs: AccountingInputs) -> None:
        groups: dict[int, list[SlaPolicy]] = {}
        located: list[SlaPolicy] = []
        self._position = {policy.name: n for n, policy in enumerate(inputs.policies)}
        for policy in inputs.policies:
            groups.setdefault(policy.bucket_seconds, []).append(policy)
            if policy.locations is not None:
                located.append(policy)
        self._groups = groups
        self._located = located
        # A new configuration: the next boundary of every length is taken as crossed.
        self._edges = {}
