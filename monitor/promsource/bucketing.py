"""Raw Prometheus samples of a 0/1 success series -> the engine's per-bucket ``Tally``.

Pure: no clock, no I/O. The rules, in the contract's words (docs/prometheus-import.md):

- Each sample is counted exactly once, in the bucket ``[bucket_start, bucket_end)`` holding its
  timestamp. Prometheus 2.x range selectors include both ends and 3.x excludes the start, so
  chunks fetched from either may overlap by a sample: duplicate timestamps are dropped here, and
  samples outside the asked range are ignored, which makes the result the same on every version.
- ``1`` is a probe that succeeded, ``0`` one that failed (the vendor's failure, when the
  exporter's ``up`` was 1 at that scrape).
- Coverage: a sample at ``t`` vouches for ``[t, t + 1.5 x scrape interval)``. Time inside the
  range that no sample covers is a scrape gap: the exporter or Prometheus was not looking. A
  staleness marker (or any value other than 0/1) counts as no probe and ends the previous
  sample's coverage. An ``up == 0`` sample marks its bucket as "exporter down".
- A bucket touched by a gap, a staleness marker or a dead exporter is *unknown* unless its
  samples prove it unavailable under every rule that judges it: partial evidence never makes a
  bucket available (the engine treats the daemon's own gaps the same way).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from types import MappingProxyType

from monitor.sla.buckets import target_verdict
from monitor.sla.policy import BucketRule, BucketState, Tally

Sample = tuple[int, float]
"""(timestamp in milliseconds, value), as Prometheus stores it."""

STALE_NAN_BITS = 0x7FF0000000000002
"""The bit pattern of Prometheus's staleness marker (``value.StaleNaN``)."""

COVERAGE_FACTOR = 1.5
"""A sample covers 1.5 scrape intervals: one missed scrape is a gap, jitter is not."""

DEFAULT_SCRAPE_INTERVAL_MS = 60_000
"""Prometheus's default ``scrape_interval``; used only when it cannot be inferred."""

FAILED_REASON = "probe_success_0"
_NO_REASONS: Mapping[str, int] = MappingProxyType({})
GAP = "scrape_gap"
STALE = "stale_or_invalid_sample"
EXPORTER_DOWN = "exporter_down"


def is_stale_marker(value: float) -> bool:
    """True for Prometheus's staleness marker (a NaN with a particular payload)."""
    return math.isnan(value) and struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS


@dataclass(frozen=True)
class Bucketed:
    """One target's buckets over a range.

    ``tallies``: bucket start epoch -> Tally, for buckets the samples judge.
    ``unknown``: bucket start epoch -> why it has no tally although samples touch it or it lies
    in a gap (``scrape_gap``, ``exporter_down``, ``stale_or_invalid_sample``, joined by ``+``).
    ``samples`` counted, ``duplicates`` dropped, ``interval_ms`` the scrape interval used.
    """

    tallies: Mapping[int, Tally]
    unknown: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))
    samples: int = 0
    duplicates: int = 0
    interval_ms: int = DEFAULT_SCRAPE_INTERVAL_MS


def dedupe(samples: Iterable[Sample]) -> tuple[list[Sample], int]:
    """Samples sorted by timestamp with repeated timestamps dropped (the first kept), and how
    many were dropped. Chunks overlap at their edges on Prometheus 2.x."""
    ordered = sorted(samples, key=lambda s: s[0])
    out: list[Sample] = []
    dropped = 0
    last: int | None = None
    for ts, value in ordered:
        if ts == last:
            dropped += 1
            continue
        out.append((ts, value))
        last = ts
    return out, dropped


