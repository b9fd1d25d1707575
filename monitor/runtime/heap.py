"""Issue 20: the cyclic garbage collector kept short and rare at thousands of SLAs.

Measured in the whole daemon at 10,000 one-target SLAs (``bench/daemon_bench.py --per-sla 1``,
a gc callback logging every pass): a full collection ran every 4-5 s and took 1.0-2.5 s on the
loop, the largest cost of the daemon (about a third of its CPU) and the tail of its scheduling
lag. Two things made it so:

- the long-lived objects built after the configuration was frozen (``daemon.freeze_heap``):
  every SLA's running months, their ``MonthResult`` and its figures, the ``/metrics`` lines,
  the closed buckets' tallies; about 800,000 containers and 4.5 M references at 10,000 SLAs,
  walked by every full pass (1.5-2 s in process);
- the default thresholds (700, 10, 10): every probe allocates hundreds of containers, those in
  flight at a young collection survive it, and the survivors count towards the next full pass
  (CPython runs one when they reach a quarter of the objects the last one kept).

So, for a large configuration only (the same bound as ``freeze_heap``):

- :func:`long_lived` is told how many SLA months (or their text) were built or moved: once a
  bucket close's worth has piled up, everything alive is frozen (``gc.freeze``), so full passes
  walk only what was made since. Freezing costs nothing (the lists are spliced); an object
  frozen is still freed by reference counting when dropped (a month's old result, an evicted
  tally). Only a reference cycle alive at that instant and dropped later is never collected:
  what the probes in flight hold then, a few times per bucket, not every probe's.
- the young generation is larger (``YOUNG``): a probe's short-lived containers are freed by
  reference counting before a young collection sees them, instead of surviving into the
  count that triggers a full pass; full passes wait for ``FULL_AFTER`` middle collections.

Nothing here changes what is computed: only when the collector runs.
"""

from __future__ import annotations

import gc

YOUNG = 10_000
"""Allocations (net) between two young collections (CPython's default: 700)."""
MIDDLE_AFTER = 10
"""Young collections before a middle one (the default)."""
FULL_AFTER = 50
"""Middle collections before a full one may run (CPython's default: 10)."""
FREEZE_AFTER = 1_000
"""SLA months built or moved (or their text) before everything alive is frozen."""

_enabled = False
_built = 0


def manage(large: bool) -> None:
    """Turn the policy on for a large configuration (off otherwise: the default collector)."""
    global _enabled, _built
    _enabled = large
    _built = 0
    if large:
        gc.set_threshold(YOUNG, MIDDLE_AFTER, FULL_AFTER)


def managed() -> bool:
    """Whether :func:`manage` turned the policy on."""
    return _enabled


def long_lived(count: int) -> bool:
    """``count`` SLA months (or their lines) were just built or moved: objects that live until
    the next bucket closes. True when that froze the heap."""
    global _built
    if not _enabled or count <= 0:
        return False
    _built += count
    if _built < FREEZE_AFTER:
        return False
    _built = 0
    gc.freeze()
    return True
