"""``slawatch evidence export``: every probe result behind each outage of a month, as files a
vendor can check, and the SHA-256 digests the claim cites.

For each SLA with outages, two files hold the same records (one per probe result of the
service's targets inside an outage's buckets, oldest first): ``evidence-<month>-<sla>.csv``
and ``evidence-<month>-<sla>.jsonl``; ``SHA256SUMS`` lists their digests in the format
``sha256sum -c`` checks. The content is a pure function of the inputs (no "generated at"
stamp), so the digests printed in a claim computed from the same results and configuration
match the exported files byte for byte.

From a results file every result is exported, successful ones too. The daemon's store keeps
failed probe runs individually and successful ones only as per-bucket counts, so an export
from the store holds the failed probes (``complete`` false, and the claim says so); evidence
older than the store's retention may be gone, which the claim shows as fewer records than
failed probes.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import csv
import hashlib
import io
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from monitor.results import UNSPECIFIED_REASON, ResultSet
from monitor.sla.calendar import Month, zone
from monitor.sla.month import MonthResult, Outage

if TYPE_CHECKING:
    from monitor.claim_pack import ClaimContext
    from monitor.config import Config
    from monitor.store.base import Store

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


def service_targets(result: MonthResult) -> tuple[str, ...]:
    """The targets whose probes decide the SLA's buckets (canaries are not vendor evidence)."""
    return tuple(str(name) for name in result.rules.get("service_targets", ()))


def _sorted(records: Sequence[ProbeRecord]) -> tuple[ProbeRecord, ...]:
    return tuple(sorted(records, key=lambda r: (r.ts, r.target, r.ok, r.reason)))


def from_results(result: MonthResult, results: ResultSet) -> SlaEvidence:
    """The evidence of ``result``'s outages from the results file it was computed from."""
    wanted = set(service_targets(result))
    starts = [o.start.timestamp() for o in result.outages]
    found: list[list[ProbeRecord]] = [[] for _ in result.outages]
    for target, epoch, ok, error in zip(
        results.targets, results.epochs, results.oks, results.errors, strict=True
    ):
        if target not in wanted:
            continue
        index = bisect.bisect_right(starts, epoch) - 1
        if index < 0 or epoch >= result.outages[index].end.timestamp():
            continue
        reason = "" if ok else (error or UNSPECIFIED_REASON)
        found[index].append(ProbeRecord(epoch, target, ok, reason))
    return SlaEvidence(
        sla=result.sla,
        month=result.month,
        timezone=result.timezone,
        source=f"results file {results.source}",
        complete=True,
        outages=tuple(
            OutageEvidence(n, outage, _sorted(records))
            for n, (outage, records) in enumerate(zip(result.outages, found, strict=True), 1)
        ),
    )


async def from_store(result: MonthResult, store: Store) -> SlaEvidence:
    """The failed probe runs behind ``result``'s outages, from the daemon's store."""
    items = []
    for number, outage in enumerate(result.outages, start=1):
        records: list[ProbeRecord] = []
        for target in service_targets(result):
            rows = await store.load_evidence(
                outage.start.timestamp(),
                outage.end.timestamp(),
                target=target,
                limit=STORE_EVIDENCE_LIMIT,
            )
            records.extend(
                ProbeRecord(row.ts, row.target, False, row.reason, row.vantage, row.duration)
                for row in rows
            )
        items.append(OutageEvidence(number, outage, _sorted(records)))
    return SlaEvidence(
        sla=result.sla,
        month=result.month,
        timezone=result.timezone,
        source=f"store {store.vantage}",
        complete=False,
        outages=tuple(items),
    )


def digest_file(evidence: Sequence[SlaEvidence]) -> bytes:
    """``SHA256SUMS``: ``<hex>  <name>`` per file, by name (``sha256sum -c`` reads it)."""
    pairs = sorted((name, d) for item in evidence for name, d in item.digests().items())
    return "".join(f"{digest}  {name}\n" for name, digest in pairs).encode("utf-8")


def write_export(evidence: Sequence[SlaEvidence], out: Path) -> list[Path]:
    """Write every SLA's files and ``SHA256SUMS`` into ``out`` (created if missing)."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for item in evidence:
        for name, data in item.files().items():
            path = out / name
            path.write_bytes(data)
            written.append(path)
    digests = out / DIGEST_FILE
    digests.write_bytes(digest_file(evidence))
    written.append(digests)
    return written


# --- command line -------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``evidence export`` to the ``slawatch`` command line."""
    parser = subparsers.add_parser(
        "evidence",
        help="export the probe results behind a month's outages, with SHA-256 digests",
        description="Export the evidence a claim cites.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write every probe result behind each outage (CSV and JSON Lines) and SHA256SUMS",
        description="Write every probe result behind each outage of a month (CSV and JSON "
        "Lines) and a SHA256SUMS file; the claim cites the same digests.",
    )
    add_month_arguments(export)
    export.add_argument("--out", default=".", help="directory to write into (default: .)")
    export.set_defaults(func=run)