def infer_interval_ms(samples: Sequence[Sample]) -> int | None:
    """The median spacing of consecutive timestamps (the scrape interval), or None."""
    diffs = sorted(b[0] - a[0] for a, b in pairwise(samples) if b[0] > a[0])
    if not diffs:
        return None
    return diffs[len(diffs) // 2]


def bucket_series(
    success: Iterable[Sample],
    *,
    start: int,
    end: int,
    bucket_seconds: int,
    up: Iterable[Sample] = (),
    scrape_interval_ms: int | None = None,
    rules: Sequence[BucketRule] = (BucketRule(),),
) -> Bucketed:
    """Tallies of the buckets in ``[start, end)`` (epoch seconds, bucket-aligned).

    ``success`` and ``up`` may hold samples outside the range (a margin fetched before
    ``start`` tells whether the first bucket was covered); only those inside are counted.
    ``rules`` are the bucket rules of every SLA measuring the target: a bucket with partial
    coverage keeps its tally only if each of them judges it unavailable.
    """
    if bucket_seconds <= 0 or start % bucket_seconds or end % bucket_seconds or end < start:
        raise ValueError(
            f"range: expected bucket-aligned start <= end for {bucket_seconds}s buckets, "
            f"got {start}..{end}"
        )
    ordered, duplicates = dedupe(success)
    counted = [s for s in ordered if s[1] == 0.0 or s[1] == 1.0]
    interval = scrape_interval_ms or infer_interval_ms(counted) or DEFAULT_SCRAPE_INTERVAL_MS
    reach = int(interval * COVERAGE_FACTOR)
    start_ms, end_ms, size_ms = start * 1000, end * 1000, bucket_seconds * 1000

    ok: dict[int, int] = {}
    failed: dict[int, int] = {}
    flags: dict[int, set[str]] = {}

    def flag(lo_ms: int, hi_ms: int, why: str) -> None:
        """Flag every bucket meeting [lo_ms, hi_ms) within the range."""
        lo, hi = max(lo_ms, start_ms), min(hi_ms, end_ms)
        if lo >= hi:
            return
        first = (lo // size_ms) * size_ms
        for bucket_ms in range(first, hi, size_ms):
            flags.setdefault(bucket_ms // 1000, set()).add(why)

    covered_to = -(2**62)  # coverage of the samples seen so far ends here (ms)
    samples = 0
    for ts, value in ordered:
        if ts > covered_to:
            flag(covered_to, ts, GAP)
        if value == 1.0 or value == 0.0:
            covered_to = ts + reach
            if start_ms <= ts < end_ms:
                bucket = (ts // size_ms) * size_ms // 1000
                table = ok if value == 1.0 else failed
                table[bucket] = table.get(bucket, 0) + 1
                samples += 1
        else:
            # A staleness marker or a value that is not 0/1: no probe, and the series has
            # stopped vouching for anything from here on.
            if start_ms <= ts < end_ms:
                flag(ts, ts + 1, STALE)
            covered_to = min(covered_to, ts)
    flag(covered_to, end_ms, GAP)
    if not ordered:
        flag(start_ms, end_ms, GAP)

    for ts, value in dedupe(up)[0]:
        if value == 0.0 and start_ms <= ts < end_ms:
            flag(ts, ts + 1, EXPORTER_DOWN)

    tallies: dict[int, Tally] = {}
    unknown: dict[int, str] = {}
    for bucket in sorted(set(ok) | set(failed) | set(flags)):
        n_ok, n_failed = ok.get(bucket, 0), failed.get(bucket, 0)
        tally = Tally(
            ok=n_ok,
            failed=n_failed,
            reasons=MappingProxyType({FAILED_REASON: n_failed}) if n_failed else _NO_REASONS,
        )
        why = flags.get(bucket)
        if why and not all(
            target_verdict(tally, rule) is BucketState.UNAVAILABLE for rule in rules
        ):
            unknown[bucket] = "+".join(sorted(why))
            continue
        if tally.probes:
            tallies[bucket] = tally
    return Bucketed(
        tallies=MappingProxyType(tallies),
        unknown=MappingProxyType(unknown),
        samples=samples,
        duplicates=duplicates,
        interval_ms=interval,
    )
