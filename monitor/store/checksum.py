"""A checksum per stored tally and evidence row (issue 17).

SQLite's own checks (``PRAGMA integrity_check``) verify the file's structure, not what a row
says: a flipped byte inside a reason or a count passes them and would quietly change a
month's figures. Each row therefore carries ``crc``, the CRC-32 of its payload columns in a
canonical JSON encoding, computed by the writer from the values it stores and recomputed by
``slawatch store check`` from the values it reads back. Rows written before schema version 4
have ``crc`` NULL: they are reported as unverifiable, not as damaged.
"""

from __future__ import annotations

import json
import zlib

_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=True)
"""The canonical encoding, built once (cpu28, issue 20): ``json.dumps`` with these arguments
builds a new ``JSONEncoder`` at every call, half of a checksum's cost, and every tally row of
every flush (one per probe) is checksummed. The text is the same (tests/test_checksum_fast.py)."""


def _crc(values: list[object]) -> int:
    text = _CANONICAL.encode(values)
    return zlib.crc32(text.encode("utf-8", "surrogatepass"))


def tally_crc(
    vantage: str,
    target: str,
    bucket_seconds: int,
    bucket_start: int,
    ok: int,
    failed: int,
    reasons: str,
    errors: int,
    error_reasons: str,
    excused: int,
) -> int:
    """The checksum of one ``tallies`` row (``reasons``/``error_reasons``: the stored JSON)."""
    return _crc(
        [
            *(vantage, target, bucket_seconds, bucket_start, ok, failed),
            *(reasons, errors, error_reasons, excused),
        ]
    )


def evidence_crc(
    vantage: str,
    ts: float,
    target: str,
    outcome: str,
    reason: str,
    duration: float,
    details: str,
) -> int:
    """The checksum of one ``evidence`` row (``details``: the stored JSON)."""
    # REAL columns read back as float whatever the writer passed (an int epoch included).
    return _crc([vantage, float(ts), target, outcome, reason, float(duration), details])
