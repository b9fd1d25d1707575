"""The daemon's side of persisted running months (issue 20; the proof is the store's guard,
``monitor.store.snapshots``).

- :meth:`MonthSnapshots.restorable`, at start-up (before anything is read from the store) and
  when a reload rebuilds an SLA: loads the snapshots of every SLA's current and previous
  month, keeps those whose inputs digest matches today's inputs and whose guard is still
  unspoiled, and arms the guards of every month it is about to read (and of the next month,
  before it begins). The caller builds those months from the snapshot and the tallies after
  it, the others from all their tallies, as before.
- :meth:`MonthSnapshots.judged_state`, when the caller builds one such month: its snapshot
  decoded (rb28, issue 20: ``restorable`` keeps each snapshot's bytes, not its judged state;
  20,000 decoded states held together at a month's end left ~400 MB of the allocator's pools
  behind). A snapshot that does not decode then is not used: the caller reads all of that
  month's tallies (its guard, armed keeping the snapshot, still sees every write after it).
- :meth:`MonthSnapshots.save`, hourly and at stop: each held month's judged state up to the
  buckets that left memory (no result can count into them any more: a write into them is a
  spool replay or someone else's, and spoils), written by the store's worker in chunks.

Each month is serialised and its save queued in one synchronous step: the store's worker runs
calls in order, so every tally write queued after the state was taken runs after the snapshot
is stored, where the guard sees it.

vm26: each snapshot also carries the SLA's verdict mark (``save``'s ``verdict_marks``), and
:attr:`MonthSnapshots.vouched` holds, for the months restored, the stored verdicts they vouch
for (``monitor.runtime.verdict_resume``).

SLAs judged by locations (issue 14) are not snapshotted (they are built from every location's
tallies when first asked for); a store that is not a :class:`SnapshotStore` (PostgreSQL)
keeps none, and every month is read in full as before.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from monitor.accounting import Accounting, AccountingInputs
from monitor.runtime.verdict_resume import exclusions_digest
from monitor.sla.calendar import BucketGrid, Month, month_containing, month_grid
from monitor.sla.policy import SlaPolicy
from monitor.sla.running import JudgedState, RunningMonth
from monitor.sla.running_codec import SnapshotError, decode, encode, inputs_digest
from monitor.sla.settled import SettledCounts, settled_text
from monitor.store.snapshots import ArmMode, MonthSnapshot, SnapshotGuard, SnapshotStore

log = structlog.get_logger(__name__)

CHUNK = 500
"""SLA-months per store call: the worker's other calls (flushes) interleave between chunks."""

SLICE_SECONDS = 0.02
"""CPU time serialised on the loop before a chunk is handed to the store and the loop yields."""


@dataclasses.dataclass(frozen=True, slots=True)
class ProvenSnapshot:
    """rb28 (issue 20): a month's snapshot proven usable by :meth:`MonthSnapshots.restorable`
    (today's inputs digest, an unspoiled guard), still encoded: its judged state is decoded
    only when the month is built (:meth:`MonthSnapshots.judged_state`)."""

    judged: int
    """Buckets it judged (from its ``judged_through``; the digest was taken over them)."""
    state: bytes
    """The judged state as saved (``running_codec.encode``)."""
    settled: str = ""
    """sm32 (issue 20): a whole month's counts as saved (``MonthSnapshot.settled``)."""
    targets: int = 1
    """hd34 (issue 20): the leaf targets of the SLA's service: with ``judged``, the bound of
    what decoding ``state`` may inflate (``running_codec.decode``)."""


