"""Bucket codes kept compressed while nobody reads them (issue 20: memory per SLA).

A month of 5-minute buckets is 8,928 one-byte codes, and a daemon holds several such arrays
per SLA (the running month's, the previous month's, each cached result's). Their runs are
long (a month is almost all "available"), so zlib keeps one in tens of bytes. Reading one
inflates it again: every reader sees exactly the bytes that were packed
(``tests/test_sla_packed.py`` holds ``unpack(pack(codes)) == codes`` for any codes).

The last few inflated arrays are kept (:func:`unpack`), so a reader indexing one bucket after
another (the web view's heat map, the API's bucket list) inflates once, not once per bucket.
"""

from __future__ import annotations

import threading
import zlib

LEVEL = 1
"""zlib's fastest level: the runs compress as well as at 9 (measured: 8,928 codes of one
state and ~90 others, 41 bytes at 1 against 38 at 9), in a fifth of the time."""

_RECENT: dict[int, tuple[bytes, bytes]] = {}
"""id(packed) -> (packed, codes): the last inflated arrays. Each entry holds its packed object,
so no other object can take that id while the entry exists."""
_RECENT_SIZE = 8
_LOCK = threading.Lock()


def pack(codes: bytes | bytearray) -> bytes:
    """``codes`` compressed."""
    return zlib.compress(codes, LEVEL)


def unpack(packed: bytes) -> bytes:
    """The codes :func:`pack` was given."""
    known = _RECENT.get(id(packed))
    if known is not None and known[0] is packed:
        return known[1]
    codes = zlib.decompress(packed)
    with _LOCK:  # a report thread may read a month while the loop does
        if len(_RECENT) >= _RECENT_SIZE:
            del _RECENT[next(iter(_RECENT))]
        _RECENT[id(packed)] = (packed, codes)
    return codes
