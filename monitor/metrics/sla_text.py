"""The per-SLA families (and the contract's ``slawatch_target_info`` / ``slawatch_claim_filed``)
written straight as exposition text, cached per SLA.

At 10,000 SLAs these are ~250,000 samples. Built as ``GaugeMetricFamily`` objects and written
by ``generate_latest`` they took ~8 s per scrape on two shared cores, all of it blocking the
event loop (issue 20). Most of an SLA's lines come from its month figures, and those change
only when its running month does: :meth:`monitor.accounting.Accounting.month_result` returns the
same ``MonthResult`` object while the running month's ``version`` is unchanged, so the lines
written from a result are kept until the result object changes (its identity is the version's
witness, and holding the result keeps that identity from being reused).

What depends on ``now`` (the scrape's instant) and on more than the month figures, and so is
evaluated at every scrape (and formatted again only when its value changes):

- ``slawatch_service_up``: the targets' latest results, stale after two intervals + timeout;
- ``slawatch_bucket_state``: which bucket is running, its tallies so far and the windows;
- ``slawatch_outage_open``: ``now`` against the end of the month's last outage;
- ``slawatch_claim_filed``: the claims recorded for the previous month.

Every month figure (buckets by state including ``pending``, uptimes, coverage, budget and what
remains of it, credit, next tier) depends on ``now`` only through the buckets elapsed, and a
bucket elapsing bumps the running month's version, which gives a new result object: a month
figure is never older than the last closed bucket. Objective, minimum coverage and the claim
deadlines come from the policy and the month, both part of the key.

The text is what ``generate_latest`` writes for the same samples: ``# HELP``/``# TYPE`` once per
family, the families contiguous, label names sorted, values by ``floatToGoString``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime
from fractions import Fraction
from typing import TYPE_CHECKING

from monitor.instants import utc_from_epoch
from monitor.metrics.contract import HELP_CLAIM_FILED, HELP_TARGET_INFO
from monitor.metrics.text import header as _header
from monitor.metrics.text import label_value as _label_value
from monitor.metrics.text import num as _num
from monitor.runtime.scheduler import ScheduledTarget
from monitor.runtime.state import bucket_floor
from monitor.sla.buckets import nested_verdict, target_verdict
from monitor.sla.calendar import Month, month_containing
from monitor.sla.month import _NO_TALLIES, MonthResult, all_failures_excused
from monitor.sla.policy import BucketState, ServiceDef, SlaPolicy
from monitor.sla.quorum import LocatedTallies, latest_verdicts
from probes.result import ProbeResult

if TYPE_CHECKING:
    from monitor.runtime.view import DaemonView

HELP_SERVICE_UP = (
    "1 if the service is available by its rule over its targets' last probes, 0 if not; "
    "absent while unknown."
)
HELP_BUCKET_STATE = "State of the running bucket: 1 on its state (available, unavailable, ...)."
HELP_MONTH_BUCKETS = "Buckets of the current calendar month by state (pending = not yet elapsed)."
HELP_UPTIME = (
    "Monthly Uptime Percentage / 100, remaining buckets taken as available: the best the month "
    "can still end at."
)
HELP_UPTIME_WORST = "Monthly uptime ratio if every unknown bucket were unavailable."
HELP_UPTIME_MTD = "Uptime ratio over the buckets elapsed so far this month."
HELP_OBJECTIVE = "The SLA's objective as a ratio (99.999% -> 0.99999)."
HELP_BREACHED = "1 if the month's uptime is already below the objective."
HELP_BUDGET = "Error budget of the month in buckets (floor)."
HELP_BUDGET_REMAINING = "Error budget left in buckets; negative once breached."
HELP_CREDIT_RATIO = "Projected service credit as a fraction of the monthly fee (a floor)."
HELP_CREDIT_AMOUNT = "Projected service credit amount in the contract's currency (a floor)."
HELP_NEXT_TIER = "More unavailable buckets that would move the credit to the next tier."
HELP_CLAIM_DEADLINE = "Last moment to file this month's claim (epoch seconds)."
HELP_OUTAGE_OPEN = "1 while an outage (consecutive unavailable buckets) is running."
HELP_PREV_CREDIT = "Credit owed for the previous month (file the claim before the deadline)."
HELP_PREV_DEADLINE = "Claim deadline of the previous month (epoch seconds)."
HELP_MIN_COVERAGE = "The SLA's min_coverage as a ratio (the month's coverage should stay above it)."
HELP_COVERAGE = "Measured / eligible buckets of the month so far (below min_coverage: warn)."
HELP_UPTIME_ESTIMATE = "The month's uptime under the unknown_buckets policy (not claimable)."
HELP_MONITOR_ERROR_BUCKETS = "Unknown buckets of the month holding the monitor's own errors."
HELP_OUTAGE_LOCATION = (
    "1 for each monitoring location that saw the running outage (SLAs judged by locations)."
)

SLICE_SECONDS = 0.02
"""CPU spent rendering between two yields to the event loop (probes due meanwhile start)."""

# The families in the order they are written; the comment says what keys a family's lines.
_FAMILIES: tuple[tuple[str, str], ...] = (
    ("slawatch_service_up", HELP_SERVICE_UP),  # 0: every scrape
    ("slawatch_bucket_state", HELP_BUCKET_STATE),  # 1: every scrape
    ("slawatch_month_buckets", HELP_MONTH_BUCKETS),  # 2..: the month's result
    ("slawatch_credit_projected_amount", HELP_CREDIT_AMOUNT),
    ("slawatch_month_uptime_ratio", HELP_UPTIME),
    ("slawatch_month_uptime_worst_case_ratio", HELP_UPTIME_WORST),
    ("slawatch_month_to_date_uptime_ratio", HELP_UPTIME_MTD),
    ("slawatch_month_coverage_ratio", HELP_COVERAGE),
    ("slawatch_month_uptime_estimate_ratio", HELP_UPTIME_ESTIMATE),
    ("slawatch_month_monitor_error_buckets", HELP_MONITOR_ERROR_BUCKETS),
    ("slawatch_sla_objective_ratio", HELP_OBJECTIVE),
    ("slawatch_sla_min_coverage_ratio", HELP_MIN_COVERAGE),
    ("slawatch_sla_breached", HELP_BREACHED),
    ("slawatch_error_budget_buckets", HELP_BUDGET),
    ("slawatch_error_budget_remaining_buckets", HELP_BUDGET_REMAINING),
    ("slawatch_credit_projected_ratio", HELP_CREDIT_RATIO),
    ("slawatch_credit_next_tier_buckets", HELP_NEXT_TIER),
    ("slawatch_claim_deadline_timestamp_seconds", HELP_CLAIM_DEADLINE),  # ..17
    ("slawatch_previous_month_credit_amount", HELP_PREV_CREDIT),  # 18, 19: the previous month's
    ("slawatch_previous_month_claim_deadline_timestamp_seconds", HELP_PREV_DEADLINE),
    ("slawatch_outage_open", HELP_OUTAGE_OPEN),  # 20: every scrape
    ("slawatch_claim_filed", HELP_CLAIM_FILED),  # 21: every scrape (the claims)
    ("slawatch_outage_location_info", HELP_OUTAGE_LOCATION),  # 22: every scrape (issue 14)
)
_UP, _BUCKET, _MONTH_FIRST, _PREVIOUS_FIRST, _OUTAGE, _CLAIM = 0, 1, 2, 18, 20, 21
_HEADERS = tuple(_header(name, text, "gauge") for name, text in _FAMILIES)
_TARGET_INFO_HEADER = _header("slawatch_target_info", HELP_TARGET_INFO, "gauge")
SLA_FAMILY_NAMES: frozenset[str] = frozenset(name for name, _ in _FAMILIES) | {
    "slawatch_target_info"
}
"""Every family this module writes."""

_SHOWN_STATES = tuple(s for s in BucketState if s is not BucketState.PENDING)
_MONTH_STATES = (
    BucketState.AVAILABLE,
    BucketState.UNAVAILABLE,
    BucketState.EXCLUDED,
    BucketState.UNKNOWN,
    BucketState.PENDING,
)


def _ratio(percent: Fraction | None) -> float | None:
    return None if percent is None else float(percent / 100)


class _SlaText:
    """One SLA's lines: those of its month figures (kept while the results are the same
    objects) and, for each family evaluated at every scrape, the inputs its last value came
    from, that value and its text."""

    __slots__ = (
        "bucket",
        "bucket_key",
        "bucket_start",
        "claim",
        "fresh",
        "instant_key",
        "labels",
        "leaves",
        "month_lines",
        "outage",
        "outage_end",
        "policy",
        "previous",
        "previous_lines",
        "result",
        "service",
        "up",
    )

    def __init__(self, policy: SlaPolicy, service: ServiceDef) -> None:
        self.policy = policy
        self.service = service
        self.leaves = service.all_targets
        # Label names sorted, as generate_latest writes them: service < sla.
        self.labels = f'service="{_label_value(policy.service)}",sla="{_label_value(policy.name)}"'
        self.result: MonthResult | None = None
        self.month_lines: tuple[str, ...] = ()
        self.outage_end: float | None = None
        self.previous: MonthResult | None = None
        self.previous_lines: tuple[str, ...] = ()
        # (the targets' last results and schedules it was judged from, state, text), and the
        # (started_at, staleness limit) of each target that was fresh then.
        self.instant_key: tuple[object, ...] = ()
        self.fresh: tuple[tuple[float, float], ...] = ()
        self.up: tuple[BucketState | None, str] = (None, "")
        # (bucket start, windows, the running bucket's tallies) it was judged from.
        self.bucket_key: tuple[object, ...] = ()
        self.bucket_start = -1
        self.bucket: tuple[BucketState | None, str] = (None, "")
        self.outage: tuple[bool | None, str] = (None, "")
        self.claim: tuple[str, Month | None, bool | None, str] = ("", None, None, "")

    def set_result(self, result: MonthResult) -> None:
        self.result = result
        self.month_lines = _month_lines(self.labels, self.policy, result)
        self.outage_end = result.outages[-1].end.timestamp() if result.outages else None

    def set_previous(self, previous: MonthResult) -> None:
        self.previous = previous
        labels = self.labels
        self.previous_lines = (
            f'slawatch_previous_month_credit_amount{{currency="{_label_value(previous.currency)}",'
            f"{labels}}} {_num(float(previous.credit_amount))}\n",
            f"slawatch_previous_month_claim_deadline_timestamp_seconds{{{labels}}} "
            f"{_num(previous.claim_deadline.timestamp())}\n",
        )

    def up_line(self, daemon: DaemonView, now: float) -> str:
        """``slawatch_service_up``: judged again when a target has a new last result (or a
        new schedule) or one judged fresh went stale, exactly as ``instant_service_state``.
        An SLA judged by locations is judged at every scrape (``located_service_state``: the
        other locations' tallies change without a result of this daemon's)."""
        if self.policy.locations is not None:
            state = located_service_state(daemon, self.policy, self.service, now)
            return self._set_up(state)
        statuses = daemon.state.targets
        scheduled = daemon.scheduler.targets
        key: list[object] = []
        for name in self.leaves:
            status = statuses.get(name)
            key.append(None if status is None else status.last)
            key.append(scheduled.get(name))
        old = self.instant_key
        if (
            len(old) != len(key)
            or any(a is not b for a, b in zip(old, key, strict=True))
            or any(now - started > limit for started, limit in self.fresh)
        ):
            state = instant_service_state(daemon, self.service, now)
            fresh = []
            for index in range(0, len(key), 2):
                last, target = key[index], key[index + 1]
                if isinstance(last, ProbeResult) and isinstance(target, ScheduledTarget):
                    limit = 2 * target.interval + target.timeout
                    if not now - last.started_at > limit:
                        fresh.append((last.started_at, limit))
            self.instant_key = tuple(key)
            self.fresh = tuple(fresh)
            return self._set_up(state)
        return self.up[1]

    def _set_up(self, state: BucketState) -> str:
        if self.up[0] is not state:
            value = {BucketState.AVAILABLE: "1.0", BucketState.UNAVAILABLE: "0.0"}.get(state)
            line = "" if value is None else f"slawatch_service_up{{{self.labels}}} {value}\n"
            self.up = (state, line)
        return self.up[1]

    def bucket_lines(self, daemon: DaemonView, now: float, month: Month) -> str:
        """``slawatch_bucket_state``: judged again when the running bucket, its windows or one
        of its tallies changed, exactly as ``provisional_bucket_state``."""
        policy = self.policy
        start = bucket_floor(now, policy.bucket_seconds)
        windows = daemon.accounting.windows_for(policy, month)
        tallies = daemon.state.tallies(policy.bucket_seconds)
        key: list[object] = [windows]
        key.extend(tallies.get(name, _NO_TALLIES).get(start) for name in self.leaves)
        old = self.bucket_key
        if (
            policy.locations is not None  # issue 14: other locations' tallies, every scrape
            or self.bucket_start != start
            or len(old) != len(key)
            or any(a is not b for a, b in zip(old, key, strict=True))
        ):
            state = provisional_bucket_state(daemon, policy, self.service, now, month=month)
            self.bucket_key = tuple(key)
            self.bucket_start = start
            if self.bucket[0] is not state:
                self.bucket = (
                    state,
                    "".join(
                        f'slawatch_bucket_state{{{self.labels},state="{s.value}"}} '
                        f"{'1.0' if s is state else '0.0'}\n"
                        for s in _SHOWN_STATES
                    ),
                )
        return self.bucket[1]

    def outage_line(self, now: float) -> str:
        """``slawatch_outage_open``, as ``outage_open``: the latest outage reaches the running
        bucket or the one just closed."""
        assert self.result is not None
        end = self.outage_end
        running = end is not None and now - end < self.result.bucket_seconds
        if self.outage[0] is not running:
            self.outage = (
                running,
                f"slawatch_outage_open{{{self.labels}}} {'1.0' if running else '0.0'}\n",
            )
        return self.outage[1]

    def location_lines(self, now: float) -> str:
        """``slawatch_outage_location_info``: the locations that saw the running outage."""
        result = self.result
        assert result is not None
        if not result.outages or not result.outages[-1].locations:
            return ""
        end = self.outage_end
        if end is None or now - end >= result.bucket_seconds:
            return ""
        # Label names sorted: location, service, sla.
        return "".join(
            f'slawatch_outage_location_info{{location="{_label_value(where)}",{self.labels}}} 1.0\n'
            for where in result.outages[-1].locations
        )

    def claim_line(self, claims: Mapping[str, object], previous: Month) -> str:
        """``slawatch_claim_filed``: 1 once the previous month's claim is recorded."""
        key, month, known, line = self.claim
        if month != previous:
            key, known = f"{self.policy.name}|{previous}", None
        filed = claims.get(key) is not None
        if known is not filed:
            line = f"slawatch_claim_filed{{{self.labels}}} {'1.0' if filed else '0.0'}\n"
        self.claim = (key, previous, filed, line)
        return line


