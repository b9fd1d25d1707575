"""Raw Prometheus samples -> per-bucket tallies (monitor.promsource.bucketing): pure rules."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.promsource.bucketing import (
    EXPORTER_DOWN,
    GAP,
    STALE,
    STALE_NAN_BITS,
    bucket_series,
    dedupe,
    infer_interval_ms,
    is_stale_marker,
)
from monitor.promsource.live import MIN_MARGIN_SECONDS
from monitor.sla.buckets import target_verdict
from monitor.sla.policy import BucketRule, BucketRuleKind, BucketState
from tests.strategies import prom_series

STALE_NAN = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]
START, END, SIZE = 1000, 1060, 10
ANY = BucketRule()
ALL = BucketRule(kind=BucketRuleKind.ALL_FAILED)


def every(start_ms: int, end_ms: int, step_ms: int, value: float = 1.0) -> list[tuple[int, float]]:
    return [(t, value) for t in range(start_ms, end_ms, step_ms)]


def verdicts(
    samples: list[tuple[int, float]], interval: int, rule: BucketRule = ANY
) -> dict[int, BucketState]:
    result = bucket_series(
        samples,
        start=START,
        end=END,
        bucket_seconds=SIZE,
        scrape_interval_ms=interval,
        rules=(rule,),
    )
    return {b: target_verdict(result.tallies.get(b), rule) for b in range(START, END, SIZE)}


class TestExamples:
    def test_sample_on_an_edge_counts_once_in_the_later_bucket(self) -> None:
        """A sample stamped exactly at a bucket's start belongs to that bucket only."""
        samples = every(995_000, 1_060_000, 1000)
        samples = [(t, 0.0 if t == 1_010_000 else v) for t, v in samples]
        result = bucket_series(samples, start=START, end=END, bucket_seconds=SIZE)
        assert result.tallies[1000].failed == 0
        assert result.tallies[1000].probes == 10
        assert result.tallies[1010].failed == 1
        assert result.tallies[1010].probes == 10
        assert result.samples == 60

    def test_duplicates_are_dropped(self) -> None:
        """Chunks overlapping at their edges (Prometheus 2.x) never count a sample twice."""
        samples = every(995_000, 1_060_000, 1000)
        result = bucket_series(samples + samples[40:], start=START, end=END, bucket_seconds=SIZE)
        assert result.duplicates == len(samples[40:])
        assert all(t.probes == 10 for t in result.tallies.values())

    def test_a_gap_makes_its_buckets_unknown(self) -> None:
        """No samples for 25 s: the buckets it touches are unknown, the others available."""
        samples = every(995_000, 1_018_000, 1000) + every(1_043_000, 1_060_000, 1000)
        result = bucket_series(samples, start=START, end=END, bucket_seconds=SIZE)
        assert result.interval_ms == 1000
        assert set(result.tallies) == {1000, 1050}
        assert result.unknown == {1010: GAP, 1020: GAP, 1030: GAP, 1040: GAP}

    def test_a_failure_inside_partial_coverage_still_proves_unavailability(self) -> None:
        """Any-failed: one 0 in a half-covered bucket makes it unavailable; all-failed: unknown."""
        samples = every(995_000, 1_015_000, 1000)
        samples[-1] = (samples[-1][0], 0.0)
        any_ = bucket_series(samples, start=START, end=END, bucket_seconds=SIZE, rules=(ANY,))
        assert any_.tallies[1010].failed == 1
        both = bucket_series(samples, start=START, end=END, bucket_seconds=SIZE, rules=(ANY, ALL))
        assert 1010 not in both.tallies
        assert 1010 in both.unknown

    def test_stale_marker_ends_coverage(self) -> None:
        """A staleness marker is no probe, and the time after it is uncovered."""
        samples = [*every(995000, 1021000, 1000), (1021000, STALE_NAN)]
        assert is_stale_marker(STALE_NAN)
        assert not is_stale_marker(math.nan)
        result = bucket_series(samples, start=START, end=END, bucket_seconds=SIZE)
        assert 1010 in result.tallies
        assert result.unknown[1020] == "+".join(sorted({GAP, STALE}))
        assert 1030 in result.unknown
        assert 1030 not in result.tallies

    def test_exporter_down_is_unknown_not_failed(self) -> None:
        """up == 0 (the exporter did not answer) leaves the bucket unknown, never failed."""
        samples = every(995_000, 1_060_000, 1000)
        samples = [(t, v) for t, v in samples if not 1_031_000 <= t < 1_033_000]
        up = [
            (t, 0.0 if 1_031_000 <= t < 1_033_000 else 1.0)
            for t, _ in every(995_000, 1_060_000, 1000)
        ]
        result = bucket_series(samples, start=START, end=END, bucket_seconds=SIZE, up=up)
        assert result.unknown == {1030: f"{EXPORTER_DOWN}+{GAP}"}
        assert all(t.failed == 0 for t in result.tallies.values())

    def test_no_margin_leaves_the_first_bucket_unknown(self) -> None:
        """Without a sample before the range, its first seconds are unproven."""
        result = bucket_series(
            every(1_003_000, 1_060_000, 1000), start=START, end=END, bucket_seconds=SIZE
        )
        assert 1000 in result.unknown
        assert 1010 in result.tallies

    def test_interval_inference_and_range_checks(self) -> None:
        """The median spacing is the scrape interval; a misaligned range is refused."""
        assert infer_interval_ms([(0, 1.0), (15_000, 1.0), (30_001, 1.0), (90_000, 1.0)]) == 15_001
        assert infer_interval_ms([(0, 1.0)]) is None
        assert dedupe([(2, 1.0), (1, 0.0), (2, 0.0)]) == ([(1, 0.0), (2, 1.0)], 1)
        with pytest.raises(ValueError, match="bucket-aligned"):
            bucket_series([], start=1001, end=1060, bucket_seconds=SIZE)

    def test_nothing_at_all_is_all_unknown(self) -> None:
        """An empty series: every bucket unknown (a gap), none available."""
        result = bucket_series([], start=START, end=END, bucket_seconds=SIZE)
        assert not result.tallies
        assert set(result.unknown) == set(range(START, END, SIZE))


