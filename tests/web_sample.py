"""Deterministic months for the web view's tests, benchmark and screenshots.

Months are computed by the engine (``compute_month``) from tallies built here, never written
by hand, so the pages show what the daemon would show for the same evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import MappingProxyType

from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import MonthResult, compute_month
from monitor.sla.policy import (
    CreditPolicy,
    CreditTier,
    ExclusionKind,
    ExclusionWindow,
    ServiceDef,
    SlaPolicy,
    Tally,
)

TARGETS = ("sip-edge", "ivr-api")
CREDIT = CreditPolicy(
    tiers=(
        CreditTier(Decimal(10), upper=Decimal("99.95"), lower=Decimal("99.9")),
        CreditTier(Decimal(25), upper=Decimal("99.9"), lower=Decimal("99.0")),
        CreditTier(Decimal(50), upper=Decimal("99.0")),
    ),
    monthly_fee=Decimal("10000.00"),
    currency="GBP",
)
OK = Tally(ok=10)
OCTOBER = Month(2026, 10)


def down(reason: str = "status_code_503", failed: int = 10) -> Tally:
    return Tally(failed=failed, reasons=MappingProxyType({reason: failed}))


def policy(name: str = "voice-availability", tz: str = "Europe/London") -> SlaPolicy:
    return SlaPolicy(
        name=name,
        service="voice",
        objective_percent=Decimal("99.95"),
        credit=CREDIT,
        bucket_seconds=300,
        timezone=tz,
    )


SERVICE = ServiceDef("voice", TARGETS)


def outage_spans(month: Month) -> list[tuple[datetime, timedelta, str, str]]:
    """(UTC start, length, reason, target) of the sample's outages: a few a week."""
    first = datetime(month.year, month.month, 1, tzinfo=UTC)
    spans = []
    for day in range(2, 28, 3):
        start = first + timedelta(days=day, hours=(day * 5) % 24, minutes=(day * 35) % 60 // 5 * 5)
        reason = ("status_code_503", "timeout", "connection_refused")[day // 3 % 3]
        spans.append((start, timedelta(minutes=5 * (1 + day % 5)), reason, TARGETS[day % 2]))
    return spans


def sample_tallies(
    month: Month, tz: str, unknown_days: tuple[int, ...] = (20,), flip: bool = False
) -> dict[str, dict[int, Tally]]:
    """Every bucket measured by both targets, with outages; ``unknown_days`` unmeasured;
    ``flip`` makes every other bucket unavailable (the page's worst case)."""
    grid = month_grid(month, tz, 300)
    tallies: dict[str, dict[int, Tally]] = {name: {} for name in TARGETS}
    unmeasured = set()
    for day in unknown_days:
        lo = int(datetime(month.year, month.month, day, 9, tzinfo=UTC).timestamp())
        unmeasured.update(range(lo, lo + 4 * 3600, 300))
    for index, epoch in enumerate(grid.starts()):
        if epoch in unmeasured:
            continue
        for name in TARGETS:
            tallies[name][epoch] = down() if flip and index % 2 else OK
    if not flip:
        for start, length, reason, target in outage_spans(month):
            epoch = int(start.timestamp())
            for bucket in range(epoch, epoch + int(length.total_seconds()), 300):
                tallies[target][bucket] = down(reason)
    return tallies


def maintenance(month: Month) -> list[ExclusionWindow]:
    start = datetime(month.year, month.month, 10, 1, tzinfo=UTC)
    return [
        ExclusionWindow(
            id="upgrade-sbc",
            start=start,
            end=start + timedelta(hours=2),
            kind=ExclusionKind.SCHEDULED_MAINTENANCE,
            reason="SBC software upgrade, announced 7 days ahead",
            announced_at=start - timedelta(days=7),
        ),
        ExclusionWindow(
            id="carrier-fault",
            start=start + timedelta(days=5, hours=12),
            end=start + timedelta(days=5, hours=13, minutes=30),
            kind=ExclusionKind.TELECOM_PROVIDER,
            reason="carrier trunk outage",
            source="api",
        ),
    ]


def sample_month(
    month: Month = OCTOBER,
    tz: str = "Europe/London",
    name: str = "voice-availability",
    now: datetime | None = None,
    flip: bool = False,
) -> tuple[SlaPolicy, MonthResult]:
    """A policy and its computed month (complete unless ``now`` falls inside it)."""
    chosen = policy(name, tz)
    result = compute_month(
        chosen,
        SERVICE,
        month,
        sample_tallies(month, tz, flip=flip),
        maintenance(month),
        now=now,
    )
    return chosen, result
