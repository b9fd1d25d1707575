"""The daemon's view of every location's tallies, for SLAs judged by a quorum of locations
(issue 14).

An SLA with ``locations`` is judged from the shared store only, this daemon's own location
included: each daemon flushes its tallies, then reads every listed location back, so all
daemons judge each bucket from the same rows and compute the same month (one path from
results to money, whichever daemon answers). Reading is bounded:

- only the SLA's service targets and the canaries, only the locations it lists;
- at start, and every :data:`FULL_EVERY` seconds, the current and previous month (what the
  running months show); at every other flush only the recent buckets (the settle time plus
  two buckets back), where results still arrive;
- each location's gaps over the same two months (a handful of rows).

Every (SLA, bucket) whose inputs moved is returned, so the running months re-judge exactly
those buckets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.instants import utc_from_epoch
from monitor.sla.calendar import month_bounds, month_containing
from monitor.sla.policy import ServiceDef, SlaPolicy, Tally
from monitor.sla.quorum import LocatedTallies
from monitor.store.base import Store
from monitor.store.located import ByLocation, load_location_gaps, load_location_tallies

FULL_EVERY = 300.0
"""Seconds between two reads of the whole two months (late rows older than the window)."""

Gaps = dict[str, list[tuple[float, float]]]


class LocationFeed:
    """Per SLA judged by locations: each location's tallies and gaps as last read."""

    def __init__(self) -> None:
        self._slas: dict[str, tuple[SlaPolicy, tuple[str, ...]]] = {}
        self._canaries: tuple[str, ...] = ()
        self._held: dict[str, ByLocation] = {}
        self._gaps: dict[str, Gaps] = {}
        self._last_full: dict[str, float] = {}

    def configure(
        self,
        policies: Sequence[SlaPolicy],
        services: Mapping[str, ServiceDef],
        canaries: Sequence[str],
    ) -> None:
        """The SLAs to follow (those with ``locations``); anything else is forgotten. A
        changed SLA is read in full again at the next refresh."""
        slas: dict[str, tuple[SlaPolicy, tuple[str, ...]]] = {}
        for policy in policies:
            if policy.locations is None or policy.service not in services:
                continue
            targets = tuple(dict.fromkeys([*services[policy.service].all_targets, *canaries]))
            slas[policy.name] = (policy, targets)
        for name in list(self._held):
            if slas.get(name) != self._slas.get(name) or tuple(canaries) != self._canaries:
                self._held.pop(name, None)
                self._gaps.pop(name, None)
                self._last_full.pop(name, None)
        self._slas = slas
        self._canaries = tuple(canaries)

    @property
    def active(self) -> bool:
        return bool(self._slas)

    def tallies_for(self, policy: SlaPolicy) -> LocatedTallies:
        """``policy``'s located tallies as last read (empty before the first read: every
        location unheard, so nothing is claimed before the store answered)."""
        if policy.locations is None:
            raise ValueError(f"sla {policy.name}: sets no locations")
        return LocatedTallies(
            policy.locations,
            self._held.get(policy.name, {}),
            canaries=self._canaries,
            gaps=self._gaps.get(policy.name, {}),
        )

    async def refresh(self, store: Store, now: float, settle: float) -> list[tuple[str, int]]:
        """Read what may have changed (``settle``: how long after a bucket closes its results
        may still arrive); return ``(sla, bucket start)`` of each bucket whose tallies or
        gaps moved."""
        changed: list[tuple[str, int]] = []
        for name, (policy, targets) in self._slas.items():
            rule = policy.locations
            assert rule is not None  # configure() keeps only those
            size = policy.bucket_seconds
            current = month_containing(utc_from_epoch(now), policy.timezone)
            since = int(month_bounds(current.previous(), policy.timezone)[0].timestamp())
            last = self._last_full.get(name)
            full = last is None or not 0 <= now - last < FULL_EVERY
            window = settle + 2 * size
            start = since if full else max(since, int(now - window) // size * size)
            end = int(now) // size * size + size
            fresh = await load_location_tallies(store, rule, targets, start, end, size)
            held = self._held.setdefault(name, {})
            for where, columns in fresh.items():
                mine = held.setdefault(where, {})
                changed.extend((name, b) for b in _merge(mine, columns, start, end, since))
            gaps = await load_location_gaps(store, rule, since, now + size)
            old = self._gaps.get(name, {})
            if gaps != old:
                for where in rule.of:
                    moved = set(gaps.get(where, [])) ^ set(old.get(where, []))
                    for lo, hi in moved:
                        changed.extend((name, b) for b in _buckets(lo, hi, size, since, end))
                self._gaps[name] = gaps
            if full:
                self._last_full[name] = now
        return changed


def _merge(
    mine: dict[str, dict[int, Tally]],
    fresh: Mapping[str, Mapping[int, Tally]],
    start: int,
    end: int,
    since: int,
) -> list[int]:
    """Bring ``mine`` to ``fresh`` over ``[start, end)``, dropping buckets before ``since``
    (months no longer shown); the bucket starts that changed."""
    moved: list[int] = []
    for target, buckets in fresh.items():
        column = mine.setdefault(target, {})
        for bucket, tally in buckets.items():
            if column.get(bucket) != tally:
                column[bucket] = tally
                moved.append(bucket)
    for target, column in mine.items():
        given = fresh.get(target, {})
        for bucket in [b for b in column if (start <= b < end and b not in given) or b < since]:
            del column[bucket]
            if bucket >= since:
                moved.append(bucket)
    return moved


def _buckets(lo: float, hi: float, size: int, since: int, end: int) -> range:
    """Bucket starts of ``size`` overlapping ``[lo, hi)``, within ``[since, end)``."""
    first = max(since, int(lo) // size * size)
    last = min(end, int(hi) + size)
    return range(first, max(first, last), size)
