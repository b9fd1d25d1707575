"""The ``support:`` configuration section and the per-SLA ``maintenance_notice`` rule.

Every default is the licence's Schedule 1, so ``support: {contracts: [{name: uma,
annual_fee: "24000.00", currency: GBP}]}`` is the contract as written::

    support:
      contracts:
        - name: uma
          annual_fee: "24000.00"          # Decimal, never a float
          currency: GBP
          support_hours:
            timezone: Europe/London
            weekdays: {monday: "09:00-17:00", ..., friday: "09:00-17:00"}   # others closed
            holidays: {country: GB, subdivision: NIR}   # null: no public holidays
            closed_dates: [2026-12-24]
            closed_every_year: ["12-25"]
          business_day: 8h                # support time that one Business Day stands for
          deadlines:
            business_critical: {acknowledge: 4h, restore_business_days: 1, solve_business_days: 3,
                                credit_from_level: 3}
            minor: {restore_business_days: 5, solve_business_days: null, credit_from_level: 2}
          credits: {business_critical: 5, defect_with_workaround: 1, minor: 0, max_days: 20}
      alertmanager:
        severity_label: sla_fault_severity
        contract_label: sla_contract
        default_contract: uma
        resolved_records: restore         # restore (Level 2) | solve (Level 3)

Errors follow the configuration's format (``file:line: key.path: message``) because these
models are validated by the same loader, and report through ``FieldProblems``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from datetime import date, time, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, Literal

import holidays
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from monitor.config.claim import ClaimConfig
from monitor.config.errors import FieldProblems, Issue, issue
from monitor.config.fieldtypes import (
    YEAR_SECONDS,
    Amount,
    Currency,
    Name,
    Percent,
    Timezone,
    duration_field,
)
from monitor.support.alertmanager import AlertRouting
from monitor.support.calendar import WEEKDAY_NAMES, OpeningInterval, SupportHours
from monitor.support.contract import SupportContract
from monitor.support.faults import CreditTable, DeadlineRule, Level, Severity
from monitor.support.notice import NoticePolicy, NoticeRule

_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
SupportDuration = Annotated[float, duration_field(maximum=YEAR_SECONDS)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _interval(text: str) -> OpeningInterval:
    match = _HOURS.match(text.strip())
    if match is None:
        raise ValueError("must be opening hours such as 09:00-17:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError("must use times from 00:00 to 23:59 such as 09:00-17:00")
    if (h2, m2) <= (h1, m1):
        raise ValueError("must end after it starts (opening hours never cross midnight)")
    return OpeningInterval(time(h1, m1), time(h2, m2))


def _day_hours(value: Any) -> tuple[OpeningInterval, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError('must be opening hours such as "09:00-17:00", a list of them, or null')
    intervals = sorted(_interval(i) for i in items)
    for before, after in itertools.pairwise(intervals):
        if after.start < before.end:
            raise ValueError(f"must not overlap: {before} and {after}")
    return tuple(intervals)


_DEFAULT_WEEKDAYS: Mapping[str, str] = MappingProxyType(
    {day: "09:00-17:00" for day in WEEKDAY_NAMES[:5]}
)


class HolidaysConfig(_Model):
    """Public holidays from the ``holidays`` library: GB + NIR (Northern Ireland) by default;
    ENG or WLS for England and Wales, SCT for Scotland."""

    country: StrictStr = "GB"
    subdivision: StrictStr | None = "NIR"

    @model_validator(mode="after")
    def _known(self) -> HolidaysConfig:
        try:
            table = holidays.country_holidays(self.country)
        except NotImplementedError:
            raise FieldProblems(
                [issue(("country",), "must be a country code such as GB", self.country)]
            ) from None
        if self.subdivision is not None and self.subdivision not in table.subdivisions:
            choices = ", ".join(table.subdivisions) or "none"
            raise FieldProblems(
                [issue(("subdivision",), f"must be one of {choices}", self.subdivision)]
            )
        return self


class SupportHoursConfig(_Model):
    """When support is open. Days missing from ``weekdays`` are closed."""

    timezone: Timezone = "Europe/London"
    weekdays: Mapping[str, Any] = Field(default_factory=lambda: _DEFAULT_WEEKDAYS)
    holidays: HolidaysConfig | None = Field(default_factory=HolidaysConfig)
    closed_dates: tuple[date, ...] = ()
    closed_every_year: tuple[StrictStr, ...] = ("12-25",)

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: Mapping[str, Any]) -> Mapping[str, Any]:
        problems: list[Issue] = []
        for day, hours in value.items():
            if day not in WEEKDAY_NAMES:
                problems.append(issue((day,), f"must be a weekday: {', '.join(WEEKDAY_NAMES)}"))
                continue
            try:
                _day_hours(hours)
            except ValueError as exc:
                problems.append(issue((day,), str(exc), hours))
        if problems:
            raise FieldProblems(problems)
        if not any(_day_hours(h) for h in value.values()):
            raise ValueError("must open on at least one day")
        return MappingProxyType(dict(value))

    @field_validator("closed_every_year")
    @classmethod
    def _month_days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        problems = []
        for index, text in enumerate(value):
            match = _MONTH_DAY.match(text)
            try:
                if match is None:
                    raise ValueError
                date(2000, int(match.group(1)), int(match.group(2)))
            except ValueError:
                problems.append(issue((index,), "must be a month and day such as 12-25", text))
        if problems:
            raise FieldProblems(problems)
        return value

    def to_hours(self, business_day: timedelta) -> SupportHours:
        week = tuple(_day_hours(self.weekdays.get(day)) for day in WEEKDAY_NAMES)
        closures = frozenset((int(text[:2]), int(text[3:])) for text in self.closed_every_year)
        return SupportHours(
            timezone=self.timezone,
            week=week,
            holiday_country=None if self.holidays is None else self.holidays.country,
            holiday_subdivision=None if self.holidays is None else self.holidays.subdivision,
            closed_dates=frozenset(self.closed_dates),
            annual_closures=closures,
            business_day=business_day,
        )


class DeadlineRuleConfig(_Model):
    """One severity's response times (Level 1 in support time, Levels 2 and 3 in Business
    Days; Level 2 counts from the Level 1 deadline, Level 3 from receipt)."""

    acknowledge: SupportDuration = 4 * 3600.0
    restore_business_days: StrictInt | None = Field(default=1, ge=0, le=366)
    solve_business_days: StrictInt | None = Field(default=3, ge=0, le=366)
    credit_from_level: Literal[2, 3] = 3

    @model_validator(mode="after")
    def _has_credit_level(self) -> DeadlineRuleConfig:
        needed = "restore_business_days" if self.credit_from_level == 2 else "solve_business_days"
        if getattr(self, needed) is None:
            raise FieldProblems(
                [
                    issue(
                        ("credit_from_level",),
                        f"needs {needed}: credits run from that level's deadline",
                        self.credit_from_level,
                    )
                ]
            )
        return self

    def to_rule(self) -> DeadlineRule:
        return DeadlineRule(
            acknowledge=timedelta(seconds=self.acknowledge),
            restore_days=self.restore_business_days,
            solve_days=self.solve_business_days,
            solution_level=Level(self.credit_from_level),
        )


class DeadlinesConfig(_Model):
    """The Service Level Table; each severity defaults to the contract's row."""

    business_critical: DeadlineRuleConfig = Field(default_factory=DeadlineRuleConfig)
    defect_with_workaround: DeadlineRuleConfig = Field(default_factory=DeadlineRuleConfig)
    minor: DeadlineRuleConfig = Field(
        default_factory=lambda: DeadlineRuleConfig(
            restore_business_days=5, solve_business_days=None, credit_from_level=2
        )
    )


