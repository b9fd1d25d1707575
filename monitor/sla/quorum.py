"""Several monitoring locations, one verdict per bucket (issue 14): the quorum of locations.

An SLA with ``locations: {down_when: quorum, quorum: N, of: [dublin, frankfurt, paris]}`` judges
each target's bucket once per location, from that location's tallies (the sum over its members,
``Store.load_tallies(..., location=)``), then combines the locations:

- **unavailable** when at least N locations judged the bucket unavailable;
- **unknown** when the locations that judged it unavailable plus the *unheard* ones reach N (an
  unheard location might have seen it fail);
- **available** otherwise.

A location is *unheard* for a bucket when it has no verdict there: fewer than ``min_probes``
probes that measured the vendor (a location that stopped reporting has none at all), probes
whose readings disagree (monitor errors, canary-excused failures: ``target_verdict`` unknown),
every canary of the location failing in that bucket (its own network was down, not the
vendor), or a gap of the location (the monitor not running) in which it did not prove the
bucket unavailable. The denominator is the configured ``of`` list: a location that stopped
reporting is unheard, never dropped, so two dead monitors never turn the third into a majority.

Locations not listed in ``of`` do not vote and do not count in the outage details.

:class:`LocatedTallies` carries one SLA month's per-location inputs and is, as a mapping, the
SUM over the voting locations (target -> bucket -> tally): what the outage details (failed
probes by reason and target, probes seen) and the monitor's own errors are counted from.
``monitor.sla.month`` judges with :meth:`LocatedTallies.verdict` whenever the tallies it is
given are located. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from monitor.sla.buckets import target_verdict
from monitor.sla.policy import BucketRule, BucketState, LocationRule, Tally

_A = BucketState.AVAILABLE
_U = BucketState.UNAVAILABLE
_Q = BucketState.UNKNOWN

Columns = Mapping[str, Mapping[int, Tally]]
"""target -> bucket start epoch -> tally (one location's, summed over its members)."""

_NO_COLUMN: Mapping[int, Tally] = MappingProxyType({})
_NO_COLUMNS: Columns = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LocationVerdict:
    """One target's bucket as the locations judged it: the combined ``state``, the locations
    that judged it unavailable (``down``) and those without a verdict (``unheard``), each in
    the order of the rule's ``of`` list."""

    state: BucketState
    down: tuple[str, ...]
    unheard: tuple[str, ...]


def quorum_verdict(states: Mapping[str, BucketState], rule: LocationRule) -> LocationVerdict:
    """Combine per-location verdicts under ``rule``. A location of ``rule.of`` missing from
    ``states`` is unheard; any verdict other than available or unavailable is unheard;
    locations outside ``rule.of`` are ignored."""
    down: list[str] = []
    unheard: list[str] = []
    for name in rule.of:
        state = states.get(name, _Q)
        if state is _U:
            down.append(name)
        elif state is not _A:
            unheard.append(name)
    if len(down) >= rule.quorum:
        combined = _U
    elif len(down) + len(unheard) >= rule.quorum:
        combined = _Q
    else:
        combined = _A
    return LocationVerdict(combined, tuple(down), tuple(unheard))


def location_state(
    tally: Tally | None, rule: BucketRule, *, canaries_failed: bool, in_gap: bool
) -> BucketState:
    """One location's verdict of one target's bucket. Unknown (unheard) when every canary of
    the location failed in the bucket; inside a gap of the location only a proven
    unavailable bucket counts (as for a single daemon, contract row 10)."""
    if canaries_failed:
        return _Q
    state = target_verdict(tally, rule)
    if in_gap and state is not _U:
        return _Q
    return state


def canaries_all_failed(columns: Columns, canaries: Sequence[str], epoch: int) -> bool:
    """Whether every canary has probes in the bucket at ``epoch`` and all of them failed
    (no canary: never). A canary without probes there proves nothing either way."""
    if not canaries:
        return False
    for name in canaries:
        tally = columns.get(name, _NO_COLUMN).get(epoch)
        if tally is None or tally.ok or not tally.failed:
            return False
    return True


def _overlaps(gaps: Sequence[tuple[float, float]], epoch: int, size: int) -> bool:
    return any(start < epoch + size and end > epoch for start, end in gaps)


class SummedColumn(Mapping[int, Tally]):
    """One target's tallies summed over the voting locations, computed on read."""

    __slots__ = ("_parts",)

    def __init__(self, parts: Sequence[Mapping[int, Tally]]) -> None:
        self._parts = parts

    def __getitem__(self, epoch: int) -> Tally:
        found = [part[epoch] for part in self._parts if epoch in part]
        if not found:
            raise KeyError(epoch)
        return found[0] if len(found) == 1 else sum_tallies(found)

    def __contains__(self, epoch: object) -> bool:
        return any(epoch in part for part in self._parts)

    def __iter__(self) -> Iterator[int]:
        if len(self._parts) == 1:
            return iter(self._parts[0])
        return iter(dict.fromkeys(epoch for part in self._parts for epoch in part))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def sum_tallies(tallies: Sequence[Tally]) -> Tally:
    """Counts added, reasons merged (count per reason summed)."""
    reasons: dict[str, int] = {}
    error_reasons: dict[str, int] = {}
    for tally in tallies:
        for key, count in tally.reasons.items():
            reasons[key] = reasons.get(key, 0) + count
        for key, count in tally.error_reasons.items():
            error_reasons[key] = error_reasons.get(key, 0) + count
    return Tally(
        ok=sum(t.ok for t in tallies),
        failed=sum(t.failed for t in tallies),
        reasons=MappingProxyType(reasons),
        errors=sum(t.errors for t in tallies),
        error_reasons=MappingProxyType(error_reasons),
        excused=sum(t.excused for t in tallies),
    )


class LocatedTallies(Mapping[str, Mapping[int, Tally]]):
    """One SLA's tallies per location, read as the sum over the voting locations.

    ``by_location``: location -> target -> bucket start -> tally (each location already
    summed over its members); ``canaries``: the canary targets each location probes;
    ``gaps``: location -> ``(start, end)`` epoch seconds when that location's monitor was
    not running. Mapping reads (``tallies[target][bucket]``) give the sum; verdicts come from
    :meth:`verdict`.
    """

    __slots__ = ("_columns", "by_location", "canaries", "gaps", "rule")

    def __init__(
        self,
        rule: LocationRule,
        by_location: Mapping[str, Columns],
        *,
        canaries: Sequence[str] = (),
        gaps: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    ) -> None:
        self.rule = rule
        self.by_location = by_location
        self.canaries = tuple(canaries)
        self.gaps: Mapping[str, Sequence[tuple[float, float]]] = gaps or {}
        self._columns: dict[str, SummedColumn] = {}

    # -- the summed view -------------------------------------------------------------------------
    def _voting(self) -> list[Columns]:
        return [self.by_location.get(name, _NO_COLUMNS) for name in self.rule.of]

    def __getitem__(self, target: str) -> Mapping[int, Tally]:
        column = self._columns.get(target)
        if column is None:
            parts = [cols[target] for cols in self._voting() if target in cols]
            if not parts:
                raise KeyError(target)
            column = self._columns[target] = SummedColumn(parts)
        return column

    def __contains__(self, target: object) -> bool:
        return any(target in cols for cols in self._voting())

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(name for cols in self._voting() for name in cols))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    # -- verdicts --------------------------------------------------------------------------------
    def states(
        self, target: str, epoch: int, size: int, rule: BucketRule
    ) -> dict[str, BucketState]:
        """Each voting location's verdict of ``target``'s bucket at ``epoch``."""
        out: dict[str, BucketState] = {}
        for name in self.rule.of:
            columns = self.by_location.get(name, _NO_COLUMNS)
            out[name] = location_state(
                columns.get(target, _NO_COLUMN).get(epoch),
                rule,
                canaries_failed=canaries_all_failed(columns, self.canaries, epoch),
                in_gap=_overlaps(self.gaps.get(name, ()), epoch, size),
            )
        return out

    def verdict(self, target: str, epoch: int, size: int, rule: BucketRule) -> LocationVerdict:
        """``target``'s bucket at ``epoch`` (``size`` seconds) under the location rule."""
        return quorum_verdict(self.states(target, epoch, size, rule), self.rule)


def located_of(
    tallies: Mapping[str, Mapping[int, Tally]], sla: str, rule: LocationRule | None
) -> LocatedTallies | None:
    """The located tallies when the SLA votes by location, refusing a mismatch: an SLA with a
    location rule judged from one daemon's tallies (or the reverse) would silently change
    what a bucket means."""
    located = tallies if isinstance(tallies, LocatedTallies) else None
    if rule is not None and located is None:
        raise ValueError(
            f"sla {sla}: locations: this SLA is judged by a quorum of locations and needs "
            "each location's tallies (the shared store), got one set of tallies"
        )
    if rule is None and located is not None:
        raise ValueError(f"sla {sla}: got tallies per location but the SLA sets no locations")
    if located is not None and located.rule != rule:
        raise ValueError(f"sla {sla}: locations: the tallies were gathered for another rule")
    return located
