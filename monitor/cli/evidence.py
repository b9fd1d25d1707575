"""``slawatch evidence export``: the command line over :mod:`monitor.reports.evidence`, and the
claim context ``slawatch report --format claim`` cites."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from monitor.clock import system_clock
from monitor.instants import parse_instant
from monitor.reports.evidence import (
    claim_evidence_from_store_file,
    export_hint,
    from_results,
    month_evidence,
    write_export,
)
from monitor.sla.calendar import Month

if TYPE_CHECKING:
    from collections.abc import Sequence

    from monitor.config import Config
    from monitor.reports.claim_pack import ClaimContext
    from monitor.reports.results import ResultSet
    from monitor.sla.month import MonthResult


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
        return datetime.fromtimestamp(system_clock(), UTC)
    return parse_instant(text, "--as-of")


def claim_context(
    config: Config,
    reports: Sequence[MonthResult],
    args: argparse.Namespace,
    results: ResultSet | None,
) -> ClaimContext:
    """The claim context for ``slawatch report --format claim``: the configured parties and
    the evidence of every SLA owing a credit, from the results file or the store."""
    from monitor.reports.claim_pack import context_for

    month = Month.parse(args.month)
    hint = export_hint(
        args.config, month, args.results, args.as_of, bool(getattr(args, "skip_invalid", False))
    )
    if results is not None:
        evidence = [from_results(r, results) for r in reports if r.credit_amount > 0]
    else:
        evidence = asyncio.run(claim_evidence_from_store_file(config, reports))
    return context_for(config, evidence, hint)
