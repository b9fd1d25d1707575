"""The one path from a month's inputs to its figures: every month slawatch shows goes through
:func:`month_result`.

The daemon (``/metrics``, ``/api/v1/buckets``, the current and previous months of
``/api/v1/report``), ``slawatch report`` from a results file, ``slawatch report`` from the
store and the API's older months all build their :class:`AccountingInputs` with
:func:`inputs_from_config` and compute with :func:`month_result`. The contract logic a month
needs beyond the pure engine lives here once:

- the exclusion windows are the configuration's fixed windows plus those added through the API,
  and each recurring exclusion expanded over the SLA's month (:func:`month_windows`);
- each SLA's maintenance notice rule is applied to those windows: a window breaking it is a
  violation, and under ``policy: reject`` it is also not honoured. A refused window is always
  among the violations, on every path, because both come from the same call;
- an occurrence of a recurring exclusion is announced by its schedule: the configuration (the
  contract's or the vendor's published calendar) holds it before it starts, so the minimum
  notice rule is met by every occurrence. The support-hours rule still applies to each one.
  (Refusing every occurrence for lacking ``announced_at`` would count the vendor's agreed
  maintenance as downtime on evidence we do not have.)
- the month is judged "as of now" only while it runs in the SLA's zone; a month that has ended
  is computed as complete (``now`` ``None``).

:class:`Accounting` caches results for the daemon, whose scrapes come every few seconds. Nothing
here reads the clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from monitor.sla.calendar import Month, month_bounds, month_containing
from monitor.sla.exclusions import expand_recurring
from monitor.sla.month import MonthResult, compute_month
from monitor.sla.policy import (
    ExclusionWindow,
    RecurringExclusion,
    ServiceDef,
    SlaPolicy,
    Tally,
)
from monitor.support.notice import NoticeRule, Violation, apply_notice_rule

if TYPE_CHECKING:
    from monitor.config import Config

Tallies = Mapping[str, Mapping[int, Tally]]
"""target -> bucket start epoch -> tally."""
TallySource = Callable[[int, Month, SlaPolicy], Tallies]
"""(bucket_seconds, month, policy) -> target -> bucket start -> tally."""


@dataclass(frozen=True)
class AccountingInputs:
    """Everything a month needs but the tallies: the configuration's part and the store's."""

    policies: tuple[SlaPolicy, ...]
    services: Mapping[str, ServiceDef]
    windows: tuple[ExclusionWindow, ...]
    """Fixed windows: the configuration's, then those added through the API."""
    recurring: tuple[RecurringExclusion, ...]
    canaries: tuple[str, ...]
    gaps: tuple[tuple[datetime, datetime], ...]
    notice_rules: Mapping[str, NoticeRule] = field(default_factory=lambda: MappingProxyType({}))
    """SLA name -> its maintenance notice rule (SLAs without one honour every window)."""

    def policy(self, name: str) -> SlaPolicy:
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise KeyError(name)


def notice_rules(config: Config) -> dict[str, NoticeRule]:
    """SLA name -> its maintenance notice rule, for the SLAs that set one."""
    rules: dict[str, NoticeRule] = {}
    for sla in config.slas:
        if sla.maintenance_notice is not None:
            rules[sla.name] = sla.maintenance_notice.to_rule(config.support)
    return rules


def inputs_from_config(
    config: Config,
    *,
    api_windows: Sequence[ExclusionWindow] = (),
    gaps: Sequence[tuple[datetime, datetime]] = (),
) -> AccountingInputs:
    """The month inputs of ``config``, with the windows added through the API and the gaps
    (time the monitor was not running) the store holds."""
    return AccountingInputs(
        policies=config.sla_policies(),
        services=MappingProxyType(config.service_defs()),
        windows=(*config.exclusion_windows(), *api_windows),
        recurring=config.recurring_exclusions(),
        canaries=config.canaries(),
        gaps=tuple(gaps),
        notice_rules=MappingProxyType(notice_rules(config)),
    )


def select_policies(
    config: Config, service: str | None, field: str = "--service"
) -> list[SlaPolicy]:
    """The SLAs to report: all, or those over ``service`` (an error names the known ones)."""
    policies = list(config.sla_policies())
    if service is None:
        return policies
    chosen = [p for p in policies if service in (p.service, p.name)]
    if not chosen:
        known = sorted({p.service for p in policies})
        raise ValueError(f"{field}: expected one of {', '.join(known)}, got {service!r}")
    return chosen


@dataclass(frozen=True)
class MonthWindows:
    """An SLA's exclusion windows for a month: those honoured, and every notice rule broken
    (a refused window is always among the violations)."""

    honoured: tuple[ExclusionWindow, ...]
    violations: tuple[Violation, ...]


def _announced_by_schedule(rule: NoticeRule) -> NoticeRule:
    """The rule for a recurring occurrence: its schedule is its notice (no minimum to check)."""
    return dataclasses.replace(rule, min_notice=None)


