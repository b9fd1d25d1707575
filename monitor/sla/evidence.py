"""The evidence behind a month's outages, as data a vendor can check: the probe records inside
each outage's buckets, and the CSV and JSON Lines files (with their SHA-256 digests) that carry
them. Pure: :mod:`monitor.reports.evidence` gathers the records from a results file or a store.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.sla.calendar import Month, zone
from monitor.sla.month import Outage

CSV_COLUMNS = (
    "sla",
    "outage",
    "outage_start_utc",
    "outage_end_utc",
    "ts_utc",
    "ts_local",
    "epoch",
    "target",
    "ok",
    "reason",
    "vantage",
    "duration_seconds",
)
DIGEST_FILE = "SHA256SUMS"
STORE_EVIDENCE_LIMIT = 1_000_000
"""Failed probe runs read per outage and target from a store (far above a month's worth)."""


@dataclass(frozen=True)
class ProbeRecord:
    """One probe result: when it started (epoch seconds), of which target, ok or why not."""

    ts: float
    target: str
    ok: bool
    reason: str = ""
    vantage: str = ""
    duration: float | None = None


@dataclass(frozen=True)
class OutageEvidence:
    """The probe results inside one outage's buckets ``[outage.start, outage.end)``."""

    number: int
    outage: Outage
    records: tuple[ProbeRecord, ...]

    @property
    def failures(self) -> tuple[ProbeRecord, ...]:
        return tuple(r for r in self.records if not r.ok)

    @property
    def first_failure(self) -> datetime | None:
        failed = self.failures
        return datetime.fromtimestamp(failed[0].ts, UTC) if failed else None

    @property
    def last_failure(self) -> datetime | None:
        failed = self.failures
        return datetime.fromtimestamp(failed[-1].ts, UTC) if failed else None


@dataclass(frozen=True)
class SlaEvidence:
    """One SLA's month of outage evidence, and the files that carry it."""

    sla: str
    month: Month
    timezone: str
    source: str
    complete: bool
    """True when every probe result is present (a results file); False from a store, which
    keeps only failed probe runs individually."""
    outages: tuple[OutageEvidence, ...]

    @property
    def stem(self) -> str:
        return f"evidence-{self.month}-{self.sla}"

    def files(self) -> dict[str, bytes]:
        """File name -> content (CSV and JSON Lines, the same records)."""
        rows = [row for item in self.outages for row in _rows(self, item)]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row[k] is None else _cell(row[k]) for k in CSV_COLUMNS})
        lines = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
        return {
            f"{self.stem}.csv": out.getvalue().encode("utf-8"),
            f"{self.stem}.jsonl": lines.encode("utf-8"),
        }

    def digests(self) -> dict[str, str]:
        """File name -> SHA-256 (hex) of its content."""
        return {name: hashlib.sha256(data).hexdigest() for name, data in self.files().items()}


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _rows(evidence: SlaEvidence, item: OutageEvidence) -> list[dict[str, Any]]:
    tz = zone(evidence.timezone)
    return [
        {
            "sla": evidence.sla,
            "outage": item.number,
            "outage_start_utc": _utc(item.outage.start.timestamp()),
            "outage_end_utc": _utc(item.outage.end.timestamp()),
            "ts_utc": _utc(record.ts),
            "ts_local": datetime.fromtimestamp(record.ts, tz).isoformat(timespec="milliseconds"),
            "epoch": record.ts,
            "target": record.target,
            "ok": record.ok,
            "reason": record.reason,
            "vantage": record.vantage,
            "duration_seconds": record.duration,
        }
        for record in item.records
    ]
