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
import re
import weakref
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PlainSerializer,
    SerializeAsAny,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from monitor.config import convert
from monitor.config.claim import ClaimConfig
from monitor.config.errors import FieldProblems, Issue, did_you_mean, issue
from monitor.config.fieldtypes import (
    Amount,
    Currency,
    ExactDecimal,
    Interval,
    Name,
    PositiveDuration,
    Timezone,
    format_duration,
    plain_key,
)
from monitor.config.sections import (
    CreditTierConfig,
    ExclusionConfig,
    MonitorSettings,
    RecurringExclusionConfig,
    StrictModel,
    tier_overlaps,
)
from monitor.config.support import MaintenanceNoticeConfig, SupportConfig
from monitor.config.translate import translate_errors
from monitor.sla.policy import (
    BucketRuleKind,
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

__all__ = [
    "Config",
    "CreditTierConfig",
    "ExclusionConfig",
    "MonitorSettings",
    "RecurringExclusionConfig",
    "ServiceConfig",
    "SlaConfig",
    "TargetConfig",
    "kinds_from",
    "registered_kinds",
]

DEFAULT_TIMEOUT = 10.0
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


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


class _Options:
    """What the before-validator found for a target's options block, for the field to report."""

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = issues


class TargetConfig(StrictModel):
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
        # The class's own field dict: ``model_fields`` goes through a deprecation wrapper and
        # a set was built from it for each of 10,000 targets (issue 20, cl32).
        fields = cls.__pydantic_fields__
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
        issues: list[Issue] = []
        if self.timeout >= self.interval:
            issues.append(
                issue(
                    ("timeout",),
                    f"must be less than interval ({format_duration(self.interval)})",
                    format_duration(self.timeout),
                )
            )
        # A kind whose run has a known worst case (a scripted call) says so; a timeout below
        # it would cut every run short and record the vendor as down for our own setting.
        # Looked up once per options class: on an instance, and on the class too (pydantic's
        # metaclass), a missing attribute goes through a Python ``__getattr__`` and a raised
        # AttributeError (3 % of a 10,000-target load, issue 20).
        options_class = type(self.options)
        try:
            longest = _LONGEST_CALL[options_class]
        except KeyError:
            found = getattr(options_class, "longest_call_seconds", None)
            longest = _LONGEST_CALL[options_class] = found if callable(found) else None
        if longest is not None:
            needed = float(longest(self.options))
            if self.timeout < needed:
                issues.append(
                    issue(
                        ("timeout",),
                        f"must cover the longest {self.kind} run its options allow "
                        f"({format_duration(needed)})",
                        format_duration(self.timeout),
                    )
                )
        if issues:
            raise FieldProblems(issues)
        return self


_LONGEST_CALL: dict[type, Callable[[Any], Any] | None] = {}
"""An options class's ``longest_call_seconds`` (``None`` when it has none)."""


def _default_timeout(interval: Any) -> Any:
    # The default must never contradict a short interval: at most half of it.
    try:
        seconds = parse_duration(interval)
    except ValueError:
        return DEFAULT_TIMEOUT
    return min(DEFAULT_TIMEOUT, seconds / 2) if seconds >= 1 else DEFAULT_TIMEOUT


class ServiceConfig(StrictModel):
    """A service the contract measures: its members (targets, and other services, each with
    its own rule) and when it counts as down."""

    name: Name
    targets: tuple[Name, ...] = ()
    services: tuple[Name, ...] = ()
    down_when: ServiceRuleKind = ServiceRuleKind.ANY
    quorum: StrictInt | None = None

    @model_validator(mode="after")
    def _quorum(self) -> ServiceConfig:
        issues: list[Issue] = []
        members = len(self.targets) + len(self.services)
        if not members:
            issues.append(issue(("targets",), "must list at least one target or service", []))
        if self.down_when is ServiceRuleKind.QUORUM:
            if self.quorum is None:
                issues.append(issue(("quorum",), "is required with down_when: quorum"))
            elif not 1 <= self.quorum <= max(members, 1):
                issues.append(
                    issue(
                        ("quorum",),
                        f"must be between 1 and the number of members ({members})",
                        self.quorum,
                    )
                )
        elif self.quorum is not None:
            issues.append(issue(("quorum",), "is only allowed with down_when: quorum", self.quorum))
        for key, names in (("targets", self.targets), ("services", self.services)):
            seen: set[str] = set()
            for index, name in enumerate(names):
                if name in seen:
                    issues.append(issue((key, index), "is listed twice", name))
                if key == "services" and name == self.name:
                    issues.append(issue((key, index), "is this service itself", name))
                seen.add(name)
        if issues:
            raise FieldProblems(issues)
        return self


def _check_failed_fraction(value: Decimal) -> Decimal:
    if not Decimal(0) < value <= Decimal(1):
        raise ValueError("must be more than 0 and at most 1")
    return value


def _check_percent(value: Decimal) -> Decimal:
    if not Decimal(0) <= value <= Decimal(100):
        raise ValueError("must be a percentage from 0 to 100")
    return value


class LocationsConfig(StrictModel):
    """``slas[].locations`` (issue 14): ``{down_when: quorum, quorum: 2, of: [dublin,
    frankfurt, paris]}``: a target's bucket is unavailable when ``quorum`` of the listed
    locations judged it so (``monitor.sla.quorum``). ``of`` is the denominator: a listed
    location that sent nothing is unheard, never dropped."""

    down_when: Literal["quorum"] = "quorum"
    quorum: StrictInt
    of: tuple[Name, ...]

    @model_validator(mode="after")
    def _quorum(self) -> LocationsConfig:
        issues: list[Issue] = []
        if not self.of:
            issues.append(issue(("of",), "must list at least one location", []))
        seen: set[str] = set()
        for index, name in enumerate(self.of):
            if name in seen:
                issues.append(issue(("of", index), "is listed twice", name))
            seen.add(name)
        if self.of and not 1 <= self.quorum <= len(self.of):
            issues.append(
                issue(
                    ("quorum",),
                    f"must be between 1 and the number of locations in of ({len(self.of)})",
                    self.quorum,
                )
            )
        if issues:
            raise FieldProblems(issues)
        return self


class SlaConfig(StrictModel):
    """One availability SLA over one service, with its credit table."""

    name: Name
    service: Name
    objective: ExactDecimal
    bucket: PositiveDuration = 300.0
    timezone: Timezone = "UTC"
    unavailable_when: BucketRuleKind = BucketRuleKind.ANY_FAILED
    failed_fraction: Annotated[ExactDecimal, AfterValidator(_check_failed_fraction)] | None = None
    min_probes: StrictInt = Field(default=1, ge=1, le=10_000)
    unknown_buckets: UnknownPolicy = UnknownPolicy.EXCLUDE
    partial_exclusion: PartialExclusion = PartialExclusion.ANY_OVERLAP
    monthly_fee: Amount
    currency: Currency
    credit_tiers: tuple[CreditTierConfig, ...] = ()
    credit_cap: Amount | None = None
    claim_window_days: StrictInt = Field(default=30, ge=1, le=366)
    min_coverage: Annotated[ExactDecimal, AfterValidator(_check_percent)] = Decimal(90)
    """Percent of the eligible buckets that must be measured before reports stop warning."""
    maintenance_notice: MaintenanceNoticeConfig | None = None
    claim: ClaimConfig | None = None  # contract identifiers for the claim (issue 12)
    locations: LocationsConfig | None = None  # several monitoring locations vote (issue 14)

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: Decimal) -> Decimal:
        if not Decimal(0) < value <= Decimal(100):
            raise ValueError("must be a percentage above 0 and at most 100")
        return value

    @field_validator("credit_tiers", mode="wrap")
    @classmethod
    def _tiers_once(
        cls, value: Any, handler: ValidatorFunctionWrapHandler
    ) -> tuple[CreditTierConfig, ...]:
        # Issue 20: a file of 10,000 SLAs writes a few credit tables thousands of times. A
        # table validated once stands for every later one written alike (its frozen models are
        # values, and slim() would share them anyway); a refused table is never kept, so it is
        # refused again with its own errors.
        key = plain_key(value)
        known = _VALID_TIERS.get(key) if key is not None else None
        if known is not None:
            return known
        tiers: tuple[CreditTierConfig, ...] = handler(value)
        if key is not None and len(_VALID_TIERS) < _MEMO_LIMIT:
            _VALID_TIERS[key] = tiers
        return tiers

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: float) -> float:
        # 15 minutes, not an hour: every time zone's offset is a whole number of quarter
        # hours, so such buckets start on the same instants in every zone and the daemon can
        # key them by epoch (a 1 h bucket would straddle hours in India's +05:30).
        if value != int(value) or 900 % int(value) != 0:
            raise ValueError("must divide 15 minutes exactly (such as 10s, 1m, 5m or 15m)")
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
        issues.extend(_tier_issues(self.credit_tiers, self.objective))
        if issues:
            raise FieldProblems(issues)
        return self

    @property
    def bucket_seconds(self) -> int:
        return int(self.bucket)


