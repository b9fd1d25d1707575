"""The engine's inputs, in the contract's own words: frozen, validated, free of I/O.

The configuration layer turns YAML into these; the daemon and ``slawatch report`` hand them to
the pure functions in ``monitor.sla``. Nothing here reads a clock, a file or a socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType


class BucketState(StrEnum):
    """What one bucket (a continuous 5-minute period) was."""

    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"
    EXCLUDED = "excluded"
    UNKNOWN = "unknown"
    PENDING = "pending"
    """Not yet elapsed: only for months still running."""


class BucketRuleKind(StrEnum):
    """When a target's bucket is unavailable, judged from the probes that fell in it."""

    ANY_FAILED = "any_failed"
    ALL_FAILED = "all_failed"
    FAILED_FRACTION = "failed_fraction"


# mem29 (issue 20): slots, as every frozen dataclass here that an SLA holds one of: no
# ``__dict__`` per instance (10,000 of each at 10,000 one-target SLAs, ~100-160 bytes each).
@dataclass(frozen=True, slots=True)
class BucketRule:
    """``min_probes``: with fewer probes than this the bucket is unknown, whatever they said.

    ``failed_fraction`` is the threshold for ``FAILED_FRACTION`` (unavailable when
    failed / probes >= threshold) and is ``None`` for the other kinds.
    """

    kind: BucketRuleKind = BucketRuleKind.ANY_FAILED
    min_probes: int = 1
    failed_fraction: Fraction | None = None

    def __post_init__(self) -> None:
        if self.min_probes < 1:
            raise ValueError("min_probes must be at least 1")
        if (self.kind is BucketRuleKind.FAILED_FRACTION) != (self.failed_fraction is not None):
            raise ValueError("failed_fraction is given exactly when kind is failed_fraction")
        if self.failed_fraction is not None and not 0 < self.failed_fraction <= 1:
            raise ValueError("failed_fraction must be in (0, 1]")


class ServiceRuleKind(StrEnum):
    """When a service is down, from its targets' verdicts."""

    ANY = "any"
    ALL = "all"
    QUORUM = "quorum"


@dataclass(frozen=True, slots=True)
class ServiceRule:
    """``min_down`` is the quorum for ``QUORUM`` (down when at least that many targets are)."""

    kind: ServiceRuleKind = ServiceRuleKind.ANY
    min_down: int | None = None

    def __post_init__(self) -> None:
        if (self.kind is ServiceRuleKind.QUORUM) != (self.min_down is not None):
            raise ValueError("min_down is given exactly when kind is quorum")
        if self.min_down is not None and self.min_down < 1:
            raise ValueError("min_down must be at least 1")


@dataclass(frozen=True, slots=True)
class ServiceDef:
    """A service as the contract measures it: its members and its rule.

    Members are ``targets`` and nested ``services`` (each with its own rule), so "both SBCs
    down, or the IVR call fails" is ``any`` over [the IVR target, a service ``all`` over the
    two SBCs]. The rule counts every member, target or service, once.
    """

    name: str
    targets: tuple[str, ...]
    rule: ServiceRule = field(default_factory=ServiceRule)
    services: tuple[ServiceDef, ...] = ()

    @property
    def members(self) -> int:
        return len(self.targets) + len(self.services)

    @property
    def all_targets(self) -> tuple[str, ...]:
        """Every target the service depends on, directly or through nested services, once."""
        seen: dict[str, None] = dict.fromkeys(self.targets)
        for child in self.services:
            seen.update(dict.fromkeys(child.all_targets))
        return tuple(seen)


class UnknownPolicy(StrEnum):
    """How unknown buckets enter the *estimate* (``uptime_percent_estimate``).

    The claim and the credit never use it: they take the contract's reading, in which a period
    not proven unavailable is not Unavailable Time (unknown counts as available there).
    """

    EXCLUDE = "exclude"
    """Left out of the denominator, like an exclusion (default): neither proven up nor down."""
    UNAVAILABLE = "unavailable"
    """Counted as unavailable (the worst case)."""
    AVAILABLE = "available"
    """Counted as available: only when the operator chooses it explicitly."""


class PartialExclusion(StrEnum):
    """When a bucket that an exclusion window only partly covers counts as excluded."""

    ANY_OVERLAP = "any_overlap"
    MAJORITY = "majority"
    FULL = "full"


class ExclusionKind(StrEnum):
    """The availability SLA's Exclusions (i)-(viii)."""

    SCHEDULED_MAINTENANCE = "scheduled_maintenance"
    FORCE_MAJEURE = "force_majeure"
    TELECOM_PROVIDER = "telecom_provider"
    CUSTOMER_NETWORK = "customer_network"
    CUSTOMER_MISCONFIGURATION = "customer_misconfiguration"
    THIRD_PARTY = "third_party"
    SUSPENSION = "suspension"
    PRE_RELEASE_FEATURE = "pre_release_feature"


@dataclass(frozen=True)
class ExclusionWindow:
    """One excluded window ``[start, end)``; ``services`` empty means every service.

    Times are timezone-aware. ``announced_at`` is when the vendor gave notice (scheduled
    maintenance), used by the support SLA's notice rules; ``source`` says where the window
    came from (``config``, ``api``, ``recurring:<id>``, ``canary``).
    """

    id: str
    start: datetime
    end: datetime
    kind: ExclusionKind
    reason: str = ""
    services: frozenset[str] = frozenset()
    announced_at: datetime | None = None
    source: str = "config"

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"exclusion {self.id}: {name} must carry a time zone")
        if self.end <= self.start:
            raise ValueError(f"exclusion {self.id}: end must be after start")

    def covers(self, service: str) -> bool:
        return not self.services or service in self.services