def month_windows(inputs: AccountingInputs, policy: SlaPolicy, month: Month) -> MonthWindows:
    """The windows touching ``month`` for ``policy``'s service, recurring ones expanded over
    the month in the SLA's zone, after the SLA's notice rule."""
    start, end = month_bounds(month, policy.timezone)
    fixed = [w for w in inputs.windows if w.end > start and w.start < end]
    occurrences = [w for rec in inputs.recurring for w in expand_recurring(rec, start, end)]
    fixed = [w for w in fixed if w.covers(policy.service)]
    occurrences = [w for w in occurrences if w.covers(policy.service)]
    rule = inputs.notice_rules.get(policy.name)
    if rule is None:
        honoured, violations = [*fixed, *occurrences], []
    else:
        written = apply_notice_rule(fixed, rule)
        scheduled = apply_notice_rule(occurrences, _announced_by_schedule(rule))
        honoured = [*written.honoured, *scheduled.honoured]
        violations = [*written.violations, *scheduled.violations]
    # In time order, whatever order the sources listed them in (the store lists its windows
    # by start, the configuration as written): the report's list must not depend on the path.
    honoured.sort(key=lambda w: (w.start, w.end, w.id))
    return MonthWindows(tuple(honoured), tuple(violations))


def month_violations(
    inputs: AccountingInputs, month_of: Callable[[SlaPolicy], Month]
) -> dict[str, list[Violation]]:
    """SLA name -> the notice rules broken in its month ``month_of(policy)``, for every SLA
    with a rule."""
    return {
        policy.name: list(month_windows(inputs, policy, month_of(policy)).violations)
        for policy in inputs.policies
        if policy.name in inputs.notice_rules
    }


def as_of(policy: SlaPolicy, month: Month, now: datetime) -> datetime | None:
    """``now`` while ``month`` runs in the SLA's zone; ``None`` (complete) once it has ended."""
    return now if now < month_bounds(month, policy.timezone)[1] else None


def month_result(
    inputs: AccountingInputs,
    policy: SlaPolicy,
    month: Month,
    tallies: Tallies,
    now: datetime,
) -> MonthResult:
    """``policy``'s ``month`` from ``tallies`` as of ``now``: the one month assembly."""
    start, _ = month_bounds(month, policy.timezone)
    if start > now:
        raise ValueError(f"month: {month} has not started yet in {policy.timezone}")
    service = inputs.services.get(policy.service)
    if service is None:
        raise ValueError(
            f"sla {policy.name}: service: expected one of {sorted(inputs.services)}, "
            f"got {policy.service!r}"
        )
    return compute_month(
        policy,
        service,
        month,
        tallies,
        month_windows(inputs, policy, month).honoured,
        canaries=inputs.canaries,
        gaps=inputs.gaps,
        now=as_of(policy, month, now),
    )


class Accounting:
    """The daemon's month results per SLA, cached.

    ``compute_month`` is pure and cheap enough for a few services, but a scrape every few seconds
    should not redo it: results are cached per (SLA, month) and recomputed when a bucket closes,
    when the inputs change, or after ``max_age`` seconds (so the running bucket's verdict stays
    fresh). A month that has ended is computed once.
    """

    def __init__(self, inputs: AccountingInputs, tallies: TallySource, max_age: float = 5.0):
        self._inputs = inputs
        self._tallies = tallies
        self._max_age = max_age
        self._cache: dict[tuple[str, Month], tuple[float, int, MonthResult]] = {}

    @property
    def inputs(self) -> AccountingInputs:
        return self._inputs

    def replace_inputs(self, inputs: AccountingInputs) -> None:
        self._inputs = inputs
        self._cache.clear()

    def policy(self, name: str) -> SlaPolicy:
        return self._inputs.policy(name)

    def windows_for(self, policy: SlaPolicy, month: Month) -> tuple[ExclusionWindow, ...]:
        """The windows ``policy`` honours in ``month`` (see :func:`month_windows`)."""
        return month_windows(self._inputs, policy, month).honoured

    def month_result(
        self, policy: SlaPolicy, now: datetime, month: Month | None = None
    ) -> MonthResult:
        """The month holding ``now`` (or ``month``), as of ``now``."""
        current = month_containing(now, policy.timezone)
        month = current if month is None else month
        epoch = now.timestamp()
        bucket_index = int(epoch // policy.bucket_seconds)
        key = (policy.name, month)
        cached = self._cache.get(key)
        if cached is not None:
            computed_at, computed_bucket, result = cached
            fresh = epoch - computed_at < self._max_age and computed_bucket == bucket_index
            if fresh or month < current:
                return result
        result = month_result(
            self._inputs,
            policy,
            month,
            self._tallies(policy.bucket_seconds, month, policy),
            now,
        )
        self._cache[key] = (epoch, bucket_index, result)
        return result
