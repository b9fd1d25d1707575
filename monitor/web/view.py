"""What the pages read (:class:`WebSource`) and the pure models they are drawn from.

The pages never compute a month: every figure comes from a :class:`MonthResult` the source
hands over, computed by the same function the daemon, ``/metrics`` and ``slawatch report`` use.
This module only arranges those results for display: bucket states into rows of local days,
runs of equal state into tooltips, outages found again by time for a run's reasons.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from monitor.sla.calendar import Month, zone
from monitor.sla.month import MonthResult, Outage
from monitor.sla.policy import BucketState, ExclusionKind, SlaPolicy
from monitor.support.contract import ContractSummary
from probes.result import ProbeResult

CELL_SECONDS = 300
"""A heat-map cell is one bucket; buckets shorter than this are grouped into cells this long
(the demo's 10-second buckets would otherwise draw 8,640 cells a day)."""


@dataclass(frozen=True)
class RecentSlot:
    """One period of a target's recent probes: counts, latency and the worst call quality."""

    start: float
    probes: int
    failed: int
    duration_sum: float
    duration_max: float
    mos_min: float | None = None
    loss_max: float | None = None
    jitter_max: float | None = None

    @property
    def duration_mean(self) -> float:
        return self.duration_sum / self.probes if self.probes else 0.0


@dataclass(frozen=True)
class FailureRecord:
    """A failed probe as stored in the evidence table."""

    at: datetime
    outcome: str
    reason: str
    duration: float
    details: Mapping[str, str | int | float | bool | None]


@dataclass(frozen=True)
class TargetView:
    """What the target page shows about one probe target."""

    name: str
    kind: str
    role: str
    interval_seconds: float
    services: tuple[str, ...]
    last: ProbeResult | None
    outcomes: Mapping[str, int]
    slots: tuple[RecentSlot, ...]
    slot_seconds: int
    failures: tuple[FailureRecord, ...]


class WebSource(Protocol):
    """Everything the pages read; the running daemon provides it through
    :class:`monitor.http.pages_source.DaemonWebSource`."""

    @property
    def vantage(self) -> str: ...

    def now(self) -> datetime:
        """The current instant (UTC): pages show the month as of it."""
        ...

    def policies(self) -> Sequence[SlaPolicy]: ...

    async def month_results(self, month: Month | None, sla: str | None = None) -> list[MonthResult]:
        """Each SLA's ``month`` (``None``: the month holding now in the SLA's zone), or only
        ``sla``'s; computed by the daemon's one month function. ``ValueError`` for a month
        that has not started."""
        ...

    async def support_summaries(self, month: Month | None) -> list[ContractSummary]:
        """Every support contract's faults and credits for ``month`` (``None``: this month)."""
        ...

    async def claim_draft(self, result: MonthResult) -> str:
        """The claim text ``slawatch report --format claim`` prints for ``result`` alone."""
        ...

    def target_names(self) -> Sequence[str]: ...

    async def target_view(self, name: str) -> TargetView | None:
        """The target's last results and the last day's figures; ``None`` if unknown."""
        ...


# -- states ---------------------------------------------------------------------------------

STATE_WORDS: Mapping[BucketState, str] = {
    BucketState.AVAILABLE: "available",
    BucketState.UNAVAILABLE: "unavailable",
    BucketState.EXCLUDED: "excluded",
    BucketState.UNKNOWN: "unknown (not measured)",
    BucketState.PENDING: "pending (not yet elapsed)",
}
STATE_CLASS: Mapping[BucketState, str] = {
    BucketState.AVAILABLE: "a",
    BucketState.UNAVAILABLE: "u",
    BucketState.EXCLUDED: "x",
    BucketState.UNKNOWN: "q",
    BucketState.PENDING: "p",
}
KIND_CLASS: Mapping[ExclusionKind, str] = {
    ExclusionKind.SCHEDULED_MAINTENANCE: "xm",
    ExclusionKind.FORCE_MAJEURE: "xf",
    ExclusionKind.TELECOM_PROVIDER: "xt",
    ExclusionKind.CUSTOMER_NETWORK: "xc",
    ExclusionKind.CUSTOMER_MISCONFIGURATION: "xc",
    ExclusionKind.THIRD_PARTY: "xt",
    ExclusionKind.SUSPENSION: "xs",
    ExclusionKind.PRE_RELEASE_FEATURE: "xs",
}
# A cell holding several buckets shows the one that matters most for a claim.
_PRECEDENCE = (
    BucketState.UNAVAILABLE,
    BucketState.UNKNOWN,
    BucketState.EXCLUDED,
    BucketState.AVAILABLE,
    BucketState.PENDING,
)


def kind_words(kind: ExclusionKind) -> str:
    return str(kind).replace("_", " ")


@dataclass(frozen=True)
class Run:
    """Consecutive cells of a day row drawn the same way, with the tooltip they share."""

    first: int
    """Index of the run's first cell within its row."""
    starts: tuple[int, ...]
    """UTC epoch start of each cell."""
    css: str
    state: BucketState
    kind: ExclusionKind | None
    title: str
    outage: int | None
    """Index into ``MonthResult.outages`` for unavailable runs."""


@dataclass(frozen=True)
class DayRow:
    day: date
    cells: int
    hours: float
    runs: tuple[Run, ...]
    counts: Mapping[BucketState, int]
    """Buckets (not cells) of the day per state."""


@dataclass(frozen=True)
class Heatmap:
    cell_seconds: int
    buckets_per_cell: int
    rows: tuple[DayRow, ...]
    kinds: tuple[ExclusionKind, ...]
    """Exclusion kinds present, for the legend."""


def cell_seconds_for(bucket_seconds: int) -> int:
    """The cell length: the bucket, or a whole number of buckets near ``CELL_SECONDS`` that
    still divides an hour (so rows stay aligned to the local clock across DST shifts)."""
    if bucket_seconds >= CELL_SECONDS:
        return bucket_seconds
    per = CELL_SECONDS // bucket_seconds
    while per > 1 and 3600 % (per * bucket_seconds):
        per -= 1
    return per * bucket_seconds


def local_days(result: MonthResult) -> list[tuple[date, int, int]]:
    """(local date, UTC start epoch, UTC end epoch) for every day of the result's month."""
    tz = zone(result.timezone)
    first = date(result.month.year, result.month.month, 1)
    days = []
    day = first
    while day.month == first.month:
        following = day + timedelta(days=1)
        start = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
        end = datetime(following.year, following.month, following.day, tzinfo=tz).timestamp()
        days.append((day, int(start), int(end)))
        day = following
    return days


def build_heatmap(result: MonthResult) -> Heatmap:
    """The month's buckets as rows of local days (276 or 300 cells of 5 minutes on DST days)."""
    size = result.bucket_seconds
    cell = cell_seconds_for(size)
    per = cell // size
    month_start = int(result.start.timestamp())
    states = result.states
    kinds = result.excluded_kinds
    outage_starts = [int(o.start.timestamp()) for o in result.outages]
    outage_texts = [outage_words(o) for o in result.outages]

    def cell_key(
        lo: int,
    ) -> tuple[str, BucketState, ExclusionKind | None, tuple[int, int] | None]:
        if per == 1:
            shown = states[lo]
        else:
            group = states[lo : lo + per]
            shown = next(s for s in _PRECEDENCE if s in group)
        if shown is BucketState.EXCLUDED:
            kind = next((kinds[i] for i in range(lo, lo + per) if i in kinds), None)
            kind = kind or ExclusionKind.SCHEDULED_MAINTENANCE
            return KIND_CLASS[kind], shown, kind, None
        if shown is BucketState.UNAVAILABLE:
            # A cell of several buckets may hold several outages: the tooltip names them all.
            down = [i for i in range(lo, lo + per) if states[i] is shown]
            first = _outage_at(outage_starts, month_start + down[0] * size) or 0
            last = _outage_at(outage_starts, month_start + down[-1] * size) or 0
            return "u", shown, None, (first, last)
        return STATE_CLASS[shown], shown, None, None

    rows = []
    for day, start, end in local_days(result):
        first_bucket = (start - month_start) // size
        cells = (end - start) // cell
        runs: list[Run] = []
        position = 0
        for (css, shown, kind, span), members in itertools.groupby(
            range(cells), key=lambda index: cell_key(first_bucket + index * per)
        ):
            indexes = list(members)
            lo = first_bucket + indexes[0] * per
            hi = first_bucket + (indexes[-1] + 1) * per
            starts = tuple(start + index * cell for index in indexes)
            begin = datetime.fromtimestamp(starts[0], UTC)
            finish = datetime.fromtimestamp(starts[-1] + cell, UTC)
            counts = Counter(states[lo:hi])
            title = run_title(result, begin, finish, shown, kind, counts)
            outage = None
            if span is not None:
                outage = span[0]
                if span[0] == span[1]:
                    title += "; " + outage_texts[outage]
                else:
                    title += f"; {span[1] - span[0] + 1} outages; " + outage_words(
                        *result.outages[span[0] : span[1] + 1]
                    )
            runs.append(Run(position, starts, css, shown, kind, title, outage))
            position += len(indexes)
        day_states = states[first_bucket : first_bucket + cells * per]
        rows.append(
            DayRow(
                day=day,
                cells=cells,
                hours=(end - start) / 3600,
                runs=tuple(runs),
                counts=dict(Counter(day_states)),
            )
        )
    present = sorted(set(kinds.values()), key=lambda k: list(ExclusionKind).index(k))
    return Heatmap(cell, per, tuple(rows), tuple(present))


def _outage_at(starts: list[int], epoch: int) -> int | None:
    position = bisect.bisect_right(starts, epoch) - 1
    return position if position >= 0 else None


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def run_title(
    result: MonthResult,
    begin: datetime,
    end: datetime,
    state: BucketState,
    kind: ExclusionKind | None,
    buckets: Mapping[BucketState, int],
) -> str:
    """The tooltip's times, state and buckets (an outage's reasons are added by the caller)."""
    tz = zone(result.timezone)
    lo, hi = begin.astimezone(tz), end.astimezone(tz)
    # Formatted by hand: strftime was most of a worst-case page's render time.
    when = (
        f"{_DAYS[lo.weekday()]} {lo.day:02d} {_MONTHS[lo.month - 1]} "
        f"{lo.hour:02d}:{lo.minute:02d}–{hi.hour:02d}:{hi.minute:02d} {hi.tzname()}"
    )
    utc = (
        ""
        if lo.utcoffset() == hi.utcoffset() == timedelta(0)
        else f" ({begin.hour:02d}:{begin.minute:02d}–{end.hour:02d}:{end.minute:02d} UTC)"
    )
    words = STATE_WORDS[state]
    if kind is not None:
        words = f"excluded: {kind_words(kind)}"
    total = sum(buckets.values())
    if len([s for s in buckets if buckets[s]]) > 1:
        mix = ", ".join(
            f"{buckets[s]} {STATE_WORDS[s].split(' ')[0]}" for s in _PRECEDENCE if buckets[s]
        )
        count = f"{total} buckets: {mix}"
    else:
        count = f"{total} bucket" + ("" if total == 1 else "s")
    return f"{when}{utc}: {words}; {count}"


def outage_words(*outages: Outage) -> str:
    """The reasons (with failed probe counts) and failing targets of one or more outages."""
    errors: Counter[str] = Counter()
    targets: Counter[str] = Counter()
    for outage in outages:
        errors.update(outage.errors)
        targets.update(outage.failed_targets)
    reasons = ", ".join(f"{r} ×{n}" for r, n in errors.most_common(4)) or "none recorded"
    names = ", ".join(name for name, _ in targets.most_common(4)) or "none recorded"
    return f"reason: {reasons}; failing targets: {names}"


# -- figures ----------------------------------------------------------------------------------


def tier_words(lower: object, upper: object, lower_inclusive: bool, upper_inclusive: bool) -> str:
    """A credit band as the contract writes it: ``below 99.9% and at least 99.0%``."""
    parts = []
    if upper is not None:
        parts.append(f"{'at most' if upper_inclusive else 'below'} {upper}%")
    if lower is not None:
        parts.append(f"{'at least' if lower_inclusive else 'above'} {lower}%")
    return " and ".join(parts) or "any uptime"


def months_before(month: Month, count: int) -> list[Month]:
    """``month`` and the ``count - 1`` months before it, newest first."""
    out = [month]
    while len(out) < count:
        out.append(out[-1].previous())
    return out
