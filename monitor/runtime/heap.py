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

- :func:`long_lived` is told how many SLA months (or their text) were built or moved: when a
  bucket close's worth moved at once, everything alive is frozen (``gc.freeze``), so full passes
  walk only what was made since. Freezing costs nothing (the lists are spliced); an object
  frozen is still freed by reference counting when dropped (a month's old result, an evicted
  tally). Only a reference cycle alive at that instant and dropped later is never collected:
  what the probes in flight hold then, a few times per bucket, not every probe's.
- full passes wait for ``FULL_AFTER`` middle collections instead of 10. The young thresholds
  stay CPython's: a larger young generation (10,000) was tried and made each young
  collection cost 30-45 ms in process (250 ms on the loaded machine), against 1-2 ms.

Nothing here changes what is computed: only when the collector runs.

rss27: memory freed but held. At a month's end at 10,000 one-target SLAs the daemon's
1,065 MB resident were CPython's small-object arenas (728 MB, of which 315 MB in use: the
rest free slots in pools that hold a live object, mostly 64-byte ones, left by the start-up's
decoded snapshots) and glibc's heap (343 MB, 164 MB of it free: the start-up's and the first
summary's larger buffers). glibc gives its free pages back only at the top of its heap, so
:func:`trim` calls ``malloc_trim(0)`` (125 MB returned, in 0.1 s) whenever the heap is
frozen, i.e. after a start-up, a reload or a bucket close's large pass: in a thread of its
own (ctypes lets go of the GIL), never on the event loop. Without glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import gc
import threading
from collections.abc import Callable

YOUNG = 700
"""Allocations (net) between two young collections (CPython's default, kept: see above)."""
MIDDLE_AFTER = 40
"""Young collections before a middle one (CPython's default: 10). cpu28 (issue 20): at
10,000 one-target SLAs a middle collection walked 5,000-9,000 objects, nearly all alive (the
probes in flight: their tasks, coroutines, timer handles, contexts, found alive however often
it runs), and cost about 7.5 ms of CPU each, 70 a minute: half the collector's CPU, which was
8-12 % of the daemon's. Objects young collections keep are mostly gone before the next middle
one either way, so running it four times less often walks about the same set four times less."""
FULL_AFTER = 25
"""Middle collections before a full one may run (CPython's default: 10). 40 x 25: full
passes as far apart in young collections as before cpu28 (10 x 100)."""
FREEZE_AFTER = 1_000
"""SLA months built or moved at once (or their text) for everything alive to be frozen."""

_enabled = False


def _find_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        found: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return found


_malloc_trim = _find_malloc_trim()
_trimming = threading.Lock()


def manage(large: bool) -> None:
    """Turn the policy on for a large configuration (off otherwise: the default collector)."""
    global _enabled
    _enabled = large
    if large:
        gc.set_threshold(YOUNG, MIDDLE_AFTER, FULL_AFTER)


def managed() -> bool:
    """Whether :func:`manage` turned the policy on."""
    return _enabled


def long_lived(count: int) -> bool:
    """``count`` SLA months (or their lines) were just built or moved at once: objects that
    live until the next bucket closes. True when that froze the heap: only a bucket close's
    worth at once does (a start-up, a reload, a close of ``FREEZE_AFTER`` SLAs or more), so
    the heap is frozen a few times per bucket at most, never at every second's few SLAs."""
    if not _enabled or count < FREEZE_AFTER:
        return False
    gc.freeze()
    trim()
    return True


def trim() -> threading.Thread | None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``), in a thread
    of its own; the thread, or None when nothing was started: the policy is off (a small
    configuration), the C library has no ``malloc_trim``, or a trim is still running."""
    if not _enabled or _malloc_trim is None or not _trimming.acquire(blocking=False):
        return None
    release = _malloc_trim

    def run() -> None:
        try:
            release(0)
        finally:
            _trimming.release()

    thread = threading.Thread(target=run, name="malloc-trim", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no thread to be had: no trim, and the next one may run
        _trimming.release()
        return None
    return thread
