"""Support requests ("faults"), their response deadlines, lateness and service credits.

The licence's Schedule 1 in code. A fault is a frozen value rebuilt from its event history
(opened, acknowledged, restored, solved, reassessed); nothing is ever overwritten, so every
deadline and credit can be re-derived and explained from the record.

Deadlines (``DeadlineTable``, default = the contract):

* Level 1 (acknowledgement): ``acknowledge`` of support time after receipt;
* Level 2 (restoration / workaround; for a minor error, the permanent correction):
  ``restore_days`` Business Days after the Level 1 *deadline*;
* Level 3 (Solution / permanent correction): ``solve_days`` Business Days after *receipt*.

A receipt outside Support Hours starts the clock at the next opening (that is what adding
support time does). A level counts as met at the earliest time recorded for it or any higher
level: a permanent correction also restores and acknowledges.

Credits (``CreditTable``): clause 5.1 pays "for each additional day or part of a day ... that
UMA fails to provide a Solution". The Solution deadline is the deadline of ``solution_level``
in the severity's rule: Level 3 for business-critical failures (whose Level 3 literally reads
"implement a Solution within 3 Business Days of receipt") and for defects with a workaround
(whose Level 3 is the permanent correction), Level 2 for minor errors (their only correction).
Late days are consecutive 24-hour periods from the earliest Solution deadline among the
severities the fault has held; a period counts when, at its start, the Solution due under the
severity then in force was overdue and not yet provided, and it earns that severity's percent.
So a business-critical fault reassessed to a defect after a workaround earns 5% a day until the
reassessment and 1% after it, as the contract's severity reduction implies. At most
``max_days`` periods are counted per fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import IntEnum, StrEnum
from types import MappingProxyType

from monitor.support.calendar import SupportHours, add_business_days, add_support_hours

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
LATE_DAY = timedelta(hours=24)


class FaultError(ValueError):
    """Raised by ``open_fault`` and ``record`` when an operation contradicts the fault's
    history (an event before receipt, a level recorded twice at different times)."""


class Severity(StrEnum):
    """The contract's three severity levels of Operational Fault."""

    BUSINESS_CRITICAL = "business_critical"
    DEFECT_WITH_WORKAROUND = "defect_with_workaround"
    MINOR = "minor"


class Level(IntEnum):
    """The contract's response levels."""

    ACKNOWLEDGE = 1
    RESTORE = 2
    SOLVE = 3


class EventKind(StrEnum):
    """What happened to a fault."""

    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    RESTORED = "restored"
    SOLVED = "solved"
    REASSESSED = "reassessed"
    CLEARED = "cleared"
    """The symptom cleared (an alert resolved): an observation, not a response level; it
    counts as a level only through a separate level event (``resolved_records``)."""


OBSERVED_SOURCES = frozenset({"alertmanager"})
"""Sources that record what a monitor saw, not what the vendor delivered. A level recorded by
such a source counts for that level only: a restoration observed when an alert cleared says
nothing about an acknowledgement nobody gave."""


LEVEL_EVENTS: Mapping[Level, EventKind] = MappingProxyType(
    {
        Level.ACKNOWLEDGE: EventKind.ACKNOWLEDGED,
        Level.RESTORE: EventKind.RESTORED,
        Level.SOLVE: EventKind.SOLVED,
    }
)


def _aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what}: expected a timezone-aware datetime, got naive {value}")


@dataclass(frozen=True)
class FaultEvent:
    """One entry of a fault's history. ``at`` is when it happened in the world; ``severity``
    is set for ``opened`` and ``reassessed``; ``source`` says who recorded it (cli, api,
    alertmanager)."""

    kind: EventKind
    at: datetime
    severity: Severity | None = None
    note: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        _aware(self.at, f"{self.kind.value} event: at")
        has_severity = self.kind in (EventKind.OPENED, EventKind.REASSESSED)
        if has_severity != (self.severity is not None):
            raise ValueError(
                f"{self.kind.value} event: severity: expected "
                f"{'a severity' if has_severity else 'none'}, got {self.severity}"
            )


