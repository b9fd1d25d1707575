"""Issue 20 (rw25): where an SLA's verdict writing resumes when the daemon holds no mark for
its month (after a restart, an exclusion change, a month's first flush): at the first bucket
whose stored verdict differs from the judged one, not at the month's first bucket with a probe.

Before, a restart wrote the month's service verdicts again from its first bucket holding any
probe: at day 28 with 10,000 one-target SLAs, 79 M rows, ``MAX_VERDICTS_PER_FLUSH`` at a time,
about four hours of flushes each holding the loop for hundreds of ms. Most of those rows were
already stored exactly as judged.

The mark is taken from what the store holds, compared with the running month's states now, so
nothing about *why* a stored row might be stale needs knowing: tallies stored after the last
verdict write (a spool replayed, a flush whose verdicts failed, a crash between writes), an
exclusion changed while the daemon was down, a configuration change: each makes a stored row
differ from the judged state (or be missing), and writing resumes there. Rows after the first
difference are written again, as before. A tally changed after the comparison is written by a
later flush, which rewinds the mark to its bucket (``Daemon._verdict_steps``'s ``late``).

No store schema changes: the stored verdicts are read through ``load_service_buckets``, which
SQLite and PostgreSQL both have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monitor.sla.policy import BucketState, ExclusionKind
from monitor.store.base import ServiceBucketRow


def first_differing(
    stored: Sequence[ServiceBucketRow],
    *,
    start_epoch: int,
    bucket_seconds: int,
    first: int,
    upto: int,
    service: str,
    location: str,
    state_at: Callable[[int], BucketState],
    kind_at: Callable[[int], ExclusionKind | None],
) -> int:
    """The first bucket index in ``[first, upto)`` whose verdict is not stored as judged (a
    row missing, or its state, exclusion kind, service or location differing); ``upto`` when
    every one is. ``stored`` holds the SLA's rows of its vantage in that range, any order."""
    by_index: dict[int, ServiceBucketRow] = {}
    for row in stored:
        if row.location != location:
            continue
        offset = row.bucket_start - start_epoch
        if offset % bucket_seconds:
            continue  # not on this grid (another bucket length): not this month's verdict
        by_index[offset // bucket_seconds] = row
    for index in range(first, upto):
        held = by_index.get(index)
        if held is None or held.service != service:
            return index
        state = state_at(index)
        if held.state is not state:
            return index
        kind = kind_at(index) if state is BucketState.EXCLUDED else None
        if held.kind is not kind:
            return index
    return upto
