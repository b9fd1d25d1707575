"""The daemon's in-memory truth for the running month.

Tallies are kept per bucket length (several SLAs may use different ones) and per target, as
frozen ``Tally`` values replaced on every probe, so the engine reads them without copying.
What changed since the last flush is tracked, so the store only gets rows that moved; a flush
that fails leaves them marked and the next one retries, so nothing is dropped on a store error.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from monitor.sla.canary import CanaryTimeline, Span, canary_cover, covered
from monitor.sla.policy import Tally
from probes.reasons import Side, side_of
from probes.result import Outcome, ProbeResult

TallyKey = tuple[int, str, int]
"""(bucket_seconds, target, bucket_start epoch)."""

MAX_PENDING_EVIDENCE = 200_000
MAX_RECENT_FAILURES = 200_000
_HORIZON_INTERVALS = 4
"""Canary probes and vendor failures are kept this many canary intervals back: a failure is
re-judged while a canary result could still change whether it is excused."""


@dataclass(slots=True)
class _Failure:
    """A recent vendor failure, the bucket lengths it was counted in, and whether excused."""

    epoch: float
    target: str
    lengths: tuple[int, ...]
    excused: bool


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


class TargetFeed:
    """The targets whose :class:`TargetStatus` may have changed since the consumer last took
    them (issue 20).

    ``/metrics`` keeps each target's lines and, at 10,000 targets, cannot afford to look at
    every target at every scrape (between two scrapes 5 s apart only a sixth of the targets
    of a 30 s interval have a new result). :class:`LiveState` adds a target's name here
    whenever it records a result for it or forgets it; the consumer reads those targets
    again and nothing else (see :meth:`LiveState.watch`)."""

    __slots__ = ("__weakref__", "names")

    def __init__(self) -> None:
        self.names: set[str] = set()

    def take(self) -> set[str]:
        """The names changed since the last call; empties the feed."""
        names, self.names = self.names, set()
        return names


class LiveState:
    """Tallies, last results and the evidence waiting to be written."""

    def __init__(self) -> None:
        self._tallies: dict[int, dict[str, dict[int, Tally]]] = {}
        self._dirty: set[TallyKey] = set()
        self._evidence: deque[ProbeResult] = deque(maxlen=MAX_PENDING_EVIDENCE)
        self.evidence_dropped = 0
        self.targets: dict[str, TargetStatus] = {}
        # Canaries excuse instants (monitor.sla.canary): each canary's recent probes, the
        # instants every canary was failing, and the recent vendor failures they may excuse
        # (a canary's failure can arrive after the vendor failure it covers).
        self._canaries: dict[str, float] = {}
        self._canary_runs: dict[str, deque[tuple[float, bool]]] = {}
        self._cover: tuple[Span, ...] = ()
        self._recent: deque[_Failure] = deque(maxlen=MAX_RECENT_FAILURES)
        # Issue 20: bucket length -> the bucket start before which closed tallies have left
        # memory (written to the store and judged by every running month; see evict_before).
        self._evicted: dict[int, int] = {}
        # fl24 (issue 20): bucket length -> bucket start -> the targets a tally was created
        # for there (a target may appear twice, or after its tally left): eviction visits the
        # buckets that closed, not every tally held (a pass over 10,000 targets' hour of
        # buckets held the loop 30-60 ms at every bucket close).
        self._created: dict[int, dict[int, list[str]]] = {}
        # mem34 (issue 20): bucket start -> the one int object every tally dict held here
        # keys that bucket by. A start past 2**30 is an int object of its own wherever it was
        # made (each probe result's ``bucket_floor``, each row the store reads back), and the
        # first one of each target's bucket stayed its key: 10,000 targets' hour of buckets
        # held 130,000 equal ints (4.2 MB). Pruned with the eviction.
        self._starts: dict[int, int] = {}
        self.results_after_eviction = 0
        """Results whose bucket had already left memory: not counted (see record)."""
        # Held weakly, as the accounting's change feeds: a renderer dropped stops being fed.
        # A tuple of references rather than a WeakSet: ``record`` walks it at every result
        # and a WeakSet's iteration guard cost more than the adds (ps32).
        self._feeds: tuple[weakref.ref[TargetFeed], ...] = ()

    def watch(self) -> TargetFeed:
        """A new feed of the targets whose status changes from now on (``record``,
        ``forget_targets``): what is in ``targets`` now is the consumer's to read."""
        feed = TargetFeed()
        self._feeds = (*self._feeds, weakref.ref(feed, self._unwatch))
        return feed

    def _unwatch(self, gone: weakref.ref[TargetFeed]) -> None:
        self._feeds = tuple(ref for ref in self._feeds if ref is not gone)

    def _changed(self, name: str) -> None:
        for ref in self._feeds:
            feed = ref()
            if feed is not None:
                feed.names.add(name)

    def set_canaries(self, intervals: Mapping[str, float]) -> None:
        """The canary targets and their intervals (the tolerance around a failed probe)."""
        self._canaries = dict(intervals)
        self._canary_runs = {name: self._canary_runs.get(name, deque()) for name in self._canaries}
        self._update_cover()

    # -- recording -------------------------------------------------------------------------
    def record(self, result: ProbeResult, bucket_lengths: Iterable[int]) -> None:
        """Count one probe result into the bucket of every length that measures its target."""
        status = self.targets.get(result.target)
        if status is None:
            status = self.targets[result.target] = TargetStatus()
        status.last = result
        status.outcomes[result.outcome] += 1
        if self._feeds:
            self._changed(result.target)
        lengths = tuple(bucket_lengths)
        vendor_failure = not result.ok and (
            side_of(result.outcome, result.reason or result.outcome.value) is Side.VENDOR
        )
        is_canary = result.target in self._canaries
        excused = vendor_failure and not is_canary and covered(self._cover, result.started_at)
        for seconds in lengths:
            start = bucket_floor(result.started_at, seconds)
            if start < self._evicted.get(seconds, 0):
                # Counting it into an empty tally would overwrite the stored row (tallies are
                # upserted with absolute counts) with this one probe. The window kept in
                # memory is far longer than any probe's timeout: only a clock jump gets here.
                self.results_after_eviction += 1
                continue
            by_target = self._tallies.setdefault(seconds, {}).setdefault(result.target, {})
            tally = by_target.get(start)
            if tally is None:
                start = self._starts.setdefault(start, start)  # mem34: one int a bucket
                self._created_at(seconds, start).append(result.target)
            by_target[start] = add_result(tally, result, excused=excused)
            self._dirty.add((seconds, result.target, start))
        if is_canary and (result.ok or vendor_failure):
            # A canary's own monitor error says nothing about our network either way.
            self._canary_seen(result.target, result.started_at, result.ok)
        elif vendor_failure and self._canaries:
            self._recent.append(_Failure(result.started_at, result.target, lengths, excused))
        if not result.ok:
            if len(self._evidence) == self._evidence.maxlen:
                self.evidence_dropped += 1
            self._evidence.append(result)

    def _canary_seen(self, name: str, epoch: float, ok: bool) -> None:
        runs = self._canary_runs.setdefault(name, deque())
        runs.append((epoch, ok))
        horizon = epoch - _HORIZON_INTERVALS * self._canaries[name]
        while runs and runs[0][0] < horizon:
            runs.popleft()
        self._update_cover()
        # Re-judge the recent vendor failures: a canary failure covers instants before it,
        # and a canary success ends the cover of an earlier failure.
        widest = max(self._canaries.values(), default=0.0)
        while self._recent and self._recent[0].epoch < epoch - _HORIZON_INTERVALS * widest:
            self._recent.popleft()
        # Only failures within one (widest) canary interval of this probe can change: a
        # probe's own span and the spans it cuts short lie within its interval of it, and the
        # probes kept reach far enough back to judge them exactly as the whole timeline would.
        for failure in self._recent:
            if failure.epoch < epoch - widest:
                continue
            now = covered(self._cover, failure.epoch)
            if now != failure.excused:
                failure.excused = now
                self._adjust_excused(failure, 1 if now else -1)

    def _update_cover(self) -> None:
        self._cover = canary_cover(
            {
                name: CanaryTimeline(tuple(self._canary_runs.get(name, ())), interval)
                for name, interval in self._canaries.items()
            }
        )

    def _adjust_excused(self, failure: _Failure, step: int) -> None:
        for seconds in failure.lengths:
            start = bucket_floor(failure.epoch, seconds)
            buckets = self._tallies.get(seconds, {}).get(failure.target)
            tally = None if buckets is None else buckets.get(start)
            if buckets is None or tally is None:
                continue
            excused = min(tally.failed, max(0, tally.excused + step))
            buckets[start] = replace(tally, excused=excused)
            self._dirty.add((seconds, failure.target, start))
            # The cover can change a bucket that already closed (and was judged).
            if self.on_change is not None:
                self.on_change(seconds, failure.target, start)

    def load(self, bucket_seconds: int, tallies: Mapping[str, Mapping[int, Tally]]) -> None:
        """Adopt tallies read back from the store (after a restart), without marking them dirty.

        A bucket already counted in memory keeps the larger evidence: the store's row is what a
        previous run wrote, and this run adds to it.
        """
        table = self._tallies.setdefault(bucket_seconds, {})
        created = self._created.setdefault(bucket_seconds, {})
        # tl31 (issue 20): the store reads equal rows as one tally; each is compared with the
        # plain tally once, not once per bucket (``tallies`` keeps them alive: ids stay put).
        adopted: dict[int, Tally] = {}
        starts = self._starts
        for target, buckets in tallies.items():
            mine = table.setdefault(target, {})
            for start, stored in buckets.items():
                current = mine.get(start)
                if current is None:
                    start = starts.setdefault(start, start)  # mem34: one int a bucket
                    own = adopted.get(id(stored))
                    if own is None:
                        plain = plain_tally(stored.ok)
                        own = adopted[id(stored)] = plain if stored == plain else stored
                    mine[start] = own
                    at = created.get(start)
                    if at is None:
                        at = created[start] = []
                    at.append(target)
                else:
                    mine[start] = merge(stored, current)
                if current is not None:
                    self._dirty.add((bucket_seconds, target, start))

    def put(self, bucket_seconds: int, target: str, start: int, tally: Tally) -> None:
        """Set one bucket's tally outright (a kind: prometheus target's, filled after the
        bucket closed) and mark it for the next flush."""
        buckets = self._tallies.setdefault(bucket_seconds, {}).setdefault(target, {})
        if start not in buckets:
            start = self._starts.setdefault(start, start)  # mem34: one int a bucket
            self._created_at(bucket_seconds, start).append(target)
        buckets[start] = tally
        self._dirty.add((bucket_seconds, target, start))
        if self.on_change is not None:
            self.on_change(bucket_seconds, target, start)

    # -- closed buckets leave memory (issue 20) -----------------------------------------------
    def evict_before(self, cutoffs: Mapping[int, int]) -> int:
        """Drop the tallies of buckets starting before ``cutoffs[bucket_seconds]`` that the
        store holds (not waiting for a flush); the caller has had every running month judge
        them. Returns how many were dropped. A cutoff never moves back."""
        dropped = 0
        dirty = self._dirty
        for seconds, cutoff in cutoffs.items():
            if cutoff <= self._evicted.get(seconds, 0):
                continue
            self._evicted[seconds] = cutoff
            table = self._tallies.get(seconds, {})
            created = self._created.get(seconds, {})
            # fl24: only the buckets before the cutoff, through the targets created there.
            for start in [s for s in created if s < cutoff]:
                kept: list[str] = []
                for target in created.pop(start):
                    buckets = table.get(target)
                    if buckets is None or start not in buckets:
                        continue  # already gone (forget_before), or listed twice
                    if (seconds, target, start) in dirty:
                        kept.append(target)  # written first, evicted at a later cutoff
                    else:
                        del buckets[start]
                        dropped += 1
                if kept:
                    created[start] = kept
        self._prune_starts()
        return dropped

    def _prune_starts(self) -> None:
        """mem34: the shared starts no tally held may be keyed by (none in the eviction
        index, which lists every bucket holding one) leave; one that comes back is added."""
        starts, created = self._starts, self._created.values()
        for start in [s for s in starts if not any(s in c for c in created)]:
            del starts[start]

    def evicted_before(self, bucket_seconds: int) -> int:
        """The bucket start before which tallies of this length may be in the store only
        (0: every tally since the daemon started or loaded them is in memory)."""
        return self._evicted.get(bucket_seconds, 0)

    def lengths(self) -> tuple[int, ...]:
        return tuple(self._tallies)

    def _created_at(self, bucket_seconds: int, start: int) -> list[str]:
        by_start = self._created.get(bucket_seconds)
        if by_start is None:
            by_start = self._created[bucket_seconds] = {}
        at = by_start.get(start)
        if at is None:
            at = by_start[start] = []
        return at

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

    on_change: Callable[[int, str, int], None] | None = None
    """Told (bucket length, target, bucket start) when a tally changes after its bucket may
    have closed (a canary's cover, a bucket set outright): the daemon's accounting re-judges
    that bucket (``Accounting.tally_changed``). ``record`` leaves closed buckets to its
    caller, who knows the time."""

    in_flight = 0
    """Rows of the flush being written now (issue 17: pending until it commits)."""

    @property
    def pending_rows(self) -> int:
        return len(self._dirty) + len(self._evidence) + self.in_flight

    def forget_before(self, epoch: int) -> None:
        """Drop tallies of buckets before ``epoch`` (months no longer being computed live)."""
        for seconds, table in self._tallies.items():
            for target, buckets in table.items():
                old = [start for start in buckets if start < epoch]
                for start in old:
                    if (seconds, target, start) not in self._dirty:
                        del buckets[start]
            # fl24: the eviction index keeps only what may still be held.
            created = self._created.get(seconds, {})
            for start in [s for s in created if s < epoch]:
                left = [t for t in created[start] if start in table.get(t, {})]
                if left:
                    created[start] = left
                else:
                    del created[start]
        self._prune_starts()

    def forget_targets(self, keep: AbstractSet[str]) -> None:
        for name in list(self.targets):
            if name not in keep:
                del self.targets[name]
                self._changed(name)


