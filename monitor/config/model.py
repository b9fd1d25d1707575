"""The configuration file's models: one frozen pydantic model per section, unknown keys refused.

Rules that involve one object (timeout < interval, quorum only with ``down_when: quorum``, the
shape of a credit tier) live on its model and report at the offending key through
``FieldProblems``. Rules across sections (names unique, references resolve) live in
``monitor.config.checks`` and run on the raw data, so they are reported even when an unrelated
item has a problem of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from croniter import croniter
from dateutil.rrule import rrulestr
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializeAsAny,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.config import convert
from monitor.config.errors import FieldProblems, Issue, did_you_mean, issue
from monitor.config.fieldtypes import (
    Amount,
    AwareTime,
    Currency,
    ExactDecimal,
    Interval,
    LocalOrAwareTime,
    Name,
    Percent,
    PositiveDuration,
    Secret,
    Timezone,
    duration_field,
    format_duration,
)
from monitor.config.translate import translate_errors
from monitor.sla.policy import (
    BucketRuleKind,
    CreditTier,
    ExclusionKind,
    ExclusionWindow,
    PartialExclusion,
    RecurringExclusion,
    ServiceDef,
    ServiceRuleKind,
    SlaPolicy,
    UnknownPolicy,
)
from probes.fields import parse_duration

if TYPE_CHECKING:
    from probes.registry import ProbeKind

DEFAULT_TIMEOUT = 10.0
SEVEN_DAYS = 7 * 86400.0
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]\s]+)):(?P<port>\d{1,5})")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def kinds_from(info: ValidationInfo) -> Mapping[str, ProbeKind]:
    context = info.context if isinstance(info.context, Mapping) else {}
    kinds: Mapping[str, ProbeKind] | None = context.get("kinds")
    return registered_kinds() if kinds is None else kinds


def registered_kinds() -> Mapping[str, ProbeKind]:
    """The real registry, imported on first use: it pulls in every probe module."""
    from probes.registry import PROBE_KINDS

    return PROBE_KINDS


def _frozen_labels(value: Mapping[str, str]) -> Mapping[str, str]:
    bad = [name for name in value if not _LABEL_NAME.fullmatch(name)]
    if bad:
        raise FieldProblems(
            [issue((name,), "is not a label name: use [a-zA-Z_][a-zA-Z0-9_]*") for name in bad]
        )
    return MappingProxyType(dict(value))


Labels = Annotated[
    Mapping[StrictStr, StrictStr], AfterValidator(_frozen_labels), PlainSerializer(dict)
]


def _state_dir_default() -> Path:
    # systemd's StateDirectory= may list several directories separated by colons.
    given = os.environ.get("STATE_DIRECTORY", "")
    first = given.split(":")[0]
    return Path(first) if first else Path("./var")


class MonitorSettings(_Model):
    """The ``monitor:`` section: this vantage point and where it keeps its state."""

    name: Name = Field(default_factory=lambda: socket.gethostname().lower())
    state_dir: Path = Field(default_factory=_state_dir_default)
    database: Path = Path("slawatch.db")
    listen: StrictStr = "127.0.0.1:9180"
    api_token: Secret | None = None
    evidence_retention: Annotated[float, duration_field(minimum=86400.0)] = 400 * 86400.0
    allow_short_buckets: StrictBool = False
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    rtp_ports: StrictStr = "20000-20999"

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        match = _LISTEN.fullmatch(value)
        if match is None or not 1 <= int(match["port"]) <= 65535:
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


class _Options:
    """What the before-validator found for a target's options block, for the field to report."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues


