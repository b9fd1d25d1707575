"""Bucket verdicts: a target's from its probes, a service's from its targets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

from monitor.sla.policy import (
    BucketRule,
    BucketRuleKind,
    BucketState,
    ServiceDef,
    ServiceRule,
    ServiceRuleKind,
    Tally,
)

_AVAILABLE = BucketState.AVAILABLE
_UNAVAILABLE = BucketState.UNAVAILABLE
_UNKNOWN = BucketState.UNKNOWN


def target_verdict(tally: Tally | None, rule: BucketRule) -> BucketState:
    """One target's bucket, from what its probes prove.

    Unknown with fewer than ``min_probes`` probes that measured the vendor (monitor errors and
    canary-excused failures measured nothing). Otherwise the rule is applied twice, reading
    every unproven probe (``Tally.unproven``) once as available and once as failed: the bucket
    is unavailable or available only when both readings agree, else unknown. So a bucket whose
    only failures are the monitor's own (or excused by a canary) is never unavailable, and an
    unproven probe never turns a bucket unavailable.
    """
    if tally is None:
        return _UNKNOWN
    unproven = tally.unproven
    failed = tally.failed - tally.excused
    measured = tally.ok + failed
    if measured < rule.min_probes:
        return _UNKNOWN
    if not unproven:
        return _UNAVAILABLE if _down(failed, measured, rule) else _AVAILABLE
    lenient = _down(failed, measured + unproven, rule)
    strict = _down(failed + unproven, measured + unproven, rule)
    if lenient and strict:
        return _UNAVAILABLE
    if not lenient and not strict:
        return _AVAILABLE
    return _UNKNOWN


def _down(failed: int, probes: int, rule: BucketRule) -> bool:
    kind = rule.kind
    if kind is BucketRuleKind.ANY_FAILED:
        return failed > 0
    if kind is BucketRuleKind.ALL_FAILED:
        return failed == probes
    threshold = rule.failed_fraction
    if threshold is None:  # BucketRule.__post_init__ forbids it; kept for the type checker.
        raise ValueError("bucket rule failed_fraction: expected a threshold, got None")
    # sm32 (issue 20): failed / probes >= n / d compared in integers (probes > 0: at least
    # min_probes >= 1 measured), not as a Fraction made per call (~20 us, two per bucket
    # judged; every SLA's last hour is judged before a start's first summary ends).
    if type(threshold) is not Fraction:  # a caller's int or Decimal: compared exactly
        return Fraction(failed, probes) >= threshold
    return failed * threshold.denominator >= threshold.numerator * probes


def quorum_of(rule: ServiceRule, targets: int) -> int:
    """How many targets must be down for the service to be: any = 1, all = every target."""
    if rule.kind is ServiceRuleKind.ANY:
        return 1
    if rule.kind is ServiceRuleKind.ALL:
        return max(targets, 1)
    if rule.min_down is None:  # ServiceRule.__post_init__ forbids it; kept for the type checker.
        raise ValueError("service rule quorum: expected min_down, got None")
    return rule.min_down


def service_verdict(states: Sequence[BucketState], rule: ServiceRule) -> BucketState:
    """Combine target verdicts with quorum N (any = 1, all = M targets).

    Unavailable when at least N targets are down; unknown when the unknown targets could make
    up the quorum (down + unknown >= N), since an unprobed target may have been down; else
    available. A service with no targets has no evidence and is unknown.
    """
    if not states:
        return _UNKNOWN
    quorum = quorum_of(rule, len(states))
    down = 0
    unknown = 0
    for state in states:
        if state is _UNAVAILABLE:
            down += 1
        elif state is not _AVAILABLE:
            unknown += 1
    if down >= quorum:
        return _UNAVAILABLE
    if down + unknown >= quorum:
        return _UNKNOWN
    return _AVAILABLE


def nested_verdict(service: ServiceDef, targets: Mapping[str, BucketState]) -> BucketState:
    """The service's verdict from its targets' (``targets``: name -> verdict, a missing one
    unknown) and, recursively, its nested services' verdicts, each under its own rule."""
    states = [targets.get(name, _UNKNOWN) for name in service.targets]
    states.extend(nested_verdict(child, targets) for child in service.services)
    return service_verdict(states, service.rule)