def add_result(tally: Tally | None, result: ProbeResult, *, excused: bool = False) -> Tally:
    """The tally with one more probe counted (a new frozen value).

    A failure on the monitor's side (``probes.reasons``) is counted in ``errors``, never in
    ``failed``; ``excused`` marks a vendor failure that a canary failure covers.
    """
    if tally is None:
        tally = _EMPTY
    if result.ok:
        if not (tally.failed or tally.errors or tally.excused):
            # Nothing but successes: one shared value per count (see plain_tally).
            return plain_tally(tally.ok + 1)
        return replace(tally, ok=tally.ok + 1)
    reason = result.reason or result.outcome.value
    if side_of(result.outcome, reason) is Side.MONITOR:
        return replace(
            tally, errors=tally.errors + 1, error_reasons=_plus(tally.error_reasons, reason, 1)
        )
    return replace(
        tally,
        failed=tally.failed + 1,
        reasons=_plus(tally.reasons, reason, 1),
        excused=tally.excused + (1 if excused else 0),
    )


def merge(a: Tally, b: Tally) -> Tally:
    reasons = dict(a.reasons)
    for reason, count in b.reasons.items():
        reasons[reason] = reasons.get(reason, 0) + count
    error_reasons = dict(a.error_reasons)
    for reason, count in b.error_reasons.items():
        error_reasons[reason] = error_reasons.get(reason, 0) + count
    return Tally(
        ok=a.ok + b.ok,
        failed=a.failed + b.failed,
        reasons=MappingProxyType(reasons),
        errors=a.errors + b.errors,
        error_reasons=MappingProxyType(error_reasons),
        excused=a.excused + b.excused,
    )


def _plus(counts: Mapping[str, int], key: str, n: int) -> Mapping[str, int]:
    out = dict(counts)
    out[key] = out.get(key, 0) + n
    return MappingProxyType(out)


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
