"""The daemon's in-memory truth for the running month.

Tallies are kept per bucket length (several SLAs may use different ones) and per target, as
frozen ``Tally`` values replaced on every probe, so the engine reads them without copying.
What changed since the last flush is tracked, so the store only gets rows that moved; a flush
that fails leaves them marked and the next one retries, so nothing is dropped on a store error.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from monitor.sla.policy import Tally
from probes.result import Outcome, ProbeResult

TallyKey = tuple[int, str, int]
"""(bucket_seconds, target, bucket_start epoch)."""

MAX_PENDING_EVIDENCE = 200_000


def bucket_floor(epoch: float, bucket_seconds: int) -> int:
    """Start of the bucket holding ``epoch``.

    Buckets are aligned to the Unix epoch, which equals alignment to every zone's wall clock
    because configuration only allows bucket lengths dividing 15 minutes, and every IANA zone
    offset in use is a multiple of 15 minutes.
    """
    whole = int(epoch)
    return whole - whole % bucket_seconds


@dataclass
class TargetStatus:
    """Per-target figures the metrics collector reads."""

    last: ProbeResult | None = None
    outcomes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))


class LiveState:
    """Tallies, last results and the evidence waiting to be written."""

    def __init__(self) -> None:
        self._tallies: dict[int, dict[str, dict[int, Tally]]] = {}
        self._dirty: set[TallyKey] = set()
        self._evidence: deque[ProbeResult] = deque(maxlen=MAX_PENDING_EVIDENCE)
        self.evidence_dropped = 0
        self.targets: dict[str, TargetStatus] = {}

    # -- recording -------------------------------------------------------------------------
    def record(self, result: ProbeResult, bucket_lengths: Iterable[int]) -> None:
        """Count one probe result into the bucket of every length that measures its target."""
        status = self.targets.get(result.target)
        if status is None:
            status = self.targets[result.target] = TargetStatus()
        status.last = result
        status.outcomes[result.outcome] += 1
        for seconds in bucket_lengths:
            start = bucket_floor(result.started_at, seconds)
            by_target = self._tallies.setdefault(seconds, {}).setdefault(result.target, {})
            by_target[start] = add_result(by_target.get(start), result)
            self._dirty.add((seconds, result.target, start))
        if not result.ok:
            if len(self._evidence) == self._evidence.maxlen:
                self.evidence_dropped += 1
            self._evidence.append(result)

    def load(self, bucket_seconds: int, tallies: Mapping[str, Mapping[int, Tally]]) -> None:
        """Adopt tallies read back from the store (after a restart), without marking them dirty.

        A bucket already counted in memory keeps the larger evidence: the store's row is what a
        previous run wrote, and this run adds to it.
        """
        table = self._tallies.setdefault(bucket_seconds, {})
        for target, buckets in tallies.items():
            mine = table.setdefault(target, {})
            for start, stored in buckets.items():
                current = mine.get(start)
                if current is None:
                    mine[start] = (
                        plain_tally(stored.ok)
                        if not stored.failed and not stored.reasons
                        else stored
                    )
                else:
                    mine[start] = merge(stored, current)
                if current is not None:
                    self._dirty.add((bucket_seconds, target, start))

    # -- reading -----------------------------------------------------------------------------
    def tallies(self, bucket_seconds: int) -> Mapping[str, Mapping[int, Tally]]:
        return self._tallies.get(bucket_seconds, {})

    # -- flushing ----------------------------------------------------------------------------
    def take_dirty(self) -> list[tuple[TallyKey, Tally]]:
        """The rows changed since the last call; call ``return_dirty`` if writing them failed."""
        rows = [(key, self._tallies[key[0]][key[1]][key[2]]) for key in self._dirty]
        self._dirty.clear()
        return rows

    def return_dirty(self, keys: Iterable[TallyKey]) -> None:
        self._dirty.update(keys)

    def take_evidence(self, limit: int = 50_000) -> list[ProbeResult]:
        out: list[ProbeResult] = []
        while self._evidence and len(out) < limit:
            out.append(self._evidence.popleft())
        return out

    def return_evidence(self, results: list[ProbeResult]) -> None:
        self._evidence.extendleft(reversed(results))

    @property
    def pending_rows(self) -> int:
        return len(self._dirty) + len(self._evidence)

    def forget_before(self, epoch: int) -> None:
        """Drop tallies of buckets before ``epoch`` (months no longer being computed live)."""
        for seconds, table in self._tallies.items():
            for target, buckets in table.items():
                old = [start for start in buckets if start < epoch]
                for start in old:
                    if (seconds, target, start) not in self._dirty:
                        del buckets[start]

    def forget_targets(self, keep: set[str]) -> None:
        for name in list(self.targets):
            if name not in keep:
                del self.targets[name]


def add_result(tally: Tally | None, result: ProbeResult) -> Tally:
    """The tally with one more probe counted (a new frozen value)."""
    if tally is None:
        tally = _EMPTY
    if result.ok:
        if not tally.failed:
            return plain_tally(tally.ok + 1)
        return Tally(ok=tally.ok + 1, failed=tally.failed, reasons=tally.reasons)
    reason = result.reason or result.outcome.value
    reasons = dict(tally.reasons)
    reasons[reason] = reasons.get(reason, 0) + 1
    return Tally(ok=tally.ok, failed=tally.failed + 1, reasons=MappingProxyType(reasons))


def merge(a: Tally, b: Tally) -> Tally:
    reasons = dict(a.reasons)
    for reason, count in b.reasons.items():
        reasons[reason] = reasons.get(reason, 0) + count
    return Tally(ok=a.ok + b.ok, failed=a.failed + b.failed, reasons=MappingProxyType(reasons))


_EMPTY = Tally()
_PLAIN: dict[int, Tally] = {}
_PLAIN_MAX = 4096


def plain_tally(ok: int) -> Tally:
    """The tally of ``ok`` probes without a failure, shared: most buckets of a month are
    exactly that, and a frozen value per bucket (with its own empty reasons map) cost about
    180 bytes each, 0.5 GB a day at 10,000 targets."""
    tally = _PLAIN.get(ok)
    if tally is None:
        tally = Tally(ok=ok)
        if len(_PLAIN) < _PLAIN_MAX:
            _PLAIN[ok] = tally
    return tally