@dataclass(frozen=True)
class Fault:
    """A support request and its history (the first event is always ``opened``).

    ``alert_key`` (Alertmanager fingerprint + startsAt) is set for faults opened by the
    webhook; ``fingerprint`` is the alert's fingerprint alone.
    """

    id: str
    contract: str
    title: str
    events: tuple[FaultEvent, ...]
    alert_key: str | None = None
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(
                f"fault id: expected letters, digits and _.:- (at most 100), got {self.id!r}"
            )
        if not self.events or self.events[0].kind is not EventKind.OPENED:
            raise ValueError(f"fault {self.id}: history must start with an opened event")

    @property
    def received_at(self) -> datetime:
        return self.events[0].at

    @property
    def initial_severity(self) -> Severity:
        severity = self.events[0].severity
        assert severity is not None  # FaultEvent guarantees it for opened events
        return severity

    @property
    def severity(self) -> Severity:
        """The current severity: the latest (by ``at``) of opening and reassessments."""
        return self.severity_at(max(e.at for e in self.events))

    def severity_history(self) -> tuple[tuple[datetime, Severity], ...]:
        """``(from, severity)`` in time order; equal times keep recording order."""
        changes = [
            (e.at, e.severity)
            for e in self.events
            if e.kind in (EventKind.OPENED, EventKind.REASSESSED) and e.severity is not None
        ]
        ordered = sorted(enumerate(changes), key=lambda item: (item[1][0], item[0]))
        return tuple(change for _, change in ordered)

    def severity_at(self, instant: datetime) -> Severity:
        """The severity in force at ``instant`` (the initial one before receipt)."""
        current = self.initial_severity
        for since, severity in self.severity_history():
            if since <= instant:
                current = severity
        return current

    def recorded(self, level: Level) -> datetime | None:
        """When ``level`` itself was recorded (the first such event), or ``None``."""
        kind = LEVEL_EVENTS[level]
        return next((e.at for e in self.events if e.kind is kind), None)

    def met_at(self, level: Level) -> datetime | None:
        """When ``level`` was met: the earliest time recorded at it, or at a higher level the
        vendor delivered (a permanent correction also restores and acknowledges). A higher
        level only observed (``OBSERVED_SOURCES``, an alert clearing) implies nothing below
        it."""
        times = [
            e.at
            for lv in Level
            if lv >= level
            for e in self._first(lv)
            if lv is level or e.source not in OBSERVED_SOURCES
        ]
        return min(times) if times else None

    def _first(self, level: Level) -> tuple[FaultEvent, ...]:
        kind = LEVEL_EVENTS[level]
        return next(((e,) for e in self.events if e.kind is kind), ())

    @property
    def cleared_at(self) -> datetime | None:
        """When the symptom last cleared (the latest ``cleared`` event), or ``None``."""
        times = [e.at for e in self.events if e.kind is EventKind.CLEARED]
        return max(times) if times else None

    @property
    def is_open(self) -> bool:
        """Open until a permanent correction (Level 3) is recorded. This is the store's
        coarse flag; whether a Solution is still due under the contract's table is
        ``FaultSummary.open`` (a minor error is closed by its Level 2 correction)."""
        return self.recorded(Level.SOLVE) is None


def open_fault(
    fault_id: str,
    contract: str,
    title: str,
    severity: Severity,
    received_at: datetime,
    *,
    source: str = "",
    note: str = "",
    alert_key: str | None = None,
    fingerprint: str | None = None,
) -> Fault:
    """A new fault received at ``received_at``."""
    opened = FaultEvent(EventKind.OPENED, received_at, severity, note=note, source=source)
    return Fault(fault_id, contract, title, (opened,), alert_key, fingerprint)


