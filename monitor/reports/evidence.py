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

import bisect
import shlex
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.reports.results import UNSPECIFIED_REASON, ResultSet
from monitor.sla.calendar import Month
from monitor.sla.month import MonthResult

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store.base import Store

from monitor.sla.evidence import (
    DIGEST_FILE,
    STORE_EVIDENCE_LIMIT,
    OutageEvidence,
    ProbeRecord,
    SlaEvidence,
)


def service_targets(result: MonthResult) -> tuple[str, ...]:
    """The targets whose probes decide the SLA's buckets (canaries are not vendor evidence)."""
    return tuple(str(name) for name in result.rules.get("service_targets", ()))


def _sorted(records: Sequence[ProbeRecord]) -> tuple[ProbeRecord, ...]:
    return tuple(sorted(records, key=lambda r: (r.ts, r.target, r.ok, r.reason, r.vantage)))


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
    """The failed probe runs behind ``result``'s outages, from the daemon's store.

    An outage judged by a quorum of locations (issue 14) was proven by the locations that saw
    it, not by this daemon alone: its evidence is every member's failed probes in those
    locations (each record names its vantage), so the claim shows what each location saw."""
    located = any(outage.locations for outage in result.outages)
    members = await store.vantages() if located else [store.vantage]
    items = []
    for number, outage in enumerate(result.outages, start=1):
        records: list[ProbeRecord] = []
        for vantage in members if outage.locations else [store.vantage]:
            for target in service_targets(result):
                rows = await store.load_evidence(
                    outage.start.timestamp(),
                    outage.end.timestamp(),
                    target=target,
                    limit=STORE_EVIDENCE_LIMIT,
                    vantage=vantage,
                )
                records.extend(
                    ProbeRecord(row.ts, row.target, False, row.reason, row.vantage, row.duration)
                    for row in rows
                    if not outage.locations or row.location in outage.locations
                )
        items.append(OutageEvidence(number, outage, _sorted(records)))
    return SlaEvidence(
        sla=result.sla,
        month=result.month,
        timezone=result.timezone,
        source=f"store {store.vantage}" if not located else f"store, {len(members)} members",
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


async def month_evidence(
    config: Config,
    month: Month,
    sla: str | None,
    results_path: str | None,
    now: datetime,
    skip_invalid: bool = False,
) -> list[SlaEvidence]:
    """The evidence of every selected SLA's outages, computed as ``slawatch report`` does."""
    from monitor.accounting import select_policies
    from monitor.reports.build import build_reports, grid_tallies

    policies = select_policies(config, sla, field="--sla")
    if results_path is not None:
        from monitor.reports.results import read_results

        results = read_results(results_path, skip_invalid=skip_invalid)
        ended = all(now >= month_end(month, p.timezone) for p in policies)
        reports = build_reports(
            config,
            grid_tallies(results, config.canary_intervals()),
            month,
            sla,
            now=None if ended else now,
        )
        return [from_results(r, results) for r in reports]
    return await _store_evidence(config, month, policies, now)


def month_end(month: Month, tz: str) -> datetime:
    from monitor.sla.calendar import month_bounds

    return month_bounds(month, tz)[1]


async def _store_evidence(
    config: Config, month: Month, policies: Sequence[Any], now: datetime
) -> list[SlaEvidence]:
    from monitor.reports.stored import store_month_results
    from monitor.reports.stores import cli_store, store_name, store_present

    if not store_present(config):
        raise ValueError(
            f"--results: not given, and no store at {store_name(config)}; expected a results "
            "file or the database a daemon writes"
        )
    store = cli_store(config, read_only=True, integrity_check=False)
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
    from monitor.reports.stores import cli_store

    store = cli_store(config, read_only=True, integrity_check=False)
    await store.open()
    try:
        return await store_claim_evidence(reports, store)
    finally:
        await store.close()