class CreditsConfig(_Model):
    """Percent of the annual licence fee per late day (or part), per severity."""

    business_critical: Percent = Decimal(5)
    defect_with_workaround: Percent = Decimal(1)
    minor: Percent = Decimal(0)
    max_days: StrictInt = Field(default=20, ge=0)

    def to_table(self) -> CreditTable:
        return CreditTable(
            percent_per_day=MappingProxyType(
                {severity: getattr(self, severity.value) for severity in Severity}
            ),
            max_days=self.max_days,
        )


class SupportContractConfig(_Model):
    """One support contract."""

    name: Name
    annual_fee: Amount
    currency: Currency
    support_hours: SupportHoursConfig = Field(default_factory=SupportHoursConfig)
    business_day: Annotated[float, duration_field(above=True)] = 8 * 3600.0
    deadlines: DeadlinesConfig = Field(default_factory=DeadlinesConfig)
    credits: CreditsConfig = Field(default_factory=CreditsConfig)
    claim: ClaimConfig | None = None  # contract identifiers for the claim (issue 12)

    def to_contract(self) -> SupportContract:
        return SupportContract(
            name=self.name,
            annual_fee=self.annual_fee,
            currency=self.currency,
            hours=self.support_hours.to_hours(timedelta(seconds=self.business_day)),
            deadlines=MappingProxyType(
                {s: getattr(self.deadlines, s.value).to_rule() for s in Severity}
            ),
            credits=self.credits.to_table(),
        )


