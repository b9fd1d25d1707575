"""Issue 20, dg31: the inputs digest of a stored snapshot keeps its value.

Every stored month snapshot carries ``inputs_digest`` of the inputs it was judged under; a
start restores it only if today's digest is the same. A change of the digest's value (not of
how fast it is computed) discards every snapshot, and the next start at a month's end reads
the whole month again. The hex values below were computed on main (596e6f9) before the
digest was memoised; the property checks the digest against an independent, unmemoised
computation (the reflection walk of ``test_snapshot_codec`` and the gap buckets taken one by
one), over objects shared between calls as the configuration shares them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sla.calendar import Month, month_grid
from monitor.sla.policy import (
    BucketRule,
    BucketRuleKind,
    CreditPolicy,
    CreditTier,
    LocationRule,
    PartialExclusion,
    ServiceDef,
    ServiceRule,
    ServiceRuleKind,
    SlaPolicy,
    UnknownPolicy,
)
from monitor.sla.running_codec import JUDGING, inputs_digest
from tests.strategies import credit_tables
from tests.test_snapshot_codec import _reflected

pytestmark = pytest.mark.timeout(120)

TIERS = CreditPolicy(
    tiers=(
        CreditTier(Decimal("10"), upper=Decimal("99.9"), lower=Decimal("99.0")),
        CreditTier(Decimal("25"), upper=Decimal("99.0"), upper_inclusive=False),
    ),
    monthly_fee=Decimal("1000.00"),
    currency="EUR",
    cap=Decimal("500"),
)
PLAIN = SlaPolicy("sla0", "svc0", Decimal("99.9"), TIERS)
RICH = SlaPolicy(
    "voice",
    "voice-svc",
    Decimal("99.95"),
    TIERS,
    bucket_seconds=60,
    timezone="Europe/Amsterdam",
    bucket_rule=BucketRule(BucketRuleKind.FAILED_FRACTION, 3, Fraction(1, 3)),
    unknown_policy=UnknownPolicy.UNAVAILABLE,
    partial_exclusion=PartialExclusion.FULL,
    claim_window_days=14,
    min_coverage=Fraction(3, 4),
    locations=LocationRule(quorum=2, of=("ams", "fra", "lon")),
)
ONE = ServiceDef("svc0", ("t00000",))
SBCS = ServiceDef("sbcs", ("sbc-a", "sbc-b"), ServiceRule(ServiceRuleKind.ALL))
NESTED = ServiceDef(
    "voice-svc", ("ivr", "sip-edge"), ServiceRule(ServiceRuleKind.QUORUM, 2), (SBCS,)
)
MARCH = Month(2026, 3)  # the clocks go forward in Amsterdam: a month of 743 hours
GAPS = (
    (datetime(2026, 3, 2, 10, 7, tzinfo=UTC), datetime(2026, 3, 2, 10, 31, tzinfo=UTC)),
    (datetime(2026, 2, 28, 23, 0, tzinfo=UTC), datetime(2026, 3, 1, 0, 10, tzinfo=UTC)),
    (datetime(2026, 3, 30, 0, 0, tzinfo=UTC), datetime(2026, 3, 30, 1, 0, tzinfo=UTC)),
    (datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 5, 2, tzinfo=UTC)),
)

PINNED = [
    (
        PLAIN,
        ONE,
        Month(2026, 11),
        (),
        (),
        8064,
        "597093b7c18adcc3601f51442dd4abbf9c783b53061b353a2ab8e4d04bca88ff",
    ),
    (
        PLAIN,
        ONE,
        MARCH,
        (),
        GAPS,
        8500,
        "fa2fabdcbc5cb3c4ba28e1d7f17af1617993ab70958f8cc9a346121ae9c8256f",
    ),
    (
        PLAIN,
        ONE,
        MARCH,
        ("canary-1",),
        GAPS,
        100,
        "588a89b6fe132b7c95af44c170dffce3574d574f4abcafb48d8f8088644d6148",
    ),
    (
        RICH,
        NESTED,
        MARCH,
        ("canary-1", "canary-0"),
        GAPS,
        40_000,
        "ceff2e757813c1052974bc66fc7f831cd15e80aec555fa6cee1ef1ba51c6732e",
    ),
    (
        RICH,
        NESTED,
        MARCH,
        ("canary-1", "canary-0"),
        GAPS,
        0,
        "46ccf391cee734f5fdbeec4a476388ad52f1b5e300ed29b33a95277ba32fc118",
    ),
    (
        RICH,
        NESTED,
        Month(2026, 4),
        (),
        GAPS,
        43_200,
        "d69218fe29e3fc131f94b9857418df092e2b8979a8884de7f0bb60622cf990a1",
    ),
]


@pytest.mark.parametrize("case", range(len(PINNED)))
def test_pinned_digests(case: int) -> None:
    """The digests of fixed inputs (credit tiers, nested services, canaries, gaps inside,
    across and outside the month and beyond the buckets judged) are main's, twice (the
    second call from whatever the first one kept)."""
    policy, service, month, canaries, gaps, judged, pinned = PINNED[case]
    for _ in range(2):
        assert inputs_digest(policy, service, month, canaries, gaps, judged) == pinned


def _reference(
    policy: SlaPolicy,
    service: ServiceDef,
    month: Month,
    canaries: tuple[str, ...],
    gaps: tuple[tuple[datetime, datetime], ...],
    judged: int,
) -> str:
    """The digest as the module docs of ``running_codec`` describe it, nothing kept."""
    grid = month_grid(month, policy.timezone, policy.bucket_seconds)
    touched = set()
    for index in range(min(judged, grid.count)):
        lo = grid.start_epoch + index * grid.bucket_seconds
        hi = lo + grid.bucket_seconds
        if any(s.timestamp() < hi and e.timestamp() > lo for s, e in gaps):
            touched.add(index)
    text = "\n".join(
        (
            JUDGING,
            _reflected(policy),
            _reflected(service),
            str(month),
            _reflected(tuple(canaries)),
            repr(sorted(touched)),
            str(judged),
        )
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_START = datetime(2026, 2, 27, tzinfo=UTC)
_gaps = st.lists(
    st.tuples(st.integers(0, 40 * 24 * 60), st.integers(1, 3 * 60)).map(
        lambda g: (_START + timedelta(minutes=g[0]), _START + timedelta(minutes=g[0] + g[1]))
    ),
    max_size=4,
).map(tuple)


@settings(max_examples=150, deadline=None)
@given(
    credit_tables(),
    st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York"]),
    st.sampled_from([60, 300, 900]),
    st.sampled_from([Month(2026, 2), MARCH, Month(2026, 4)]),
    st.lists(st.text(min_size=1, max_size=4), max_size=3).map(tuple),
    _gaps,
    st.integers(0, 45_000),
    st.booleans(),
)
def test_digest_is_the_unmemoised_one(
    credit: CreditPolicy,
    zone: str,
    size: int,
    month: Month,
    canaries: tuple[str, ...],
    gaps: tuple[tuple[datetime, datetime], ...],
    judged: int,
    nested: bool,
) -> None:
    """Two SLAs sharing their credit table and rules (as the configuration shares them),
    both months, asked twice: each digest is the one computed from scratch."""
    rule = BucketRule(min_probes=2)
    policies = [
        SlaPolicy(name, "svc", Decimal("99.9"), credit, size, zone, rule) for name in ("a", "b")
    ]
    service = NESTED if nested else ServiceDef("svc", ("t1",), ServiceRule())
    for _ in range(2):
        for policy in policies:
            for when in (month.previous(), month):
                assert inputs_digest(policy, service, when, canaries, gaps, judged) == _reference(
                    policy, service, when, canaries, gaps, judged
                )


def test_digest_after_the_kept_heads_are_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    """mem34 (issue 20): the hashed head of each policy and service is kept by identity and
    the store of them is cleared when full; digests across a clearing, for SLAs asked in
    turn, and for an equal policy that is another object, are each the one from scratch."""
    from monitor.sla import running_codec

    monkeypatch.setattr(running_codec, "_HEADS", {})
    monkeypatch.setattr(running_codec, "_HEADS_KEPT", 2)
    rule = BucketRule(min_probes=2)
    service = ServiceDef("svc", ("t1",), ServiceRule())
    policies = [
        SlaPolicy(name, "svc", Decimal("99.9"), TIERS, 300, "UTC", rule)
        for name in ("a", "b", "c", "a")
    ]
    assert policies[0] == policies[3]
    assert policies[0] is not policies[3]
    for _ in range(3):
        for policy in policies:
            for month, judged in ((MARCH.previous(), 8064), (MARCH, 17)):
                got = inputs_digest(policy, service, month, ("t9",), (), judged)
                assert got == _reference(policy, service, month, ("t9",), (), judged)
    assert len(running_codec._HEADS) <= 2
    assert all(kept[0] in policies for kept in running_codec._HEADS.values())