def _month_lines(labels: str, policy: SlaPolicy, result: MonthResult) -> tuple[str, ...]:
    """Families 2..17 of one SLA from its month's result (empty where a value is absent)."""
    buckets = (
        result.buckets_available,
        result.buckets_unavailable,
        result.buckets_excluded,
        result.buckets_unknown,
        result.buckets_pending,
    )
    month_buckets = "".join(
        f'slawatch_month_buckets{{{labels},state="{state.value}"}} {_num(count)}\n'
        for state, count in zip(_MONTH_STATES, buckets, strict=True)
    )
    amount = (
        f'slawatch_credit_projected_amount{{currency="{_label_value(result.currency)}",{labels}}} '
        f"{_num(float(result.credit_amount))}\n"
    )
    gauges: tuple[tuple[str, float | None], ...] = (
        ("slawatch_month_uptime_ratio", _ratio(result.uptime_percent)),
        ("slawatch_month_uptime_worst_case_ratio", _ratio(result.uptime_percent_worst_case)),
        ("slawatch_month_to_date_uptime_ratio", _ratio(result.month_to_date_uptime_percent)),
        (
            "slawatch_month_coverage_ratio",
            None if result.coverage is None else float(result.coverage),
        ),
        ("slawatch_month_uptime_estimate_ratio", _ratio(result.uptime_percent_estimate)),
        ("slawatch_month_monitor_error_buckets", float(result.buckets_unknown_monitor_error)),
        ("slawatch_sla_objective_ratio", float(policy.objective_percent) / 100),
        ("slawatch_sla_min_coverage_ratio", float(result.min_coverage)),
        ("slawatch_sla_breached", 1.0 if result.breached else 0.0),
        ("slawatch_error_budget_buckets", float(result.error_budget_buckets)),
        ("slawatch_error_budget_remaining_buckets", float(result.error_budget_remaining)),
        ("slawatch_credit_projected_ratio", float(result.credit_percent) / 100),
        (
            "slawatch_credit_next_tier_buckets",
            None if result.buckets_to_next_tier is None else float(result.buckets_to_next_tier),
        ),
        ("slawatch_claim_deadline_timestamp_seconds", result.claim_deadline.timestamp()),
    )
    return (
        month_buckets,
        amount,
        *("" if value is None else f"{name}{{{labels}}} {_num(value)}\n" for name, value in gauges),
    )