class TestProperties:
    @settings(max_examples=200, deadline=None)
    @given(prom_series())
    def test_each_sample_in_exactly_one_bucket(
        self, drawn: tuple[int, list[tuple[int, float]]]
    ) -> None:
        """Distinct in-range 0/1 samples = probes in tallies + probes in unknown buckets, and
        each tally holds exactly the samples whose timestamp floors to its bucket."""
        interval, samples = drawn
        result = bucket_series(
            samples, start=START, end=END, bucket_seconds=SIZE, scrape_interval_ms=interval
        )
        distinct = dict(reversed(samples))  # first value kept, like dedupe
        inside = {
            t: v
            for t, v in distinct.items()
            if START * 1000 <= t < END * 1000 and not math.isnan(v)
        }
        per_bucket: dict[int, list[float]] = {}
        for t, v in inside.items():
            per_bucket.setdefault(t // 1000 // SIZE * SIZE, []).append(v)
        for bucket, tally in result.tallies.items():
            values = per_bucket.get(bucket, [])
            assert tally.probes == len(values)
            assert tally.failed == values.count(0.0)
        assert result.samples == len(inside)
        assert set(result.tallies).isdisjoint(result.unknown)
        # Duplicating every sample changes nothing.
        again = bucket_series(
            samples * 2, start=START, end=END, bucket_seconds=SIZE, scrape_interval_ms=interval
        )
        assert again.tallies == result.tallies
        assert again.unknown == result.unknown

    @settings(max_examples=200, deadline=None)
    @given(prom_series(), st.integers(START * 1000, END * 1000 - 1))
    def test_adding_a_failed_sample_never_makes_a_bucket_available(
        self, drawn: tuple[int, list[tuple[int, float]]], at: int
    ) -> None:
        """A new 0 sample: its bucket is unavailable, and no unavailable bucket changes."""
        interval, samples = drawn
        if any(t == at for t, _ in samples):
            at += 1 if at + 1 < END * 1000 else -1
        if any(t == at for t, _ in samples):
            return
        before = verdicts(samples, interval)
        after = verdicts([*samples, (at, 0.0)], interval)
        assert after[at // 1000 // SIZE * SIZE] is BucketState.UNAVAILABLE
        for bucket, state in before.items():
            if state is BucketState.UNAVAILABLE:
                assert after[bucket] is BucketState.UNAVAILABLE
            if after[bucket] is BucketState.AVAILABLE:
                assert bucket != at // 1000 // SIZE * SIZE

    @settings(max_examples=200, deadline=None)
    @given(
        prom_series(),
        st.integers(START * 1000, END * 1000),
        st.integers(1, 30_000),
        st.sampled_from([ANY, ALL]),
    )
    def test_gaps_are_never_available(
        self,
        drawn: tuple[int, list[tuple[int, float]]],
        gap_start: int,
        length: int,
        rule: BucketRule,
    ) -> None:
        """Remove every sample in a stretch longer than 1.5 intervals: no bucket meeting the
        uncovered part is available, whatever the rule."""
        interval, samples = drawn
        gap_end = gap_start + int(1.5 * interval) + length
        kept = [(t, v) for t, v in samples if not gap_start <= t < gap_end]
        states = verdicts(kept, interval, rule)
        uncovered_from = gap_start + int(1.5 * interval)
        for bucket, state in states.items():
            lo, hi = bucket * 1000, (bucket + SIZE) * 1000
            if lo < gap_end and hi > uncovered_from:
                assert state is not BucketState.AVAILABLE

    @settings(max_examples=150, deadline=None)
    @given(prom_series(), st.sampled_from([ANY, ALL]))
    def test_live_bucket_by_bucket_equals_the_import(
        self, drawn: tuple[int, list[tuple[int, float]]], rule: BucketRule
    ) -> None:
        """The live filler asks for one bucket plus a margin; the import for the whole range:
        every bucket comes out the same (tally, or unknown with the same reason)."""
        interval, samples = drawn
        whole = bucket_series(
            samples,
            start=START,
            end=END,
            bucket_seconds=SIZE,
            scrape_interval_ms=interval,
            rules=(rule,),
        )
        margin_ms = MIN_MARGIN_SECONDS * 1000
        for bucket in range(START, END, SIZE):
            lo, hi = bucket * 1000 - margin_ms, (bucket + SIZE) * 1000
            one = bucket_series(
                [(t, v) for t, v in samples if lo <= t < hi],
                start=bucket,
                end=bucket + SIZE,
                bucket_seconds=SIZE,
                scrape_interval_ms=interval,
                rules=(rule,),
            )
            assert one.tallies.get(bucket) == whole.tallies.get(bucket)
            assert one.unknown.get(bucket) == whole.unknown.get(bucket)
