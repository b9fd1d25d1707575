"""The daemon's view of every location's tallies, for SLAs judged by a quorum of locations
(issue 14).

An SLA with ``locations`` is judged from the shared store only, this daemon's own location
included: each daemon flushes its tallies, then reads every listed location back, so all
daemons judge each bucket from the same rows and compute the same month (one path from
results to money, whichever daemon answers). Reading is bounded:

- SLAs listing the same locations at the same bucket length form one group, read together:
  one query per location and group, whatever the number of SLAs (10,000 one-target SLAs cost
  three queries per flush, not 30,000);
- only the groups' service targets and the canaries, only the locations listed;
- at start, and every :data:`FULL_EVERY` seconds, the current and previous month (what the
  running months show); at every other flush only the recent buckets (those that ended less
  than the settle time plus :data:`MARGIN` ago, and the running one), where results still
  arrive;
- each location's gaps over the same two months (a handful of rows).

Every (SLA, bucket) whose inputs moved is returned, so the running months re-judge exactly
those buckets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from monitor.instants import utc_from_epoch
from monitor.sla.calendar import month_bounds, month_containing
from monitor.sla.policy import ServiceDef, SlaPolicy, Tally
from monitor.sla.quorum import LocatedTallies
from monitor.store.base import Store
from monitor.store.located import ByLocation, load_location_gaps, load_location_tallies

FULL_EVERY = 300.0
"""Seconds between two reads of the whole two months (late rows older than the window)."""
MARGIN = 5.0
"""Seconds added to the settle time: a flush and a read of another daemon in between."""

Gaps = dict[str, list[tuple[float, float]]]
GroupKey = tuple[tuple[str, ...], int]
"""(the locations listed, bucket length): SLAs sharing both are read together."""


@dataclass
class _Group:
    """SLAs listing the same locations at the same bucket length, and what was read."""

    policies: list[SlaPolicy]
    targets: tuple[str, ...]
    """Every service target of the group's SLAs, then the canaries."""
    slas_of: dict[str, tuple[str, ...]]
    """target -> the SLAs reading it (a canary: every SLA of the group)."""
    held: ByLocation = field(default_factory=dict)
    gaps: Gaps = field(default_factory=dict)
    last_full: float | None = None

    def same_reads(self, other: _Group) -> bool:
        return self.targets == other.targets and self.policies == other.policies


