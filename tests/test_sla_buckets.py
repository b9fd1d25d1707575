"""Bucket verdicts: one target's from its probes, one service's from its targets."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.sla.buckets import _down, quorum_of, service_verdict, target_verdict
from monitor.sla.policy import (
    BucketRule,
    BucketRuleKind,
    BucketState,
    ServiceRule,
    ServiceRuleKind,
    Tally,
)
from tests.strategies import service_rules

A = BucketState.AVAILABLE
U = BucketState.UNAVAILABLE
Q = BucketState.UNKNOWN
ANY = BucketRule()
ALL = BucketRule(kind=BucketRuleKind.ALL_FAILED)
HALF = BucketRule(kind=BucketRuleKind.FAILED_FRACTION, failed_fraction=Fraction(1, 2))


class TestTargetVerdict:
    @pytest.mark.parametrize(
        ("tally", "rule", "expected"),
        [
            (None, ANY, Q),
            (Tally(), ANY, Q),
            (Tally(ok=10), ANY, A),
            (Tally(ok=9, failed=1), ANY, U),
            (Tally(ok=9, failed=1), ALL, A),
            (Tally(failed=3), ALL, U),
            (Tally(ok=1, failed=1), HALF, U),
            (Tally(ok=2, failed=1), HALF, A),
            (Tally(ok=1, failed=2), HALF, U),
            (Tally(ok=1), BucketRule(min_probes=2), Q),
            (Tally(failed=1), BucketRule(min_probes=2), Q),
            (Tally(ok=1, failed=1), BucketRule(min_probes=2), U),
            (Tally(ok=2), BucketRule(min_probes=2), A),
        ],
    )
    def test_rules_and_min_probes(
        self, tally: Tally | None, rule: BucketRule, expected: BucketState
    ) -> None:
        """Each rule at its edges; fewer probes than min_probes is unknown whatever they said."""
        assert target_verdict(tally, rule) is expected

    def test_fraction_threshold_is_inclusive(self) -> None:
        """failed_fraction: unavailable when failed / probes reaches the threshold exactly."""
        third = BucketRule(kind=BucketRuleKind.FAILED_FRACTION, failed_fraction=Fraction(1, 3))
        assert target_verdict(Tally(ok=2, failed=1), third) is U
        assert target_verdict(Tally(ok=3, failed=1), third) is A

    def test_a_failed_probe_completing_min_probes_can_make_a_bucket_known(self) -> None:
        """With all_failed and min_probes 2, ok+failed is available: the rule, not a bug."""
        rule = BucketRule(kind=BucketRuleKind.ALL_FAILED, min_probes=2)
        assert target_verdict(Tally(ok=1), rule) is Q
        assert target_verdict(Tally(ok=1, failed=1), rule) is A


class TestServiceVerdict:
    @pytest.mark.parametrize(
        ("states", "rule", "expected"),
        [
            ((A, A, A), ServiceRule(), A),
            ((A, U, A), ServiceRule(), U),
            ((A, Q, A), ServiceRule(), Q),
            ((Q, U, Q), ServiceRule(), U),
            ((U, A), ServiceRule(ServiceRuleKind.ALL), A),
            ((U, Q), ServiceRule(ServiceRuleKind.ALL), Q),
            ((U, U), ServiceRule(ServiceRuleKind.ALL), U),
            ((U, A, A), ServiceRule(ServiceRuleKind.QUORUM, 2), A),
            ((U, Q, A), ServiceRule(ServiceRuleKind.QUORUM, 2), Q),
            ((U, U, A), ServiceRule(ServiceRuleKind.QUORUM, 2), U),
            ((Q, Q, A), ServiceRule(ServiceRuleKind.QUORUM, 2), Q),
            ((Q, A, A), ServiceRule(ServiceRuleKind.QUORUM, 2), A),
            ((), ServiceRule(), Q),
        ],
    )
    def test_quorum_table(
        self, states: tuple[BucketState, ...], rule: ServiceRule, expected: BucketState
    ) -> None:
        """Down when >= N down; unknown when down + unknown >= N; else available."""
        assert service_verdict(states, rule) is expected

    def test_quorum_of_kinds(self) -> None:
        """any = 1, all = every target, quorum = min_down."""
        assert quorum_of(ServiceRule(), 3) == 1
        assert quorum_of(ServiceRule(ServiceRuleKind.ALL), 3) == 3
        assert quorum_of(ServiceRule(ServiceRuleKind.QUORUM, 2), 3) == 2

    @given(st.lists(st.sampled_from([A, U, Q]), min_size=1, max_size=4), service_rules)
    def test_unknown_is_never_taken_as_available(
        self, states: list[BucketState], rule: ServiceRule
    ) -> None:
        """Turning any unknown target into unavailable can never leave the service available
        unless it was already decided without that target."""
        verdict = service_verdict(states, rule)
        worst = service_verdict([U if s is Q else s for s in states], rule)
        if verdict is A:
            assert worst is A
        assert not (verdict is A and Q in states and worst is U)

    @given(st.lists(st.sampled_from([A, U, Q]), min_size=1, max_size=4), service_rules)
    def test_worse_targets_never_make_a_better_service(
        self, states: list[BucketState], rule: ServiceRule
    ) -> None:
        """Monotone: replacing any target's verdict by a worse one never improves the service."""
        order = {A: 0, Q: 1, U: 2}
        before = service_verdict(states, rule)
        for index, state in enumerate(states):
            for worse in (s for s in (A, Q, U) if order[s] > order[state]):
                after = service_verdict([*states[:index], worse, *states[index + 1 :]], rule)
                assert order[after] >= order[before]


class TestDownInIntegers:
    @given(
        failed=st.integers(0, 10_000),
        extra=st.integers(0, 10_000),
        threshold=st.fractions(min_value=Fraction(1, 10_000), max_value=1),
    )
    def test_equals_the_fraction_comparison(
        self, failed: int, extra: int, threshold: Fraction
    ) -> None:
        """sm32 (issue 20): the failed_fraction rule compared in integers gives the exact
        comparison of the fractions, at the boundary too."""
        probes = max(1, failed + extra)
        rule = BucketRule(BucketRuleKind.FAILED_FRACTION, failed_fraction=threshold)
        failed = min(failed, probes)
        assert _down(failed, probes, rule) == (Fraction(failed, probes) >= threshold)
        exact = threshold * probes
        if exact.denominator == 1:  # exactly at the threshold: down
            assert _down(int(exact), probes, rule)