class SlaFamilies:
    """The per-SLA families and ``slawatch_target_info`` as text (see the module docs)."""

    def __init__(self, daemon: DaemonView) -> None:
        self._daemon = daemon
        self._cache: dict[str, _SlaText] = {}
        self._info: tuple[object, object, str] | None = None

    async def render(self) -> str:
        """The text of every family in ``SLA_FAMILY_NAMES``, yielding to the event loop every
        ``SLICE_SECONDS`` of work. A reload (or an exclusion added) while it yields changes
        the SLAs: the rendering starts again over the new ones, so a scrape never mixes two
        configurations nor builds running months for an SLA that is gone."""
        for _ in range(3):
            text = await self._render(yielding=True)
            if text is not None:
                return text
        text = await self._render(yielding=False)
        assert text is not None
        return text

    async def _render(self, *, yielding: bool) -> str | None:
        d = self._daemon
        accounting = d.accounting
        inputs = accounting.inputs
        services = inputs.services
        claims = d.claims
        cache = self._cache
        now = d.clock()
        moment = utc_from_epoch(now)
        months: dict[str, Month] = {}
        # One row per SLA, one string per family; the rows are turned into the families'
        # columns at the end in one transposition.
        rows: list[tuple[str, ...]] = []
        mark = time.perf_counter()
        for policy in inputs.policies:
            if yielding and time.perf_counter() - mark > SLICE_SECONDS:
                await asyncio.sleep(0)
                if accounting.inputs is not inputs:
                    return None
                mark = time.perf_counter()
            if policy.locations is not None and not d.health.accountant:
                # Issue 14: one daemon (the accountant) exports what pages; every daemon still
                # computes the same month for its API and web view.
                continue
            service = services[policy.service]
            entry = cache.get(policy.name)
            if entry is None or entry.policy is not policy or entry.service is not service:
                entry = cache[policy.name] = _SlaText(policy, service)
            result = accounting.month_result(policy, moment, stamp=False)
            if entry.result is not result:
                entry.set_result(result)
            previous_month = result.month.previous()
            previous = accounting.month_result(policy, moment, previous_month, stamp=False)
            if entry.previous is not previous:
                entry.set_previous(previous)
            month = months.get(policy.timezone)
            if month is None:
                month = months[policy.timezone] = month_containing(moment, policy.timezone)
            rows.append(
                (
                    entry.up_line(d, now),
                    entry.bucket_lines(d, now, month),
                    *entry.month_lines,
                    *entry.previous_lines,
                    entry.outage_line(now),
                    entry.claim_line(claims, previous_month),
                    entry.location_lines(now),
                )
            )
        if len(cache) > len(inputs.policies):
            keep = {policy.name for policy in inputs.policies}
            for name in [n for n in cache if n not in keep]:
                del cache[name]
        parts: list[str] = []
        columns = zip(*rows, strict=True) if rows else ((),) * len(_HEADERS)
        for header, column in zip(_HEADERS, columns, strict=True):
            parts.append(header)
            parts.extend(column)
        parts.append(self._target_info(services))
        return "".join(parts)

    def _target_info(self, services: Mapping[str, ServiceDef]) -> str:
        """``slawatch_target_info``: fixed by the configuration, written once per reload."""
        d = self._daemon
        config = d.config
        if self._info is not None and self._info[0] is config and self._info[1] is services:
            return self._info[2]
        kinds = {t.name: t.kind for t in config.targets}
        lines = [_TARGET_INFO_HEADER]
        for service in services.values():
            for target in service.all_targets:
                # Label names sorted: kind, service, target.
                lines.append(
                    f'slawatch_target_info{{kind="{_label_value(kinds.get(target, ""))}",'
                    f'service="{_label_value(service.name)}",'
                    f'target="{_label_value(target)}"}} 1.0\n'
                )
        text = "".join(lines)
        self._info = (config, services, text)
        return text