class LocationFeed:
    """Per group of SLAs judged by locations: each location's tallies and gaps as last read."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, _Group] = {}
        self._group_of: dict[str, GroupKey] = {}
        self._canaries: tuple[str, ...] = ()

    def configure(
        self,
        policies: Sequence[SlaPolicy],
        services: Mapping[str, ServiceDef],
        canaries: Sequence[str],
    ) -> None:
        """The SLAs to follow (those with ``locations``); anything else is forgotten. A group
        whose SLAs or targets changed is read in full again at the next refresh."""
        found: dict[GroupKey, list[SlaPolicy]] = {}
        for policy in policies:
            if policy.locations is None or policy.service not in services:
                continue
            key = (policy.locations.of, policy.bucket_seconds)
            found.setdefault(key, []).append(policy)
        groups: dict[GroupKey, _Group] = {}
        group_of: dict[str, GroupKey] = {}
        for key, members in found.items():
            slas_of: dict[str, list[str]] = {}
            for policy in members:
                group_of[policy.name] = key
                for name in services[policy.service].all_targets:
                    slas_of.setdefault(name, []).append(policy.name)
            everyone = [p.name for p in members]
            for name in canaries:
                slas_of[name] = everyone
            group = _Group(
                members,
                tuple(dict.fromkeys([*slas_of, *canaries])),
                {name: tuple(dict.fromkeys(names)) for name, names in slas_of.items()},
            )
            old = self._groups.get(key)
            if old is not None and old.same_reads(group) and tuple(canaries) == self._canaries:
                group.held, group.gaps, group.last_full = old.held, old.gaps, old.last_full
            groups[key] = group
        self._groups = groups
        self._group_of = group_of
        self._canaries = tuple(canaries)

    @property
    def active(self) -> bool:
        return bool(self._groups)

    def tallies_for(self, policy: SlaPolicy) -> LocatedTallies:
        """``policy``'s located tallies as last read (empty before the first read: every
        location unheard, so nothing is claimed before the store answered)."""
        if policy.locations is None:
            raise ValueError(f"sla {policy.name}: sets no locations")
        group = self._groups.get(self._group_of.get(policy.name, ((), 0)))
        return LocatedTallies(
            policy.locations,
            {} if group is None else group.held,
            canaries=self._canaries,
            gaps={} if group is None else group.gaps,
        )

    async def refresh(self, store: Store, now: float, settle: float) -> list[tuple[str, int]]:
        """Read what may have changed (``settle``: how long after a bucket closes its results
        may still arrive); return ``(sla, bucket start)`` of each bucket whose tallies or
        gaps moved."""
        changed: list[tuple[str, int]] = []
        for (of, size), group in self._groups.items():
            rule = group.policies[0].locations
            assert rule is not None  # configure() keeps only those
            since = _since(group, now)
            last = group.last_full
            full = last is None or not 0 <= now - last < FULL_EVERY
            start = since if full else max(since, int(now - settle - MARGIN) // size * size)
            end = int(now) // size * size + size
            fresh = await load_location_tallies(store, rule, group.targets, start, end, size)
            for where in of:
                mine = group.held.setdefault(where, {})
                merged = _merge(mine, fresh.get(where, {}), start, end, since, size)
                for target, bucket in merged:
                    changed.extend((sla, bucket) for sla in group.slas_of.get(target, ()))
            gaps = await load_location_gaps(store, rule, since, now + size)
            if gaps != group.gaps:
                everyone = [p.name for p in group.policies]
                for where in of:
                    moved = set(gaps.get(where, [])) ^ set(group.gaps.get(where, []))
                    for lo, hi in moved:
                        for bucket in _buckets(lo, hi, size, since, end):
                            changed.extend((sla, bucket) for sla in everyone)
                group.gaps = gaps
            if full:
                group.last_full = now
        return changed


def _since(group: _Group, now: float) -> int:
    """The start of the previous month, the earliest over the group's zones (worked out once
    per zone, not once per SLA)."""
    moment = utc_from_epoch(now)
    return min(
        int(month_bounds(month_containing(moment, tz).previous(), tz)[0].timestamp())
        for tz in {p.timezone for p in group.policies}
    )


def _same(a: Tally | None, b: Tally) -> bool:
    """``a == b``, the plain counts first (most rows read again have not changed)."""
    if a is None:
        return False
    if (a.ok, a.failed, a.errors, a.excused) != (b.ok, b.failed, b.errors, b.excused):
        return False
    return (not a.failed or a.reasons == b.reasons) and (
        not a.errors or a.error_reasons == b.error_reasons
    )


def _merge(
    mine: dict[str, dict[int, Tally]],
    fresh: Mapping[str, Mapping[int, Tally]],
    start: int,
    end: int,
    since: int,
    size: int,
) -> list[tuple[str, int]]:
    """Bring ``mine`` to ``fresh`` over ``[start, end)``, dropping buckets before ``since``
    (months no longer shown); the (target, bucket start) that changed."""
    moved: list[tuple[str, int]] = []
    for target, buckets in fresh.items():
        column = mine.setdefault(target, {})
        for bucket, tally in buckets.items():
            if not _same(column.get(bucket), tally):
                column[bucket] = tally
                moved.append((target, bucket))
    full = start == since
    for target, column in mine.items():
        given = fresh.get(target, {})
        # A full read prunes the months no longer shown; a window read checks only its own
        # buckets for rows gone (a pruned store), not the whole column.
        span = list(column) if full else [b for b in range(start, end, size) if b in column]
        for bucket in [b for b in span if (start <= b < end and b not in given) or b < since]:
            del column[bucket]
            if bucket >= since:
                moved.append((target, bucket))
    return moved


def _buckets(lo: float, hi: float, size: int, since: int, end: int) -> range:
    """Bucket starts of ``size`` overlapping ``[lo, hi)``, within ``[since, end)``."""
    first = max(since, int(lo) // size * size)
    last = min(end, int(hi) + size)
    return range(first, max(first, last), size)
