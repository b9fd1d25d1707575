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
import heapq
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from fractions import Fraction
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, overload

from monitor.accounting import HistoryNotLoaded
from monitor.instants import utc_from_epoch
from monitor.metrics.contract import HELP_CLAIM_FILED, HELP_TARGET_INFO
from monitor.metrics.text import header as _header
from monitor.metrics.text import label_value as _label_value
from monitor.metrics.text import num as _num
from monitor.runtime import heap
from monitor.runtime.health import WarmingGate
from monitor.runtime.scheduler import ScheduledTarget
from monitor.runtime.state import bucket_floor
from monitor.sla.buckets import nested_verdict, target_verdict
from monitor.sla.calendar import Month, month_containing
from monitor.sla.month import _NO_TALLIES, CompactOutages, MonthResult, all_failures_excused
from monitor.sla.policy import BucketState, ServiceDef, SlaPolicy, Tally
from monitor.sla.quorum import LocatedTallies, latest_verdicts
from monitor.sla.settled import MonthMoney
from probes.result import ProbeResult

if TYPE_CHECKING:
    from monitor.accounting import AccountingInputs, ChangeFeed
    from monitor.runtime.state import TargetFeed
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

SLICE_SECONDS = 0.01
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
_BUCKET_TEXTS: dict[BucketState, tuple[str, ...]] = {
    state: tuple(
        "".join(
            f'slawatch_bucket_state{{\x00,state="{s.value}"}} {"1.0" if s is state else "0.0"}\n'
            for s in _SHOWN_STATES
        ).split("\x00")
    )
    for state in BucketState
}
"""mt33 (issue 20): ``slawatch_bucket_state``'s lines of one SLA whose running bucket is in
each state, split where the SLA's labels go (joined with them; the metric name and the
state values hold no NUL, whatever the labels hold)."""
_MONTH_STATES = (
    BucketState.AVAILABLE,
    BucketState.UNAVAILABLE,
    BucketState.EXCLUDED,
    BucketState.UNKNOWN,
    BucketState.PENDING,
)


