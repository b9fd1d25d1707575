"""Validated configuration models -> the engine's frozen policy types (``monitor.sla.policy``).

Nothing is re-checked here: the models already hold every rule, so each function is a plain
renaming, and the engine's own ``__post_init__`` checks are a second line, not the first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from fractions import Fraction
from typing import TYPE_CHECKING, TypeVar, cast

from monitor.sla.policy import (
    BucketRule,
    CreditPolicy,
    ExclusionWindow,
    LocationRule,
    RecurringExclusion,
    ServiceDef,
    ServiceRule,
    SlaPolicy,
)

if TYPE_CHECKING:
    from monitor.config.model import ServiceConfig, SlaConfig
    from monitor.config.sections import ExclusionConfig, RecurringExclusionConfig


class Parts:
    """The frozen parts of the policies and services of one conversion, by the validated
    values they are built from (issue 20, dg31).

    ``monitor.config.slim`` makes equal validated values of many SLAs one object (a credit
    table written once for 10,000 SLAs is one tuple); a part built from the very same values
    (by identity: the same objects, so the same types and the same texts, ``99.90`` is not
    ``99.9``) is built once and shared too. The snapshots' inputs digest keeps the canonical
    text of a shared part by identity (``running_codec._text_of``): at 10,000 one-target SLAs
    writing each SLA's credit table and rules again was most of digesting them at start-up.
    The sources are kept with each part, so an identity is never taken for a dead object's."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, tuple[int, ...]], tuple[tuple[object, ...], object]] = {}

    def get(self, kind: type[_P], sources: tuple[object, ...], build: Callable[[], _P]) -> _P:
        """The ``kind`` built from ``sources`` before in this conversion, else ``build()``."""
        key = (kind.__name__, tuple(map(id, sources)))
        found = self._parts.get(key)
        if found is not None and all(a is b for a, b in zip(found[0], sources, strict=True)):
            return cast(_P, found[1])
        part = build()
        self._parts[key] = (sources, part)
        return part


_P = TypeVar("_P")


def sla_policy(
    sla: SlaConfig, *, sharded_location: str | None = None, parts: Parts | None = None
) -> SlaPolicy:
    """``sla`` as the engine's policy. ``sharded_location``: this daemon is one member of that
    location sharing its targets (``monitor.sharding``); an SLA without ``locations`` is then
    judged from the location's tallies summed over its members, as ``{quorum: 1, of:
    [location]}``, never from this member's share alone (its other targets would read unheard).
    ``parts``: share the credit table, bucket rule and coverage built from the same values."""
    parts = Parts() if parts is None else parts
    if sla.locations is not None:
        locations: LocationRule | None = LocationRule(
            quorum=sla.locations.quorum, of=sla.locations.of
        )
    elif sharded_location is not None:
        locations = LocationRule(quorum=1, of=(sharded_location,))
    else:
        locations = None
    return SlaPolicy(
        name=sla.name,
        service=sla.service,
        objective_percent=sla.objective,
        credit=parts.get(
            CreditPolicy,
            (sla.credit_tiers, sla.monthly_fee, sla.currency, sla.credit_cap),
            lambda: CreditPolicy(
                tiers=tuple(tier.to_tier() for tier in sla.credit_tiers),
                monthly_fee=sla.monthly_fee,
                currency=sla.currency,
                cap=sla.credit_cap,
            ),
        ),
        bucket_seconds=sla.bucket_seconds,
        timezone=sla.timezone,
        bucket_rule=parts.get(
            BucketRule,
            (sla.unavailable_when, sla.min_probes, sla.failed_fraction),
            lambda: BucketRule(
                kind=sla.unavailable_when,
                min_probes=sla.min_probes,
                failed_fraction=(
                    None if sla.failed_fraction is None else Fraction(sla.failed_fraction)
                ),
            ),
        ),
        unknown_policy=sla.unknown_buckets,
        partial_exclusion=sla.partial_exclusion,
        claim_window_days=sla.claim_window_days,
        min_coverage=parts.get(
            Fraction, (sla.min_coverage,), lambda: Fraction(sla.min_coverage) / 100
        ),
        locations=locations,
    )


def service_def(
    service: ServiceConfig,
    configs: Mapping[str, ServiceConfig] | None = None,
    built: dict[str, ServiceDef] | None = None,
    parts: Parts | None = None,
) -> ServiceDef:
    """``service`` with its nested services (looked up in ``configs``) built first; ``built``
    memoises, so a service shared by two parents is one object; ``parts`` shares rules built
    from the same values (:class:`Parts`)."""
    built = {} if built is None else built
    done = built.get(service.name)
    if done is not None:
        return done
    parts = Parts() if parts is None else parts
    children = tuple(
        service_def((configs or {})[name], configs, built, parts) for name in service.services
    )
    definition = ServiceDef(
        name=service.name,
        targets=service.targets,
        rule=parts.get(
            ServiceRule,
            (service.down_when, service.quorum),
            lambda: ServiceRule(kind=service.down_when, min_down=service.quorum),
        ),
        services=children,
    )
    built[service.name] = definition
    return definition


def exclusion_window(exclusion: ExclusionConfig) -> ExclusionWindow:
    return ExclusionWindow(
        id=exclusion.id,
        start=exclusion.start,
        end=exclusion.end,
        kind=exclusion.kind,
        reason=exclusion.reason,
        services=frozenset(exclusion.services),
        announced_at=exclusion.announced_at,
        source="config",
    )


def recurring_exclusion(recurring: RecurringExclusionConfig) -> RecurringExclusion:
    return RecurringExclusion(
        id=recurring.id,
        kind=recurring.kind,
        duration=timedelta(seconds=recurring.duration),
        timezone=recurring.timezone,
        rrule=recurring.rrule,
        cron=recurring.cron,
        dtstart=recurring.dtstart,
        reason=recurring.reason,
        services=frozenset(recurring.services),
        cron_day_rule=recurring.cron_day_rule,
    )
