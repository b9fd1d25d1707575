"""Issue 20 (fl24): which SLAs a flush must write service verdicts for, found without a pass
over every SLA, so that a flush costs the results it writes and the buckets that settled.

A flush writes an SLA's verdicts from its mark (the first bucket not written) up to the buckets
settled by now (``Daemon._closed_verdicts``). Between two of its buckets settling an SLA has
nothing to write unless

- a tally one of its buckets reads is written by this flush (a late result, a prometheus bucket
  filled after its lag, a canary's cover): that may rewind its mark;
- another location's input moved it (issue 14);
- its last pass did not reach the store (the write failed, or the verdict budget of a flush
  was spent before it): it is asked again.

So each SLA visited records the instant its next bucket settles (or its month ends), and a
flush asks only the SLAs whose instant has come, those reading a tally written now, and those
other locations moved. The instants cluster (every SLA of a bucket length settles at the same
boundaries), so they are kept as sets per instant under a heap of the distinct instants: taking
the SLAs due costs what is due, not a look at every SLA.

The first pass under new inputs (start, reload, an exclusion added or removed) visits every SLA
in configuration order, exactly as before, and builds the index (bucket length, target) -> SLAs
reading it as it goes; from then on the daemon asks :meth:`VerdictDue.candidates`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence

from monitor.sla.policy import SlaPolicy

Readers = dict[tuple[int, str], list[str]]
"""(bucket length, target) -> the names of the SLAs whose months read that target's tallies."""


class VerdictDue:
    """SLA name -> the instant before which a flush has nothing to write for it (see the
    module docs). A mapping-like record: :meth:`get` reads it, :meth:`update` commits the
    instants of a pass whose rows the store took."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._at: dict[float, set[str]] = {}
        self._instants: list[float] = []  # heap of the keys of ``_at``
        self._pending: set[str] = set()
        """SLAs visited (or come due) whose instant is not committed yet: asked again."""
        self.readers: Readers | None = None
        """None until a pass over every SLA under these inputs completed (it builds it)."""
        self._order: dict[str, tuple[int, SlaPolicy]] = {}

    # -- the record ----------------------------------------------------------------------------
    def get(self, name: str) -> float | None:
        """The instant before which SLA ``name`` has nothing to write (None: ask it)."""
        return self._until.get(name)

    def update(self, untils: Mapping[str, float]) -> None:
        """Commit the instants of a pass whose rows (and marks) the store took."""
        for name, until in untils.items():
            self._pending.discard(name)
            old = self._until.get(name)
            if old == until:
                continue
            if old is not None:
                held = self._at.get(old)
                if held is not None:
                    held.discard(name)
            self._until[name] = until
            names = self._at.get(until)
            if names is None:
                names = self._at[until] = set()
                heapq.heappush(self._instants, until)
            names.add(name)

    def taken(self, name: str) -> None:
        """SLA ``name`` is being asked by a pass: asked again until its instant is committed."""
        self._pending.add(name)

    # -- the pass ------------------------------------------------------------------------------
    def indexed(self, readers: Readers, policies: Sequence[SlaPolicy]) -> None:
        """A pass over every SLA completed: from now on :meth:`candidates` answers."""
        self.readers = readers
        self._order = {policy.name: (n, policy) for n, policy in enumerate(policies)}

    def candidates(
        self, now: float, written: Iterable[tuple[int, str]], moved: Iterable[str]
    ) -> list[SlaPolicy]:
        """The SLAs a flush at ``now`` must ask, in configuration order: those whose instant
        has come, those not committed since they were asked, those reading a tally in
        ``written`` ((bucket length, target) pairs) and those in ``moved`` (other locations).
        Only after :meth:`indexed`."""
        readers = self.readers
        if readers is None:
            raise RuntimeError("VerdictDue.candidates before a pass over every SLA")
        instants = self._instants
        while instants and instants[0] <= now:
            for name in self._at.pop(heapq.heappop(instants), ()):
                del self._until[name]
                self._pending.add(name)
        names = set(self._pending)
        for key in written:
            names.update(readers.get(key, ()))
        names.update(moved)
        order = self._order
        picked = sorted(order[name] for name in names if name in order)
        return [policy for _, policy in picked]