_RESOLVED_LEVELS = {"restore": Level.RESTORE, "solve": Level.SOLVE, "none": None}
"""What an alert's resolution counts as (``none``: only the symptom clearing is recorded)."""


class AlertmanagerConfig(_Model):
    """How webhook alerts become faults."""

    severity_label: StrictStr = "sla_fault_severity"
    contract_label: StrictStr = "sla_contract"
    default_contract: Name | None = None
    resolved_records: Literal["restore", "solve", "none"] = "restore"
    title_annotation: StrictStr = "summary"

    @field_validator("severity_label", "contract_label")
    @classmethod
    def _label(cls, value: str) -> str:
        if not _LABEL.match(value):
            raise ValueError("must be a label name: [a-zA-Z_][a-zA-Z0-9_]*")
        return value

    def to_routing(self) -> AlertRouting:
        return AlertRouting(
            severity_label=self.severity_label,
            contract_label=self.contract_label,
            default_contract=self.default_contract,
            resolved_level=_RESOLVED_LEVELS[self.resolved_records],
            title_annotation=self.title_annotation,
        )


class SupportConfig(_Model):
    """The ``support:`` section."""

    contracts: tuple[SupportContractConfig, ...] = ()
    alertmanager: AlertmanagerConfig = Field(default_factory=AlertmanagerConfig)

    @model_validator(mode="after")
    def _references(self) -> SupportConfig:
        problems: list[Issue] = []
        seen: set[str] = set()
        for index, contract in enumerate(self.contracts):
            if contract.name in seen:
                problems.append(
                    issue(("contracts", index, "name"), "is already used", contract.name)
                )
            seen.add(contract.name)
        default = self.alertmanager.default_contract
        if default is not None and default not in seen:
            problems.append(
                issue(
                    ("alertmanager", "default_contract"),
                    f"must name a contract ({', '.join(sorted(seen)) or 'none configured'})",
                    default,
                )
            )
        if problems:
            raise FieldProblems(problems)
        return self

    def support_contracts(self) -> dict[str, SupportContract]:
        return {c.name: c.to_contract() for c in self.contracts}

    def routing(self) -> AlertRouting:
        return self.alertmanager.to_routing()


class MaintenanceNoticeConfig(_Model):
    """An SLA's ``maintenance_notice`` rule (absent: every maintenance window is honoured).

    ``outside_support_hours_of`` names a support contract whose Support Hours maintenance
    must avoid (``null``: no such rule).
    """

    min_notice: SupportDuration | None = 3600.0
    outside_support_hours_of: Name | None = None
    policy: NoticePolicy = NoticePolicy.FLAG

    def to_rule(self, support: SupportConfig | None) -> NoticeRule:
        """The rule; ``ValueError`` naming the contract when it is not configured."""
        hours = None
        if self.outside_support_hours_of is not None:
            contracts = {} if support is None else {c.name: c for c in support.contracts}
            chosen = contracts.get(self.outside_support_hours_of)
            if chosen is None:
                raise ValueError(
                    "maintenance_notice.outside_support_hours_of: must name a support contract "
                    f"({', '.join(sorted(contracts)) or 'none configured'}), "
                    f"got {self.outside_support_hours_of!r}"
                )
            hours = chosen.to_contract().hours
        return NoticeRule(
            min_notice=None if self.min_notice is None else timedelta(seconds=self.min_notice),
            support_hours=hours,
            policy=self.policy,
        )


def notice_reference_issues(data: Any) -> list[Issue]:
    """Cross-section check on raw config data: every ``slas[i].maintenance_notice.
    outside_support_hours_of`` names a contract in ``support.contracts``. For
    ``monitor.config.checks.cross_checks``."""
    if not isinstance(data, dict):
        return []
    support = data.get("support")
    contracts = support.get("contracts") if isinstance(support, dict) else None
    names = {c.get("name") for c in contracts or [] if isinstance(c, dict)}
    problems = []
    slas = data.get("slas")
    for index, sla in enumerate(slas if isinstance(slas, list) else []):
        notice = sla.get("maintenance_notice") if isinstance(sla, dict) else None
        ref = notice.get("outside_support_hours_of") if isinstance(notice, dict) else None
        if ref is not None and ref not in names:
            problems.append(
                issue(
                    ("slas", index, "maintenance_notice", "outside_support_hours_of"),
                    "must name a contract in support.contracts "
                    f"({', '.join(sorted(str(n) for n in names)) or 'none configured'})",
                    ref,
                )
            )
    return problems