def instant_service_state(daemon: DaemonView, service: ServiceDef, now: float) -> BucketState:
    """The service by its rule over its targets' latest results; a result older than two
    intervals (or none yet) is unknown, so a stalled monitor never reads as available."""
    states: dict[str, BucketState] = {}
    scheduled = daemon.scheduler.targets
    for name in service.all_targets:
        status = daemon.state.targets.get(name)
        target = scheduled.get(name)
        last = status.last if status else None
        if (
            last is None
            or target is None
            or now - last.started_at > 2 * target.interval + target.timeout
        ):
            states[name] = BucketState.UNKNOWN
        else:
            states[name] = BucketState.AVAILABLE if last.ok else BucketState.UNAVAILABLE
    return nested_verdict(service, states)


def located_service_state(
    daemon: DaemonView, policy: SlaPolicy, service: ServiceDef, now: float
) -> BucketState:
    """Issue 14: the service "now" for an SLA judged by locations: the quorum of locations
    over the running bucket (the bucket before it while the running one has no verdict yet),
    from every location's tallies as last read from the shared store."""
    size = policy.bucket_seconds
    month = month_containing(utc_from_epoch(now), policy.timezone)
    located = daemon.accounting.tallies_of(policy, month)
    assert isinstance(located, LocatedTallies)
    states = latest_verdicts(
        located, service.all_targets, bucket_floor(now, size), size, policy.bucket_rule
    )
    return nested_verdict(service, states)