def add_month_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments that choose a month's figures (shared with the claim command)."""
    parser.add_argument("--config", required=True, help="slawatch YAML configuration")
    parser.add_argument("--month", required=True, help="calendar month, YYYY-MM")
    parser.add_argument("--sla", help="only this SLA (or its service)")
    parser.add_argument(
        "--results",
        help="probe results in JSON Lines (as for slawatch report); without it, the store "
        "the configuration names is read (read-only)",
    )
    parser.add_argument("--as-of", help="RFC 3339 instant treated as now (default: now)")
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip invalid lines of the results file (as slawatch report does)",
    )


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``slawatch evidence export``; 0 on success, 2 on bad input (named on stderr)."""
    from monitor.config import ConfigError, load_config
    from monitor.store.base import StoreError

    stdout = sys.stdout if out is None else out
    stderr = sys.stderr if err is None else err
    try:
        config = load_config(args.config)
        month = Month.parse(args.month)
        now = as_of(args.as_of)
        evidence = asyncio.run(
            month_evidence(config, month, args.sla, args.results, now, args.skip_invalid)
        )
        written = write_export(evidence, Path(args.out))
    except (ConfigError, StoreError, ValueError, OSError) as exc:
        print(f"slawatch evidence export: {exc}", file=stderr)
        return 2
    for item in evidence:
        failed = sum(len(o.failures) for o in item.outages)
        total = sum(len(o.records) for o in item.outages)
        print(
            f"{item.sla}: {len(item.outages)} outage(s), {total} probe record(s) "
            f"({failed} failed) from {item.source}",
            file=stdout,
        )
    for path in written:
        print(f"wrote {path}", file=stdout)
    return 0


def as_of(text: str | None) -> datetime:
    """``--as-of`` or the current time."""
    if text is None:
        return datetime.fromtimestamp(time.time(), UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--as-of: expected an RFC 3339 timestamp, got {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"--as-of: expected a UTC offset or Z, got naive {text!r}")
    return moment


async def month_evidence(
    config: Config,
    month: Month,
    sla: str | None,
    results_path: str | None,
    now: datetime,
    skip_invalid: bool = False,
) -> list[SlaEvidence]:
    """The evidence of every selected SLA's outages, computed as ``slawatch report`` does."""
    from monitor.reporting import build_reports, grid_tallies, select_policies

    policies = select_policies(config, sla, field="--sla")
    if results_path is not None:
        from monitor.results import read_results

        results = read_results(results_path, skip_invalid=skip_invalid)
        ended = all(now >= month_end(month, p.timezone) for p in policies)
        reports = build_reports(
            config, grid_tallies(results), month, sla, now=None if ended else now
        )
        return [from_results(r, results) for r in reports]
    return await _store_evidence(config, month, policies, now)


def month_end(month: Month, tz: str) -> datetime:
    from monitor.sla.calendar import month_bounds

    return month_bounds(month, tz)[1]


async def _store_evidence(
    config: Config, month: Month, policies: Sequence[Any], now: datetime
) -> list[SlaEvidence]:
    from monitor.daemon_reports import store_month_results
    from monitor.store.sqlite import SqliteStore

    path = config.monitor.database_path
    if not path.exists():
        raise ValueError(
            f"--results: not given, and no store at {path}; expected a results file or the "
            "database a daemon writes"
        )
    store = SqliteStore(path, vantage=config.monitor.name, read_only=True, integrity_check=False)
    await store.open()
    try:
        extra = await store.list_exclusions()
        reports = await store_month_results(config, store, policies, month, now, extra)
        return [await from_store(r, store) for r in reports]
    finally:
        await store.close()


def export_hint(
    config_path: str,
    month: Month,
    results: str | None,
    as_of_text: str | None,
    skip_invalid: bool = False,
) -> str:
    """The ``slawatch evidence export`` command a claim cites (``{sla}`` left to fill in)."""
    words = ["slawatch evidence export", f"--config {shlex.quote(config_path)}"]
    words += [f"--month {month}", "--sla {sla}"]
    if results is not None:
        words.append(f"--results {shlex.quote(results)}")
    if as_of_text is not None:
        words.append(f"--as-of {shlex.quote(as_of_text)}")
    if skip_invalid:
        words.append("--skip-invalid")
    return " ".join(words)


async def store_claim_evidence(reports: Sequence[MonthResult], store: Store) -> list[SlaEvidence]:
    """The evidence of ``reports`` (those owing a credit) from an open store."""
    return [await from_store(r, store) for r in reports if r.credit_amount > 0]


async def claim_evidence_from_store_file(
    config: Config, reports: Sequence[MonthResult]
) -> list[SlaEvidence]:
    """As ``store_claim_evidence``, opening the configuration's store read-only."""
    from monitor.store.sqlite import SqliteStore

    store = SqliteStore(
        config.monitor.database_path,
        vantage=config.monitor.name,
        read_only=True,
        integrity_check=False,
    )
    await store.open()
    try:
        return await store_claim_evidence(reports, store)
    finally:
        await store.close()


def claim_context(
    config: Config,
    reports: Sequence[MonthResult],
    args: argparse.Namespace,
    results: ResultSet | None,
) -> ClaimContext:
    """The claim context for ``slawatch report --format claim``: the configured parties and
    the evidence of every SLA owing a credit, from the results file or the store."""
    from monitor.claim_pack import context_for

    month = Month.parse(args.month)
    hint = export_hint(
        args.config, month, args.results, args.as_of, bool(getattr(args, "skip_invalid", False))
    )
    if results is not None:
        evidence = [from_results(r, results) for r in reports if r.credit_amount > 0]
    else:
        evidence = asyncio.run(claim_evidence_from_store_file(config, reports))
    return context_for(config, evidence, hint)