_MEMO_LIMIT = 4096
"""Distinct credit tables (and tables with their objective) remembered: a few in practice."""
_VALID_TIERS: dict[tuple[object, ...], tuple[CreditTierConfig, ...]] = {}
_TIERS_FIT: set[tuple[tuple[CreditTierConfig, ...], Decimal]] = set()


def _tier_issues(tiers: tuple[CreditTierConfig, ...], objective: Decimal) -> list[Issue]:
    """What is wrong with a credit table under ``objective``; a table found fit under an
    objective is remembered (only by value: fit has no message), so 10,000 SLAs that share one
    are checked once (issue 20)."""
    key = (tiers, objective)
    if key in _TIERS_FIT:
        return []
    issues = tier_overlaps(tiers)
    for index, tier in enumerate(tiers):
        bound = tier.to_tier()
        upper_meets = (
            bound.upper is None
            or bound.upper > objective
            or (bound.upper == objective and bound.upper_inclusive)
        )
        if tier.credit_percent > 0 and upper_meets:
            issues.append(
                issue(
                    ("credit_tiers", index),
                    f"a tier with a credit must lie below the objective ({objective}): "
                    f"bound it with below: {objective}",
                )
            )
    if not issues and len(_TIERS_FIT) < _MEMO_LIMIT:
        _TIERS_FIT.add(key)
    return issues


