"""Service credit: which band of the credit table an uptime falls in, and what it is worth."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from monitor.sla.policy import CreditPolicy, CreditTier

_CENT = Decimal("0.01")


def credit_tier(uptime_percent: Fraction | None, credit: CreditPolicy) -> CreditTier | None:
    """The tier containing ``uptime_percent``, or ``None`` (no credit, or no measurable uptime).

    Should tiers overlap, the one with the higher credit wins: the claim asks for what the
    table allows at most, and the operator sees the tier in the report.
    """
    if uptime_percent is None:
        return None
    best: CreditTier | None = None
    for tier in credit.tiers:
        if tier.contains(uptime_percent) and (
            best is None or tier.credit_percent > best.credit_percent
        ):
            best = tier
    return best


def credit_amount(tier: CreditTier | None, credit: CreditPolicy) -> Decimal:
    """``monthly_fee * credit_percent / 100``, capped, rounded half-up to the fee's precision.

    The precision is the fee's decimal places, at least cents.
    """
    if tier is None:
        return Decimal(0).quantize(_quantum(credit.monthly_fee))
    raw = credit.monthly_fee * tier.credit_percent / Decimal(100)
    return min(raw, credit.effective_cap).quantize(
        _quantum(credit.monthly_fee), rounding=ROUND_HALF_UP
    )


def _quantum(fee: Decimal) -> Decimal:
    exponent = fee.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return Decimal(1).scaleb(-max(places, 2))


def uptime_percent(unavailable: int, denominator: int) -> Fraction | None:
    """``100 * (1 - unavailable / denominator)`` exactly; ``None`` when nothing is measured."""
    if denominator <= 0:
        return None
    # One exact fraction, not three: the same value (a Fraction is always in lowest terms),
    # computed for every SLA at every bucket close (issue 20, c22).
    return Fraction(100 * (denominator - unavailable), denominator)


def error_budget(denominator: int, objective_percent: Decimal) -> int:
    """Unavailable buckets the objective allows: ``floor(denominator * (100 - objective) / 100)``.

    Exactly the largest count that keeps uptime at or above the objective.
    """
    if denominator <= 0:
        return 0
    return math.floor(Fraction(denominator) * (100 - Fraction(objective_percent)) / 100)


def buckets_to_next_tier(unavailable: int, denominator: int, credit: CreditPolicy) -> int | None:
    """How many more unavailable buckets (out of the same denominator) raise the credit.

    ``None`` when no count of further unavailable buckets can reach a higher credit (already at
    the top, or too few buckets left to fall that far).
    """
    if denominator <= 0:
        return None
    current = credit_tier(uptime_percent(unavailable, denominator), credit)
    floor_percent = Decimal(0) if current is None else current.credit_percent
    room = denominator - unavailable
    best: int | None = None
    for tier in credit.tiers:
        if tier.credit_percent <= floor_percent:
            continue
        needed = _first_count_in(tier, denominator) - unavailable
        candidate = max(needed, 1)
        if candidate > room:
            continue
        # Uptime falls as the count rises; the band may be too narrow to land in, so check.
        landed = credit_tier(uptime_percent(unavailable + candidate, denominator), credit)
        if landed is not None and landed.credit_percent > floor_percent:
            best = candidate if best is None else min(best, candidate)
    return best


def _first_count_in(tier: CreditTier, denominator: int) -> int:
    """The least unavailable count whose uptime is at or below the tier's upper edge."""
    if tier.upper is None:
        return 0
    # uptime <= U  <=>  count >= D * (100 - U) / 100 ; strict edge needs one bucket more on ties.
    threshold = Fraction(denominator) * (100 - Fraction(tier.upper)) / 100
    count = math.ceil(threshold)
    if not tier.upper_inclusive and count == threshold:
        count += 1
    return count


def month_bucket_counts(bucket_seconds: int) -> tuple[int, ...]:
    """Every number of buckets a calendar month can hold: 28 to 31 days, each possibly with
    a DST day an hour short or long (a bucket length divides an hour)."""
    per_day = 86_400 // bucket_seconds
    per_hour = 3_600 // bucket_seconds
    return tuple(
        sorted(
            {days * per_day + shift for days in range(28, 32) for shift in (-per_hour, 0, per_hour)}
        )
    )


def tier_reachable(tier: CreditTier, denominators: tuple[int, ...]) -> bool:
    """Whether some whole count of unavailable buckets, out of one of ``denominators``, gives
    an uptime inside ``tier``.

    The counts inside a band form a run of integers, so only the first count at or past the
    band's upper edge (and the one after it, for an exclusive edge) needs checking.
    """
    for denominator in denominators:
        first = _first_count_in(tier, denominator)
        for count in (first, first + 1):
            if 0 <= count <= denominator and tier.contains(
                uptime_percent(count, denominator) or Fraction(0)
            ):
                return True
    return False
