"""A running month's judged state as bytes, and the digest of the inputs it was judged under
(issue 20: start-up at a month's end reads these instead of every stored tally).

The bytes are ``MAGIC`` (``SWJS4``) + zlib over a fixed binary head (``_HEAD_V4``: the
buckets judged, the first tallied bucket or -1, the runs or -1, the excused buckets, the
evidence buckets, the length of the table), the verdict codes as runs of equal codes
(``_RUN``) or, for a month whose codes change more often than once in ``_MOST_RUNS`` buckets,
one byte per bucket; then, as little-endian 32-bit integers, the canary-excused buckets, the
buckets judged unavailable and, for each, its evidence's index in the table; then the table as
compact JSON (``cells``: each distinct evidence, its (target, tally) pairs, once; ``errors``:
the monitor's own failure reasons per bucket), absent when both are empty (most months).
Issue 20, rd28: the third format (``SWJS3``, the same codes, the sparse parts as JSON with
every unavailable bucket's tallies spelled out) spent half of decoding a month at a month's
end in reading those tallies, while a month's unavailable buckets mostly hold a few distinct
evidences. The formats before are still read (:func:`decode`) and written again in the new
one at the next save: ``SWJS3``; ``SWJS2`` (the codes always one byte per bucket, the sparse
JSON as ``SWJS3``'s; me24); ``SWJS1`` (JSON holding the codes as base64; r22). Bytes in no
format, not whole, or inflating past what the month can need (hd34: :func:`decode`'s bound)
are refused (:class:`SnapshotError`): the caller rebuilds that month from its tallies. A snapshot is
only ever used together with :func:`inputs_digest`: the same digest proves the buckets it
holds would be judged the same under today's inputs, and the store's guard proves their
tallies did not change (``monitor.store.snapshots``).
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import hashlib
import json
import operator
import re
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import Enum
from fractions import Fraction
from typing import Any

from monitor.sla.calendar import BucketGrid, Month, month_grid
from monitor.sla.month import kept_gap_buckets
from monitor.sla.policy import ServiceDef, SlaPolicy, Tally
from monitor.sla.running import JudgedState, LaidEvidence

MAGIC = b"SWJS4"
"""Format of the bytes written; a change of format bumps it (a change of judging bumps
``JUDGING``)."""

MAGIC_V3 = b"SWJS3"
"""The third format (the codes as runs, the sparse parts as JSON with every bucket's tallies
spelled out): still read, never written."""

MAGIC_V2 = b"SWJS2"
"""The second format (zlib over the head, the codes one byte per bucket, the sparse JSON):
still read, and written when a month's codes hold too many runs for ``MAGIC``'s."""

MAGIC_V1 = b"SWJS1"
"""The first format (zlib over JSON, the codes in base64): still read, never written."""

_HEAD = struct.Struct("<IiI")
"""judged, first_tallied (-1: None), bytes of the sparse JSON after the codes."""

_HEAD_RUNS = struct.Struct("<IiII")
"""``MAGIC_V3``'s head: judged, first_tallied (-1: None), runs, bytes of the sparse JSON."""

_HEAD_V4 = struct.Struct("<IiiIII")
"""``MAGIC``'s head: judged, first_tallied (-1: None), runs (-1: the codes one byte per
bucket), excused buckets, evidence buckets, bytes of the table JSON."""

_RAW_CODES = -1
"""``_HEAD_V4``'s runs for a month whose codes are written one byte per bucket."""

_RUN = struct.Struct("<BI")
"""One run of equal verdict codes: the code, how many buckets."""

_MOST_RUNS = 128
"""The codes are written as runs while they are at most one per this many buckets judged
(else one byte per bucket, ``_RAW_CODES``): a month is mostly long runs of one state, and
building its codes from a few runs takes a few microseconds where inflating them one byte per
bucket took about 20 (issue 20, me24: 20,000 months at start-up). dc31 (issue 20): but each
run costs its own piece and its share of the join, while zlib inflates the plain codes of
a month in ~6 us: a whole decode of a month of 8,928 buckets costs as much either way near
80 runs (measured: 180 runs 71-91 us as runs, 49-64 us as bytes; 24 runs 33-36 against
45-47), so runs are kept for ~70 and fewer (the month-end bench month, one failing bucket in
a hundred, holds ~180). Snapshots written before with more runs still read as they are."""

