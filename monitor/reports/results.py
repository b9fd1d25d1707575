"""Recorded probe results in JSON Lines, for ``slawatch report``.

One result a line: ``{"ts": <RFC 3339 with offset | epoch seconds>, "target": <name>,
"ok": <bool>}`` plus optional ``"latency_ms"`` (number) and ``"error"`` (string, the failure
reason). Other keys are ignored, so richer exports still read. Blank lines are skipped. Every
invalid line is reported with its number, the key and what was expected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from json.scanner import make_scanner
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from monitor.instants import instant_seconds
from monitor.sla.calendar import BucketGrid
from monitor.sla.canary import CanaryTimeline, canary_cover, covered
from monitor.sla.policy import Tally
from probes.reasons import Side, side_of_reason

_INF = math.inf
UNSPECIFIED_REASON = "unspecified"
"""The reason recorded for a failed result that carries no ``error``."""

MAX_REPORTED_ERRORS = 20


class ResultsError(ValueError):
    """Raised by :func:`read_results` when lines are invalid and skipping was not asked for."""

    def __init__(self, source: str, invalid: tuple[InvalidLine, ...]) -> None:
        self.source = source
        self.invalid = invalid
        shown = "\n".join(
            f"{source}:{bad.line}: {bad.message}" for bad in invalid[:MAX_REPORTED_ERRORS]
        )
        more = len(invalid) - MAX_REPORTED_ERRORS
        tail = f"\n... and {more} more invalid lines" if more > 0 else ""
        super().__init__(
            f"{source}: {len(invalid)} invalid line(s) (use --skip-invalid to skip them):\n"
            f"{shown}{tail}"
        )


@dataclass(frozen=True)
class InvalidLine:
    line: int
    message: str


@dataclass(frozen=True)
class ResultSet:
    """Parsed results as parallel columns (compact for hundreds of thousands of lines)."""

    source: str
    targets: tuple[str, ...]
    epochs: tuple[float, ...]
    oks: tuple[bool, ...]
    errors: tuple[str | None, ...]
    lines: int
    invalid: tuple[InvalidLine, ...]

    def __len__(self) -> int:
        return len(self.epochs)


def parse_timestamp(value: object, field: str = "ts") -> float:
    """Epoch seconds from an RFC 3339 string with an offset, or from a number of seconds
    (the grammar is :func:`monitor.instants.parse_instant`'s)."""
    return instant_seconds(value, field, epoch=True)


def _check(record: object) -> tuple[str, float, bool, str | None]:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    ts = record.get("ts")
    target = record.get("target")
    ok = record.get("ok")
    latency = record.get("latency_ms")
    error = record.get("error")
    for key in ("ts", "target", "ok"):
        if key not in record:
            raise ValueError(f"{key}: expected a value, got nothing (key missing)")
    epoch = parse_timestamp(ts)
    if not isinstance(target, str) or not target:
        raise ValueError(f"target: expected a non-empty string, got {target!r}")
    if not isinstance(ok, bool):
        raise ValueError(f"ok: expected true or false, got {ok!r}")
    if latency is not None and (
        isinstance(latency, bool)
        or not isinstance(latency, int | float)
        or not math.isfinite(latency)
        or latency < 0
    ):
        raise ValueError(f"latency_ms: expected a non-negative number, got {latency!r}")
    if error is not None and not isinstance(error, str):
        raise ValueError(f"error: expected a string, got {error!r}")
    return target, epoch, ok, error or None


def parse_lines(lines: Iterable[str], source: str = "<results>") -> ResultSet:
    """Parse JSON Lines, keeping invalid lines aside (the caller decides whether to refuse)."""
    targets: list[str] = []
    epochs: list[float] = []
    oks: list[bool] = []
    errors: list[str | None] = []
    invalid: list[InvalidLine] = []
    names: dict[str, str] = {}
    # The C scanner behind json.loads, called directly: the per-call wrapper costs more than
    # the parse on lines this short. Anything it does not take whole goes the slow way.
    # typeshed types the context as the scanner class itself; a decoder is what it reads.
    scan = make_scanner(cast(Any, json.JSONDecoder()))
    fromisoformat = datetime.fromisoformat
    number = 0
    for number, line in enumerate(lines, start=1):
        try:
            record, end = scan(line, 0)
            whole = end == len(line) or line[end:].isspace()
        except (StopIteration, ValueError):
            whole = False
        # The common shape, with its checks inlined: at 270,000 lines a call per line shows.
        if whole and type(record) is dict:
            ts = record.get("ts")
            target = record.get("target")
            ok = record.get("ok")
            error = record.get("error")
            latency = record.get("latency_ms")
            if (
                type(ts) is str
                and type(target) is str
                and type(ok) is bool
                and target
                and (error is None or type(error) is str)
                and (latency is None or (type(latency) in (int, float) and 0 <= latency < _INF))
                and len(ts) >= 20
                and ts[10] in "Tt "
                # fromisoformat takes more than RFC 3339 (week dates, +0100, no seconds): only
                # the RFC 3339 shape goes the fast way; the rest meets parse_instant below.
                and ts[4] == "-"
                and ts[7] == "-"
                and ts[13] == ":"
                and ts[16] == ":"
                and ts[19] in ".Z+-"
                and (ts[-1] == "Z" or (ts[-3] == ":" and ts[-6] in "+-"))
            ):
                try:
                    parsed = fromisoformat(ts)
                except ValueError:
                    parsed = None
                if parsed is not None and parsed.tzinfo is not None:
                    targets.append(names.setdefault(target, target))
                    epochs.append(parsed.timestamp())
                    oks.append(ok)
                    errors.append(error or None)
                    continue
        try:
            if whole and type(record) is dict:
                target, epoch, ok, error = _check(record)
            elif not line.strip():
                continue
            else:
                target, epoch, ok, error = _check(json.loads(line))
        except json.JSONDecodeError as exc:
            invalid.append(InvalidLine(number, f"expected a JSON object, got invalid JSON ({exc})"))
            continue
        except ValueError as exc:
            invalid.append(InvalidLine(number, str(exc)))
            continue
        # One string object per target name keeps memory flat over many lines.
        targets.append(names.setdefault(target, target))
        epochs.append(epoch)
        oks.append(ok)
        errors.append(error)
    return ResultSet(
        source=source,
        targets=tuple(targets),
        epochs=tuple(epochs),
        oks=tuple(oks),
        errors=tuple(errors),
        lines=number,
        invalid=tuple(invalid),
    )


def read_results(path: str | Path, *, skip_invalid: bool = False) -> ResultSet:
    """Read a JSON Lines file; raises :class:`ResultsError` on invalid lines unless skipping."""
    source = str(path)
    try:
        # utf-8-sig: a byte-order mark some editors add is not a broken first line.
        with open(path, encoding="utf-8-sig") as handle:
            results = parse_lines(handle, source)
    except UnicodeDecodeError as exc:
        raise ResultsError(
            source, (InvalidLine(0, f"expected UTF-8 text, got undecodable bytes ({exc})"),)
        ) from None
    if results.invalid and not skip_invalid:
        raise ResultsError(source, results.invalid)
    return results


def tally_results(
    results: ResultSet,
    grid: BucketGrid,
    *,
    canaries: Mapping[str, float] | None = None,
) -> dict[str, Mapping[int, Tally]]:
    """Target -> bucket start epoch -> :class:`Tally`, for the results inside ``grid``.

    A failure whose reason is the monitor's own (``probes.reasons``) counts in ``errors``.
    ``canaries`` (canary target -> its interval in seconds, the tolerance) marks as excused
    each failure at an instant when every canary was failing (``monitor.sla.canary``).
    """
    canary_names = frozenset(canaries or {})
    cover = canary_cover(_canary_timelines(results, canaries)) if canaries else ()
    origin = grid.start_epoch
    size = grid.bucket_seconds
    span = grid.end_epoch - origin
    # cell: [ok, failed, excused, errors]; lists, not Tally values, because this loop runs
    # once per result line (hundreds of thousands).
    counts: dict[str, dict[int, list[int]]] = {}
    reasons: dict[tuple[str, int], dict[str, int]] = {}
    error_reasons: dict[tuple[str, int], dict[str, int]] = {}
    for target, epoch, ok, error in zip(
        results.targets, results.epochs, results.oks, results.errors, strict=True
    ):
        offset = epoch - origin
        if offset < 0 or offset >= span:
            continue
        key = origin + int(offset // size) * size
        per_target = counts.get(target)
        if per_target is None:
            per_target = counts[target] = {}
        cell = per_target.get(key)
        if cell is None:
            cell = per_target[key] = [0, 0, 0, 0]
        if ok:
            cell[0] += 1
            continue
        reason = error or UNSPECIFIED_REASON
        if side_of_reason(reason) is Side.MONITOR:
            cell[3] += 1
            why = error_reasons.setdefault((target, key), {})
        else:
            cell[1] += 1
            if cover and target not in canary_names and covered(cover, epoch):
                cell[2] += 1
            why = reasons.setdefault((target, key), {})
        why[reason] = why.get(reason, 0) + 1
    empty: Mapping[str, int] = MappingProxyType({})
    out: dict[str, Mapping[int, Tally]] = {}
    for target, cells in counts.items():
        out[target] = {
            key: Tally(
                ok=ok_n,
                failed=failed_n,
                reasons=MappingProxyType(reasons[(target, key)]) if failed_n else empty,
                errors=errors_n,
                error_reasons=MappingProxyType(error_reasons[(target, key)]) if errors_n else empty,
                excused=excused_n,
            )
            for key, (ok_n, failed_n, excused_n, errors_n) in cells.items()
        }
    return out


def _canary_timelines(
    results: ResultSet, canaries: Mapping[str, float] | None
) -> dict[str, CanaryTimeline]:
    probes: dict[str, list[tuple[float, bool]]] = {name: [] for name in canaries or {}}
    for target, epoch, ok, error in zip(
        results.targets, results.epochs, results.oks, results.errors, strict=True
    ):
        runs = probes.get(target)
        # A canary's own monitor error says nothing about our network either way.
        if runs is not None and (ok or side_of_reason(error) is Side.VENDOR):
            runs.append((epoch, ok))
    return {
        name: CanaryTimeline(tuple(sorted(runs)), (canaries or {})[name])
        for name, runs in probes.items()
    }