class TargetConfig(_Model):
    """One probe target; its options block is named like its kind (``http: {...}``)."""

    __internal_fields__: ClassVar[tuple[str, ...]] = ("options",)

    name: Name
    kind: StrictStr
    interval: Interval = 30.0
    timeout: PositiveDuration = DEFAULT_TIMEOUT
    role: Literal["probe", "canary"] = "probe"
    labels: Labels = Field(default_factory=lambda: MappingProxyType({}))
    options: SerializeAsAny[BaseModel]

    @model_validator(mode="before")
    @classmethod
    def _take_options_block(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        kinds = kinds_from(info)
        data = dict(data)
        kind = data.get("kind")
        issues: list[Issue] = []
        if "options" in data:
            issues.append(issue(("options",), f"unknown key: write the options under {kind!r}"))
            del data["options"]
        if "timeout" not in data:
            data["timeout"] = _default_timeout(data.get("interval", 30.0))
        fields = set(cls.model_fields)
        known = isinstance(kind, str) and kind in kinds
        for key in [k for k in data if k not in fields and (k in kinds or k == kind)]:
            block = data.pop(key)
            if not known:
                continue
            if key != kind:
                issues.append(
                    issue((key,), f"options block does not match kind {kind!r}: name it {kind!r}")
                )
                continue
            options_model = kinds[key].options
            try:
                data["options"] = options_model.model_validate(block, context=info.context)
            except ValidationError as exc:
                found = translate_errors(exc.errors(), options_model, block)
                issues.extend(issue((key, *i.path), i.message, i.value) for i in found)
        if known and "options" not in data and not issues:
            issues.append(issue((kind,), f"an options block named {kind!r} is required"))
        if issues or not known:
            data["options"] = _Options(issues)
        return data

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str, info: ValidationInfo) -> str:
        kinds = kinds_from(info)
        if value not in kinds:
            names = ", ".join(sorted(kinds)) or "(none registered)"
            raise ValueError(f"must be a probe kind, one of: {names}{did_you_mean(value, kinds)}")
        return value

    @field_validator("options", mode="before")
    @classmethod
    def _options_found(cls, value: Any) -> Any:
        if isinstance(value, _Options):
            raise FieldProblems(value.issues, from_parent=True)
        return value

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> TargetConfig:
        if self.timeout >= self.interval:
            raise FieldProblems(
                [
                    issue(
                        ("timeout",),
                        f"must be less than interval ({format_duration(self.interval)})",
                        format_duration(self.timeout),
                    )
                ]
            )
        return self


def _default_timeout(interval: Any) -> Any:
    # The default must never contradict a short interval: at most half of it.
    try:
        seconds = parse_duration(interval)
    except ValueError:
        return DEFAULT_TIMEOUT
    return min(DEFAULT_TIMEOUT, seconds / 2) if seconds >= 1 else DEFAULT_TIMEOUT


class ServiceConfig(_Model):
    """A service the contract measures: its targets and when it counts as down."""

    name: Name
    targets: tuple[Name, ...]
    down_when: ServiceRuleKind = ServiceRuleKind.ANY
    quorum: StrictInt | None = None

    @model_validator(mode="after")
    def _quorum(self) -> ServiceConfig:
        issues: list[Issue] = []
        if not self.targets:
            issues.append(issue(("targets",), "must list at least one target", []))
        if self.down_when is ServiceRuleKind.QUORUM:
            if self.quorum is None:
                issues.append(issue(("quorum",), "is required with down_when: quorum"))
            elif not 1 <= self.quorum <= len(self.targets):
                issues.append(
                    issue(
                        ("quorum",),
                        f"must be between 1 and the number of targets ({len(self.targets)})",
                        self.quorum,
                    )
                )
        elif self.quorum is not None:
            issues.append(issue(("quorum",), "is only allowed with down_when: quorum", self.quorum))
        seen: set[str] = set()
        for index, target in enumerate(self.targets):
            if target in seen:
                issues.append(issue(("targets", index), "is listed twice", target))
            seen.add(target)
        if issues:
            raise FieldProblems(issues)
        return self


class CreditTierConfig(_Model):
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


def _check_failed_fraction(value: Decimal) -> Decimal:
    if not Decimal(0) < value <= Decimal(1):
        raise ValueError("must be more than 0 and at most 1")
    return value