MOST_BUCKETS = 31 * 86400 + 3600
"""The most buckets any month holds: 31 days and the hour a DST change adds, in buckets of
1 s (the shortest length the configuration allows). :func:`decode`'s bound when its caller
does not know the month."""

_CELL_BYTES = 512
"""The most one (bucket, target) cell of the evidence may take in a snapshot's JSON
(``["name",[ok,failed,{reasons},errors,{error_reasons},excused]]``). A real cell takes about
50 bytes (a name, six counts, a reason or two; reasons are short ASCII tokens,
``probes.reasons``): 512 holds a long name and several reasons. A month past it is only
refused (read from its tallies, with the same figures): the bound need not be tight, only
far below a bomb's."""

_ERRORS_BYTES = 256
"""The most one bucket's monitor-error reasons (``[index,{reason:count}]``) may take; a real
one takes about 30 bytes."""

_JSON_FIXED = 256
"""The JSON's own brackets and keys, whatever the month."""


def _most_json(judged: int, evidence: int, targets: int) -> int:
    """The most bytes the JSON of a month of ``judged`` buckets, ``evidence`` of them holding
    tallies of at most ``targets`` targets each, may need (every format's sparse parts):
    each bucket may be excused (an index: at most 8 digits and a comma) and hold errors, each
    evidence bucket an index and one cell per target (the tables of ``MAGIC`` write fewer)."""
    return _JSON_FIXED + judged * (12 + _ERRORS_BYTES) + evidence * (12 + targets * _CELL_BYTES)


JUDGING = "judge_bucket/1"
"""Part of every digest: a release that judges buckets differently must bump it, so that no
snapshot judged by the old code is restored."""


class SnapshotError(ValueError):
    """The bytes are not a judged state this build reads."""


