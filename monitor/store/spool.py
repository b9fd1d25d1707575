"""The spool: what the daemon could not write at shutdown, replayed at the next start.

On SIGTERM with the store failing (a full disk), the last flush's rows would otherwise be
lost. They go to a small JSON-lines file beside the database (``<database>.spool``), one row
per line, appended and fsynced; the next start writes them in one batch before anything
else, then removes the file. Tallies are whole values (an upsert), so a replay repeated
after a crash rewrites the same rows; evidence rows are appended, so the file is removed in
the same step that follows the committed replay. The file is reserved (allocated with zeros)
at start, while there is room, so that a full disk still leaves it space to write into.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from monitor.sla.policy import BucketState, ExclusionKind
from monitor.store.base import EvidenceRow, ServiceBucketRow, TallyRow, WriteBatch
from probes.result import Outcome


def spool_path(database: Path) -> Path:
    """The spool file beside ``database``."""
    return database.with_name(database.name + ".spool")


def _lines(batch: WriteBatch) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for t in batch.tallies:
        lines.append(
            {
                "tally": [t.vantage, t.target, t.bucket_start, t.bucket_seconds, t.ok, t.failed],
                "reasons": dict(t.reasons),
                "errors": t.errors,
                "error_reasons": dict(t.error_reasons),
                "excused": t.excused,
            }
        )
    for e in batch.evidence:
        lines.append(
            {
                "evidence": [e.vantage, e.ts, e.target, e.outcome.value, e.reason, e.duration],
                "details": dict(e.details),
            }
        )
    for s in batch.service_buckets:
        kind = None if s.kind is None else s.kind.value
        verdict = [s.vantage, s.sla, s.service, s.bucket_start, s.state.value, kind]
        lines.append({"verdict": verdict})
    if batch.heartbeat is not None:
        lines.append({"heartbeat": batch.heartbeat})
    return lines


SPOOL_RESERVE = 256 * 1024
"""Bytes kept allocated for the spool while the daemon runs (about 1,500 tally rows): on a
full disk a new file could not be written, so the space is taken while there is some."""


def reserve_spool(path: Path, size: int = SPOOL_RESERVE) -> None:
    """Create the spool's reserve (zeros) unless it exists; ``OSError`` if there is no room."""
    if path.exists():
        return
    with path.open("wb") as handle:
        handle.write(b"\0" * size)
        handle.flush()
        os.fsync(handle.fileno())


def clear_spool(path: Path) -> None:
    """Zero the spool in place after a replay (keeps the reserve; needs no new space)."""
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.write(b"\0" * size)
        handle.flush()
        os.fsync(handle.fileno())


def write_spool(path: Path, batch: WriteBatch) -> tuple[int, int]:
    """Write ``batch`` into the spool at ``path`` (into its reserve when there is one), synced.

    Returns (rows written, rows in the batch): rows beyond a full reserve are not written, and
    the caller names them. Raises ``OSError`` when nothing could be written."""
    lines = [json.dumps(line, separators=(",", ":")) + "\n" for line in _lines(batch)]
    if not path.exists():
        with path.open("w", encoding="utf-8") as handle:
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        return len(lines), len(lines)
    with path.open("r+b") as handle:
        used = handle.read().split(b"\0", 1)[0]
        room = max(0, path.stat().st_size - len(used))
        chunk = b""
        written = 0
        for line in lines:
            data = line.encode("utf-8")
            if len(chunk) + len(data) > room:
                break
            chunk += data
            written += 1
        handle.seek(len(used))
        handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    rest = lines[written:]
    if rest and len(used) + len(chunk) >= path.stat().st_size:
        # The reserve is full (or there was none): append beyond it while the disk lets us.
        try:
            with path.open("ab") as handle:
                for line in rest:
                    handle.write(line.encode("utf-8"))
                    handle.flush()
                    written += 1
                os.fsync(handle.fileno())
        except OSError:
            pass
    return written, len(lines)


def read_spool(path: Path) -> WriteBatch | None:
    """The spooled rows as one batch (None: no spool). A torn last line (the write was cut
    short) is dropped: it was never reported as spooled."""
    if not path.exists():
        return None
    content = path.read_bytes().split(b"\0", 1)[0].decode("utf-8")
    if not content:
        return None
    tallies: list[TallyRow] = []
    evidence: list[EvidenceRow] = []
    verdicts: list[ServiceBucketRow] = []
    heartbeat: float | None = None
    for number, text in enumerate(content.splitlines(), 1):
        try:
            line = json.loads(text)
        except ValueError:
            continue
        if "tally" in line:
            v, target, start, seconds, ok, failed = line["tally"]
            tallies.append(
                TallyRow(
                    v,
                    target,
                    start,
                    seconds,
                    ok,
                    failed,
                    line["reasons"],
                    line["errors"],
                    line["error_reasons"],
                    line["excused"],
                )
            )
        elif "evidence" in line:
            v, ts, target, outcome, reason, duration = line["evidence"]
            evidence.append(
                EvidenceRow(v, ts, target, Outcome(outcome), reason, duration, line["details"])
            )
        elif "verdict" in line:
            v, sla, service, start, state, kind = line["verdict"]
            verdicts.append(
                ServiceBucketRow(
                    v,
                    sla,
                    service,
                    start,
                    BucketState(state),
                    None if kind is None else ExclusionKind(kind),
                )
            )
        elif "heartbeat" in line:
            heartbeat = max(heartbeat or 0.0, float(line["heartbeat"]))
        else:
            raise ValueError(f"{path}:{number}: expected a tally, evidence, verdict or heartbeat")
    # A tally spooled twice (two failed shutdowns) keeps its latest value: the last line wins.
    latest = {(t.vantage, t.target, t.bucket_start, t.bucket_seconds): t for t in tallies}
    return WriteBatch(
        tallies=list(latest.values()),
        evidence=evidence,
        service_buckets=verdicts,
        heartbeat=heartbeat,
    )