def provisional_bucket_state(
    daemon: DaemonView,
    policy: SlaPolicy,
    service: ServiceDef,
    now: float,
    *,
    month: Month | None = None,
) -> BucketState:
    """The running bucket's verdict so far, by the same rules the month will apply once it
    closes (the engine itself reports a running bucket as pending). ``month`` is the month
    holding ``now`` in the SLA's zone, when the caller already knows it."""
    start = bucket_floor(now, policy.bucket_seconds)
    end = start + policy.bucket_seconds
    if month is None:
        month = month_containing(utc_from_epoch(now), policy.timezone)
    for window in daemon.accounting.windows_for(policy, month):
        if window.start.timestamp() < end and window.end.timestamp() > start:
            return BucketState.EXCLUDED
    if policy.locations is not None:  # issue 14: the quorum of locations, as the month
        located = daemon.accounting.tallies_of(policy, month)
        assert isinstance(located, LocatedTallies)
        return nested_verdict(
            service,
            {
                name: located.verdict(name, start, policy.bucket_seconds, policy.bucket_rule).state
                for name in service.all_targets
            },
        )
    tallies = daemon.state.tallies(policy.bucket_seconds)
    cells = [tallies.get(name, {}).get(start) for name in service.all_targets]
    states = {
        name: target_verdict(cell, policy.bucket_rule)
        for name, cell in zip(service.all_targets, cells, strict=True)
    }
    state = nested_verdict(service, states)
    # As the month judges it: excluded only when every failure was excused by the canaries.
    if (
        daemon.accounting.inputs.canaries
        and state is not BucketState.AVAILABLE
        and all_failures_excused(cells)
    ):
        return BucketState.EXCLUDED
    return state


def outage_open(result: MonthResult, now: datetime) -> bool:
    """An outage runs if the latest one reaches the running bucket or the one just closed."""
    if not result.outages:
        return False
    last_end = result.outages[-1].end
    return (now - last_end).total_seconds() < result.bucket_seconds