def encode(state: JudgedState) -> bytes:
    """``state`` in the current format (``MAGIC``, see the module docs): its codes as runs,
    or one byte per bucket when they change more often than once per ``_MOST_RUNS`` buckets."""
    runs = _runs(state.raw, state.judged // _MOST_RUNS)
    first = -1 if state.first_tallied is None else state.first_tallied
    # rd28 (issue 20): each distinct bucket evidence (its (target, tally) cells) is written
    # once in the table, and a bucket holding it as the table's index in a packed array:
    # a month's unavailable buckets mostly fail the same way, and decoding every bucket's
    # tallies from JSON was half of decoding a month at start-up.
    table: dict[tuple[object, ...], int] = {}
    distinct: list[list[list[Any]]] = []
    which = array("I")
    for _, cells in state.evidence:
        key = _cells_key(cells)
        slot = table.get(key)
        if slot is None:
            slot = table[key] = len(distinct)
            distinct.append([[name, _tally(t)] for name, t in cells])
        which.append(slot)
    doc: dict[str, Any] = {}
    if state.errors:
        doc["errors"] = [[i, dict(e)] for i, e in state.errors]
    if distinct:
        doc["cells"] = distinct
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8") if doc else b""
    head = _HEAD_V4.pack(
        state.judged,
        first,
        _RAW_CODES if runs is None else len(runs),
        len(state.excused),
        len(state.evidence),
        len(text),
    )
    codes = state.raw if runs is None else b"".join([_RUN.pack(c, n) for c, n in runs])
    parts = (
        head,
        codes,
        _packed(array("I", state.excused)),
        _packed(array("I", [i for i, _ in state.evidence])),
        _packed(which),
        text,
    )
    return MAGIC + zlib.compress(b"".join(parts), 6)


def _cells_key(cells: Sequence[tuple[str, Tally]]) -> tuple[object, ...]:
    """Equal cells (the same targets in order, tallies of equal fields with their counts in
    the same order) have equal keys: they are written once."""
    return tuple(
        (
            name,
            t.ok,
            t.failed,
            tuple(t.reasons.items()),
            t.errors,
            tuple(t.error_reasons.items()),
            t.excused,
        )
        for name, t in cells
    )


def _packed(values: array[int]) -> bytes:
    """``values`` as little-endian unsigned 32-bit integers, whatever this machine's order."""
    if values.itemsize != 4:  # rd28: 'I' is 4 bytes on every platform CPython builds for
        raise SnapshotError(f"expected 4-byte unsigned integers, got {values.itemsize}")
    if _BIG_ENDIAN:
        values = array("I", values)
        values.byteswap()
    return values.tobytes()


def _unpacked(data: bytes) -> list[int]:
    """The unsigned 32-bit integers of ``_packed``'s ``data``."""
    values = array("I")
    values.frombytes(data)
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tolist()


_BIG_ENDIAN = sys.byteorder == "big"


def encode_runs(state: JudgedState) -> bytes:
    """``state`` in ``MAGIC_V3``'s format whatever its runs: only for tests that prove
    snapshots written by an earlier release still load."""
    return _encode_runs(state, _runs(state.raw, len(state.raw) + 1) or [])


def _encode_runs(state: JudgedState, runs: Sequence[tuple[int, int]]) -> bytes:
    sparse = _sparse(state)
    first = -1 if state.first_tallied is None else state.first_tallied
    packed = b"".join([_RUN.pack(code, length) for code, length in runs])
    head = _HEAD_RUNS.pack(state.judged, first, len(runs), len(sparse))
    return MAGIC_V3 + zlib.compress(b"".join((head, packed, sparse)), 6)


def encode_v2(state: JudgedState) -> bytes:
    """``state`` in ``MAGIC_V2``'s format (zlib over the head, the codes, the sparse JSON):
    only for tests that prove snapshots written by an earlier release still load."""
    sparse = _sparse(state)
    first = -1 if state.first_tallied is None else state.first_tallied
    body = b"".join((_HEAD.pack(state.judged, first, len(sparse)), state.raw, sparse))
    return MAGIC_V2 + zlib.compress(body, 6)


def _sparse(state: JudgedState) -> bytes:
    """The canary-excused buckets, monitor errors and evidence as compact JSON (none: b"")."""
    if not (state.excused or state.errors or state.evidence):
        return b""
    doc = {
        "excused": list(state.excused),
        "errors": [[i, dict(e)] for i, e in state.errors],
        "evidence": [[i, [[name, _tally(t)] for name, t in cells]] for i, cells in state.evidence],
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _runs(raw: bytes, most: int) -> list[tuple[int, int]] | None:
    """``raw`` as runs of equal codes (code, length) in order, or None past ``most`` runs."""
    out: list[tuple[int, int]] = []
    for run in _RUNS.finditer(raw):
        if len(out) == most:
            return None
        start, end = run.span()
        out.append((raw[start], end - start))
    return out


_RUNS = re.compile(rb"(.)\1*", re.DOTALL)


def decode(blob: bytes, *, buckets: int = MOST_BUCKETS, targets: int = 1) -> JudgedState:
    """The judged state in ``blob`` (any of the four formats); :class:`SnapshotError` if it
    is not one whole judged state (unknown header, truncated, corrupt, inconsistent) of at
    most ``buckets`` buckets whose evidence names at most ``targets`` targets per bucket.

    hd34 (issue 20): never inflated past what such a month can need (:func:`_inflated`): a
    damaged or hostile blob holding a valid zlib stream of gigabytes (a zip bomb in the
    store) is refused having inflated at most that, not its whole size. The daemon passes the
    buckets the snapshot was proven for and its service's targets; without them the bound is
    that of the longest month of one target."""
    if blob.startswith(MAGIC):
        return _decode_v4(blob, buckets, targets)
    if blob.startswith(MAGIC_V3):
        return _decode_binary(blob, MAGIC_V3, _HEAD_RUNS, buckets, targets)
    if blob.startswith(MAGIC_V2):
        return _decode_binary(blob, MAGIC_V2, _HEAD, buckets, targets)
    if blob.startswith(MAGIC_V1):
        return _decode_v1(blob, buckets, targets)
    raise SnapshotError(
        "judged state: unknown format (expected the SWJS4, SWJS3, SWJS2 or SWJS1 header)"
    )


def _inflated(stream: bytes, head: struct.Struct, whole: Callable[[tuple[Any, ...]], int]) -> bytes:
    """The zlib ``stream`` inflated, its first ``head.size`` bytes a head from which
    ``whole(fields)`` gives the length the body must have (raising ValueError for a head no
    month of the bound can hold): never more than that length and one byte is inflated, so
    a blob inflating to gigabytes is refused having allocated what a month can need."""
    inflater = zlib.decompressobj()
    start = inflater.decompress(stream, head.size)
    if len(start) < head.size:
        raise ValueError(f"expected a head of {head.size} bytes, got {len(start)}")
    expected = whole(head.unpack_from(start))
    rest = inflater.decompress(inflater.unconsumed_tail, expected - head.size + 1)
    if len(start) + len(rest) != expected or not inflater.eof:
        got = "more" if len(start) + len(rest) > expected else len(start) + len(rest)
        raise ValueError(f"expected {expected} bytes inflated, got {got}")
    return start + rest


def _most(count: int, of: str, most: int) -> None:
    """Refuse a head's count past what the month can hold."""
    if not 0 <= count <= most:
        raise ValueError(f"expected at most {most} {of}, got {count}")


def _decode_v4(blob: bytes, most: int, targets: int) -> JudgedState:
    """``MAGIC``: the head, the codes (runs or bytes), the excused buckets, the evidence
    buckets and the index of each one's cells in the table, the table JSON."""

    def whole(head: tuple[Any, ...]) -> int:
        # hd34 (issue 20): every part's length is the head's, each count at most the
        # buckets judged (a run, an excused or evidence bucket is one of them at least), the
        # buckets judged at most the month's, the table at most what its evidence can need.
        judged, _, runs, excused, buckets, size = head
        _most(judged, "buckets judged", most)
        if runs != _RAW_CODES:
            _most(runs, "runs", judged)
        _most(excused, "excused buckets", judged)
        _most(buckets, "evidence buckets", judged)
        _most(size, "bytes of table", _most_json(judged, buckets, targets))
        codes: int = judged if runs == _RAW_CODES else runs * _RUN.size
        return int(_HEAD_V4.size + codes + 4 * excused + 8 * buckets + size)

    try:
        body = _inflated(blob[len(MAGIC) :], _HEAD_V4, whole)
        judged, first, runs, excused, buckets, size = _HEAD_V4.unpack_from(body)
        lo = _HEAD_V4.size
        hi = lo + (judged if runs == _RAW_CODES else runs * _RUN.size)
        ends = (hi + 4 * excused, hi + 4 * excused + 4 * buckets, hi + 4 * (excused + 2 * buckets))
        if runs < _RAW_CODES or len(body) != ends[2] + size:
            raise ValueError(f"expected {ends[2] + size} bytes, got {len(body)}")
        raw = body[lo:hi] if runs == _RAW_CODES else _inflate(body[lo:hi], judged)
        doc = json.loads(body[ends[2] :]) if size else {}
        if not isinstance(doc, dict):
            raise TypeError("expected an object for the table")
        distinct = [
            tuple([(str(n), _untally(t)) for n, t in cells]) for cells in doc.pop("cells", ())
        ]
        errors = tuple((int(i), _counts(e)) for i, e in doc.pop("errors", ()))
        if doc:
            raise ValueError(f"unknown parts {sorted(doc)}")
        slots = _unpacked(body[ends[1] : ends[2]])
        used = list(dict.fromkeys(slots))  # each distinct evidence, in the order first held
        if len(used) != len(distinct):  # written once each, every one used
            raise ValueError("expected every distinct evidence used")
        which = [distinct[slot] for slot in slots]
        at = _unpacked(body[ends[0] : ends[1]])
        return JudgedState(
            judged=judged,
            raw=raw,
            excused=tuple(_unpacked(body[hi : ends[0]])),
            errors=errors,
            evidence=tuple(zip(at, which, strict=True)),
            first_tallied=None if first == -1 else first,
            laid=_laid(at, used, distinct, body[ends[0] : ends[2]]),
        )
    except (ValueError, KeyError, TypeError, IndexError, struct.error, zlib.error) as exc:
        raise SnapshotError(f"judged state: unreadable ({exc})") from exc


def _laid(
    at: list[int],
    used: list[int],
    distinct: list[tuple[tuple[str, Tally], ...]],
    packed: bytes,
) -> LaidEvidence | None:
    """dc31 (issue 20): the evidence as ``BucketEvidence`` holds it (``LaidEvidence``), read
    off the stored arrays (``packed``: the buckets' then the slots' little-endian integers)
    when they are what it would build from the (bucket, cells) pairs: buckets strictly
    increasing, below 2**31 (its integers are signed), the cells numbered in the order of
    their first bucket (as :func:`encode` writes them). Else None: the pairs are laid."""
    if at and (at[-1] >= 2**31 or not all(map(operator.lt, at, at[1:]))):
        return None
    if used != list(range(len(used))):
        return None
    if _BIG_ENDIAN:
        native = array("I")
        native.frombytes(packed)
        native.byteswap()
        packed = native.tobytes()
    half = 4 * len(at)
    return LaidEvidence(packed[:half], packed[half:], tuple(distinct))


def _decode_binary(
    blob: bytes, magic: bytes, head: struct.Struct, most: int, targets: int
) -> JudgedState:
    """``MAGIC_V3`` (``head`` is ``_HEAD_RUNS``: the codes as that many ``_RUN``s) or
    ``MAGIC_V2`` (``_HEAD``: the codes one byte per bucket judged); the rest of the two is the
    same."""

    def whole(fields: tuple[Any, ...]) -> int:
        # hd34: as ``_decode_v4``'s; the sparse JSON spells every evidence bucket out.
        judged, _, *count, size = fields
        _most(judged, "buckets judged", most)
        if count:
            _most(count[0], "runs", judged)
        _most(size, "bytes of sparse JSON", _most_json(judged, judged, targets))
        codes: int = count[0] * _RUN.size if count else judged
        return head.size + codes + int(size)

    try:
        body = _inflated(blob[len(magic) :], head, whole)
        judged, first, *count, size = head.unpack_from(body)  # count: MAGIC's runs
        lo = head.size
        hi = lo + (count[0] * _RUN.size if count else judged)
        if len(body) != hi + size:
            raise ValueError(f"expected {hi + size} bytes, got {len(body)}")
        raw = _inflate(body[lo:hi], judged) if count else body[lo:hi]
        return _state(judged, first, raw, body[hi:] if size else b"")
    except (ValueError, KeyError, TypeError, struct.error, zlib.error) as exc:
        raise SnapshotError(f"judged state: unreadable ({exc})") from exc


def _inflate(packed: bytes, judged: int) -> bytes:
    """The verdict codes of ``judged`` buckets from their ``_RUN``s."""
    # rd28 (issue 20): the lengths summed and searched in C (a month of one failing bucket
    # in a hundred holds ~170 runs; the generators were a fifth of decoding it).
    # dy29 (issue 20): each (code, length) run looked up as its bytes, made once
    # (:class:`_Pieces`): no columns, no product per run; a run of no bucket is refused by
    # the lookup. The lengths are summed (in C) before any run's bytes are made: a run's
    # length is a uint32, so a damaged snapshot whose checksum still holds could otherwise
    # ask for gigabytes before it is refused (review of round 29).
    runs = list(_RUN.iter_unpack(packed))
    if sum(map(_LENGTH, runs)) != judged:
        raise ValueError(f"expected runs of {judged} buckets in all")
    return b"".join(map(_PIECES.__getitem__, runs))


class _Pieces(dict[tuple[int, int], bytes]):
    """(code, length) -> that many bytes of the code, short runs kept (at most
    ``_PIECES_KEPT`` of at most ``_PIECE_LONGEST`` bytes: a month's runs are mostly of a few
    lengths, and the cache stays below a megabyte)."""

    def __missing__(self, run: tuple[int, int]) -> bytes:
        code, length = run
        if length <= 0:
            raise ValueError("expected runs of at least one bucket")
        piece = _BYTE[code] * length
        if length <= _PIECE_LONGEST:
            if len(self) >= _PIECES_KEPT:
                self.clear()
            self[run] = piece
        return piece


_BYTE = [bytes((code,)) for code in range(256)]
_LENGTH = operator.itemgetter(1)
_PIECE_LONGEST = 256
_PIECES_KEPT = 2048
_PIECES = _Pieces()


def _state(judged: int, first: int, raw: bytes, sparse: bytes) -> JudgedState:
    excused: tuple[int, ...] = ()
    errors: tuple[tuple[int, dict[str, int]], ...] = ()
    evidence: tuple[tuple[int, tuple[tuple[str, Tally], ...]], ...] = ()
    if sparse:
        doc = json.loads(sparse)
        excused = tuple(int(i) for i in doc["excused"])
        errors = tuple((int(i), _counts(e)) for i, e in doc["errors"])
        evidence = _evidence(doc["evidence"])
    return JudgedState(
        judged=judged,
        raw=raw,
        excused=excused,
        errors=errors,
        evidence=evidence,
        first_tallied=None if first == -1 else first,
    )


def _decode_v1(blob: bytes, most: int, targets: int) -> JudgedState:
    try:
        # hd34 (issue 20): no head: at most the JSON of the longest month the bound allows,
        # its codes in base64 (4 bytes per 3 buckets).
        inflater = zlib.decompressobj()
        limit = 4 * (most // 3 + 1) + _most_json(most, most, targets)
        text = inflater.decompress(blob[len(MAGIC_V1) :], limit + 1)
        if len(text) > limit or not inflater.eof:
            raise ValueError(f"expected a whole stream of at most {limit} bytes inflated")
        doc = json.loads(text)
        return JudgedState(
            judged=int(doc["judged"]),
            raw=base64.b64decode(doc["raw"], validate=True),
            excused=tuple(int(i) for i in doc["excused"]),
            errors=tuple((int(i), _counts(e)) for i, e in doc["errors"]),
            evidence=_evidence(doc["evidence"]),
            first_tallied=None if doc["first"] is None else int(doc["first"]),
        )
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise SnapshotError(f"judged state: unreadable ({exc})") from exc


def encode_v1(state: JudgedState) -> bytes:
    """``state`` in the first format (``MAGIC_V1``): only for tests that prove snapshots
    written by an earlier release still load."""
    doc = {
        "judged": state.judged,
        "raw": base64.b64encode(state.raw).decode("ascii"),
        "excused": list(state.excused),
        "errors": [[i, dict(e)] for i, e in state.errors],
        "evidence": [[i, [[name, _tally(t)] for name, t in cells]] for i, cells in state.evidence],
        "first": state.first_tallied,
    }
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return MAGIC_V1 + zlib.compress(text, 6)


def _evidence(v: Any) -> tuple[tuple[int, tuple[tuple[str, Tally], ...]], ...]:
    return tuple((int(i), tuple((str(name), _untally(t)) for name, t in cells)) for i, cells in v)


def inputs_digest(
    policy: SlaPolicy,
    service: ServiceDef,
    month: Month,
    canaries: Sequence[str],
    gaps: Sequence[tuple[datetime, datetime]],
    judged: int,
    *,
    grid: BucketGrid | None = None,
) -> str:
    """What judging the month's first ``judged`` buckets depends on besides their tallies:
    the SLA (its rules, zone, bucket length), the service (members, rule, nesting), the
    canaries, the buckets touched by a recorded gap among the first ``judged``, the code's
    ``JUDGING`` version. Exclusion windows are not in it: they are laid over the verdicts
    when restored. Everything the reload logic compares (``accounting._keeps``) is here.
    ``grid``: the month's grid, if the caller has it (``month_grid`` of the policy's zone
    and bucket length; the same object, or the digest is another month's).

    dg31 (issue 20): the value is main's (``tests/test_snapshot_digest_pinned.py``); what
    is the same for many SLAs and months is kept by identity: each SLA's hashed head
    (:func:`_hashed_terms`), the texts of the frozen parts the configuration shares
    (:func:`_text_of`), the gap buckets of each grid
    (``monitor.sla.month.kept_gap_buckets``), a tuple of canaries."""
    if grid is None:
        grid = month_grid(month, policy.timezone, policy.bucket_seconds)
    if gaps:
        touched = kept_gap_buckets(grid, gaps)[1]  # shared: sliced, never changed
        gap_buckets = touched[: bisect.bisect_left(touched, judged)]
    else:
        gap_buckets = []
    hashed = _hashed_terms(policy, service)
    hashed.update(
        "\n".join(
            (
                str(month),
                _text_of(canaries) if type(canaries) is tuple else _canonical(tuple(canaries)),
                repr(gap_buckets),
                str(judged),
            )
        ).encode("utf-8")
    )
    digest: str = hashed.hexdigest()
    return digest


def _hashed_terms(policy: SlaPolicy, service: ServiceDef) -> Any:
    """A SHA-256 fed ``JUDGING``, the policy's and the service's texts, each followed by a
    newline: the digest's head, the same for an SLA's every month and every save.

    mem34 (issue 20): kept per SLA as the hash's state (a copy of it fed the rest), not as
    the two texts: the texts of 10,000 policies and services held ~1 KB per SLA for the
    life of the daemon (``bench/sla_memory_bench.py --store``), the state ~0.3 KB. SHA-256
    fed the head then the rest is SHA-256 of the whole text, so the digest is main's
    (``tests/test_snapshot_digest_pinned.py``)."""
    key = (id(policy), id(service))
    known = _HEADS.get(key)
    if known is not None and known[0] is policy and known[1] is service:
        return known[2].copy()
    if len(_HEADS) >= _HEADS_KEPT:
        _HEADS.clear()
    head = "\n".join((JUDGING, _canonical(policy), _canonical(service), ""))
    hashed = hashlib.sha256(head.encode("utf-8"))
    _HEADS[key] = (policy, service, hashed)
    return hashed.copy()


_HEADS: dict[tuple[int, int], tuple[SlaPolicy, ServiceDef, Any]] = {}
"""(id of a policy, id of its service) -> (the policy, the service, :func:`_hashed_terms`'
state): a configuration's policies and services are immutable and digested for every month
at every save and start; kept with the objects (their ids are never another's while kept)."""

_HEADS_KEPT = 100_000


_TEXTS: dict[int, tuple[object, str]] = {}
"""id -> (object, its canonical text): the frozen parts a configuration shares between SLAs
(``monitor.config.convert.Parts``: one credit table for 10,000 SLAs) are written in every
policy's text; they are immutable, so their text is kept, with the object (its id is never
another's while kept). The policies' and services' own texts are not (:func:`_hashed_terms`)."""

_TEXTS_KEPT = 200_000


def _text_of(value: object) -> str:
    known = _TEXTS.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    if len(_TEXTS) >= _TEXTS_KEPT:
        _TEXTS.clear()
    text = _canonical(value)
    _TEXTS[id(value)] = (value, text)
    return text


_PLAIN: frozenset[type] = frozenset({str, int, bool, float, type(None), Decimal, Fraction})
"""Types whose ``repr`` is already the same in every process (exact types: a ``StrEnum`` is
a ``str`` but reprs differently, and goes the general way)."""

_FIELDS: dict[type, tuple[str, tuple[str, ...]] | None] = {}
"""type -> (its name, its dataclass field names), or None if it is not a dataclass: the
reflection ``dataclasses.fields`` does on every call, done once per type (issue 20, r22:
the digest of 10,000 SLAs at start-up)."""

_FROZEN: set[type] = set()
"""The frozen dataclasses among ``_FIELDS``: a field holding one is written by
:func:`_text_of` (kept by identity; dg31, issue 20: the configuration shares equal credit
tables and rules between its SLAs, ``monitor.config.convert.Parts``)."""


def _canonical(value: object) -> str:
    """A text for ``value`` that is the same in every process: a set's ``repr`` follows the
    string hash seed, so sets and mappings are written sorted, dataclasses field by field.
    (The text is part of every stored snapshot's digest: changing it discards them all.)"""
    kind = type(value)
    if kind in _PLAIN:
        return repr(value)
    if type(value) is tuple:  # dg31: a plain tuple (targets, nested services) before the ABC checks
        return "(" + ",".join([_canonical(v) for v in value]) + ")"
    known = _REPRS.get((kind, value)) if isinstance(value, Enum) else None
    if known is not None:
        return known
    try:
        shape = _FIELDS[kind]
    except KeyError:
        shape = (
            (kind.__name__, tuple(f.name for f in dataclasses.fields(kind)))
            if dataclasses.is_dataclass(kind) and not isinstance(value, type)
            else None
        )
        _FIELDS[kind] = shape
        params = getattr(kind, "__dataclass_params__", None)  # what dataclass() was given
        if shape is not None and params is not None and params.frozen:
            _FROZEN.add(kind)
    if shape is not None:
        name, names = shape
        texts = []
        for f in names:
            # dg31: the plain fields written here (a policy's are mostly plain), a frozen
            # part by its kept text, the rest the general way.
            v = getattr(value, f)
            k = type(v)
            text = repr(v) if k in _PLAIN else _text_of(v) if k in _FROZEN else _canonical(v)
            texts.append(f"{f}={text}")
        return f"{name}({','.join(texts)})"
    if isinstance(value, set | frozenset):
        return "{" + ",".join(sorted([_canonical(v) for v in value])) + "}"
    if isinstance(value, Mapping):
        items = sorted([(_canonical(k), _canonical(v)) for k, v in value.items()])
        return "{" + ",".join([f"{k}:{v}" for k, v in items]) + "}"
    if isinstance(value, tuple | list):
        return "(" + ",".join([_canonical(v) for v in value]) + ")"
    text = repr(value)
    if isinstance(value, Enum):  # members are singletons: one text each, kept
        _REPRS[(kind, value)] = text
    return text


_REPRS: dict[tuple[type, Enum], str] = {}
"""(class, member) -> the member's ``repr`` (Python-level, and asked for several times per
SLA). Keyed by class too: members of two ``StrEnum`` classes with equal values are equal."""


canonical_text = _canonical
"""The process-independent text of a value (the digests' own): ``monitor.sla.settled``
digests a month's windows with it."""


def _tally(t: Tally) -> list[Any]:
    return [t.ok, t.failed, dict(t.reasons), t.errors, dict(t.error_reasons), t.excused]


_TALLIES: dict[tuple[Any, ...], Tally] = {}
"""Decoded evidence tallies by their stored values: a month's unavailable buckets mostly
hold equal tallies (the same failures, the same counts), and frozen tallies may be shared
(issue 20, r22: constructing them was a third of decoding at start-up)."""


def _untally(v: Any) -> Tally:
    ok, failed, reasons, errors, error_reasons, excused = v
    if not isinstance(reasons, dict) or not isinstance(error_reasons, dict):
        raise TypeError("expected objects of counts in a tally")
    key = (ok, failed, errors, excused, *reasons.items(), None, *error_reasons.items())
    known = _TALLIES.get(key)
    if known is None:
        known = Tally(
            ok=int(ok),
            failed=int(failed),
            reasons=_counts(reasons),
            errors=int(errors),
            error_reasons=_counts(error_reasons),
            excused=int(excused),
        )
        if len(_TALLIES) >= 10_000:
            _TALLIES.clear()
        _TALLIES[key] = known
    return known


def _counts(v: Any) -> dict[str, int]:
    if not isinstance(v, dict):
        raise TypeError(f"expected an object of counts, got {type(v).__name__}")
    return {str(k): int(n) for k, n in v.items()}
