"""A local spool file for failure evidence the store cannot take right now (issue 14).

While the database is unreachable the daemon keeps probing; tallies stay in memory anyway (the
live month is held there for the figures), but evidence rows grow with every failed probe. So
past ``monitor.store.spool_after`` rows in memory the oldest go here, one JSON line each, and
are written back in chunks once the store answers again (before newer evidence, so it arrives
oldest first). A spool left by a crashed run is drained by the next one.

Progress is kept in a sidecar ``<file>.done`` (bytes already written back), updated after each
chunk the store committed: a crash between the commit and that update replays at most one
chunk (duplicate evidence rows, never lost ones). The file is emptied once fully drained.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from monitor.store.base import EvidenceRow, encode_json
from probes.result import Outcome

CHUNK = 5000
"""Rows written back per flush: a long backlog must not make one flush huge."""


def _line(row: EvidenceRow) -> str:
    return encode_json(
        "spool",
        {
            "vantage": row.vantage,
            "ts": row.ts,
            "target": row.target,
            "outcome": row.outcome.value,
            "reason": row.reason,
            "duration": row.duration,
            "details": dict(row.details),
            "location": row.location,
        },
    )


def _row(line: str) -> EvidenceRow:
    data = json.loads(line)
    return EvidenceRow(
        vantage=data["vantage"],
        ts=data["ts"],
        target=data["target"],
        outcome=Outcome(data["outcome"]),
        reason=data["reason"],
        duration=data["duration"],
        details=data["details"],
        # A spool written before locations existed holds no location: the vantage's name.
        location=data.get("location", ""),
    )


class EvidenceSpool:
    """Evidence rows waiting on disk at ``path``; synchronous, small appends and reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._done_path = path.with_name(path.name + ".done")

    def _done(self) -> int:
        try:
            return int(self._done_path.read_text(encoding="ascii").strip() or 0)
        except (OSError, ValueError):
            return 0

    @property
    def empty(self) -> bool:
        try:
            return self.path.stat().st_size <= self._done()
        except OSError:
            return True

    def append(self, rows: Sequence[EvidenceRow]) -> None:
        """Append ``rows`` durably (fsync): they exist nowhere else. Raises ``OSError``."""
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(_line(row) + "\n" for row in rows)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())

    def peek(self, limit: int = CHUNK) -> tuple[list[EvidenceRow], int]:
        """Up to ``limit`` of the oldest rows not yet written back, and the byte offset to
        pass to ``consume`` once the store committed them. A torn last line (a crash during
        an append) is skipped."""
        start = self._done()
        rows: list[EvidenceRow] = []
        offset = start
        try:
            with self.path.open("rb") as handle:
                handle.seek(start)
                for raw in handle:
                    if not raw.endswith(b"\n"):
                        break  # torn: the append did not finish
                    offset += len(raw)
                    try:
                        rows.append(_row(raw.decode("utf-8")))
                    except (ValueError, KeyError, TypeError):
                        continue  # unreadable line: skipped, never blocks the rest
                    if len(rows) >= limit:
                        break
        except FileNotFoundError:
            return [], start
        return rows, offset

    def consume(self, offset: int) -> None:
        """Mark everything before ``offset`` written back; empty the files when all is."""
        try:
            size = self.path.stat().st_size
        except OSError:
            size = 0
        if offset >= size:
            self.path.unlink(missing_ok=True)
            self._done_path.unlink(missing_ok=True)
            return
        tmp = self._done_path.with_name(self._done_path.name + ".tmp")
        tmp.write_text(str(offset), encoding="ascii")
        os.replace(tmp, self._done_path)