@dataclass(frozen=True)
class RecurringExclusion:
    """A recurring window: an RFC 5545 RRULE (with ``dtstart``) or a cron expression, in
    ``timezone``, each occurrence lasting ``duration``. Exactly one of rrule/cron is set."""

    id: str
    kind: ExclusionKind
    duration: timedelta
    timezone: str
    rrule: str | None = None
    cron: str | None = None
    dtstart: datetime | None = None
    reason: str = ""
    services: frozenset[str] = frozenset()
    cron_day_rule: str | None = None
    """``"or"`` accepts a cron line restricting both day fields with cron's OR meaning."""

    def __post_init__(self) -> None:
        if (self.rrule is None) == (self.cron is None):
            raise ValueError(f"recurring exclusion {self.id}: give exactly one of rrule or cron")
        if self.duration <= timedelta(0):
            raise ValueError(f"recurring exclusion {self.id}: duration must be positive")


@dataclass(frozen=True, slots=True)
class CreditTier:
    """One band of the credit table, written as SLAs write them.

    "less than 99.9% but at least 99.0%" -> ``upper=99.9, upper_inclusive=False,
    lower=99.0, lower_inclusive=True``. ``None`` on a side means unbounded.
    """

    credit_percent: Decimal
    upper: Decimal | None = None
    upper_inclusive: bool = False
    lower: Decimal | None = None
    lower_inclusive: bool = True

    def contains(self, uptime_percent: Fraction) -> bool:
        if self.upper is not None:
            upper = Fraction(self.upper)
            if uptime_percent > upper or (uptime_percent == upper and not self.upper_inclusive):
                return False
        if self.lower is not None:
            lower = Fraction(self.lower)
            if uptime_percent < lower or (uptime_percent == lower and not self.lower_inclusive):
                return False
        return True


@dataclass(frozen=True, slots=True)
class CreditPolicy:
    """The credit table. ``cap`` is an amount (defaults to the monthly fee when ``None``)."""

    tiers: tuple[CreditTier, ...]
    monthly_fee: Decimal
    currency: str
    cap: Decimal | None = None

    @property
    def effective_cap(self) -> Decimal:
        return self.monthly_fee if self.cap is None else self.cap


@dataclass(frozen=True)
class LocationRule:
    """How the verdicts of several monitoring locations combine into one target's bucket
    verdict (issue 14), written like the service rule: ``down_when: quorum``.

    ``of`` is the configured denominator: every location listed here votes in every bucket,
    and one that sent nothing is *unheard*, never dropped, so two dead monitors cannot turn
    the third into a majority. ``monitor.sla.quorum`` applies it.
    """

    quorum: int
    of: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.of:
            raise ValueError("locations.of: expected at least one location, got none")
        seen: set[str] = set()
        for name in self.of:
            if not name or name != name.strip():
                raise ValueError(f"locations.of: expected location names, got {name!r}")
            if name in seen:
                raise ValueError(f"locations.of: {name!r} is listed twice")
            seen.add(name)
        if isinstance(self.quorum, bool) or not 1 <= self.quorum <= len(self.of):
            raise ValueError(
                f"locations.quorum: expected between 1 and {len(self.of)} (the locations "
                f"listed in of), got {self.quorum!r}"
            )


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """One availability SLA over one service."""

    name: str
    service: str
    objective_percent: Decimal
    credit: CreditPolicy
    bucket_seconds: int = 300
    timezone: str = "UTC"
    bucket_rule: BucketRule = field(default_factory=BucketRule)
    unknown_policy: UnknownPolicy = UnknownPolicy.EXCLUDE
    partial_exclusion: PartialExclusion = PartialExclusion.ANY_OVERLAP
    claim_window_days: int = 30
    min_coverage: Fraction = Fraction(9, 10)
    """Below this share of measured buckets, every report warns that the figures rest on
    little evidence."""
    locations: LocationRule | None = None
    """Several monitoring locations vote per bucket (issue 14); ``None``: one location, the
    daemon's own tallies, as before."""

    def __post_init__(self) -> None:
        if not 0 <= self.min_coverage <= 1:
            raise ValueError("min_coverage must be in [0, 1]")
        if not Decimal(0) < self.objective_percent <= Decimal(100):
            raise ValueError("objective_percent must be in (0, 100]")
        if self.bucket_seconds <= 0 or 3600 % self.bucket_seconds != 0:
            raise ValueError("bucket_seconds must divide 3600 (so months and DST shifts align)")


@dataclass(frozen=True)
class Tally:
    """The probes of one target in one bucket.

    ``ok`` and ``failed`` count the probes that measured the vendor; ``reasons`` maps each
    vendor failure reason to its count. ``errors`` counts the monitor's own failures (outcome
    ``error`` or a monitor-side reason, see ``probes.reasons``) with their reasons in
    ``error_reasons``: they measured nothing and never count against the vendor.
    ``excused`` counts the failures among ``failed`` that fell at an instant when every canary
    was failing too (our own network, exclusion iii): not proof against the vendor either.
    """

    ok: int = 0
    failed: int = 0
    reasons: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    errors: int = 0
    error_reasons: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    excused: int = 0

    @property
    def probes(self) -> int:
        """Probes that measured the vendor (monitor errors excluded)."""
        return self.ok + self.failed

    @property
    def proven_failed(self) -> int:
        """Failures that prove something against the vendor: not excused by a canary."""
        return self.failed - self.excused

    @property
    def unproven(self) -> int:
        """Probes whose result proves nothing either way: monitor errors and excused failures."""
        return self.errors + self.excused
