"""A support contract as the engine sees it, and its per-fault and per-period summaries.

``summarize`` is the one computation behind the support metrics, the report section and the
API's fault listing, so the three can never disagree. Pure: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from monitor.sla.calendar import Month, month_bounds, month_containing
from monitor.support.calendar import SupportHours
from monitor.support.faults import (
    CONTRACT_DEADLINES,
    CreditTable,
    CreditTotal,
    DeadlineTable,
    Fault,
    LateDay,
    LevelStatus,
    Severity,
    credit_days,
    credit_total,
    level_statuses,
    money,
    solution_deadline,
)


@dataclass(frozen=True)
class SupportContract:
    """One support SLA: who pays what, when support is open, the deadline and credit tables.

    Months and years for credit totals are calendar periods in the Support Hours time zone.
    """

    name: str
    annual_fee: Decimal
    currency: str
    hours: SupportHours = field(default_factory=SupportHours)
    deadlines: DeadlineTable = field(default_factory=lambda: CONTRACT_DEADLINES)
    credits: CreditTable = field(default_factory=CreditTable)

    def __post_init__(self) -> None:
        if not self.annual_fee.is_finite() or self.annual_fee < 0:
            raise ValueError(
                f"contract {self.name}: annual_fee: expected a non-negative amount, "
                f"got {self.annual_fee}"
            )
        missing = [s.value for s in Severity if s not in self.deadlines]
        if missing:
            raise ValueError(f"contract {self.name}: deadlines: no rule for {', '.join(missing)}")


@dataclass(frozen=True)
class FaultSummary:
    """Everything the outputs show about one fault, as of ``now``."""

    fault: Fault
    open: bool
    """No Solution yet under the current severity's rule (a minor error's Level 2 correction
    closes it; a business-critical fault needs Level 3)."""
    levels: tuple[LevelStatus, ...]
    solution_due: datetime
    late_days: tuple[LateDay, ...]
    credit_percent: Decimal
    credit_amount: Decimal
    month_late_days: tuple[LateDay, ...] = ()
    """The late days that began in the summary's month (in the Support Hours zone): what a
    claim for that month asks for. A fault late across a month end is claimed partly in each
    month, so consecutive months' claims add up to ``late_days`` with nothing twice."""
    month_credit_percent: Decimal = Decimal(0)
    month_credit_amount: Decimal = Decimal(0)
    in_month: bool = True
    """Relevant to the summary's month: open at some time during it (received before its end,
    no Solution before its start) or with late days that began in it."""


@dataclass(frozen=True)
class ContractSummary:
    """A contract's faults and its credits this month and this year, as of ``now``."""

    contract: SupportContract
    now: datetime
    faults: tuple[FaultSummary, ...]
    month: CreditTotal
    year: CreditTotal
    month_label: str
    year_label: str


def year_bounds(year: int, tz: str) -> tuple[datetime, datetime]:
    """``[1 January, next 1 January)`` of ``year`` in ``tz``, as UTC instants."""
    return month_bounds(Month(year, 1), tz)[0], month_bounds(Month(year + 1, 1), tz)[0]


def summarize_fault(
    contract: SupportContract,
    fault: Fault,
    now: datetime,
    period: tuple[datetime, datetime] | None = None,
) -> FaultSummary:
    """Deadlines, lateness and the credit one fault has earned as of ``now``; with
    ``period`` (``[start, end)``, a month), also the part of it that belongs to that period."""
    days = credit_days(fault, contract.deadlines, contract.credits, contract.hours, now)
    percent = sum((d.percent for d in days), Decimal(0))
    solution_level = contract.deadlines[fault.severity].solution_level
    solved = fault.met_at(solution_level)
    if period is None:
        in_period, relevant = days, True
    else:
        start, end = period
        in_period = tuple(d for d in days if start <= d.start < end)
        open_during = fault.received_at < end and (solved is None or solved >= start)
        relevant = open_during or bool(in_period)
    period_percent = sum((d.percent for d in in_period), Decimal(0))
    return FaultSummary(
        fault=fault,
        open=solved is None,
        levels=level_statuses(fault, contract.deadlines, contract.hours, now),
        solution_due=solution_deadline(fault, fault.severity, contract.deadlines, contract.hours),
        late_days=days,
        credit_percent=percent,
        credit_amount=_amount(contract, percent),
        month_late_days=in_period,
        month_credit_percent=period_percent,
        month_credit_amount=_amount(contract, period_percent),
        in_month=relevant,
    )


def _amount(contract: SupportContract, percent: Decimal) -> Decimal:
    return money(contract.annual_fee * percent / Decimal(100), contract.annual_fee)


def summarize(
    contract: SupportContract,
    faults: Sequence[Fault],
    now: datetime,
    *,
    month: Month | None = None,
) -> ContractSummary:
    """The contract's faults (those naming it), month and year credits as of ``now``.

    ``month`` defaults to the month containing ``now``; the year is that month's year.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now: expected a timezone-aware datetime, got naive {now}")
    tz = contract.hours.timezone
    period = month or month_containing(now, tz)
    mine = sorted(
        (f for f in faults if f.contract == contract.name), key=lambda f: (f.received_at, f.id)
    )
    month_start, month_end = month_bounds(period, tz)
    year_start, year_end = year_bounds(period.year, tz)
    args = (contract.deadlines, contract.credits, contract.hours, contract.annual_fee)
    return ContractSummary(
        contract=contract,
        now=now.astimezone(UTC),
        faults=tuple(summarize_fault(contract, f, now, (month_start, month_end)) for f in mine),
        month=credit_total(mine, *args, month_start, month_end, now),
        year=credit_total(mine, *args, year_start, year_end, now),
        month_label=str(period),
        year_label=str(period.year),
    )


def summarize_all(
    contracts: Mapping[str, SupportContract],
    faults: Sequence[Fault],
    now: datetime,
    *,
    month: Month | None = None,
) -> list[ContractSummary]:
    """``summarize`` for every contract, by name (what the report and the metrics show)."""
    return [summarize(contracts[name], faults, now, month=month) for name in sorted(contracts)]
