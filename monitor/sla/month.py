"""One SLA's calendar month computed from per-bucket probe tallies: the report's every figure."""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any, overload

from monitor.sla.buckets import nested_verdict, quorum_of, service_verdict, target_verdict
from monitor.sla.calendar import BucketGrid, Month, claim_deadline, month_grid, require_aware
from monitor.sla.credits import (
    buckets_to_next_tier,
    credit_amount,
    credit_tier,
    error_budget,
    uptime_percent,
)
from monitor.sla.exclusions import excluded_buckets
from monitor.sla.policy import (
    BucketRule,
    BucketState,
    CreditPolicy,
    CreditTier,
    ExclusionKind,
    ExclusionWindow,
    ServiceDef,
    SlaPolicy,
    Tally,
    UnknownPolicy,
)
from monitor.sla.quorum import LocatedTallies, located_of

_A = BucketState.AVAILABLE
_U = BucketState.UNAVAILABLE
_X = BucketState.EXCLUDED
_Q = BucketState.UNKNOWN
_P = BucketState.PENDING
_NO_TALLIES: Mapping[int, Tally] = MappingProxyType({})
CANARY_SOURCE = "canary"


@dataclass(frozen=True, slots=True)
class Outage:
    """Consecutive unavailable buckets ``[start, end)``, with the failures seen in them.

    ``errors``: failure reason -> failed probes (every failure, excused or not);
    ``failed_targets``: target -> failures that prove something against the vendor (excused
    failures left out, so "N of M probes failed" never counts what a canary excused);
    ``excused``: failures that fell while every canary failed too (our own network's trouble);
    ``probes``: every probe of the service's targets in those buckets, failed or not.
    """

    start: datetime
    end: datetime
    buckets: int
    errors: Mapping[str, int]
    failed_targets: Mapping[str, int]
    probes: int = 0
    excused: int = 0
    locations: tuple[str, ...] = ()
    """The monitoring locations that judged a target of the service unavailable in these
    buckets (an SLA with ``locations``, issue 14); empty for a single location."""


class CompactOutages(Sequence[Outage]):
    """A month's outages as three integers each, built into :class:`Outage` objects when read
    (issue 20, oc26: at a month's end 20,000 months held ~86 outages each, 1.7 M ``Outage``
    objects of ~110 bytes with their tuple slot; these are 12 bytes an outage).

    Outage ``i`` covers the buckets ``firsts[i] .. firsts[i] + lengths[i] - 1`` of the grid
    starting at ``start_epoch`` (``size`` seconds a bucket); its failure figures (``errors``,
    ``failed_targets``, ``probes``, ``excused``, ``locations``) are those of
    ``figures[kinds[i]]``, an outage of equal evidence (only its figures are read). Equal to
    any sequence of equal outages (a tuple from :func:`compute_month` included), so a month's
    ``outages`` compare, iterate, index and slice as the tuple did. Immutable: the arrays are
    the builder's, never written once handed over."""

    __slots__ = ("_figures", "_firsts", "_kinds", "_lengths", "_size", "_start")

    def __init__(
        self,
        start_epoch: int,
        size: int,
        firsts: array[int],
        lengths: array[int],
        kinds: array[int],
        figures: tuple[Outage, ...],
    ) -> None:
        if not len(firsts) == len(lengths) == len(kinds):
            raise ValueError("outages: expected as many firsts, lengths and kinds")
        self._start, self._size = start_epoch, size
        self._firsts, self._lengths, self._kinds = firsts, lengths, kinds
        self._figures = figures

    def parts(self) -> tuple[array[int], array[int], array[int], tuple[Outage, ...]]:
        """(firsts, lengths, kinds, figures), for the running month that built them to find
        its next outages from (read, never written)."""
        return self._firsts, self._lengths, self._kinds, self._figures

    def last_reach(self) -> tuple[int, tuple[str, ...]] | None:
        """The latest outage's end (epoch seconds) and locations, without building it (None:
        no outage). mt33 (issue 20): ``/metrics`` reads these of every SLA's month, each new
        result, and building the ``Outage`` was a tenth of a start's first per-SLA text."""
        if not self._firsts:
            return None
        end = self._start + (self._firsts[-1] + self._lengths[-1]) * self._size
        return end, self._figures[self._kinds[-1]].locations

    def _outage(self, index: int) -> Outage:
        first, length = self._firsts[index], self._lengths[index]
        figures = self._figures[self._kinds[index]]
        start, size = self._start, self._size
        return Outage(
            start=instant_of(start + first * size),
            end=instant_of(start + (first + length) * size),
            buckets=length,
            errors=figures.errors,
            failed_targets=figures.failed_targets,
            probes=figures.probes,
            excused=figures.excused,
            locations=figures.locations,
        )

    def __len__(self) -> int:
        return len(self._firsts)

    @overload
    def __getitem__(self, index: int) -> Outage: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Outage, ...]: ...
    def __getitem__(self, index: int | slice) -> Outage | tuple[Outage, ...]:
        if isinstance(index, slice):
            return tuple(self._outage(i) for i in range(*index.indices(len(self._firsts))))
        count = len(self._firsts)
        at = index + count if index < 0 else index
        if not 0 <= at < count:
            raise IndexError("outage index out of range")
        return self._outage(at)

    def __iter__(self) -> Iterator[Outage]:
        return (self._outage(i) for i in range(len(self._firsts)))

    def __eq__(self, other: object) -> bool:
        if (
            isinstance(other, CompactOutages)
            and (self._start, self._size) == (other._start, other._size)
            and (self._firsts != other._firsts or self._lengths != other._lengths)
        ):
            return False  # other runs: not equal, without building an outage
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    # An outage's count mappings are not hashable, so neither is a tuple of outages.
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CompactOutages({list(self)!r})"