def record(fault: Fault, event: FaultEvent) -> Fault:
    """``fault`` with ``event`` appended, or ``fault`` itself when the event changes nothing.

    Idempotent: recording a level again at the same time, or reassessing to the severity
    already in force, returns the fault unchanged. Recording a level a second time at a
    different time raises ``FaultError`` (history is never rewritten).
    """
    if event.kind is EventKind.OPENED:
        raise FaultError(f"fault {fault.id}: is already open (received {fault.received_at})")
    if event.at < fault.received_at:
        raise FaultError(
            f"fault {fault.id}: {event.kind.value} at {event.at.isoformat()} is before "
            f"receipt at {fault.received_at.isoformat()}"
        )
    if event.kind is EventKind.CLEARED:
        same = any(e.kind is EventKind.CLEARED and e.at == event.at for e in fault.events)
        return fault if same else replace(fault, events=(*fault.events, event))
    if event.kind is EventKind.REASSESSED:
        if fault.severity_at(event.at) is event.severity and all(
            since <= event.at for since, _ in fault.severity_history()
        ):
            return fault
        return replace(fault, events=(*fault.events, event))
    level = next(lv for lv, kind in LEVEL_EVENTS.items() if kind is event.kind)
    already = fault.recorded(level)
    if already is not None:
        if already == event.at:
            return fault
        raise FaultError(
            f"fault {fault.id}: Level {int(level)} ({event.kind.value}) was already recorded "
            f"at {already.isoformat()}, got {event.at.isoformat()}"
        )
    return replace(fault, events=(*fault.events, event))


@dataclass(frozen=True)
class DeadlineRule:
    """The response times for one severity (see the module docstring for the anchors)."""

    acknowledge: timedelta = timedelta(hours=4)
    restore_days: int | None = 1
    solve_days: int | None = 3
    solution_level: Level = Level.SOLVE

    def __post_init__(self) -> None:
        if self.acknowledge < timedelta(0):
            raise ValueError(f"acknowledge: expected a non-negative time, got {self.acknowledge}")
        for name in ("restore_days", "solve_days"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name}: expected a non-negative number of days, got {value}")
        if self.solution_level is Level.ACKNOWLEDGE:
            raise ValueError("solution_level: an acknowledgement is not a Solution; use 2 or 3")
        if self.solution_level is Level.RESTORE and self.restore_days is None:
            raise ValueError("solution_level: 2 needs restore_days")
        if self.solution_level is Level.SOLVE and self.solve_days is None:
            raise ValueError("solution_level: 3 needs solve_days")


DeadlineTable = Mapping[Severity, DeadlineRule]

CONTRACT_DEADLINES: DeadlineTable = MappingProxyType(
    {
        Severity.BUSINESS_CRITICAL: DeadlineRule(),
        Severity.DEFECT_WITH_WORKAROUND: DeadlineRule(),
        Severity.MINOR: DeadlineRule(restore_days=5, solve_days=None, solution_level=Level.RESTORE),
    }
)
"""Schedule 1 clause 4.1 as written."""


@dataclass(frozen=True)
class CreditTable:
    """Percent of the annual licence fee per late day, by severity; ``max_days`` per fault."""

    percent_per_day: Mapping[Severity, Decimal] = field(
        default_factory=lambda: MappingProxyType(
            {
                Severity.BUSINESS_CRITICAL: Decimal(5),
                Severity.DEFECT_WITH_WORKAROUND: Decimal(1),
                Severity.MINOR: Decimal(0),
            }
        )
    )
    max_days: int = 20

    def __post_init__(self) -> None:
        for severity in Severity:
            value = self.percent_per_day.get(severity)
            if value is None or not Decimal(0) <= value <= Decimal(100):
                raise ValueError(f"percent_per_day.{severity.value}: expected 0..100, got {value}")
        if self.max_days < 0:
            raise ValueError(f"max_days: expected a non-negative number, got {self.max_days}")


def severity_deadlines(
    severity: Severity, received_at: datetime, table: DeadlineTable, hours: SupportHours
) -> dict[Level, datetime]:
    """The deadline of each level that ``severity`` has, as UTC instants."""
    rule = table[severity]
    level1 = add_support_hours(received_at, rule.acknowledge, hours)
    result = {Level.ACKNOWLEDGE: level1}
    if rule.restore_days is not None:
        result[Level.RESTORE] = add_business_days(level1, rule.restore_days, hours)
    if rule.solve_days is not None:
        result[Level.SOLVE] = add_business_days(received_at, rule.solve_days, hours)
    return result