class Config(StrictModel):
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
    support: SupportConfig | None = None

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
        return _derived(self, "content_hash", tuple(self.__dict__.values()), self._content_hash)

    def _content_hash(self) -> str:
        """The SHA-256 of ``json.dumps(self.model_dump(mode="json", ...), sort_keys=True)``.

        rl34 (issue 20): that text is written section by section and, in the sections that
        are lists, item by item (``tests/test_config_hash_pieces.py`` holds it equal to the
        whole dump). Dumped whole, ``model_dump`` and the C encoder each held the GIL for the
        whole file in one call: 180 ms at 10,000 SLAs during which the event loop could not
        run, though the hash is computed in a worker thread (a reload's longest block). Item
        by item, the loop gets the GIL back between items."""
        digest = hashlib.sha256()
        digest.update(b"{")
        for position, name in enumerate(sorted(type(self).model_fields)):
            key = _canonical_json(name) + ":"
            digest.update((key if position == 0 else "," + key).encode("utf-8"))
            value = getattr(self, name)
            if isinstance(value, tuple) and all(isinstance(v, BaseModel) for v in value):
                digest.update(b"[")
                for index, item in enumerate(value):
                    text = _canonical_json(_dumped(item))
                    digest.update((text if index == 0 else "," + text).encode("utf-8"))
                digest.update(b"]")
            elif isinstance(value, BaseModel):
                digest.update(_canonical_json(_dumped(value)).encode("utf-8"))
            else:  # None, or a value only the whole dump knows how to write
                whole = self.model_dump(mode="json", include={name}, fallback=repr, warnings=False)
                digest.update(_canonical_json(whole[name]).encode("utf-8"))
        digest.update(b"}")
        return digest.hexdigest()

    def target(self, name: str) -> TargetConfig:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(name)

    # The conversions below are built once per configuration (it is immutable; a copy made
    # with other sections is told apart by the identity of its sections): at 10,000 SLAs
    # converting every SLA again on each call made the callers that ask once per SLA (the
    # month's accounting inputs of each SLA sealed or reported from the store) quadratic.
    def sla_policies(self) -> tuple[SlaPolicy, ...]:
        return _derived(
            self,
            "sla_policies",
            (self.slas, self.monitor),
            self._sla_policies,
        )

    def _sla_policies(self) -> tuple[SlaPolicy, ...]:
        located = None if self.monitor.sharding is None else self.monitor.location_name
        parts = convert.Parts()  # dg31 (issue 20): equal credit tables and rules, one object
        return tuple(
            convert.sla_policy(sla, sharded_location=located, parts=parts) for sla in self.slas
        )

    def service_defs(self) -> dict[str, ServiceDef]:
        """Every service, each with its nested services resolved (the checks refuse cycles)."""
        return dict(_derived(self, "service_defs", (self.services,), self._service_defs))

    def _service_defs(self) -> dict[str, ServiceDef]:
        configs = {service.name: service for service in self.services}
        built: dict[str, ServiceDef] = {}
        parts = convert.Parts()
        for name in configs:
            convert.service_def(configs[name], configs, built, parts)
        return built

    def exclusion_windows(self) -> tuple[ExclusionWindow, ...]:
        return _derived(
            self,
            "exclusion_windows",
            (self.exclusions,),
            lambda: tuple(convert.exclusion_window(e) for e in self.exclusions),
        )

    def recurring_exclusions(self) -> tuple[RecurringExclusion, ...]:
        return _derived(
            self,
            "recurring_exclusions",
            (self.recurring,),
            lambda: tuple(convert.recurring_exclusion(r) for r in self.recurring),
        )

    def canaries(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.targets if t.role == "canary")

    def canary_intervals(self) -> dict[str, float]:
        """Canary -> its interval in seconds: how far around a failed canary probe the
        network counts as failing (``monitor.sla.canary``)."""
        return {t.name: float(t.interval) for t in self.targets if t.role == "canary"}


