"""Validated configuration models -> the engine's frozen policy types (``monitor.sla.policy``).

Nothing is re-checked here: the models already hold every rule, so each function is a plain
renaming, and the engine's own ``__post_init__`` checks are a second line, not the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from fractions import Fraction
from typing import TYPE_CHECKING

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


def sla_policy(sla: SlaConfig, *, sharded_location: str | None = None) -> SlaPolicy:
    """``sla`` as the engine's policy. ``sharded_location``: this daemon is one member of that
    location sharing its targets (``monitor.sharding``); an SLA without ``locations`` is then
    judged from the location's tallies summed over its members, as ``{quorum: 1, of:
    [location]}``, never from this member's share alone (its other targets would read unheard)."""
    fraction = None if sla.failed_fraction is None else Fraction(sla.failed_fraction)
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
        credit=CreditPolicy(
            tiers=tuple(tier.to_tier() for tier in sla.credit_tiers),
            monthly_fee=sla.monthly_fee,
            currency=sla.currency,
            cap=sla.credit_cap,
        ),
        bucket_seconds=sla.bucket_seconds,
        timezone=sla.timezone,
        bucket_rule=BucketRule(
            kind=sla.unavailable_when, min_probes=sla.min_probes, failed_fraction=fraction
        ),
        unknown_policy=sla.unknown_buckets,
        partial_exclusion=sla.partial_exclusion,
        claim_window_days=sla.claim_window_days,
        min_coverage=Fraction(sla.min_coverage) / 100,
        locations=locations,
    )


def service_def(
    service: ServiceConfig,
    configs: Mapping[str, ServiceConfig] | None = None,
    built: dict[str, ServiceDef] | None = None,
) -> ServiceDef:
    """``service`` with its nested services (looked up in ``configs``) built first; ``built``
    memoises, so a service shared by two parents is one object."""
    built = {} if built is None else built
    done = built.get(service.name)
    if done is not None:
        return done
    children = tuple(
        service_def((configs or {})[name], configs, built) for name in service.services
    )
    definition = ServiceDef(
        name=service.name,
        targets=service.targets,
        rule=ServiceRule(kind=service.down_when, min_down=service.quorum),
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
