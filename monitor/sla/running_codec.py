"""A running month's judged state as bytes, and the digest of the inputs it was judged under
(issue 20: start-up at a month's end reads these instead of every stored tally).

The bytes are ``MAGIC`` + zlib-compressed JSON: the verdict codes as base64 (one byte per
bucket; runs of the same state compress to almost nothing), the sparse parts (canary-excused
buckets, monitor-error reasons, the tallies of unavailable buckets) as lists. A snapshot is
only ever used together with :func:`inputs_digest`: the same digest proves the buckets it
holds would be judged the same under today's inputs, and the store's guard proves their
tallies did not change (``monitor.store.snapshots``).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import zlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import _gap_buckets
from monitor.sla.policy import ServiceDef, SlaPolicy, Tally
from monitor.sla.running import JudgedState

MAGIC = b"SWJS1"
"""Format of the bytes; a change of format or of judging bumps it (and ``JUDGING``)."""

JUDGING = "judge_bucket/1"
"""Part of every digest: a release that judges buckets differently must bump it, so that no
snapshot judged by the old code is restored."""


class SnapshotError(ValueError):
    """The bytes are not a judged state this build reads."""


def encode(state: JudgedState) -> bytes:
    doc = {
        "judged": state.judged,
        "raw": base64.b64encode(state.raw).decode("ascii"),
        "excused": list(state.excused),
        "errors": [[i, dict(e)] for i, e in state.errors],
        "evidence": [[i, [[name, _tally(t)] for name, t in cells]] for i, cells in state.evidence],
        "first": state.first_tallied,
    }
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return MAGIC + zlib.compress(text, 6)


def decode(blob: bytes) -> JudgedState:
    if not blob.startswith(MAGIC):
        raise SnapshotError("judged state: unknown format (expected the SWJS1 header)")
    try:
        doc = json.loads(zlib.decompress(blob[len(MAGIC) :]))
        return JudgedState(
            judged=int(doc["judged"]),
            raw=base64.b64decode(doc["raw"]),
            excused=tuple(int(i) for i in doc["excused"]),
            errors=tuple((int(i), _counts(e)) for i, e in doc["errors"]),
            evidence=tuple(
                (int(i), tuple((str(name), _untally(t)) for name, t in cells))
                for i, cells in doc["evidence"]
            ),
            first_tallied=None if doc["first"] is None else int(doc["first"]),
        )
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise SnapshotError(f"judged state: unreadable ({exc})") from exc


def inputs_digest(
    policy: SlaPolicy,
    service: ServiceDef,
    month: Month,
    canaries: Sequence[str],
    gaps: Sequence[tuple[datetime, datetime]],
    judged: int,
) -> str:
    """What judging the month's first ``judged`` buckets depends on besides their tallies:
    the SLA (its rules, zone, bucket length), the service (members, rule, nesting), the
    canaries, the buckets touched by a recorded gap among the first ``judged``, the code's
    ``JUDGING`` version. Exclusion windows are not in it: they are laid over the verdicts
    when restored. Everything the reload logic compares (``accounting._keeps``) is here."""
    grid = month_grid(month, policy.timezone, policy.bucket_seconds)
    gap_buckets = sorted(i for i in _gap_buckets(grid, gaps) if i < judged)
    text = "\n".join(
        (
            JUDGING,
            _text_of(policy),
            _text_of(service),
            str(month),
            _canonical(tuple(canaries)),
            repr(gap_buckets),
            str(judged),
        )
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_TEXTS: dict[int, tuple[object, str]] = {}
"""id -> (object, its canonical text): a configuration's policies and services are digested
for every month at every save and start; they are immutable, so their text is kept."""


def _text_of(value: object) -> str:
    known = _TEXTS.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    if len(_TEXTS) > 100_000:
        _TEXTS.clear()
    text = _canonical(value)
    _TEXTS[id(value)] = (value, text)
    return text


def _canonical(value: object) -> str:
    """A text for ``value`` that is the same in every process: a set's ``repr`` follows the
    string hash seed, so sets and mappings are written sorted, dataclasses field by field."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ",".join(
            f"{f.name}={_canonical(getattr(value, f.name))}" for f in dataclasses.fields(value)
        )
        return f"{type(value).__name__}({fields})"
    if isinstance(value, set | frozenset):
        return "{" + ",".join(sorted(_canonical(v) for v in value)) + "}"
    if isinstance(value, Mapping):
        items = sorted((_canonical(k), _canonical(v)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, tuple | list):
        return "(" + ",".join(_canonical(v) for v in value) + ")"
    return repr(value)


def _tally(t: Tally) -> list[Any]:
    return [t.ok, t.failed, dict(t.reasons), t.errors, dict(t.error_reasons), t.excused]


def _untally(v: Any) -> Tally:
    ok, failed, reasons, errors, error_reasons, excused = v
    return Tally(
        ok=int(ok),
        failed=int(failed),
        reasons=_counts(reasons),
        errors=int(errors),
        error_reasons=_counts(error_reasons),
        excused=int(excused),
    )


def _counts(v: Any) -> dict[str, int]:
    if not isinstance(v, dict):
        raise TypeError(f"expected an object of counts, got {type(v).__name__}")
    return {str(k): int(n) for k, n in v.items()}