def _ratio(percent: Fraction | None) -> float | None:
    # float(percent / 100) without the Fraction division (c22: a bucket close writes it for
    # every SLA): int / int is correctly rounded, so the same float whatever the terms.
    return None if percent is None else percent.numerator / (percent.denominator * 100)


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
        "idle",
        "instant_key",
        "labels",
        "leaves",
        "locations",
        "month_lines",
        "outage",
        "outage_due",
        "outage_end",
        "outage_locations",
        "policy",
        "previous",
        "previous_lines",
        "result",
        "row",
        "row_bytes",
        "service",
        "up",
        "up_due",
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
        self.outage_locations: tuple[str, ...] = ()
        """The latest outage's locations (fs31: read when its end is, see :meth:`set_result`)."""
        self.previous: MonthMoney | None = None
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
        # c22: the running bucket's state with no tally and no window over it (every SLA's
        # new bucket just after a close), fixed by the service and the bucket rule.
        self.idle: BucketState | None = None
        self.outage: tuple[bool | None, str] = (None, "")
        self.claim: tuple[str, Month | None, bool | None, str] = ("", None, None, "")
        self.locations = ""
        # The instants asked for in SlaFamilies' heap: a fresh result going stale, the
        # running outage no longer open (None: nothing to wait for).
        self.up_due: float | None = None
        self.outage_due: float | None = None
        self.row: tuple[str, ...] | None = None
        """The lines last written, one string per family (None: not exported here)."""
        self.row_bytes = 0
        """mem34: the length of ``row``'s lines encoded (what a scrape sends of them)."""

    def set_result(self, result: MonthResult) -> None:
        old = self.result
        before = None if old is None or old.month != result.month else (old, self.month_lines)
        self.result = result
        self.month_lines = _month_lines(self.labels, self.policy, result, before)
        # fs31 (issue 20): the latest outage built once per result (a month's outages are
        # kept compact, each read builds one): its end and locations are what the lines read.
        outages = result.outages
        if isinstance(outages, CompactOutages):  # mt33: read without building the outage
            reach = outages.last_reach()
            # An instant of whole seconds: its timestamp() is that float exactly.
            self.outage_end = None if reach is None else float(reach[0])
            self.outage_locations = () if reach is None else reach[1]
            return
        last = outages[-1] if outages else None
        self.outage_end = None if last is None else last.end.timestamp()
        self.outage_locations = () if last is None else last.locations

    def set_previous(self, previous: MonthMoney | None) -> None:
        """The previous month's lines from its money (None: its month is not loaded, being
        read back from the store: no lines until it is)."""
        self.previous = previous
        self.previous_lines = () if previous is None else _previous_lines(self.labels, previous)

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
            # cpu26: judged from the results and schedules just looked up (the same reads).
            fresh: list[tuple[float, float]] = []
            state = _instant_state(self.service, self.leaves, key, now, fresh)
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
        cells = [tallies.get(name, _NO_TALLIES).get(start) for name in self.leaves]
        key: list[object] = [windows, *cells]
        old = self.bucket_key
        if (
            policy.locations is not None  # issue 14: other locations' tallies, every scrape
            or self.bucket_start != start
            or len(old) != len(key)
            or any(a is not b for a, b in zip(old, key, strict=True))
        ):
            if policy.locations is None and not windows and all(c is None for c in cells):
                # No tally and no window (a bucket just begun): provisional_bucket_state
                # reads only the service and its rule then; asked once (c22). mt33 (issue
                # 20): as what it reads, not through it: every target unknown (no tally), no
                # failure for the canaries to excuse (``idle_bucket_state``; a start asked it
                # of every SLA, a fifth of the first /metrics text's SLA lines).
                state = self.idle
                if state is None:
                    state = self.idle = idle_bucket_state(self.service)
            else:
                state = provisional_bucket_state(
                    daemon,
                    policy,
                    self.service,
                    now,
                    month=month,
                    cells=None if policy.locations is not None else cells,  # cpu26
                )
            self.bucket_key = tuple(key)
            self.bucket_start = start
            if self.bucket[0] is not state:
                # mt33: the state's lines written once, cut where the labels go.
                self.bucket = (state, self.labels.join(_BUCKET_TEXTS[state]))
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
        locations = self.outage_locations
        if not locations:
            return ""
        end = self.outage_end
        if end is None or now - end >= result.bucket_seconds:
            return ""
        # Label names sorted: location, service, sla.
        return "".join(
            f'slawatch_outage_location_info{{location="{_label_value(where)}",{self.labels}}} 1.0\n'
            for where in locations
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


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _percent_ratio(value: object) -> float | None:
    return _ratio(value)  # type: ignore[arg-type]


def _hundredth(value: object) -> float:
    return float(value) / 100  # type: ignore[arg-type]


def _flag(value: object) -> float:
    return 1.0 if value else 0.0


def _epoch(value: object) -> float:
    return value.timestamp()  # type: ignore[attr-defined, no-any-return]


# Families 4..17: (name, the result's field it shows, how its value is written).
_GAUGES: tuple[tuple[str, str, Callable[[object], float | None]], ...] = (
    ("slawatch_month_uptime_ratio", "uptime_percent", _percent_ratio),
    ("slawatch_month_uptime_worst_case_ratio", "uptime_percent_worst_case", _percent_ratio),
    ("slawatch_month_to_date_uptime_ratio", "month_to_date_uptime_percent", _percent_ratio),
    ("slawatch_month_coverage_ratio", "coverage", _float),
    ("slawatch_month_uptime_estimate_ratio", "uptime_percent_estimate", _percent_ratio),
    ("slawatch_month_monitor_error_buckets", "buckets_unknown_monitor_error", _float),
    ("slawatch_sla_objective_ratio", "objective_percent", _hundredth),
    ("slawatch_sla_min_coverage_ratio", "min_coverage", _float),
    ("slawatch_sla_breached", "breached", _flag),
    ("slawatch_error_budget_buckets", "error_budget_buckets", _float),
    ("slawatch_error_budget_remaining_buckets", "error_budget_remaining", _float),
    ("slawatch_credit_projected_ratio", "credit_percent", _hundredth),
    ("slawatch_credit_next_tier_buckets", "buckets_to_next_tier", _float),
    ("slawatch_claim_deadline_timestamp_seconds", "claim_deadline", _epoch),
)
_MONTH_STATE_VALUES = tuple(state.value for state in _MONTH_STATES)
_GAUGE_VALUES = attrgetter(*(field for _, field, _ in _GAUGES))
_COUNT_TEXTS: dict[int, str] = {}


def _count_text(count: int) -> str:
    """``_num(count)`` for a bucket count, remembered (c22: five per SLA at every bucket
    close, from a few thousand distinct counts)."""
    text = _COUNT_TEXTS.get(count)
    if text is None:
        text = _num(count)
        if len(_COUNT_TEXTS) < 100_000:
            _COUNT_TEXTS[count] = text
    return text


def _month_lines(
    labels: str,
    policy: SlaPolicy,
    result: MonthResult,
    before: tuple[MonthResult, tuple[str, ...]] | None = None,
) -> tuple[str, ...]:
    """Families 2..17 of one SLA from its month's result (empty where a value is absent).

    ``before``: the SLA's previous result of the same month and the lines written from it.
    A line whose value did not move is kept as written (issue 20, c21: after a bucket
    closes only the counts, month-to-date and coverage move for most SLAs, and writing
    every line again in exact fractions was most of the refresh).

    em30 (issue 20): the first writing (no ``before``: a start, a reload) of a result whose
    figures equal those of the result written just before it, for another SLA, is that one's
    lines with this SLA's labels (:func:`_first_month_lines`)."""
    if before is None:
        return _first_month_lines(labels, result)
    return _written_month_lines(labels, result, before)


_LABELS_MARK = "\x00"
"""Where the labels go in :func:`_first_month_lines`' template: in no metric name, number
or escaped currency (the currency is checked)."""

_LAST_FIRST_LINES: tuple[tuple[object, ...], tuple[tuple[str, ...], ...]] | None = None
"""em30: the figures of the result :func:`_first_month_lines` last wrote, and its lines cut
at the labels."""


def _first_month_lines(labels: str, result: MonthResult) -> tuple[str, ...]:
    """:func:`_month_lines` without ``before``, from the last call's lines when every figure
    the lines write is equal to its (em30, issue 20: at a start from an empty store the
    10,000 SLAs of the same terms have equal figures and only their labels differ, and
    writing each SLA's 16 lines in exact fractions was a fifth of the first ``/metrics``
    text). The figures compared are those ``_written_month_lines`` compares to keep a line
    (the counts, the amount and currency, and the 14 gauges' values), so a line taken from
    the template is the line this SLA's own result writes
    (``tests/test_metrics_sla_text.py`` holds both equal)."""
    global _LAST_FIRST_LINES
    key = (
        result.buckets_available,
        result.buckets_unavailable,
        result.buckets_excluded,
        result.buckets_unknown,
        result.buckets_pending,
        result.credit_amount,
        result.currency,
        *_GAUGE_VALUES(result),
    )
    last = _LAST_FIRST_LINES
    if last is None or last[0] != key:
        if _LABELS_MARK in result.currency:
            return _written_month_lines(labels, result, None)
        cut = tuple(
            tuple(line.split(_LABELS_MARK))
            for line in _written_month_lines(_LABELS_MARK, result, None)
        )
        last = _LAST_FIRST_LINES = (key, cut)
    return tuple([labels.join(parts) for parts in last[1]])


_LAST_PREVIOUS_LINES: tuple[tuple[object, ...], tuple[tuple[str, ...], ...]] | None = None
"""mt33: the money :func:`_previous_lines` last wrote, and its lines cut at the labels."""


def _previous_lines(labels: str, previous: MonthMoney) -> tuple[str, ...]:
    """Families 18, 19 of one SLA from its previous month's money: the last call's lines
    with this SLA's labels when the money written is equal (mt33, issue 20: as
    :func:`_first_month_lines`, the SLAs of one contract owe the same credit by the same
    deadline, mostly none; writing them was a tenth of the first ``/metrics`` text's SLA
    lines). Equal amounts write the same float and equal instants the same epoch."""
    global _LAST_PREVIOUS_LINES
    key = (previous.currency, previous.credit_amount, previous.claim_deadline)
    last = _LAST_PREVIOUS_LINES
    if last is None or last[0] != key:
        if _LABELS_MARK in previous.currency:
            return _written_previous_lines(labels, previous)
        cut = tuple(
            tuple(line.split(_LABELS_MARK))
            for line in _written_previous_lines(_LABELS_MARK, previous)
        )
        last = _LAST_PREVIOUS_LINES = (key, cut)
    return tuple([labels.join(parts) for parts in last[1]])


def _written_previous_lines(labels: str, previous: MonthMoney) -> tuple[str, ...]:
    """:func:`_previous_lines` written."""
    return (
        f'slawatch_previous_month_credit_amount{{currency="{_label_value(previous.currency)}",'
        f"{labels}}} {_num(float(previous.credit_amount))}\n",
        f"slawatch_previous_month_claim_deadline_timestamp_seconds{{{labels}}} "
        f"{_num(previous.claim_deadline.timestamp())}\n",
    )


def _written_month_lines(
    labels: str, result: MonthResult, before: tuple[MonthResult, tuple[str, ...]] | None
) -> tuple[str, ...]:
    """:func:`_month_lines` written."""
    old, lines = (None, ()) if before is None else before
    counts = (
        result.buckets_available,
        result.buckets_unavailable,
        result.buckets_excluded,
        result.buckets_unknown,
        result.buckets_pending,
    )
    if old is not None and counts == (
        old.buckets_available,
        old.buckets_unavailable,
        old.buckets_excluded,
        old.buckets_unknown,
        old.buckets_pending,
    ):
        month_buckets = lines[0]
    else:
        month_buckets = "".join(
            f'slawatch_month_buckets{{{labels},state="{state}"}} {_count_text(count)}\n'
            for state, count in zip(_MONTH_STATE_VALUES, counts, strict=True)
        )
    if (
        old is not None
        and result.credit_amount == old.credit_amount
        and result.currency == old.currency
    ):
        amount = lines[1]
    else:
        amount = (
            f'slawatch_credit_projected_amount{{currency="{_label_value(result.currency)}",'
            f"{labels}}} {_num(float(result.credit_amount))}\n"
        )
    out = [month_buckets, amount]
    # One C call reads the 14 fields of each result (c22: 28 getattr calls per SLA at every
    # bucket close were the largest part of this function).
    raws = _GAUGE_VALUES(result)
    wases = None if old is None else _GAUGE_VALUES(old)
    for index, (name, _, write) in enumerate(_GAUGES):
        raw = raws[index]
        if wases is not None:
            was = wases[index]
            # (None == a number is False: no None guard needed; c22.)
            if raw is was or raw == was:
                out.append(lines[index + 2])
                continue
        value = write(raw)
        out.append("" if value is None else f"{name}{{{labels}}} {_num(value)}\n")
    return tuple(out)


WARMING = "per-SLA metrics"
"""fs28 (issue 20): what ``Health.warming`` names while the per-SLA lines are first written."""

CHUNK_SLAS = 128
"""SLAs per chunk of cached text: a change re-joins its chunk's lines only."""

# What to evaluate again for an SLA (bit flags; see SlaFamilies._collect).
_MONTH = 1  # its months' results (the running month may have moved)
_UP = 2  # slawatch_service_up (a target's last result, its schedule, or staleness)
_BUCKET = 4  # slawatch_bucket_state (the running bucket or one of its tallies)
_TIMED = 8  # slawatch_outage_open / _outage_location_info (an outage's end passing)
_CLAIM = 16  # slawatch_claim_filed
_ALL = _MONTH | _UP | _BUCKET | _TIMED | _CLAIM
_SCRAPE_ONLY = _UP | _BUCKET
"""cpu26 (issue 20): what the refresh leaves to the next scrape (:meth:`SlaFamilies.refresh`)."""


class SlaFamilies:
    """The per-SLA families and ``slawatch_target_info`` as text (see the module docs).

    A scrape costs what changed since the last one, not the number of SLAs (issue 20): each
    SLA's lines are kept (joined and encoded only as a scrape sends them, ``SlaPieces``), and
    only the SLAs something may have changed are evaluated again. What tells:

    - the accounting's :class:`monitor.accounting.ChangeFeed` (a running month's version
      moved, a tally changed, a month built or forgotten; every SLA when the inputs are
      replaced: reload, exclusion added or removed);
    - a target with a new last result (the live state's feed,
      :meth:`monitor.runtime.state.LiveState.watch`, as for the targets' own families), and
      the scheduler's targets replaced (reload, sharding);
    - time: every SLA whose running bucket is no longer the one it was evaluated in (a
      bucket closed: its month's figures move and its running bucket changes; a month
      starts only where a bucket does), and a heap of the instants at which a fresh result
      goes stale or a running outage stops being open;
    - the claims replaced, the accountant role moving (issue 14), and SLAs judged by
      locations, evaluated at every scrape (other locations' tallies move without an event
      here).

    :meth:`refresh` does the same work without writing the body: the daemon calls it after
    each summary, so after a bucket closes the SLAs are brought up to date in slices before
    the next scrape rather than inside it.
    """

    def __init__(self, daemon: DaemonView, *, gate_ready: bool = False) -> None:
        """``gate_ready``: the daemon is not ready (``Health.warming``) until every SLA's lines
        were written once (:meth:`refresh` after the first summary, or a scrape)."""
        self._daemon = daemon
        self._info: tuple[object, object, bytes] | None = None
        self._lock = asyncio.Lock()
        self._accounting: object = None
        self._feed: ChangeFeed | None = None
        self._inputs: AccountingInputs | None = None
        self._entries: list[_SlaText] = []
        self._positions: dict[str, int] = {}
        self._by_target: dict[str, tuple[int, ...]] = {}
        self._groups: dict[int, list[int]] = {}
        self._located: list[int] = []
        self._bucket_seen: dict[int, int] = {}
        self._live: object = None
        self._lasts: TargetFeed | None = None
        """The live state's feed of the targets a result was recorded for (ps32)."""
        self._scheduled: object = None
        self._claims: object = None
        self._accountant: bool | None = None
        self._heap: list[tuple[float, int, int]] = []
        self._todo: dict[int, int] = {}
        self._refreshing: asyncio.Task[None] | None = None
        # fs28 (issue 20): after a start every SLA's lines are to be written (20,000 months
        # and 10,000 SLAs' text at 10,000 SLAs). /readyz answered before they were, so the
        # first scrape after ready wrote them all, beside the first summary and the first
        # interval's probes: 13 s at a month's start, 32 s at its end (the tree before the
        # third round did the same; its bench scraped only after a warm-up interval). Ready
        # now means a scrape finds them written, each exact (the summary's own months).
        self._gate = WarmingGate(daemon.health.warming if gate_ready else None, WARMING)

    @property
    def warming(self) -> bool:
        """True until every SLA's lines were written once (only with ``gate_ready``)."""
        return self._gate.closed

    async def render(self) -> str:
        """The text of every family in ``SLA_FAMILY_NAMES`` (see :meth:`render_bytes`)."""
        return (await self.render_bytes()).decode("utf-8")

    async def render_bytes(self) -> bytes:
        """The encoded text of every family in ``SLA_FAMILY_NAMES`` (the pieces of
        :meth:`render_parts` joined)."""
        return b"".join(await self.render_parts())

    async def render_parts(self, head: Sequence[bytes] = ()) -> SlaPieces:
        """The encoded text of every family in ``SLA_FAMILY_NAMES`` as pieces to send one
        after the other (after ``head``), yielding to the event loop
        every ``SLICE_SECONDS`` of work. A reload (or an exclusion added) while it yields
        changes the SLAs: the work starts again over the new ones, so a scrape never mixes
        two configurations nor builds running months for an SLA that is gone.

        The pieces are the SLAs' lines as they are now (sc24, issue 20: never joined into
        one body), each chunk of them joined and encoded when it is sent (``SlaPieces``):
        they stay what was rendered while later scrapes and summaries write new lines."""
        async with self._lock:
            await self._bring_up_to_date()
            self._gate.open()  # every SLA's lines written: what the warming refresh is for
            return self._parts(head)

    async def refresh(self) -> None:
        """Evaluate what changed since the last scrape, in slices, without writing the body:
        the next scrape finds it done. The lock is taken one slice at a time, so a scrape
        arriving meanwhile waits for one slice at most and carries on with what is left.

        cpu26 (issue 20): an SLA flagged only for ``slawatch_service_up`` or
        ``slawatch_bucket_state`` (one of its targets has a new result, a result went stale)
        is left flagged for the scrape. The daemon refreshes every second and Prometheus
        scrapes every 15-60 s; an SLA of 100 targets at a 30 s interval has a new result
        every second, and evaluating those two families (over every target of the SLA) at
        every refresh was a fifth of the whole daemon's CPU at 100 SLAs of 100. Left to the
        scrape, each is evaluated once per scrape, from the targets' latest results then,
        which is what the scrape writes either way. What the refresh is for (a bucket close:
        every SLA's months moved, seconds of work at 10,000 SLAs) is still done here."""
        d = self._daemon
        warming = self._gate.closed  # fs28: every SLA is flagged then (their lines unwritten)
        async with self._lock:
            self._collect(d.clock())
            picked = self._refreshed()
            months = sum(1 for position in picked if self._todo[position] & _MONTH)
        while picked:
            async with self._lock:
                if self._accounting is not d.accounting or self._inputs is not d.accounting.inputs:
                    self._collect(d.clock())  # a reload meanwhile: the new SLAs, all of them
                    picked = self._refreshed()
                if await self._process(d.clock(), yielding=False, one_slice=True, picked=picked):
                    break
            await asyncio.sleep(0)
        if warming and self._accounting is d.accounting:
            self._gate.open()
        # c21: lines that live until their SLA moves again (a bucket close) leave the
        # collector's full passes (monitor.runtime.heap).
        heap.long_lived(months)

    def refresh_soon(self) -> None:
        """Start :meth:`refresh` in its own task unless one runs (the daemon's hook after each
        summary: the flush does not wait for it)."""
        task = self._refreshing
        if task is None or task.done():
            self._refreshing = asyncio.get_running_loop().create_task(self.refresh())

    async def settled(self) -> None:
        """Wait for the refresh started by :meth:`refresh_soon`, if one runs."""
        task = self._refreshing
        if task is not None:
            await task

    def _refreshed(self) -> list[int]:
        """The flagged SLAs a refresh evaluates: all but those flagged only for the families
        the scrape evaluates anyway (``_SCRAPE_ONLY``), once their lines were written."""
        entries = self._entries
        return [
            position
            for position, flags in self._todo.items()
            if flags & ~_SCRAPE_ONLY or entries[position].row is None
        ]

    async def _bring_up_to_date(self) -> None:
        d = self._daemon
        for attempt in range(4):
            now = d.clock()
            self._collect(now)
            if await self._process(now, yielding=attempt < 3):
                return

    # -- what changed ------------------------------------------------------------------------
    def _reindex(self) -> None:
        """A new configuration (or accounting): every SLA evaluated again."""
        d = self._daemon
        accounting = d.accounting
        if self._accounting is not accounting or self._feed is None:
            self._accounting = accounting
            self._feed = accounting.watch()
        inputs = accounting.inputs
        self._inputs = inputs
        old = {entry.policy.name: entry for entry in self._entries}
        entries: list[_SlaText] = []
        by_target: dict[str, list[int]] = {}
        groups: dict[int, list[int]] = {}
        located: list[int] = []
        for position, policy in enumerate(inputs.policies):
            service = inputs.services[policy.service]
            entry = old.get(policy.name)
            if entry is None or entry.policy is not policy or entry.service is not service:
                entry = _SlaText(policy, service)
            else:
                # c21: the heap starts empty below, so the instants a kept entry waited for
                # are asked again when it is evaluated (else a result going stale after an
                # exclusion or a reload was never seen: found by the property test).
                entry.up_due = entry.outage_due = None
            entries.append(entry)
            for name in entry.leaves:
                by_target.setdefault(name, []).append(position)
            groups.setdefault(policy.bucket_seconds, []).append(position)
            if policy.locations is not None:
                located.append(position)
        self._entries = entries
        self._positions = {entry.policy.name: p for p, entry in enumerate(entries)}
        self._by_target = {name: tuple(p) for name, p in by_target.items()}
        self._groups = groups
        self._located = located
        self._bucket_seen = {}
        self._heap = []
        self._todo = dict.fromkeys(range(len(entries)), _ALL)

    def _collect(self, now: float) -> None:
        """Flag the SLAs whose lines may have changed since they were last evaluated."""
        d = self._daemon
        feed = self._feed
        if (
            feed is None
            or self._accounting is not d.accounting
            or self._inputs is not d.accounting.inputs
        ):
            self._reindex()
            feed = self._feed
            assert feed is not None
            feed.take()
            feed.take_running()
        todo = self._todo
        everything, names = feed.take()
        accountant = d.health.accountant
        if everything or accountant != self._accountant:
            self._accountant = accountant
            for position in range(len(self._entries)):
                todo[position] = _ALL
        positions = self._positions
        for name in names:
            found = positions.get(name)
            if found is not None:
                todo[found] = todo.get(found, 0) | _MONTH | _BUCKET | _TIMED | _CLAIM
        for name in feed.take_running():
            found = positions.get(name)
            if found is not None:
                todo[found] = todo.get(found, 0) | _BUCKET
        scheduled = d.scheduler.targets
        if scheduled is not self._scheduled:
            self._scheduled = scheduled
            for position in range(len(self._entries)):
                todo[position] = todo.get(position, 0) | _UP
        # A new last result: the target's running bucket and the service's instant state.
        # ps32 (issue 20): the targets the live state's feed names, not a look at every
        # target's last result (10,000 at every refresh, once a second, and every scrape).
        state = d.state
        lasts = self._lasts
        changed: Iterable[str]
        if lasts is None or self._live is not state:
            self._live = state
            self._lasts = state.watch()
            changed = list(state.targets)  # every target with a result, as the feed would
        else:
            changed = lasts.take()
        by_target = self._by_target
        for name in changed:
            for position in by_target.get(name, ()):
                todo[position] = todo.get(position, 0) | _UP | _BUCKET
        # Time: a bucket closed (every SLA of that length: its month and running bucket).
        for size, members in self._groups.items():
            start = bucket_floor(now, size)
            if self._bucket_seen.get(size) != start:
                self._bucket_seen[size] = start
                for position in members:
                    todo[position] = todo.get(position, 0) | _MONTH | _BUCKET | _TIMED
        heap, entries = self._heap, self._entries
        while heap and heap[0][0] <= now:
            at, position, flag = heapq.heappop(heap)
            # Entries are left in the heap when an SLA is evaluated again before their instant
            # (a new result): only the instant the SLA last asked for counts.
            entry = entries[position]
            if at == (entry.up_due if flag == _UP else entry.outage_due):
                todo[position] = todo.get(position, 0) | flag
        claims = d.claims
        if claims is not self._claims:
            self._claims = claims
            for position in range(len(self._entries)):
                todo[position] = todo.get(position, 0) | _CLAIM
        for position in self._located:
            todo[position] = _ALL

    async def _process(
        self,
        now: float,
        *,
        yielding: bool,
        one_slice: bool = False,
        picked: list[int] | None = None,
    ) -> bool:
        """Evaluate the flagged SLAs (with ``picked``: those of them it names, taken from its
        end; one no longer flagged, evaluated by a scrape meanwhile, is passed over); False
        when the configuration changed meanwhile (or, with ``one_slice``, when a slice of work
        is done and some SLAs are left)."""
        d = self._daemon
        accounting = d.accounting
        inputs = accounting.inputs
        feed = self._feed
        assert feed is not None
        claims = d.claims
        accountant = d.health.accountant
        moment = utc_from_epoch(now)
        months: dict[str, Month] = {}
        todo = self._todo
        entries = self._entries
        heap = self._heap
        mark = time.perf_counter()
        while picked if picked is not None else todo:
            if one_slice and time.perf_counter() - mark > SLICE_SECONDS:
                return False
            if yielding and time.perf_counter() - mark > SLICE_SECONDS:
                await asyncio.sleep(0)
                if accounting.inputs is not inputs or d.accounting is not accounting:
                    return False
                mark = time.perf_counter()
            if picked is None:
                position, flags = todo.popitem()
            else:
                position = picked.pop()
                flags = todo.pop(position, 0)
                if not flags:
                    continue
            entry = entries[position]
            policy = entry.policy
            if policy.locations is not None and not accountant:
                # Issue 14: one daemon (the accountant) exports what pages; every daemon still
                # computes the same month for its API and web view.
                row: tuple[str, ...] | None = None
            else:
                if flags & _MONTH or entry.result is None:
                    # What these calls change is in the results they return.
                    feed.paused = True
                    try:
                        result = accounting.month_result(policy, moment, stamp=False)
                        # sm32 (issue 20): the previous month's money only (a settled month
                        # is not built for it).
                        try:
                            previous: MonthMoney | None = accounting.previous_money(
                                policy, moment, result.month.previous()
                            )
                        except HistoryNotLoaded:
                            previous = None  # read back from the store at the next flush
                    finally:
                        feed.paused = False
                    if entry.result is not result:
                        entry.set_result(result)
                    if entry.previous is not previous or previous is None:
                        entry.set_previous(previous)
                    flags |= _TIMED | _CLAIM
                if flags & _UP or entry.up[0] is None:
                    entry.up_line(d, now)
                    due = min((s + limit for s, limit in entry.fresh), default=None)
                    if due is not None and due != entry.up_due:
                        heapq.heappush(heap, (due, position, _UP))
                    entry.up_due = due
                if flags & _BUCKET or entry.bucket[0] is None:
                    month = months.get(policy.timezone)
                    if month is None:
                        month = months[policy.timezone] = month_containing(moment, policy.timezone)
                    entry.bucket_lines(d, now, month)
                if flags & _TIMED or entry.outage[0] is None:
                    entry.outage_line(now)
                    entry.locations = entry.location_lines(now)
                    due = None
                    if entry.outage[0] and entry.outage_end is not None:
                        assert entry.result is not None
                        due = entry.outage_end + entry.result.bucket_seconds
                        if due != entry.outage_due:
                            heapq.heappush(heap, (due, position, _TIMED))
                    entry.outage_due = due
                if flags & _CLAIM or entry.claim[2] is None:
                    assert entry.result is not None
                    entry.claim_line(claims, entry.result.month.previous())
                row = (
                    entry.up[1],
                    entry.bucket[1],
                    *entry.month_lines,
                    *entry.previous_lines,
                    entry.outage[1],
                    entry.claim[3],
                    entry.locations,
                )
            if row != entry.row:
                entry.row = row
                entry.row_bytes = _encoded_length(row) if row else 0
        return True

    def _parts(self, head: Sequence[bytes]) -> SlaPieces:
        """The body as pieces: each family's header, then its text chunk by chunk, then
        ``slawatch_target_info``.

        No body is kept (c22, issue 20): between two scrapes some SLA's lines nearly always
        moved, so a kept body was rarely served again, and it was a further copy of the text.
        Nor is one joined any more (sc24): the pieces go to the socket one after the other
        (``monitor.http.pieces``). Nor are the chunks kept (mem34): see ``SlaPieces``."""
        services = self._daemon.accounting.inputs.services
        info = self._target_info(services)
        rows = [entry.row for entry in self._entries if entry.row]
        size = sum(entry.row_bytes for entry in self._entries if entry.row)
        return SlaPieces(head, rows, info, size=size)

    def _target_info(self, services: Mapping[str, ServiceDef]) -> bytes:
        """``slawatch_target_info``: fixed by the configuration, written (and encoded: sc24)
        once per reload."""
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
        text = "".join(lines).encode("utf-8")
        self._info = (config, services, text)
        return text


_ENCODED_HEADERS = tuple(header.encode("utf-8") for header in _HEADERS)


class SlaPieces(Sequence[bytes]):
    """The ``/metrics`` body as pieces: ``head``, then each per-SLA family's header and its
    text ``CHUNK_SLAS`` SLAs at a time, then ``slawatch_target_info``, then ``tail``.

    mem34 (issue 20): a chunk's text is joined and encoded when its piece is read (as
    ``monitor.http.pieces`` sends it), from ``rows``: each SLA's lines (a tuple of strings
    per SLA, one per family) as they were when the scrape rendered them. Rows are immutable
    and replaced, never changed, when an SLA's lines move, so the pieces are the rendered
    text however long the sending takes. The chunks were kept joined and encoded between
    scrapes before: a second copy of the per-SLA text (2.1 KB per one-target SLA, 21 MB at
    10,000, ``bench/sla_memory_bench.py --store``) to save a join of ~5 ms of CPU per
    scrape at 10,000 SLAs. Every piece is made again each time it is read; the send reads
    each once, its declared length coming from :attr:`nbytes`. Nothing of it is kept."""

    __slots__ = ("_chunks", "_head", "_info", "_rows", "_size", "_tail")

    def __init__(
        self,
        head: Sequence[bytes],
        rows: Sequence[tuple[str, ...]],
        info: bytes,
        tail: Sequence[bytes] = (),
        *,
        size: int | None = None,
    ) -> None:
        """``size``: the length of ``rows``' lines encoded, if the caller knows it."""
        self._head = tuple(head)
        self._rows = rows
        self._info = info
        self._tail = tuple(tail)
        self._chunks = -(-len(rows) // CHUNK_SLAS)
        self._size = sum(map(_encoded_length, rows)) if size is None else size

    def followed_by(self, tail: Sequence[bytes]) -> SlaPieces:
        """These pieces, then ``tail``'s."""
        return SlaPieces(self._head, self._rows, self._info, (*self._tail, *tail), size=self._size)

    @property
    def nbytes(self) -> int:
        """The length of every piece joined, without making them (``monitor.http.pieces``
        declares it before sending them)."""
        return (
            sum(map(len, self._head))
            + _HEADERS_BYTES
            + self._size
            + len(self._info)
            + sum(map(len, self._tail))
        )

    def __len__(self) -> int:
        return len(self._head) + len(_HEADERS) * (1 + self._chunks) + 1 + len(self._tail)

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        size = len(self)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("piece index out of range")
        if index < len(self._head):
            return self._head[index]
        index -= len(self._head)
        per_family = 1 + self._chunks
        if index >= len(_HEADERS) * per_family:
            index -= len(_HEADERS) * per_family
            return self._info if index == 0 else self._tail[index - 1]
        family, at = divmod(index, per_family)
        if at == 0:
            return _ENCODED_HEADERS[family]
        lo = (at - 1) * CHUNK_SLAS
        return _chunk_text(self._rows[lo : lo + CHUNK_SLAS], family)

    def __iter__(self) -> Iterator[bytes]:
        yield from self._head
        rows = self._rows
        for family, header in enumerate(_ENCODED_HEADERS):
            yield header
            for lo in range(0, len(rows), CHUNK_SLAS):
                yield _chunk_text(rows[lo : lo + CHUNK_SLAS], family)
        yield self._info
        yield from self._tail


_HEADERS_BYTES = sum(map(len, _ENCODED_HEADERS))


def _encoded_length(row: tuple[str, ...]) -> int:
    """The length of ``row``'s lines encoded in UTF-8: their length in characters when
    every one is ASCII (the common line: a label holding any other character is rare)."""
    if all(map(str.isascii, row)):
        return sum(map(len, row))
    return sum(len(line.encode("utf-8")) for line in row)


def _chunk_text(rows: Sequence[tuple[str, ...]], family: int) -> bytes:
    """Family ``family``'s lines of ``rows``, joined and encoded."""
    return "".join(map(itemgetter(family), rows)).encode("utf-8")


def instant_service_state(daemon: DaemonView, service: ServiceDef, now: float) -> BucketState:
    """The service by its rule over its targets' latest results; a result older than two
    intervals (or none yet) is unknown, so a stalled monitor never reads as available."""
    scheduled = daemon.scheduler.targets
    seen: list[object] = []
    leaves = service.all_targets
    for name in leaves:
        status = daemon.state.targets.get(name)
        seen.append(status.last if status else None)
        seen.append(scheduled.get(name))
    return _instant_state(service, leaves, seen, now, [])


def _instant_state(
    service: ServiceDef,
    leaves: Sequence[str],
    seen: Sequence[object],
    now: float,
    fresh: list[tuple[float, float]],
) -> BucketState:
    """:func:`instant_service_state` from what was read for ``leaves`` (``service.all_targets``,
    which the caller holds: mt33, a property that builds a tuple at each read), in order: each
    target's last result (or None) then its scheduled target (or None). Appends to ``fresh``
    the (started_at, staleness limit) of each result judged fresh."""
    states: dict[str, BucketState] = {}
    for index, name in enumerate(leaves):
        last, target = seen[2 * index], seen[2 * index + 1]
        if not isinstance(last, ProbeResult) or not isinstance(target, ScheduledTarget):
            states[name] = BucketState.UNKNOWN
            continue
        limit = 2 * target.interval + target.timeout
        if now - last.started_at > limit:
            states[name] = BucketState.UNKNOWN
        else:
            states[name] = BucketState.AVAILABLE if last.ok else BucketState.UNAVAILABLE
            fresh.append((last.started_at, limit))
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


def idle_bucket_state(service: ServiceDef) -> BucketState:
    """:func:`provisional_bucket_state` of an SLA not judged by locations whose running bucket
    has no tally of any of ``service``'s targets and no window over it: every target unknown
    (``target_verdict`` of no tally), and no failure for the canaries to excuse
    (``tests/test_metrics_sla_text_idle.py`` holds the two equal)."""
    return nested_verdict(service, {})


def provisional_bucket_state(
    daemon: DaemonView,
    policy: SlaPolicy,
    service: ServiceDef,
    now: float,
    *,
    month: Month | None = None,
    cells: Sequence[Tally | None] | None = None,
) -> BucketState:
    """The running bucket's verdict so far, by the same rules the month will apply once it
    closes (the engine itself reports a running bucket as pending). ``month`` is the month
    holding ``now`` in the SLA's zone, when the caller already knows it; ``cells`` the running
    bucket's tallies of ``service.all_targets`` (None where absent), when it read them
    (cpu26: ``/metrics`` did, to tell whether they changed)."""
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
    if cells is None:
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