class MonthSnapshots:
    """Snapshots of the daemon's running months in ``store`` (none if it keeps none)."""

    def __init__(self, store: object) -> None:
        self.store: SnapshotStore | None = store if isinstance(store, SnapshotStore) else None
        self._saved: dict[tuple[str, Month], tuple[weakref.ref[RunningMonth], int, int, int]] = {}
        """(SLA, month) -> (running version, buckets, verdicts vouched through) last saved:
        unchanged months are skipped."""
        self._ahead: set[tuple[str, Month]] = set()
        """(SLA, month) guarded ahead by this process (see :meth:`_arm_ahead`)."""
        self.restored = 0
        """Months started from a snapshot at the last :meth:`restorable` (for logs, tests)."""
        self.vouched: dict[tuple[str, Month], tuple[int, int, str]] = {}
        """vm26: (SLA, month) restored -> its snapshot's (verdicts_from, verdicts_through,
        verdicts_digest); taken by the daemon's first verdict resume of that SLA."""

    @staticmethod
    def _shown(zone: str, moment: datetime) -> tuple[Month, Month]:
        """The previous and the current month at ``moment`` in time zone ``zone``."""
        current = month_containing(moment, zone)
        return current.previous(), current

    async def restorable(
        self,
        inputs: AccountingInputs,
        policies: Sequence[SlaPolicy],
        moment: datetime,
        mode: ArmMode,
    ) -> dict[tuple[str, Month], ProvenSnapshot]:
        """The snapshots to start the current and previous months of ``policies`` from
        (decoded by :meth:`judged_state` when each month is built); arms the guards of those
        months (``mode``: ``fresh`` at start-up, ``carry`` on a reload) and of each SLA's next
        month (``ahead``)."""
        self.restored = 0
        store = self.store
        if store is None:
            return {}
        # Issue 20, r22: per SLA once (not per month): its months, its targets, its grids.
        wanted = [p for p in policies if p.locations is None and p.service in inputs.services]
        out: dict[tuple[str, Month], ProvenSnapshot] = {}
        step = max(1, CHUNK // 2)  # two months per SLA: about CHUNK months per store call
        # dg31 (issue 20): the months (and their names) and grids are those of a zone and
        # bucket length, the same for most SLAs: taken once per call.
        months: dict[str, tuple[Month, str, Month, str, Month, str]] = {}
        grids: dict[tuple[str, int], tuple[BucketGrid, BucketGrid, BucketGrid]] = {}
        for lo in range(0, len(wanted), step):
            chunk = wanted[lo : lo + step]
            shown = []
            for policy in chunk:
                known = months.get(policy.timezone)
                if known is None:
                    previous, current = self._shown(policy.timezone, moment)
                    following = current.next()
                    known = months[policy.timezone] = (
                        previous,
                        str(previous),
                        current,
                        str(current),
                        following,
                        str(following),
                    )
                shown.append((policy, *known[:4]))
            loaded = await store.load_month_snapshots(
                [
                    (p.name, name)
                    for p, _, before, _, now_name in shown
                    for name in (before, now_name)
                ]
            )
            usable: dict[tuple[str, str], ProvenSnapshot] = {}
            guards: list[SnapshotGuard] = []
            for policy, previous, before, current, now_name in shown:
                service = inputs.services[policy.service]
                targets = tuple(sorted(set(service.all_targets)))
                zone, size = policy.timezone, policy.bucket_seconds
                _, _, _, _, following, next_name = months[zone]
                three = grids.get((zone, size))
                if three is None:
                    three = grids[(zone, size)] = (
                        month_grid(previous, zone, size),
                        month_grid(current, zone, size),
                        month_grid(following, zone, size),
                    )
                for month, name, grid in (
                    (previous, before, three[0]),
                    (current, now_name, three[1]),
                ):
                    key = (policy.name, name)
                    found = loaded.get(key)
                    keep: int | None = None
                    if found is not None:
                        snapshot, guarded = found
                        proven = self._check(
                            inputs, policy, month, grid, snapshot, guarded, targets
                        )
                        if proven is not None:
                            keep = snapshot.judged_through
                            usable[key] = proven
                    guards.append(
                        SnapshotGuard(
                            policy.name,
                            name,
                            targets,
                            size,
                            grid.start_epoch,
                            grid.end_epoch,
                            keep_through=keep,
                            mode=mode,
                        )
                    )
                self._ahead.add((policy.name, following))
                ahead = three[2]
                guards.append(
                    SnapshotGuard(
                        policy.name,
                        next_name,
                        targets,
                        size,
                        ahead.start_epoch,
                        ahead.end_epoch,
                        mode="ahead",
                    )
                )
            kept = await store.arm_month_snapshots(guards)
            for policy, previous, before, current, now_name in shown:
                for month, name in ((previous, before), (current, now_name)):
                    key = (policy.name, name)
                    self.vouched.pop((policy.name, month), None)
                    if key in kept and key in usable:
                        out[(policy.name, month)] = usable[key]
                        snapshot = loaded[key][0]
                        if snapshot.verdicts_through > snapshot.verdicts_from:
                            self.vouched[(policy.name, month)] = (
                                snapshot.verdicts_from,
                                snapshot.verdicts_through,
                                snapshot.verdicts_digest,
                            )
                    # Armed afresh: whatever was saved before is gone or kept as it was.
                    self._saved.pop((policy.name, month), None)
        self.restored = len(out)
        return out

    @staticmethod
    def _check(
        inputs: AccountingInputs,
        policy: SlaPolicy,
        month: Month,
        grid: BucketGrid,
        snapshot: MonthSnapshot,
        guarded: tuple[str, ...],
        targets: tuple[str, ...],
    ) -> ProvenSnapshot | None:
        """The snapshot, still encoded, if it was judged under today's inputs, else None.
        ``grid``: ``month``'s (``month_grid`` in the policy's zone and bucket length).

        rb28 (issue 20): the buckets judged are taken from ``judged_through`` (which the
        decoded state must then match, :meth:`judged_state`), not from the decoded state: the
        digest is taken over them without decoding."""
        if snapshot.bucket_seconds != policy.bucket_seconds or guarded != targets:
            return None
        judged, rest = divmod(snapshot.judged_through - grid.start_epoch, policy.bucket_seconds)
        if rest or not 0 <= judged <= grid.count:
            return None
        service = inputs.services[policy.service]
        digest = inputs_digest(
            policy, service, month, inputs.canaries, inputs.gaps, judged, grid=grid
        )
        if digest != snapshot.inputs:
            return None
        return ProvenSnapshot(judged, snapshot.state, snapshot.settled, len(targets))

    def judged_state(
        self, policy: SlaPolicy, month: Month, proven: ProvenSnapshot
    ) -> JudgedState | None:
        """``proven``'s judged state (``policy``'s ``month``), or None if it does not decode
        to the buckets it was proven for: the month is then read from all its tallies, is
        not counted in :attr:`restored`, and vouches for no stored verdict. hd34: nor does
        one that would inflate past what a month of its buckets and targets can need."""
        try:
            state = decode(proven.state, buckets=proven.judged, targets=proven.targets)
        except SnapshotError as exc:
            log.warning(
                "month_snapshot_unreadable", sla=policy.name, month=str(month), error=str(exc)
            )
            state = None
        if state is None or state.judged != proven.judged:
            self.restored -= 1
            self.vouched.pop((policy.name, month), None)
            return None
        return state

    async def save(
        self,
        accounting: Accounting,
        moment: datetime,
        evicted_before: Callable[[int], int],
        *,
        within: float | None = None,
        verdict_marks: Callable[[str, Month], int | None] | None = None,
    ) -> int:
        """Save every held month whose judged state moved since its last save, up to the
        buckets before ``evicted_before(bucket_seconds)``; returns the months written.
        ``within``: stop queueing after that many seconds (at stop; what is not written keeps
        its earlier, still valid snapshot). ``verdict_marks(sla, month)``: the bucket index
        up to which the SLA's verdicts of that month are stored as judged (committed), None
        if unknown (vm26: recorded as the snapshot's vouch, ``monitor.runtime.verdict_resume``).
        """
        store = self.store
        if store is None:
            return 0
        began = time.monotonic()
        inputs = accounting.inputs
        # hd34: the previous months' starts of each zone and bucket length, once each (a
        # pass over 10,000 SLAs' grids was a third of the save's first step).
        drop_before = min(
            (
                month_grid(self._shown(zone, moment)[0], zone, size).start_epoch
                for zone, size in {(p.timezone, p.bucket_seconds) for p in inputs.policies}
            ),
            default=None,
        )
        await self._arm_ahead(store, inputs, moment)
        written = 0
        pending: list[MonthSnapshot] = []
        marks: list[tuple[tuple[str, Month], tuple[weakref.ref[RunningMonth], int, int, int]]] = []
        mark = time.perf_counter()
        for policy in inputs.policies:
            if policy.locations is not None or policy.service not in inputs.services:
                continue
            floor = evicted_before(policy.bucket_seconds)
            for running in accounting.held_months(policy, moment):
                held = None if verdict_marks is None else verdict_marks(policy.name, running.month)
                extent = _extent(running, floor, held)
                if extent is None:
                    continue
                # hd34 (issue 20): an unchanged month is known by its version and extent,
                # before it is encoded (it was encoded again and dropped at every save: 4.4 s
                # of CPU an hour at 10,000 one-target SLAs, none of it written).
                key = (policy.name, running.month)
                through, vouch = extent
                seen = (weakref.ref(running), running.version, through, vouch)
                before = self._saved.get(key)
                if before is not None and before[0]() is running and before[1:] == seen[1:]:
                    continue
                pending.append(self._snapshot_of(inputs, running, extent))
                marks.append((key, seen))
            if len(pending) >= CHUNK or time.perf_counter() - mark > SLICE_SECONDS:
                written += await self._flush(store, pending, marks, drop_before)
                drop_before = None
                pending, marks = [], []
                if within is not None and time.monotonic() - began > within:
                    return written
                await asyncio.sleep(0)
                mark = time.perf_counter()
        if pending or drop_before is not None:
            written += await self._flush(store, pending, marks, drop_before)
        return written

    async def _arm_ahead(
        self, store: SnapshotStore, inputs: AccountingInputs, moment: datetime
    ) -> None:
        """Guard each SLA's next month before it begins (once per process and month): the
        daemon begins it in memory, and a guard armed while the store holds none of its
        tallies has seen every write into it (``SnapshotGuard.mode`` ``ahead``)."""
        guards = []
        # hd34: each zone's next month and each (zone, bucket length)'s grid taken once, as
        # :meth:`restorable` does (at 10,000 SLAs a pass of ~20 ms at every save).
        following_of: dict[str, Month] = {}
        grids: dict[tuple[str, int], BucketGrid] = {}
        for policy in inputs.policies:
            if policy.locations is not None or policy.service not in inputs.services:
                continue
            zone = policy.timezone
            following = following_of.get(zone)
            if following is None:
                following = following_of[zone] = self._shown(zone, moment)[1].next()
            if (policy.name, following) in self._ahead:
                continue
            grid = grids.get((zone, policy.bucket_seconds))
            if grid is None:
                grid = grids[(zone, policy.bucket_seconds)] = month_grid(
                    following, zone, policy.bucket_seconds
                )
            targets = tuple(sorted(set(inputs.services[policy.service].all_targets)))
            guards.append(
                SnapshotGuard(
                    policy.name,
                    str(following),
                    targets,
                    policy.bucket_seconds,
                    grid.start_epoch,
                    grid.end_epoch,
                    mode="ahead",
                )
            )
        for lo in range(0, len(guards), CHUNK):
            chunk = guards[lo : lo + CHUNK]
            await store.arm_month_snapshots(chunk)
            self._ahead.update((g.sla, Month.parse(g.month)) for g in chunk)

    async def _flush(
        self,
        store: SnapshotStore,
        pending: list[MonthSnapshot],
        marks: list[tuple[tuple[str, Month], tuple[weakref.ref[RunningMonth], int, int, int]]],
        drop_before: int | None,
    ) -> int:
        # Queued before any await of this step: see the module docs.
        written = await store.save_month_snapshots(pending, drop_before)
        self._saved.update(marks)
        return written

    @staticmethod
    def _snapshot_of(
        inputs: AccountingInputs, running: RunningMonth, extent: tuple[int, int]
    ) -> MonthSnapshot:
        """``running``'s snapshot over ``extent`` (:func:`_extent`)."""
        grid = running.grid
        size = grid.bucket_seconds
        through, vouch = extent
        state = running.judged_state(through)
        policy = running.policy
        digest = inputs_digest(
            policy,
            running.service,
            running.month,
            running.canaries,
            inputs.gaps,
            through,
            grid=grid,
        )
        return MonthSnapshot(
            policy.name,
            str(running.month),
            size,
            grid.start_epoch + through * size,
            digest,
            encode(state),
            grid.start_epoch,
            grid.start_epoch + vouch * size,
            exclusions_digest(running.excluded_kinds(), vouch) if vouch else "",
            settled_of(running, through),
        )


def _extent(running: RunningMonth, floor: int, mark: int | None) -> tuple[int, int] | None:
    """(buckets a snapshot of ``running`` judges, buckets of stored verdicts it vouches
    for), or None when it would judge none: the buckets before ``floor`` (that left memory)
    and judged; the verdicts before ``mark`` (the bucket index up to which they are stored as
    judged, None: unknown) among them (vm26: before min(W, J), verdict_resume's docs)."""
    grid = running.grid
    size = grid.bucket_seconds
    through = min(running.elapsed, max(0, (floor - grid.start_epoch) // size))
    if through <= 0:
        return None
    return through, 0 if mark is None else max(0, min(mark, through))


def settled_of(running: RunningMonth, through: int) -> str:
    """sm32 (issue 20): ``MonthSnapshot.settled`` for a snapshot of ``running``'s first
    ``through`` buckets: its counts if that is the whole month (``monitor.sla.settled``),
    else empty."""
    if through < running.grid.count:
        return ""
    counts = running.settled_counts()
    if counts is None:
        return ""
    return settled_text(SettledCounts(*counts), running.windows)