def share_unchanged(new: Config, old: Config) -> None:
    """Build ``new``'s SLA policies and service definitions reusing ``old``'s objects for every
    SLA and (un-nested) service written exactly as in ``old`` (the same serialised content:
    ``99.90`` is not ``99.9``). Issue 20: a reload that changes one SLA of 10,000 then finds
    the other 9,999 unchanged by identity instead of comparing them field by field on the
    event loop. Call it before anything asks ``new`` for them (a reload's worker thread)."""
    sharded_new = None if new.monitor.sharding is None else new.monitor.location_name
    sharded_old = None if old.monitor.sharding is None else old.monitor.location_name
    if sharded_new == sharded_old:
        known = {
            sla.model_dump_json(): policy
            for sla, policy in zip(old.slas, old.sla_policies(), strict=True)
        }
        parts = convert.Parts()
        policies = tuple(
            known.get(sla.model_dump_json())
            or convert.sla_policy(sla, sharded_location=sharded_new, parts=parts)
            for sla in new.slas
        )
        _derived(new, "sla_policies", (new.slas, new.monitor), lambda: policies)
    old_defs = old.service_defs()
    leaves = {
        service.model_dump_json(): old_defs[service.name]
        for service in old.services
        if not service.services
    }
    configs = {service.name: service for service in new.services}
    built: dict[str, ServiceDef] = {}
    for service in new.services:
        if not service.services:
            found = leaves.get(service.model_dump_json())
            if found is not None:
                built[service.name] = found
    parts = convert.Parts()
    for name in configs:
        convert.service_def(configs[name], configs, built, parts)
    # In the order a fresh build gives (each service after its nested ones).
    ordered: dict[str, ServiceDef] = {}

    def place(name: str) -> None:
        if name not in ordered:
            for child in configs[name].services:
                place(child)
            ordered[name] = built[name]

    for name in configs:
        place(name)
    _derived(new, "service_defs", (new.services,), lambda: ordered)


_T = TypeVar("_T")
_DERIVED: dict[int, tuple[weakref.ref[Config], dict[str, tuple[tuple[object, ...], Any]]]] = {}
"""id(config) -> (the config, name -> (the sections it was built from, the value)); kept
outside the model so that equality, copies and dumps of a Config never see it."""


def _dumped(value: BaseModel) -> object:
    """``value`` as ``Config.model_dump(mode="json")`` writes it inside the configuration."""
    return value.model_dump(mode="json", fallback=repr, warnings=False)


def _canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def _derived(config: Config, name: str, sources: tuple[object, ...], build: Callable[[], _T]) -> _T:
    """``build()`` once per configuration and ``sources`` (compared by identity)."""
    key = id(config)
    entry = _DERIVED.get(key)
    if entry is None or entry[0]() is not config:
        entry = (weakref.ref(config, lambda _: _DERIVED.pop(key, None)), {})
        _DERIVED[key] = entry
    found = entry[1].get(name)
    if (
        found is not None
        and len(found[0]) == len(sources)
        and all(a is b for a, b in zip(found[0], sources, strict=True))
    ):
        return cast(_T, found[1])
    value = build()
    entry[1][name] = (sources, value)
    return value
