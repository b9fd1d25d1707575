"""Sections of the configuration with no probe-kind or cross-model logic: ``monitor``, credit
tiers, and exclusion windows (one-off and recurring).

Every model forbids unknown keys and is frozen; rules that involve one object report at the
offending key through ``FieldProblems``.
"""

from __future__ import annotations

import os
import re
import socket
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from croniter import croniter
from dateutil.rrule import rrulestr
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    field_validator,
    model_validator,
)

from monitor.config.errors import FieldProblems, Issue, issue
from monitor.config.fieldtypes import (
    AwareTime,
    LocalOrAwareTime,
    Name,
    Percent,
    Secret,
    Timezone,
    duration_field,
)
from monitor.config.sharding import SHARDING_NEEDS_POSTGRESQL, ShardingSettings
from monitor.config.store import StoreSettings
from monitor.sla.exclusions import cron_days_ored, cron_or_message
from monitor.sla.policy import CreditTier, ExclusionKind

SEVEN_DAYS = 7 * 86400.0
_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>\d{1,5})")


class StrictModel(BaseModel):
    """Unknown keys refused, instances immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _state_dir_default() -> Path:
    # systemd's StateDirectory= may list several directories separated by colons.
    given = os.environ.get("STATE_DIRECTORY", "")
    first = given.split(":")[0]
    return Path(first) if first else Path("./var")


class MonitorSettings(StrictModel):
    """The ``monitor:`` section: this vantage point and where it keeps its state."""

    name: Name = Field(default_factory=lambda: socket.gethostname().lower())
    # The monitoring location this daemon (a member) probes from (issue 14); several daemons
    # may share one. Unset: the location is named like the daemon (one location, one member).
    location: Name | None = None
    state_dir: Path = Field(default_factory=_state_dir_default)
    database: Path = Path("slawatch.db")
    store: StoreSettings = Field(default_factory=StoreSettings)  # issue 14: sqlite | postgresql
    listen: StrictStr = "127.0.0.1:9180"
    api_token: Secret | None = None
    evidence_retention: Annotated[float, duration_field(minimum=86400.0)] = 400 * 86400.0
    allow_short_buckets: StrictBool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    rtp_ports: StrictStr = "20000-20999"
    web_config: Path | None = None  # exporter-toolkit web-config.yml (monitor/http/web_config.py)
    sharding: ShardingSettings | None = None  # issue 14: members of a location share targets

    @model_validator(mode="after")
    def _sharding_on_postgresql(self) -> MonitorSettings:
        if self.sharding is not None and self.store.backend != "postgresql":
            raise FieldProblems([issue(("sharding",), SHARDING_NEEDS_POSTGRESQL)])
        return self

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        match = _LISTEN.fullmatch(value)
        if match is None or not 0 <= int(match["port"]) <= 65535:
            raise ValueError("must be host:port such as 127.0.0.1:9180 or [::1]:9180")
        return value

    @field_validator("rtp_ports")
    @classmethod
    def _rtp_ports(cls, value: str) -> str:
        match = re.fullmatch(r"(\d{1,5})-(\d{1,5})", value.strip())
        if match is None:
            raise ValueError("must be a port range such as 20000-20999")
        low, high = int(match[1]), int(match[2])
        if not 1024 <= low <= high <= 65535:
            raise ValueError("must be a range low-high with 1024 <= low <= high <= 65535")
        return value

    @property
    def location_name(self) -> str:
        """``location``, or ``name`` when unset: what every stored row carries as location."""
        return self.location or self.name

    @property
    def database_path(self) -> Path:
        return self.database if self.database.is_absolute() else self.state_dir / self.database

    @property
    def listen_address(self) -> tuple[str, int]:
        match = _LISTEN.fullmatch(self.listen)
        assert match is not None
        return (match["v6"] or match["host"], int(match["port"]))

    @property
    def rtp_port_range(self) -> tuple[int, int]:
        low, high = self.rtp_ports.strip().split("-")
        return (int(low), int(high))


class CreditTierConfig(StrictModel):
    """One band of the credit table: ``{below: 99.9, at_least: 99.0, credit_percent: 10}``."""

    below: Percent | None = None
    at_most: Percent | None = None
    at_least: Percent | None = None
    above: Percent | None = None
    credit_percent: Percent

    @model_validator(mode="after")
    def _one_form_per_side(self) -> CreditTierConfig:
        issues: list[Issue] = []
        if self.below is not None and self.at_most is not None:
            issues.append(
                issue(
                    ("at_most",), "give one upper bound, below or at_most, not both", self.at_most
                )
            )
        if self.at_least is not None and self.above is not None:
            issues.append(
                issue(("above",), "give one lower bound, at_least or above, not both", self.above)
            )
        if not issues and _empty(_span(self.to_tier())):
            if self.at_least is not None or self.above is not None:
                side = "at_least" if self.at_least is not None else "above"
                message = "must be below the upper bound (the band is empty)"
            else:
                side = "below" if self.below is not None else "at_most"
                message = "must leave room above 0 (the band is empty)"
            issues.append(issue((side,), message, getattr(self, side)))
        if issues:
            raise FieldProblems(issues)
        return self

    def to_tier(self) -> CreditTier:
        return CreditTier(
            credit_percent=self.credit_percent,
            upper=self.below if self.below is not None else self.at_most,
            upper_inclusive=self.at_most is not None,
            lower=self.at_least if self.at_least is not None else self.above,
            lower_inclusive=self.above is None,
        )


def tier_overlaps(tiers: tuple[CreditTierConfig, ...]) -> list[Issue]:
    issues: list[Issue] = []
    bands = [t.to_tier() for t in tiers]
    for later in range(len(bands)):
        for earlier in range(later):
            if _overlap(bands[earlier], bands[later]):
                issues.append(
                    issue(
                        ("credit_tiers", later),
                        f"overlaps credit_tiers[{earlier}]: an uptime would fall in both bands",
                    )
                )
                break
    return issues


Span = tuple[Decimal, bool, Decimal, bool]


def _span(tier: CreditTier) -> Span:
    # An uptime percentage lies in [0, 100]: an open side is bounded there, which makes
    # "above: 100" an empty band and lets open bands overlap like any other.
    low, low_in = (Decimal(0), True) if tier.lower is None else (tier.lower, tier.lower_inclusive)
    high, high_in = (
        (Decimal(100), True) if tier.upper is None else (tier.upper, tier.upper_inclusive)
    )
    return low, low_in, high, high_in


def _empty(span: Span) -> bool:
    low, low_in, high, high_in = span
    return low > high or (low == high and not (low_in and high_in))


def _overlap(a: CreditTier, b: CreditTier) -> bool:
    a_low, a_low_in, a_high, a_high_in = _span(a)
    b_low, b_low_in, b_high, b_high_in = _span(b)
    if a_low == b_low:
        low, low_in = a_low, a_low_in and b_low_in
    else:
        low, low_in = (a_low, a_low_in) if a_low > b_low else (b_low, b_low_in)
    if a_high == b_high:
        high, high_in = a_high, a_high_in and b_high_in
    else:
        high, high_in = (a_high, a_high_in) if a_high < b_high else (b_high, b_high_in)
    return not _empty((low, low_in, high, high_in))


class ExclusionConfig(StrictModel):
    """One excluded window; ``services`` empty means every service."""

    id: Name
    kind: ExclusionKind
    start: AwareTime
    end: AwareTime
    reason: StrictStr = ""
    services: tuple[Name, ...] = ()
    announced_at: AwareTime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ExclusionConfig:
        if self.end <= self.start:
            raise FieldProblems(
                [
                    issue(
                        ("end",),
                        f"must be after start ({self.start.isoformat()})",
                        self.end.isoformat(),
                    )
                ]
            )
        return self


class RecurringExclusionConfig(StrictModel):
    """A recurring window: an RRULE with ``dtstart`` (local time in ``timezone``) or a cron line."""

    id: Name
    kind: ExclusionKind
    rrule: StrictStr | None = None
    cron: StrictStr | None = None
    dtstart: LocalOrAwareTime | None = None
    timezone: Timezone = "UTC"
    duration: Annotated[float, duration_field(above=True, maximum=SEVEN_DAYS)]
    reason: StrictStr = ""
    services: tuple[Name, ...] = ()
    cron_day_rule: Literal["or"] | None = None
    """``or``: accept a cron line restricting both day-of-month and day-of-week, knowing that
    cron fires on days matching *either* (refused without it)."""

    @model_validator(mode="after")
    def _rule(self) -> RecurringExclusionConfig:
        issues: list[Issue] = []
        if (self.rrule is None) == (self.cron is None):
            issues.append(issue(("rrule",), "give exactly one of rrule or cron"))
        if self.rrule is not None:
            if self.dtstart is None and "DTSTART" not in self.rrule.upper():
                issues.append(
                    issue(("dtstart",), "is required with rrule (local time in timezone)")
                )
            else:
                try:
                    rrulestr(self.rrule, dtstart=self.dtstart, forceset=True)
                except (ValueError, TypeError) as exc:
                    issues.append(
                        issue(("rrule",), f"must be an RFC 5545 RRULE ({exc})", self.rrule)
                    )
        if self.cron is not None:
            if self.dtstart is not None:
                issues.append(issue(("dtstart",), "is only used with rrule", str(self.dtstart)))
            # croniter also takes a 6th (seconds) field; the window rule means minutes only.
            fields = self.cron.split()
            aliased = len(fields) == 1 and fields[0].startswith("@")
            if not (len(fields) == 5 or aliased) or not croniter.is_valid(self.cron):
                issues.append(
                    issue(
                        ("cron",),
                        "must be a 5-field cron expression such as '0 2 * * SUN'",
                        self.cron,
                    )
                )
            elif self.cron_day_rule is None and cron_days_ored(self.cron):
                issues.append(issue(("cron",), cron_or_message(self.cron), self.cron))
        elif self.cron_day_rule is not None:
            issues.append(issue(("cron_day_rule",), "is only used with cron", self.cron_day_rule))
        if issues:
            raise FieldProblems(issues)
        return self