@dataclass(frozen=True, slots=True)
class MonthResult:
    """Every figure of one SLA's month. Uptimes are exact; ``None`` when the month less its
    exclusions is empty.

    ``uptime_percent`` is the claimable figure, the contract's formula: proven unavailable
    buckets over the month less exclusions, so unknown and pending buckets are not counted
    against the vendor (before the month ends it is the best the month can still finish at).
    The credit, the error budget and ``breached`` follow it. ``uptime_percent_estimate``
    applies the ``unknown_buckets`` policy, ``uptime_percent_worst_case`` counts every unknown
    bucket unavailable, and ``coverage`` says how much of the month was measured.
    ``month_to_date_uptime_percent`` covers elapsed buckets only, under the policy.
    ``counted_unavailable`` / ``denominator`` are the integers behind ``uptime_percent``.
    """

    sla: str
    service: str
    month: Month
    timezone: str
    bucket_seconds: int
    objective_percent: Decimal
    start: datetime
    end: datetime
    now: datetime | None
    states: Sequence[BucketState]
    """One per bucket; a tuple from :func:`compute_month`, a compact read-only sequence from
    the daemon's running month (slices are tuples either way)."""
    buckets_total: int
    buckets_available: int
    buckets_unavailable: int
    buckets_excluded: int
    buckets_unknown: int
    buckets_pending: int
    counted_unavailable: int
    denominator: int
    uptime_percent: Fraction | None
    uptime_percent_worst_case: Fraction | None
    month_to_date_uptime_percent: Fraction | None
    error_budget_buckets: int
    error_budget_used: int
    error_budget_remaining: int
    breached: bool
    credit_tier: CreditTier | None
    credit_percent: Decimal
    credit_amount: Decimal
    currency: str
    buckets_to_next_tier: int | None
    claim_deadline: datetime
    outages: Sequence[Outage]
    """A tuple from :func:`compute_month`, :class:`CompactOutages` from the daemon's running
    month (equal when the outages are; slices are tuples either way)."""
    excluded_by_kind: Mapping[ExclusionKind, int]
    excluded_kinds: Mapping[int, ExclusionKind]
    """Bucket index -> the exclusion kind that excluded it (for each excluded bucket)."""
    exclusions_applied: tuple[ExclusionWindow, ...]
    rules: Mapping[str, Any]
    buckets_eligible: int
    """Elapsed buckets not excluded: the buckets that could have been measured."""
    coverage: Fraction | None
    """Measured (available or unavailable) / eligible buckets; ``None`` when none elapsed."""
    min_coverage: Fraction
    uptime_percent_estimate: Fraction | None
    """The uptime under the ``unknown_buckets`` policy: an estimate, never the claim."""
    credit_percent_estimate: Decimal
    credit_amount_estimate: Decimal
    buckets_unknown_monitor_error: int
    """Unknown buckets holding monitor errors (the monitor's own failures)."""
    monitor_errors: Mapping[str, int]
    """The monitor's own failures in the month's judged buckets: reason -> probes."""
    recurring_occurrences: tuple[ExclusionWindow, ...]
    """Every concrete occurrence of a recurring exclusion in the month."""

    @property
    def coverage_low(self) -> bool:
        """True when less than ``min_coverage`` of the eligible buckets was measured."""
        return self.coverage is not None and self.coverage < self.min_coverage

    @property
    def complete(self) -> bool:
        """True once every bucket of the month has elapsed."""
        return self.buckets_pending == 0

    def to_json(self) -> dict[str, Any]:
        """The report's JSON object (see README.md, "slawatch report", for each key)."""
        return {
            "sla": self.sla,
            "service": self.service,
            "month": str(self.month),
            "timezone": self.timezone,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "as_of": None if self.now is None else _iso(self.now),
            "complete": self.complete,
            "objective_percent": float(self.objective_percent),
            "bucket_seconds": self.bucket_seconds,
            "buckets_total": self.buckets_total,
            "buckets_available": self.buckets_available,
            "buckets_unavailable": self.buckets_unavailable,
            "buckets_excluded": self.buckets_excluded,
            "buckets_unknown": self.buckets_unknown,
            "buckets_pending": self.buckets_pending,
            "uptime_percent": _pct(self.uptime_percent),
            "uptime_ratio_exact": (
                None
                if self.denominator <= 0
                else f"{self.denominator - self.counted_unavailable}/{self.denominator}"
            ),
            "uptime_percent_worst_case": _pct(self.uptime_percent_worst_case),
            "month_to_date_uptime_percent": _pct(self.month_to_date_uptime_percent),
            "error_budget_buckets": self.error_budget_buckets,
            "error_budget_used": self.error_budget_used,
            "error_budget_remaining": self.error_budget_remaining,
            "breached": self.breached,
            "credit_percent": float(self.credit_percent),
            "credit_amount": str(self.credit_amount),
            "currency": self.currency,
            "buckets_to_next_tier": self.buckets_to_next_tier,
            "claim_deadline": self.claim_deadline.isoformat(),
            "outages": [
                {
                    "start": _iso(o.start),
                    "end": _iso(o.end),
                    "buckets": o.buckets,
                    "errors": dict(o.errors),
                    "failed_targets": dict(o.failed_targets),
                    "probes": o.probes,
                    "excused": o.excused,
                    # Only an SLA judged by locations names them (its outages always have one).
                    **({"locations": list(o.locations)} if o.locations else {}),
                }
                for o in self.outages
            ],
            "excluded_by_kind": {str(k): v for k, v in self.excluded_by_kind.items()},
            "exclusions": [
                {
                    "id": w.id,
                    "kind": str(w.kind),
                    "start": _iso(w.start),
                    "end": _iso(w.end),
                    "reason": w.reason,
                    "source": w.source,
                }
                for w in self.exclusions_applied
            ],
            "rules": dict(self.rules),
            "buckets_eligible": self.buckets_eligible,
            "buckets_measured": self.buckets_available + self.buckets_unavailable,
            "coverage": _ratio(self.coverage),
            "min_coverage": float(self.min_coverage),
            "coverage_low": self.coverage_low,
            "uptime_percent_estimate": _pct(self.uptime_percent_estimate),
            "credit_percent_estimate": float(self.credit_percent_estimate),
            "credit_amount_estimate": str(self.credit_amount_estimate),
            "buckets_unknown_monitor_error": self.buckets_unknown_monitor_error,
            "monitor_errors": dict(self.monitor_errors),
            "recurring_occurrences": [
                {
                    "id": w.id,
                    "kind": str(w.kind),
                    "start": _iso(w.start),
                    "end": _iso(w.end),
                    "source": w.source,
                }
                for w in self.recurring_occurrences
            ],
        }


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ratio(value: Fraction | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _pct(value: Fraction | None) -> float | None:
    return None if value is None else round(float(value), 6)


def compute_month(
    policy: SlaPolicy,
    service: ServiceDef,
    month: Month,
    tallies: Mapping[str, Mapping[int, Tally]],
    exclusions: Sequence[ExclusionWindow],
    *,
    canaries: Sequence[str] = (),
    gaps: Sequence[tuple[datetime, datetime]] = (),
    now: datetime | None = None,
) -> MonthResult:
    """Compute ``month`` for ``policy`` over ``service`` (see the module docs for the rules)."""
    if service.name != policy.service:
        raise ValueError(
            f"sla {policy.name}: expected service {policy.service!r}, got {service.name!r}"
        )
    if not service.members:
        raise ValueError(f"service {service.name}: expected at least one member, got none")
    quorum = quorum_of(service.rule, service.members)
    if quorum > service.members:
        raise ValueError(
            f"service {service.name}: quorum {quorum} exceeds its {service.members} members"
        )
    leaves = service.all_targets
    located = located_of(tallies, policy.name, policy.locations)
    grid = month_grid(month, policy.timezone, policy.bucket_seconds)
    count = grid.count
    elapsed = count if now is None else _elapsed(grid, require_aware(now, "now"))
    gap_buckets = _gap_buckets(grid, gaps)

    rule = policy.bucket_rule
    columns = [tallies.get(name, _NO_TALLIES) for name in leaves]
    start_epoch = grid.start_epoch
    size = grid.bucket_seconds
    # An elapsed bucket without a single probe of any target is unknown whatever the rules, so
    # only buckets holding tallies are judged: a month of short buckets stays cheap to compute.
    states: list[BucketState] = [_Q] * elapsed + [_P] * (count - elapsed)
    measured: set[int] = set()
    for column in columns:
        for epoch in column:
            offset = epoch - start_epoch
            if offset >= 0 and offset % size == 0 and offset // size < elapsed:
                measured.add(offset // size)
    excused_only: list[int] = []
    errors: dict[int, Mapping[str, int]] = {}
    for index in measured:
        judged = judge_bucket(
            service,
            rule,
            leaves,
            columns,
            start_epoch + index * size,
            index in gap_buckets,
            located=located,
            size=size,
        )
        states[index] = judged.state
        if canaries and judged.excused_only:
            excused_only.append(index)
        if judged.error_reasons:
            errors[index] = judged.error_reasons

    # Exclusion (iii) by canary: only a bucket every failure of which fell at an instant when
    # every canary was failing too (monitor.sla.canary); a canary proven down inside a gap is
    # still proof of our own outage, so gaps do not apply.
    canary_windows = canary_windows_of(grid, sorted(excused_only), canaries)
    windows = [*exclusions, *canary_windows]
    excluded = excluded_buckets(grid, windows, service.name, policy.partial_exclusion)
    for index in excluded:
        states[index] = _X

    applied_ids = {id(w) for w in _windows_used(grid, windows, excluded, service.name)}
    by_target = dict(zip(leaves, columns, strict=True))
    return assemble_month(
        policy,
        service,
        month,
        grid,
        now=now,
        states=tuple(states),
        counts=Counter(states),
        elapsed_counts=Counter(states[:elapsed]),
        elapsed=elapsed,
        outages=_outages(grid, states, by_target, located, rule),
        excluded=excluded,
        applied=tuple(w for w in windows if id(w) in applied_ids),
        quorum=quorum,
        canaries=canaries,
        exclusions=exclusions,
        monitor_errors=monitor_errors_of(states, errors),
    )


@dataclass(frozen=True, slots=True)
class JudgedBucket:
    """One elapsed bucket as :func:`judge_bucket` judged it, before exclusions."""

    state: BucketState
    excused_only: bool
    """Not available, and every vendor failure in it excused by the canaries (a candidate
    for exclusion (iii), customer_network)."""
    error_reasons: Mapping[str, int]
    """The monitor's own failures in the bucket's tallies: reason -> probes (empty if none)."""


_NO_ERRORS: Mapping[str, int] = MappingProxyType({})
_NO_EXCLUDED_BY_KIND: Mapping[ExclusionKind, int] = MappingProxyType({})
_NO_EXCLUDED_KINDS: Mapping[int, ExclusionKind] = MappingProxyType({})


def judge_bucket(
    service: ServiceDef,
    rule: BucketRule,
    leaves: Sequence[str],
    columns: Sequence[Mapping[int, Tally]],
    epoch: int,
    in_gap: bool,
    *,
    located: LocatedTallies | None = None,
    size: int = 0,
) -> JudgedBucket:
    """One elapsed bucket's service verdict from its targets' tallies (``columns`` in the
    order of ``leaves``, the service's ``all_targets``), before exclusions. Inside a gap only
    proof of unavailability counts; a nested service is judged member by member. The
    daemon's running month (``monitor.sla.running``) judges with this too.

    ``located`` (an SLA with ``locations``): each target's verdict is the quorum of the
    locations (``monitor.sla.quorum``, bucket length ``size``); gaps and canaries then apply
    per location, inside that verdict, so ``in_gap`` (one daemon's gaps) is not used and no
    bucket becomes a customer_network exclusion: a location whose network failed is unheard.
    ``columns`` are then the sums over the locations, for the monitor's own errors."""
    cells = [column.get(epoch) for column in columns]
    if located is not None:
        verdicts = [located.verdict(name, epoch, size, rule).state for name in leaves]
        in_gap = False
    else:
        verdicts = [target_verdict(cell, rule) for cell in cells]
    if in_gap:
        verdicts = [v if v is _U else _Q for v in verdicts]
    state = (
        nested_verdict(service, dict(zip(leaves, verdicts, strict=True)))
        if service.services
        else service_verdict(verdicts, service.rule)
    )
    reasons: Counter[str] | None = None
    for cell in cells:
        if cell is not None and cell.errors:
            if reasons is None:
                reasons = Counter()
            reasons.update(cell.error_reasons)
    return JudgedBucket(
        state=state,
        excused_only=located is None and state is not _A and all_failures_excused(cells),
        error_reasons=_NO_ERRORS if reasons is None else MappingProxyType(dict(reasons)),
    )


def monitor_errors_of(
    states: Sequence[BucketState], errors: Mapping[int, Mapping[str, int]]
) -> tuple[Mapping[str, int], int]:
    """The monitor's own failures in the month's judged buckets (reason -> probes), from the
    judged buckets holding any (``errors``: index -> reasons), and how many unknown buckets
    hold any (shown as unknown for "monitor error"). Excluded and pending buckets do not
    count."""
    if not errors:  # c22: the common month, at every bucket close: no Counter, no copies
        return _NO_ERRORS, 0
    reasons: Counter[str] = Counter()
    buckets = 0
    for index, bucket_reasons in errors.items():
        state = states[index]
        if state is _X or state is _P:
            continue
        reasons.update(bucket_reasons)
        if state is _Q:
            buckets += 1
    return MappingProxyType(dict(reasons.most_common())), buckets


def assemble_month(
    policy: SlaPolicy,
    service: ServiceDef,
    month: Month,
    grid: BucketGrid,
    *,
    now: datetime | None,
    states: Sequence[BucketState],
    counts: Mapping[BucketState, int],
    elapsed_counts: Mapping[BucketState, int],
    elapsed: int,
    outages: Sequence[Outage],
    excluded: Mapping[int, ExclusionKind],
    applied: tuple[ExclusionWindow, ...],
    quorum: int,
    canaries: Sequence[str],
    exclusions: Sequence[ExclusionWindow],
    monitor_errors: tuple[Mapping[str, int], int],
    previous: MonthResult | None = None,
) -> MonthResult:
    """Every figure of the month from its final bucket states and their counts (``counts``
    over the whole month, ``elapsed_counts`` over its first ``elapsed`` buckets): the one
    summary, used by :func:`compute_month` and by the daemon's running month.
    ``exclusions`` are the honoured windows (for the recurring occurrences shown);
    ``monitor_errors`` is :func:`monitor_errors_of`'s answer.

    Issue 20: ``previous`` is a result this function assembled earlier for the same
    ``policy``, ``service``, ``month``, ``quorum`` and ``canaries`` (the daemon's running
    month passes its last one; only the states, windows and time may have moved since). The
    figures that depend on nothing else than counts equal to its own are taken from it: when
    a bucket closes available (the common case at every close) the uptime, the estimate, the
    budget, the credit and the next tier do not move, and computing them again in exact
    fractions was most of a month's cost. What is taken is what this function would compute
    again (``tests/test_sla_running.py`` holds the running month equal to
    :func:`compute_month` after any sequence of events)."""
    count = grid.count
    size = grid.bucket_seconds
    available, unavailable = counts.get(_A, 0), counts.get(_U, 0)
    excluded_n, unknown, pending = counts.get(_X, 0), counts.get(_Q, 0), counts.get(_P, 0)
    # The claimable reading (the contract's formula): the month less exclusions is the
    # denominator, and only periods proven unavailable count against the vendor; unknown and
    # pending periods are not proven unavailable.
    denominator = count - excluded_n
    # The estimate, under the configured unknown_buckets policy.
    estimate_counted = unavailable + (
        unknown if policy.unknown_policy is UnknownPolicy.UNAVAILABLE else 0
    )
    money = _money_of(previous, policy, month, count, unavailable, unknown, denominator)

    mtd_denominator = elapsed - elapsed_counts.get(_X, 0)
    if policy.unknown_policy is UnknownPolicy.EXCLUDE:
        mtd_denominator -= elapsed_counts.get(_Q, 0)
    mtd = uptime_percent(estimate_counted, mtd_denominator)
    eligible = elapsed - elapsed_counts.get(_X, 0)
    coverage = None if eligible <= 0 else Fraction(available + unavailable, eligible)

    reasons, error_buckets = monitor_errors
    if previous is not None and previous.excluded_kinds == excluded:
        excluded_by_kind, excluded_kinds = previous.excluded_by_kind, previous.excluded_kinds
    elif not excluded:
        # em30 (issue 20): no bucket excluded (most months, and every month of a start from an
        # empty store): one shared empty pair, not a Counter and two proxies per month (the
        # proxies are read-only and compare by content).
        excluded_by_kind, excluded_kinds = _NO_EXCLUDED_BY_KIND, _NO_EXCLUDED_KINDS
    else:
        excluded_by_kind = MappingProxyType(
            dict(sorted(Counter(excluded.values()).items(), key=lambda kv: str(kv[0])))
        )
        excluded_kinds = MappingProxyType(dict(excluded))
    return _assembled(
        sla=policy.name,
        service=service.name,
        month=month,
        timezone=policy.timezone,
        bucket_seconds=size,
        objective_percent=policy.objective_percent,
        start=grid.start,
        end=grid.end,
        now=now,
        states=states,
        buckets_total=count,
        buckets_available=available,
        buckets_unavailable=unavailable,
        buckets_excluded=excluded_n,
        buckets_unknown=unknown,
        buckets_pending=pending,
        counted_unavailable=unavailable,
        denominator=denominator,
        uptime_percent=money.uptime_percent,
        uptime_percent_worst_case=money.uptime_percent_worst_case,
        month_to_date_uptime_percent=mtd,
        error_budget_buckets=money.error_budget_buckets,
        error_budget_used=unavailable,
        error_budget_remaining=money.error_budget_buckets - unavailable,
        breached=money.breached,
        credit_tier=money.credit_tier,
        credit_percent=money.credit_percent,
        credit_amount=money.credit_amount,
        currency=policy.credit.currency,
        buckets_to_next_tier=money.buckets_to_next_tier,
        claim_deadline=money.claim_deadline,
        outages=outages,
        excluded_by_kind=excluded_by_kind,
        excluded_kinds=excluded_kinds,
        exclusions_applied=applied,
        rules=(
            previous.rules
            if previous is not None
            else Rules(policy, service, quorum, tuple(canaries))
        ),
        buckets_eligible=eligible,
        coverage=coverage,
        min_coverage=policy.min_coverage,
        uptime_percent_estimate=money.uptime_percent_estimate,
        credit_percent_estimate=money.credit_percent_estimate,
        credit_amount_estimate=money.credit_amount_estimate,
        buckets_unknown_monitor_error=error_buckets,
        monitor_errors=reasons,
        recurring_occurrences=_occurrences(grid, exclusions, service.name),
    )


_RESULT_FIELDS = frozenset(f.name for f in fields(MonthResult))
# Each field's slot setter, in the dataclass's field order. ``MonthResult`` has
# ``__slots__`` (m22: no 1.6 KB ``__dict__`` per result), so a slot's own descriptor is the
# one way to set it without the frozen ``__setattr__``.
_RESULT_SLOTS: tuple[tuple[Callable[[object, object], None], str], ...] = tuple(
    (getattr(MonthResult, f.name).__set__, f.name) for f in fields(MonthResult)
)


def _assembled(**values: Any) -> MonthResult:
    """The :class:`MonthResult` of these field values (every field, by name), as
    ``MonthResult(**values)`` makes it, without the frozen dataclass's ``__init__``.

    Issue 20 (c22): that ``__init__`` sets each of the 45 fields through
    ``object.__setattr__`` (13 µs on a quiet machine, ~47 µs under load), a sixth of the
    month's summary when a bucket closes, for 10,000 SLAs at every close; the slot setters
    take a third of that. The instance is the same (class and slots; equality, hash and
    ``repr`` read the fields): ``tests/test_sla_month.py`` holds it equal to the
    dataclass's own."""
    if values.keys() != _RESULT_FIELDS:
        raise TypeError(
            f"MonthResult: expected the fields {sorted(_RESULT_FIELDS)}, got {sorted(values)}"
        )
    result = object.__new__(MonthResult)
    for set_slot, name in _RESULT_SLOTS:
        set_slot(result, values[name])
    return result


def _money_of(
    previous: MonthResult | None,
    policy: SlaPolicy,
    month: Month,
    count: int,
    unavailable: int,
    unknown: int,
    denominator: int,
) -> MonthResult | _Money:
    """The month's money figures for these counts: ``previous``'s own when its counts are
    the same (see :func:`assemble_month`), else :func:`_money`."""
    if (
        previous is not None
        and previous.buckets_unavailable == unavailable
        and previous.buckets_unknown == unknown
        and previous.denominator == denominator
        and previous.buckets_total == count
    ):
        return previous
    return _shared_money(policy, month, unavailable, unknown, denominator)


_MONEY_KEPT = 4096
"""fw28 (issue 20): money figures kept by :func:`_shared_money` (one per distinct key; the
whole memo is dropped when full, a key being a few hundred bytes)."""
_MONEY: dict[tuple[object, ...], _Money] = {}
_CREDIT_KEYS: dict[int, tuple[CreditPolicy, tuple[object, ...]]] = {}


def _exact(value: Decimal | None) -> object:
    """A Decimal as written (``10`` and ``10.0`` apart: equal, but not the same text)."""
    return None if value is None else value.as_tuple()


def _credit_key(credit: CreditPolicy) -> tuple[object, ...]:
    """Everything of ``credit`` the money figures read, each Decimal as written (remembered
    per object: a configuration's SLAs keep theirs for the daemon's life)."""
    kept = _CREDIT_KEYS.get(id(credit))
    if kept is not None and kept[0] is credit:
        return kept[1]
    key = (
        _exact(credit.monthly_fee),
        credit.currency,
        _exact(credit.cap),
        tuple(
            (
                _exact(t.credit_percent),
                _exact(t.upper),
                t.upper_inclusive,
                _exact(t.lower),
                t.lower_inclusive,
            )
            for t in credit.tiers
        ),
    )
    if len(_CREDIT_KEYS) >= _MONEY_KEPT:
        _CREDIT_KEYS.clear()
    _CREDIT_KEYS[id(credit)] = (credit, key)  # the object held: its id is not reused
    return key


_TERMS_KEYS: dict[int, tuple[SlaPolicy, tuple[object, ...]]] = {}
_TERMS_KEPT = 65536


def _terms_key(policy: SlaPolicy) -> tuple[object, ...]:
    """What of ``policy`` the money figures read (see :func:`_shared_money`), remembered per
    object (sm32, issue 20: a Decimal's ``as_tuple`` per SLA and call was a tenth of holding
    10,000 previous months by their counts at a start)."""
    kept = _TERMS_KEYS.get(id(policy))
    if kept is not None and kept[0] is policy:
        return kept[1]
    key = (
        policy.unknown_policy,
        _exact(policy.objective_percent),
        _credit_key(policy.credit),
        policy.timezone,
        policy.claim_window_days,
    )
    if len(_TERMS_KEYS) >= _TERMS_KEPT:
        _TERMS_KEYS.clear()
    _TERMS_KEYS[id(policy)] = (policy, key)  # the object held: its id is not reused
    return key


def _shared_money(
    policy: SlaPolicy, month: Month, unavailable: int, unknown: int, denominator: int
) -> _Money:
    """:func:`_money`, computed once per distinct input and shared.

    fw28 (issue 20): ``_money`` reads nothing of the policy but its unknown-bucket policy,
    objective, credit table, zone and claim window (not its name): 10,000 SLAs of the same
    terms whose months hold the same counts (every month at a month's start, every previous
    month before the daemon existed) have the same figures, and computing them in exact
    fractions was half of the first summary after a start. Decimals are keyed as written, so
    a figure taken from another SLA is the one this SLA's own would be, text included (the
    credit tier is an equal object of the other SLA's table). ``_Money`` is frozen.
    ``tests/test_sla_month.py`` holds it equal to ``_money``."""
    key = (_terms_key(policy), month, unavailable, unknown, denominator)
    money = _MONEY.get(key)
    if money is None:
        money = _money(policy, month, unavailable, unknown, denominator)
        if len(_MONEY) >= _MONEY_KEPT:
            _MONEY.clear()
        _MONEY[key] = money
    return money


def _money(
    policy: SlaPolicy, month: Month, unavailable: int, unknown: int, denominator: int
) -> _Money:
    """The figures that depend only on the policy, the month and the counts of unavailable
    and unknown buckets out of the denominator (read as a MonthResult's same-named fields)."""
    uptime = uptime_percent(unavailable, denominator)
    estimate_counted = unavailable + (
        unknown if policy.unknown_policy is UnknownPolicy.UNAVAILABLE else 0
    )
    estimate_denominator = denominator - (
        unknown if policy.unknown_policy is UnknownPolicy.EXCLUDE else 0
    )
    estimate = uptime_percent(estimate_counted, estimate_denominator)
    tier = credit_tier(uptime, policy.credit)
    estimate_tier = credit_tier(estimate, policy.credit)
    return _Money(
        uptime_percent=uptime,
        uptime_percent_worst_case=uptime_percent(unavailable + unknown, denominator),
        uptime_percent_estimate=estimate,
        error_budget_buckets=error_budget(denominator, policy.objective_percent),
        breached=uptime is not None and uptime < Fraction(policy.objective_percent),
        credit_tier=tier,
        credit_percent=Decimal(0) if tier is None else tier.credit_percent,
        credit_amount=credit_amount(tier, policy.credit),
        buckets_to_next_tier=buckets_to_next_tier(unavailable, denominator, policy.credit),
        claim_deadline=claim_deadline(month, policy.timezone, policy.claim_window_days),
        credit_percent_estimate=(
            Decimal(0) if estimate_tier is None else estimate_tier.credit_percent
        ),
        credit_amount_estimate=credit_amount(estimate_tier, policy.credit),
    )


@dataclass(frozen=True, slots=True)
class _Money:
    """:func:`_money`'s figures, under the names a :class:`MonthResult` gives them."""

    uptime_percent: Fraction | None
    uptime_percent_worst_case: Fraction | None
    uptime_percent_estimate: Fraction | None
    error_budget_buckets: int
    breached: bool
    credit_tier: CreditTier | None
    credit_percent: Decimal
    credit_amount: Decimal
    buckets_to_next_tier: int | None
    claim_deadline: datetime
    credit_percent_estimate: Decimal
    credit_amount_estimate: Decimal


def all_failures_excused(cells: Sequence[Tally | None]) -> bool:
    """Some vendor failure in the bucket, and every one of them excused by the canaries."""
    failed = sum(cell.failed for cell in cells if cell is not None)
    return failed > 0 and failed == sum(cell.excused for cell in cells if cell is not None)


def _occurrences(
    grid: BucketGrid, windows: Sequence[ExclusionWindow], service: str
) -> tuple[ExclusionWindow, ...]:
    """Every concrete occurrence of a recurring exclusion that overlaps the month."""
    if not windows:  # c22: most months honour none, and this runs at every bucket close
        return ()
    lo, hi = grid.start, grid.end
    return tuple(
        sorted(
            (
                w
                for w in windows
                if w.source.startswith("recurring:")
                and w.covers(service)
                and w.end > lo
                and w.start < hi
            ),
            key=lambda w: (w.start, w.id),
        )
    )


def _elapsed(grid: BucketGrid, now: datetime) -> int:
    """Buckets that ended at or before ``now``; the bucket in progress is still pending."""
    done = (int(now.timestamp()) - grid.start_epoch) // grid.bucket_seconds
    return max(0, min(grid.count, done))


def _gap_buckets(grid: BucketGrid, gaps: Sequence[tuple[datetime, datetime]]) -> set[int]:
    found: set[int] = set()
    for number, (gap_start, gap_end) in enumerate(gaps):
        lo = require_aware(gap_start, f"gaps[{number}].start").timestamp()
        hi = require_aware(gap_end, f"gaps[{number}].end").timestamp()
        if hi <= lo:
            raise ValueError(
                f"gaps[{number}]: expected end after start, got {gap_start}..{gap_end}"
            )
        lo, hi = max(lo, grid.start_epoch), min(hi, grid.end_epoch)
        if hi <= lo:
            continue
        first = int((lo - grid.start_epoch) // grid.bucket_seconds)
        last = -int(-(hi - grid.start_epoch) // grid.bucket_seconds) - 1
        found.update(range(first, last + 1))
    return found


def kept_gap_buckets(
    grid: BucketGrid, gaps: Sequence[tuple[datetime, datetime]]
) -> tuple[frozenset[int], list[int]]:
    """The buckets of ``grid`` a recorded gap touches, as a set and sorted: kept per grid
    for a tuple of gaps (the accounting inputs' one tuple, immutable, held with its id,
    which is never another's while kept); any other sequence is walked each time.

    Issue 20: every SLA of one zone and bucket length has the same grid, and a start at
    10,000 SLAs asked for each month twice (the running month's gap set, fs33; the snapshot
    digest's sorted list, dg31), converting each gap's instants and walking its buckets
    every time. Raises on a bad gap, as the walk does (nothing is kept then)."""
    if type(gaps) is not tuple:
        found = _gap_buckets(grid, gaps)
        return frozenset(found), sorted(found)
    known = _GAP_BUCKETS.get(id(gaps))
    if known is None or known[0] is not gaps:
        if len(_GAP_BUCKETS) >= 16:
            _GAP_BUCKETS.clear()
        known = _GAP_BUCKETS[id(gaps)] = (gaps, {})
    grids = known[1]
    kept = grids.get(grid)
    if kept is None:
        if len(grids) >= 256:
            grids.clear()
        found = _gap_buckets(grid, gaps)
        kept = grids[grid] = (frozenset(found), sorted(found))
    return kept


_GAP_BUCKETS: dict[int, tuple[object, dict[BucketGrid, tuple[frozenset[int], list[int]]]]] = {}
"""id(gaps) -> (the gaps tuple, grid -> its buckets a gap touches): see
:func:`kept_gap_buckets`. Never written once kept: shared by every month and digest."""


def canary_windows_of(
    grid: BucketGrid, indices: Sequence[int], canaries: Sequence[str]
) -> list[ExclusionWindow]:
    """Runs of buckets whose every failure a canary failure excused, as customer_network."""
    windows: list[ExclusionWindow] = []
    for first, last in _runs(indices):
        start = datetime.fromtimestamp(grid.bucket_start(first), UTC)
        end = datetime.fromtimestamp(grid.bucket_start(last) + grid.bucket_seconds, UTC)
        windows.append(
            ExclusionWindow(
                id=f"canary@{start.strftime('%Y-%m-%dT%H:%M:%SZ')}",
                start=start,
                end=end,
                kind=ExclusionKind.CUSTOMER_NETWORK,
                reason=(
                    f"every failure fell while every canary ({', '.join(canaries)}) was failing too"
                ),
                source=CANARY_SOURCE,
            )
        )
    return windows


def _runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for index in indices:
        if runs and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    return runs


def _windows_used(
    grid: BucketGrid,
    windows: Sequence[ExclusionWindow],
    excluded: Mapping[int, ExclusionKind],
    service: str,
) -> list[ExclusionWindow]:
    """The windows that overlap at least one bucket they helped exclude."""
    used = []
    for window in windows:
        if not window.covers(service):
            continue
        first = grid.index_of(max(window.start.timestamp(), grid.start_epoch))
        last = grid.index_of(min(window.end.timestamp(), grid.end_epoch) - 1e-6)
        if first is None or last is None:
            continue
        if any(index in excluded for index in range(first, last + 1)):
            used.append(window)
    return used


def _outages(
    grid: BucketGrid,
    states: Sequence[BucketState],
    columns: Mapping[str, Mapping[int, Tally]],
    located: LocatedTallies | None = None,
    rule: BucketRule | None = None,
) -> tuple[Outage, ...]:
    down = [index for index, state in enumerate(states) if state is _U]
    return tuple(
        outage_of(grid, first, last, columns, located, rule) for first, last in _runs(down)
    )


def outage_of(
    grid: BucketGrid,
    first: int,
    last: int,
    columns: Mapping[str, Mapping[int, Tally]],
    located: LocatedTallies | None = None,
    rule: BucketRule | None = None,
    *,
    seen: tuple[Sequence[str], Mapping[int, frozenset[str]]] | None = None,
) -> Outage:
    """The outage of the unavailable buckets ``first..last`` (a maximal run), with the
    failures its targets' tallies hold (summed over the locations when ``located``, with
    the locations that judged one of its targets unavailable). A running month passes
    ``seen`` instead of ``located``: the configured locations in order and, per bucket index,
    those that saw it, kept when the bucket was judged."""
    errors: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    probes = 0
    excused = 0
    saw: set[str] = set()
    for index in range(first, last + 1):
        epoch = grid.bucket_start(index)
        if located is not None and rule is not None:
            for name in columns:
                saw.update(located.verdict(name, epoch, grid.bucket_seconds, rule).down)
        for name, column in columns.items():
            tally = column.get(epoch)
            if tally is None:
                continue
            probes += tally.ok + tally.failed
            excused += tally.excused
            if tally.proven_failed:
                failed[name] += tally.proven_failed
            if tally.failed:
                errors.update(tally.reasons)
    return Outage(
        start=instant_of(grid.bucket_start(first)),
        end=instant_of(grid.bucket_start(last) + grid.bucket_seconds),
        buckets=last - first + 1,
        errors=_shared_counts(errors.most_common()),
        failed_targets=_shared_counts(failed.most_common()),
        probes=probes,
        excused=excused,
        locations=_seen_from(located, saw, seen, first, last),
    )


_INSTANTS: dict[int, datetime] = {}
"""Issue 20 (memory, ot25): the UTC instants of bucket edges by epoch, shared between outages
(every SLA of one bucket size and time zone has the same edges: 1.7 M outages at a month's
end held two 48-byte datetimes each). Datetimes are immutable, so sharing them is safe.
Bounded: cleared when large, like ``_COUNTS``."""


def instant_of(epoch: int) -> datetime:
    """``datetime.fromtimestamp(epoch, UTC)``, one object per epoch (see ``_INSTANTS``)."""
    shared = _INSTANTS.get(epoch)
    if shared is None:
        if len(_INSTANTS) >= 100_000:
            _INSTANTS.clear()
        shared = _INSTANTS[epoch] = datetime.fromtimestamp(epoch, UTC)
    return shared


_COUNTS: dict[tuple[tuple[str, int], ...], Mapping[str, int]] = {}
"""Issue 20 (memory): read-only count mappings by their items, shared between outages (most
outages of an SLA fail the same way: ``{"http_503": 1}``, ``{target: 1}``). Bounded: cleared
when large, so it holds at most the mappings of recent months."""


def _shared_counts(items: list[tuple[str, int]]) -> Mapping[str, int]:
    key = tuple(items)
    shared = _COUNTS.get(key)
    if shared is None:
        if len(_COUNTS) >= 50_000:
            _COUNTS.clear()
        shared = _COUNTS[key] = MappingProxyType(dict(items))
    return shared


def _seen_from(
    located: LocatedTallies | None,
    saw: set[str],
    seen: tuple[Sequence[str], Mapping[int, frozenset[str]]] | None,
    first: int,
    last: int,
) -> tuple[str, ...]:
    if located is not None:
        return tuple(n for n in located.rule.of if n in saw)
    if seen is None:
        return ()
    order, by_index = seen
    union = set().union(*(by_index.get(index, ()) for index in range(first, last + 1)))
    return tuple(n for n in order if n in union)


class Rules(Mapping[str, Any]):
    """A month's ``rules`` (the readings applied): :func:`_rules` of the policy, service,
    quorum and canaries it was judged with, built when read. A result is read for its rules
    only by a report or the web view, and the daemon holds two results per SLA (the running
    and the previous month): a built mapping of ~2 KB each was ~40 MB at 10,000 SLAs, this is
    four references to objects the configuration holds anyway (issue 20). Equal, item for
    item and in the same order, to the mapping it stands for (``tests/test_sla_lent.py``);
    the inputs are frozen, so every read builds the same mapping."""

    __slots__ = ("_canaries", "_policy", "_quorum", "_service")

    def __init__(
        self, policy: SlaPolicy, service: ServiceDef, quorum: int, canaries: tuple[str, ...]
    ) -> None:
        self._policy = policy
        self._service = service
        self._quorum = quorum
        self._canaries = canaries

    def _built(self) -> dict[str, Any]:
        return _rules(self._policy, self._service, self._quorum, self._canaries)

    def __getitem__(self, key: str) -> Any:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Rules):
            return self._built() == other._built()
        if isinstance(other, Mapping):
            return self._built() == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Rules({self._built()!r})"


def _rules(
    policy: SlaPolicy, service: ServiceDef, quorum: int, canaries: Sequence[str]
) -> dict[str, Any]:
    """The readings applied, so a report can be reproduced and explained."""
    rule = policy.bucket_rule
    credit = policy.credit
    return {
        "bucket_seconds": policy.bucket_seconds,
        "bucket_rule": str(rule.kind),
        "min_probes": rule.min_probes,
        "failed_fraction": None if rule.failed_fraction is None else str(rule.failed_fraction),
        "service_targets": list(service.all_targets),
        "service_members": _members_json(service),
        "service_rule": str(service.rule.kind),
        "quorum": quorum,
        "unknown_policy": str(policy.unknown_policy),
        "claim": "proven unavailable buckets only: unknown and pending count as available",
        "min_coverage": str(policy.min_coverage),
        "monitor_errors": "the monitor's own failures never count against the vendor",
        "partial_exclusion": str(policy.partial_exclusion),
        "canaries": list(canaries),
        "canary_rule": "a failure is excused when every canary failed within its interval of "
        "it; a bucket is customer_network only if every failure in it is excused",
        "gaps": "unknown unless probes prove the bucket unavailable",
        "pending": "counted as available in uptime_percent and credit; not in month-to-date",
        "error_budget": "floor(denominator * (100 - objective) / 100), same denominator as uptime",
        "monthly_fee": str(credit.monthly_fee),
        "credit_cap": str(credit.effective_cap),
        "credit_tiers": [_tier_json(t) for t in credit.tiers],
        "claim_window_days": policy.claim_window_days,
        # Only an SLA judged by locations says so (older reports stay byte-for-byte the same).
        **({} if policy.locations is None else {"locations": _locations_json(policy)}),
    }


def _locations_json(policy: SlaPolicy) -> dict[str, Any]:
    rule = policy.locations
    assert rule is not None  # the caller checks
    return {
        "down_when": "quorum",
        "quorum": rule.quorum,
        "of": list(rule.of),
        "reading": "unavailable when at least quorum locations judged the bucket unavailable; "
        "unknown when those plus the unheard ones reach the quorum; a location without enough "
        "probes, with every canary failing, or not running is unheard, never dropped",
    }


def _members_json(service: ServiceDef) -> dict[str, Any]:
    """The service's tree of members and rules, as the report shows how it was judged."""
    return {
        "service": service.name,
        "rule": str(service.rule.kind),
        "quorum": quorum_of(service.rule, service.members),
        "targets": list(service.targets),
        "services": [_members_json(child) for child in service.services],
    }


def _tier_json(tier: CreditTier) -> dict[str, Any]:
    return {
        "credit_percent": float(tier.credit_percent),
        "upper": None if tier.upper is None else float(tier.upper),
        "upper_inclusive": tier.upper_inclusive,
        "lower": None if tier.lower is None else float(tier.lower),
        "lower_inclusive": tier.lower_inclusive,
    }
