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

The stored verdicts are read through ``load_service_buckets``, which SQLite and PostgreSQL
both have.

vm26 (issue 20): comparing every stored verdict of the month still read 77.8 M rows at day 28
with 10,000 one-target SLAs. A month restored from a proven snapshot (``monitor.runtime.
snapshots``) now *vouches* for its stored verdicts of buckets before ``V``, and the comparison
starts there: the last hour or so. At each hourly save the snapshot records, beside the judged
state of its first ``J`` buckets, the SLA's verdict mark ``W`` (the daemon's committed mark:
every bucket from the first with a tally up to ``W`` stored as judged when written), ``V =
min(W, J)`` (as ``verdicts_from``/``verdicts_through``), and a digest of the exclusion kinds
laid over the buckets before ``V`` (:func:`exclusions_digest`; the store may pull ``V`` down
later, the digest stays that of the buckets before the saved ``V``). Why the stored verdicts before
``V`` are still the judged ones at the next start, if the snapshot is used:

1. the judged state before exclusions of buckets before ``J`` is the snapshot's: its guard saw
   no tally written into them since the save, by anyone (a late result, a spool replayed, an
   import, retention, a failed flush's tallies written later), and the inputs digest (SLA,
   service, canaries, gaps, code version) is equal;
2. the exclusions laid over them are the same: the digest of the excluded buckets before ``V``
   and their kinds is compared with the restored month's (an exclusion added or removed while
   the daemon was down, or while it ran after the save, differs);
3. the rows themselves were not changed since: SQLite triggers on ``service_buckets``
   (``monitor.store.schema``, migration 8) pull ``verdicts_through`` down to the bucket of any
   row inserted, changed or deleted before it after the save, whoever does it (the daemon
   rewriting after an exclusion or a late tally, a manual ``DELETE``); a rewrite storing the
   same verdict again changes nothing;
4. the mark was true when taken: a mark is committed only after its flush's write commits; a
   tally that re-judged a bucket before it in a flush that failed is written later, into a
   bucket before ``J`` (the guard spoils, 1) or not before ``V``. Months under exclusion
   changes not yet resumed have no mark, hence no vouch.

Left alone, said here: another location's daemon writes its own rows (its vantage, a key of
their own); no ``slawatch`` command writes verdicts; nothing prunes them. A store row lost
with the disk's last commits (a tally acknowledged but not durable) could differ from a
vouched verdict, as it could from the snapshot's state. A vouch is used once per SLA, at the
first resume after the months were restored, before this process writes any verdict of the SLA
(an SLA without a mark writes none); after that the daemon's own marks hold. PostgreSQL keeps
no snapshots: its months compare every stored verdict, as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

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


def exclusions_digest(excluded: Mapping[int, ExclusionKind], below: int) -> str:
    """A digest of the excluded buckets before ``below`` and their kinds (what a vouch's
    verdicts were stored under besides the judged state: see the module docs), led by
    ``below``: the store may pull the vouch's end down later, the digest stays that of the
    buckets before ``below`` (equal exclusions there are equal before any earlier end)."""
    text = ",".join(f"{i}:{excluded[i].value}" for i in sorted(i for i in excluded if i < below))
    return f"{below}:{hashlib.sha256(text.encode()).hexdigest()}"


def vouched_index(
    *,
    start_epoch: int,
    bucket_seconds: int,
    verdicts_from: int,
    verdicts_through: int,
    digest: str,
    excluded: Mapping[int, ExclusionKind],
) -> int:
    """The bucket index before which a restored month's snapshot vouches for the stored
    verdicts (0: for none): its span must be this month's grid and the exclusions laid over
    the buckets before it the ones it was stored under."""
    if verdicts_from != start_epoch or verdicts_through <= start_epoch:
        return 0
    index = (verdicts_through - start_epoch) // bucket_seconds
    if (verdicts_through - start_epoch) % bucket_seconds:
        return 0  # pulled down to a row not on this grid (another bucket length): none
    below, _, _ = digest.partition(":")
    if not below.isdigit() or int(below) < index:
        return 0
    return index if exclusions_digest(excluded, int(below)) == digest else 0