def deadlines(fault: Fault, table: DeadlineTable, hours: SupportHours) -> dict[Level, datetime]:
    """The fault's deadlines under its current severity."""
    return severity_deadlines(fault.severity, fault.received_at, table, hours)


@dataclass(frozen=True)
class LevelStatus:
    """One level of one fault as of ``now``: met or not, and how late (elapsed time)."""

    level: Level
    deadline: datetime
    met_at: datetime | None
    breached: bool
    lateness: timedelta
    """Time past the deadline until met (or until ``now`` while unmet); zero when on time."""


def level_statuses(
    fault: Fault, table: DeadlineTable, hours: SupportHours, now: datetime
) -> tuple[LevelStatus, ...]:
    """Every level's deadline, when it was met, and whether it is breached as of ``now``."""
    _aware(now, "now")
    result = []
    for level, deadline in sorted(deadlines(fault, table, hours).items()):
        met = fault.met_at(level)
        if met is not None and met > now:
            met = None  # recorded in the future relative to ``now``: not yet known then
        end = now if met is None else met
        lateness = max(end - deadline, timedelta(0))
        result.append(LevelStatus(level, deadline, met, lateness > timedelta(0), lateness))
    return tuple(result)


def solution_deadline(
    fault: Fault, severity: Severity, table: DeadlineTable, hours: SupportHours
) -> datetime:
    """When a Solution was due under ``severity`` (the deadline credits run from)."""
    rule = table[severity]
    return severity_deadlines(severity, fault.received_at, table, hours)[rule.solution_level]


@dataclass(frozen=True)
class LateDay:
    """One credited 24-hour period ``[start, start + 24h)`` (or part of it)."""

    number: int
    start: datetime
    severity: Severity
    percent: Decimal


def credit_days(
    fault: Fault,
    table: DeadlineTable,
    credits: CreditTable,
    hours: SupportHours,
    now: datetime,
) -> tuple[LateDay, ...]:
    """The late days that earn a credit, as of ``now`` (see the module docstring)."""
    _aware(now, "now")
    held = {severity for at, severity in fault.severity_history() if at < now} or {
        fault.initial_severity
    }
    due = {s: solution_deadline(fault, s, table, hours) for s in Severity}
    provided = {s: fault.met_at(table[s].solution_level) for s in Severity}
    first = min(due[s] for s in held)
    result: list[LateDay] = []
    start = first
    while len(result) < credits.max_days and start < now:
        severity = fault.severity_at(start)
        solution = provided[severity]
        if solution is not None and solution <= start:
            if all(p is not None and p <= start for p in provided.values()):
                break  # every kind of Solution is in: no later period can be late
        elif start >= due[severity]:
            percent = credits.percent_per_day[severity]
            result.append(LateDay(len(result) + 1, start, severity, percent))
        start += LATE_DAY
    return tuple(result)


@dataclass(frozen=True)
class CreditTotal:
    """Credits accrued in ``[start, end)``: percent of the annual fee and the amount."""

    start: datetime
    end: datetime
    percent: Decimal
    amount: Decimal
    days: int


def credit_total(
    faults: Sequence[Fault],
    table: DeadlineTable,
    credits: CreditTable,
    hours: SupportHours,
    annual_fee: Decimal,
    start: datetime,
    end: datetime,
    now: datetime,
) -> CreditTotal:
    """Credits of the late days that begin in ``[start, end)``, as of ``now``.

    A late day is attributed to the period in which it begins. The amount is computed once
    from the summed percent (Decimal throughout) and rounded once, by ``money``.
    """
    _aware(start, "start")
    _aware(end, "end")
    percent = Decimal(0)
    days = 0
    for fault in faults:
        for day in credit_days(fault, table, credits, hours, now):
            if start <= day.start < end:
                percent += day.percent
                days += 1
    return CreditTotal(
        start, end, percent, money(annual_fee * percent / Decimal(100), annual_fee), days
    )


def money(amount: Decimal, fee: Decimal) -> Decimal:
    """``amount`` rounded half-up to the fee's precision, at least cents (as the availability
    credits are)."""
    exponent = fee.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return amount.quantize(Decimal(1).scaleb(-max(places, 2)), rounding=ROUND_HALF_UP)