class SlaConfig(_Model):
    """One availability SLA over one service, with its credit table."""

    name: Name
    service: Name
    objective: ExactDecimal
    bucket: PositiveDuration = 300.0
    timezone: Timezone = "UTC"
    unavailable_when: BucketRuleKind = BucketRuleKind.ANY_FAILED
    failed_fraction: Annotated[ExactDecimal, AfterValidator(_check_failed_fraction)] | None = None
    min_probes: StrictInt = Field(default=1, ge=1)
    unknown_buckets: UnknownPolicy = UnknownPolicy.EXCLUDE
    partial_exclusion: PartialExclusion = PartialExclusion.ANY_OVERLAP
    monthly_fee: Amount
    currency: Currency
    credit_tiers: tuple[CreditTierConfig, ...] = ()
    credit_cap: Amount | None = None
    claim_window_days: StrictInt = Field(default=30, ge=1)

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: Decimal) -> Decimal:
        if not Decimal(0) < value <= Decimal(100):
            raise ValueError("must be a percentage above 0 and at most 100")
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: float) -> float:
        if value != int(value) or 3600 % int(value) != 0:
            raise ValueError("must divide an hour exactly (such as 1m, 5m, 10m, 15m, 30m or 1h)")
        return value

    @model_validator(mode="after")
    def _rules(self) -> SlaConfig:
        issues: list[Issue] = []
        if self.unavailable_when is BucketRuleKind.FAILED_FRACTION:
            if self.failed_fraction is None:
                issues.append(
                    issue(
                        ("failed_fraction",), "is required with unavailable_when: failed_fraction"
                    )
                )
        elif self.failed_fraction is not None:
            issues.append(
                issue(
                    ("failed_fraction",),
                    "is only allowed with unavailable_when: failed_fraction",
                    self.failed_fraction,
                )
            )
        issues.extend(_tier_overlaps(self.credit_tiers))
        for index, tier in enumerate(self.credit_tiers):
            bound = tier.to_tier()
            upper_meets = (
                bound.upper is None
                or bound.upper > self.objective
                or (bound.upper == self.objective and bound.upper_inclusive)
            )
            if tier.credit_percent > 0 and upper_meets:
                issues.append(
                    issue(
                        ("credit_tiers", index),
                        f"a tier with a credit must lie below the objective ({self.objective}): "
                        f"bound it with below: {self.objective}",
                    )
                )
        if issues:
            raise FieldProblems(issues)
        return self

    @property
    def bucket_seconds(self) -> int:
        return int(self.bucket)


def _tier_overlaps(tiers: tuple[CreditTierConfig, ...]) -> list[Issue]:
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


class ExclusionConfig(_Model):
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


class RecurringExclusionConfig(_Model):
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
        if issues:
            raise FieldProblems(issues)
        return self


class Config(_Model):
    """A whole, valid configuration. Build it with ``load_config`` / ``parse_config_text``."""

    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    # Emptiness is checked on the raw list: pydantic would also call a list "too short"
    # when its only item merely failed validation.
    targets: tuple[TargetConfig, ...]
    services: tuple[ServiceConfig, ...] = ()
    slas: tuple[SlaConfig, ...] = ()
    exclusions: tuple[ExclusionConfig, ...] = ()
    # Named apart from its YAML key so that recurring_exclusions() can return policy types.
    recurring: tuple[RecurringExclusionConfig, ...] = Field(
        default=(), alias="recurring_exclusions"
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        # "exclusions:" with nothing under it is YAML null; it means "none", not an error.
        if isinstance(data, dict):
            data = dict(data)
            for key in ("monitor", "services", "slas", "exclusions", "recurring_exclusions"):
                if key in data and data[key] is None:
                    data[key] = {} if key == "monitor" else []
        return data

    @property
    def content_hash(self) -> str:
        """SHA-256 of the validated content (comments and key order do not change it)."""
        dumped = self.model_dump(mode="json", fallback=repr)
        canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"), default=repr)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def target(self, name: str) -> TargetConfig:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    def sla_policies(self) -> tuple[SlaPolicy, ...]:
        return tuple(convert.sla_policy(sla) for sla in self.slas)

    def service_defs(self) -> dict[str, ServiceDef]:
        return {service.name: convert.service_def(service) for service in self.services}

    def exclusion_windows(self) -> tuple[ExclusionWindow, ...]:
        return tuple(convert.exclusion_window(e) for e in self.exclusions)

    def recurring_exclusions(self) -> tuple[RecurringExclusion, ...]:
        return tuple(convert.recurring_exclusion(r) for r in self.recurring)

    def canaries(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.targets if t.role == "canary")
