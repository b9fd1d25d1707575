"""Canaries excuse instants, not buckets: when was every canary failing?

Exclusion (iii) excuses failures caused by the customer's own network. A canary (a target the
vendor does not run) failing proves our network was in trouble *around the instant it
failed*, not for a whole bucket: a single failed canary probe at 14:05:03 followed by a
successful one at 14:05:43 must not erase a vendor outage from 14:05 to 14:10.

The reading: a canary's failed probe at ``t`` covers ``[t - tolerance, t + tolerance)``, cut
short by the canary's neighbouring successful probes (a success proves the network worked at
that instant). ``tolerance`` is the canary's probe interval: between two probes we cannot know
more. A vendor failure at instant ``u`` is *excused* when every canary covers ``u``.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_INSTANT = 1e-6
"""One microsecond: the resolution at which a probe's start is an instant."""

Span = tuple[float, float]
"""``[start, end)`` in epoch seconds."""


@dataclass(frozen=True)
class CanaryTimeline:
    """One canary's probes as ``(epoch, ok)`` in time order, and the tolerance in seconds."""

    probes: tuple[tuple[float, bool], ...]
    tolerance: float

    def __post_init__(self) -> None:
        if self.tolerance < 0:
            raise ValueError(f"canary tolerance: expected >= 0 seconds, got {self.tolerance}")


def failing_spans(timeline: CanaryTimeline) -> list[Span]:
    """The union of the spans the canary's failed probes cover, in order, disjoint."""
    probes = sorted(timeline.probes)
    tol = timeline.tolerance
    spans: list[Span] = []
    next_oks: list[float | None] = [None] * len(probes)
    following: float | None = None
    for index in range(len(probes) - 1, -1, -1):
        next_oks[index] = following
        if probes[index][1]:
            following = probes[index][0]
    previous_ok: float | None = None
    for index, (epoch, ok) in enumerate(probes):
        if ok:
            previous_ok = epoch
            continue
        next_ok = next_oks[index]
        # Spans are half-open [lo, hi): the successful probe before is not covered either.
        lo = epoch - tol if previous_ok is None else max(previous_ok + _INSTANT, epoch - tol)
        hi = epoch + tol if next_ok is None else min(next_ok, epoch + tol)
        # A probe that failed at the very instant another succeeded still covers itself.
        hi = max(hi, epoch + _INSTANT)
        lo = min(lo, epoch)
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    return spans


def intersect(a: Sequence[Span], b: Sequence[Span]) -> list[Span]:
    """The instants in both ordered, disjoint span lists."""
    out: list[Span] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo = max(a[i][0], b[j][0])
        hi = min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def canary_cover(timelines: Mapping[str, CanaryTimeline]) -> tuple[Span, ...]:
    """The instants at which every canary was failing (empty without canaries)."""
    if not timelines:
        return ()
    spans: list[Span] | None = None
    for timeline in timelines.values():
        mine = failing_spans(timeline)
        spans = mine if spans is None else intersect(spans, mine)
        if not spans:
            return ()
    return tuple(spans or ())


def covered(cover: Sequence[Span], epoch: float) -> bool:
    """Whether ``epoch`` falls in one of the ordered, disjoint spans of ``cover``."""
    index = bisect.bisect_right(cover, (epoch, float("inf"))) - 1
    return index >= 0 and cover[index][0] <= epoch < cover[index][1]
