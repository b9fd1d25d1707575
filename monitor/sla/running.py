"""One SLA's month kept as running state, so the daemon's accounting costs what changed.

:func:`monitor.sla.month.compute_month` judges every bucket holding tallies and summarises the
month each time it is called: at 10,000 SLAs, with a scrape every few seconds and a flush every
second, that is the month recomputed from all its buckets, again and again. A
:class:`RunningMonth` holds the judged state of each bucket in one byte (a month of 5-minute
buckets is 8,928 bytes) and re-judges only the buckets that changed:

- buckets that elapsed since the last call (the bucket in progress is pending, as in
  ``compute_month``);
- buckets :meth:`RunningMonth.mark`-ed because a tally of one of the SLA's targets (or a
  canary) changed after the bucket was judged (a late result);
- everything, when the inputs change (exclusions, reload): the owner builds a new one.

Each bucket is judged by :func:`monitor.sla.month.judge_bucket` and the figures come from
:func:`monitor.sla.month.assemble_month`, the functions ``compute_month`` uses, so a running
month equals ``compute_month`` over the same tallies (``tests/test_sla_running.py`` holds them
equal after any sequence of events). Counting states is ``bytes.count`` over the compact array
and outages are found with ``bytes.find``: a summary costs microseconds, not a pass of Python
over every bucket.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import overload

from monitor.sla.buckets import quorum_of, target_verdict
from monitor.sla.calendar import Month, month_grid, require_aware
from monitor.sla.exclusions import excluded_buckets
from monitor.sla.month import (
    _NO_TALLIES,
    MonthResult,
    Outage,
    _gap_buckets,
    _windows_used,
    assemble_month,
    canary_windows_of,
    judge_bucket,
    outage_of,
)
from monitor.sla.policy import (
    BucketState,
    ExclusionKind,
    ExclusionWindow,
    ServiceDef,
    SlaPolicy,
    Tally,
)

Tallies = Mapping[str, Mapping[int, Tally]]

_STATES = tuple(BucketState)
_CODE = {state: number for number, state in enumerate(_STATES)}
_A = _CODE[BucketState.AVAILABLE]
_U = _CODE[BucketState.UNAVAILABLE]
_X = _CODE[BucketState.EXCLUDED]
_Q = _CODE[BucketState.UNKNOWN]
_P = _CODE[BucketState.PENDING]


class CodedStates(Sequence[BucketState]):
    """A read-only sequence of bucket states over one byte per bucket (a snapshot)."""

    __slots__ = ("_codes",)

    def __init__(self, codes: bytes) -> None:
        self._codes = codes

    def __len__(self) -> int:
        return len(self._codes)

    @overload
    def __getitem__(self, index: int) -> BucketState: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[BucketState, ...]: ...
    def __getitem__(self, index: int | slice) -> BucketState | tuple[BucketState, ...]:
        if isinstance(index, slice):
            return tuple(_STATES[code] for code in self._codes[index])
        return _STATES[self._codes[index]]

    def __iter__(self) -> Iterator[BucketState]:
        return (_STATES[code] for code in self._codes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CodedStates):
            return self._codes == other._codes
        if isinstance(other, Sequence):
            return len(other) == len(self) and all(a is b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CodedStates({len(self._codes)} buckets)"


class RunningMonth:
    """``policy``'s ``month`` over ``service`` as running state (see the module docs).

    ``windows`` are the honoured exclusion windows (``accounting.month_windows``), ``gaps``
    the times the monitor was not running; both are fixed for its life. ``tallies`` is read,
    never kept: each call passes the current mapping (target -> bucket start -> tally).
    """

    def __init__(
        self,
        policy: SlaPolicy,
        service: ServiceDef,
        month: Month,
        windows: Sequence[ExclusionWindow],
        *,
        canaries: Sequence[str] = (),
        gaps: Sequence[tuple[datetime, datetime]] = (),
    ) -> None:
        if service.name != policy.service:
            raise ValueError(
                f"sla {policy.name}: expected service {policy.service!r}, got {service.name!r}"
            )
        if not service.targets:
            raise ValueError(f"service {service.name}: expected at least one target, got none")
        self.quorum = quorum_of(service.rule, len(service.targets))
        if self.quorum > len(service.targets):
            raise ValueError(
                f"service {service.name}: quorum {self.quorum} exceeds its "
                f"{len(service.targets)} targets"
            )
        self.policy = policy
        self.service = service
        self.month = month
        self.windows = tuple(windows)
        self.canaries = tuple(canaries)
        self.grid = month_grid(month, policy.timezone, policy.bucket_seconds)
        self._start_epoch = self.grid.start_epoch
        self._count = self.grid.count
        self._size = self.grid.bucket_seconds
        self.end_epoch = self.grid.end_epoch
        self._gap_buckets = frozenset(_gap_buckets(self.grid, gaps))
        count = self.grid.count
        self.elapsed = 0
        # Judged verdict per bucket before exclusions (pending until elapsed), and the final
        # state with exclusions applied: the one the month's figures count.
        self._raw = bytearray([_P]) * count
        self._final = bytearray([_P]) * count
        self._canary_down: set[int] = set()
        self._excluded: dict[int, ExclusionKind] = {}
        self._applied: tuple[ExclusionWindow, ...] = ()
        self._dirty: set[int] = set()
        self._outages: tuple[Outage, ...] | None = ()
        self._exclude(_windows_only=True)
        self.version = 0
        """Bumped whenever a figure may have changed (the owner's cache key)."""

    # -- events ----------------------------------------------------------------------------------
    def mark(self, bucket_start: int) -> None:
        """A tally of one of the month's targets or canaries at ``bucket_start`` changed."""
        offset = bucket_start - self._start_epoch
        if offset >= 0 and offset % self._size == 0 and offset // self._size < self.elapsed:
            self._dirty.add(offset // self._size)

    def advance(self, tallies: Tallies, now: datetime | None) -> None:
        """Judge the buckets elapsed by ``now`` (``None``: the whole month) and those marked."""
        if now is None:
            elapsed = self._count
        else:
            done = (int(require_aware(now, "now").timestamp()) - self._start_epoch) // self._size
            elapsed = max(0, min(self._count, done))
        # Time does not run back for a running month: a caller holding an earlier ``now``
        # (a slice of work that began before a scrape) or a clock stepped back keeps the
        # buckets already judged.
        elapsed = max(elapsed, self.elapsed)
        todo = {i for i in self._dirty if i < elapsed}
        self._dirty.clear()
        if not todo and elapsed == self.elapsed:
            return
        lo, hi = self.elapsed, elapsed
        if hi - lo > 8:
            # Many buckets at once (start-up, a long pause): an elapsed bucket without a
            # tally is unknown, so set them all in one slice and judge only those holding one.
            self._raw[lo:hi] = bytes([_Q]) * (hi - lo)
            self._final[lo:hi] = self._raw[lo:hi]
            for excluded in self._excluded:
                if lo <= excluded < hi:
                    self._final[excluded] = _X
            # Plain integers: the grid's epoch properties convert a datetime on every read.
            first, size = self._start_epoch, self.grid.bucket_seconds
            for name in (*self.service.targets, *self.canaries):
                for epoch in tallies.get(name, _NO_TALLIES):
                    offset = epoch - first
                    if offset >= 0 and offset % size == 0 and lo <= offset // size < hi:
                        todo.add(offset // size)
        else:
            todo.update(range(lo, hi))
        self.elapsed = elapsed
        self._judge(sorted(todo), tallies)
        self.version += 1

    def result(self, tallies: Tallies, now: datetime | None) -> MonthResult:
        """The month's figures as of the last :meth:`advance`, stamped ``now``."""
        final = bytes(self._final)
        elapsed = self.elapsed
        if self._outages is None:
            self._outages = self._find_outages(final, tallies)
        return assemble_month(
            self.policy,
            self.service,
            self.month,
            self.grid,
            now=now,
            states=CodedStates(final),
            counts=_counts(final, 0, len(final)),
            elapsed_counts=_counts(final, 0, elapsed),
            elapsed=elapsed,
            outages=self._outages,
            excluded=self._excluded,
            applied=self._applied,
            quorum=self.quorum,
            canaries=self.canaries,
        )

    def replace_windows(self, windows: Sequence[ExclusionWindow]) -> None:
        """New honoured windows (an exclusion added or removed): lay them over the judged
        states again; nothing is re-judged."""
        self.windows = tuple(windows)
        self._exclude()
        self.version += 1

    def state_at(self, index: int) -> BucketState:
        """Bucket ``index``'s state as of the last :meth:`advance` (exclusions applied)."""
        return _STATES[self._final[index]]

    def excluded_kind(self, index: int) -> ExclusionKind | None:
        """The kind that excluded bucket ``index``, if one did."""
        return self._excluded.get(index)

    # -- internals -------------------------------------------------------------------------------
    def _judge(self, indices: Sequence[int], tallies: Tallies) -> None:
        rule = self.policy.bucket_rule
        columns = [tallies.get(name, _NO_TALLIES) for name in self.service.targets]
        canary_columns = [tallies.get(name, _NO_TALLIES) for name in self.canaries]
        start, size = self._start_epoch, self._size
        raw, final, excluded = self._raw, self._final, self._excluded
        canaries_moved = False
        for index in indices:
            epoch = start + index * size
            if any(epoch in column for column in columns):
                code = _CODE[
                    judge_bucket(self.service, rule, columns, epoch, index in self._gap_buckets)
                ]
            else:
                code = _Q
            old = final[index]
            raw[index] = code
            new = _X if index in excluded else code
            final[index] = new
            if _U in (old, new):
                self._outages = None
            if canary_columns:
                down = all(
                    target_verdict(c.get(epoch), rule) is BucketState.UNAVAILABLE
                    for c in canary_columns
                )
                if down != (index in self._canary_down):
                    canaries_moved = True
                    if down:
                        self._canary_down.add(index)
                    else:
                        self._canary_down.discard(index)
        if canaries_moved:
            self._exclude()

    def _exclude(self, _windows_only: bool = False) -> None:
        """Apply the windows (and the canaries' runs) to the judged states."""
        grid = self.grid
        canary = (
            []
            if _windows_only or not self.canaries
            else canary_windows_of(grid, sorted(self._canary_down), self.canaries)
        )
        windows = [*self.windows, *canary]
        excluded = excluded_buckets(grid, windows, self.service.name, self.policy.partial_exclusion)
        applied = {id(w) for w in _windows_used(grid, windows, excluded, self.service.name)}
        self._applied = tuple(w for w in windows if id(w) in applied)
        before = self._excluded
        self._excluded = excluded
        final, raw = self._final, self._raw
        for index in before.keys() - excluded.keys():
            final[index] = raw[index]
        for index in excluded:
            final[index] = _X
        self._outages = None

    def _find_outages(self, final: bytes, tallies: Tallies) -> tuple[Outage, ...]:
        columns = {name: tallies.get(name, _NO_TALLIES) for name in self.service.targets}
        outages = []
        first = final.find(_U)
        while first >= 0:
            last = first
            while last + 1 < len(final) and final[last + 1] == _U:
                last += 1
            outages.append(outage_of(self.grid, first, last, columns))
            first = final.find(_U, last + 1)
        return tuple(outages)


def _counts(final: bytes, lo: int, hi: int) -> dict[BucketState, int]:
    return {state: final.count(_CODE[state], lo, hi) for state in _STATES}
