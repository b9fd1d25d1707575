"""`slawatch report`: a calendar month's figures from a results file (``--results``) or from
the store the configuration names, with the support section when the configuration has one.

The month is computed by :func:`monitor.reports.build.build_reports` (results file) or
:func:`monitor.reports.stored.store_month_results` (store), both through
:func:`monitor.accounting.month_result`.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from monitor.accounting import select_policies
from monitor.clock import system_clock
from monitor.instants import parse_instant
from monitor.reports.build import build_reports, grid_tallies
from monitor.reports.full import REPORT_FORMATS as FORMATS
from monitor.reports.results import ResultSet, read_results
from monitor.sla.calendar import Month
from monitor.sla.month import MonthResult
from monitor.sla.policy import SlaPolicy

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.support.contract import ContractSummary
    from monitor.support.notice import Violation


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``report`` to the ``slawatch`` command line."""
    parser = subparsers.add_parser(
        "report",
        help="compute a calendar month's uptime and credit from recorded probe results",
        description="Compute a calendar month's SLA figures from probe results in JSON Lines.",
    )
    parser.add_argument("--config", required=True, help="slawatch YAML configuration")
    parser.add_argument(
        "--results",
        help='JSON Lines, one result a line: {"ts": ..., "target": ..., "ok": true|false}; '
        "without it, the store the configuration names is read (read-only)",
    )
    parser.add_argument("--month", required=True, help="calendar month, YYYY-MM")
    parser.add_argument("--service", help="report only this service (or SLA name)")
    parser.add_argument("--format", choices=(*FORMATS, "html"), default="text", dest="fmt")
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="count and skip invalid lines instead of refusing to run",
    )
    parser.add_argument(
        "--as-of",
        help="RFC 3339 instant treated as now (default: the current time); buckets after it "
        "are pending",
    )
    parser.add_argument(
        "--recompute",
        action="store_true",
        help="a sealed month: show today's recomputation instead of the sealed figures",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``slawatch report``; 0 on success, 2 on bad input (named on stderr)."""
    from monitor.config import ConfigError, load_config
    from monitor.reports.full import compose, has_support
    from monitor.store.base import StoreError

    stdout = sys.stdout if out is None else out
    stderr = sys.stderr if err is None else err
    try:
        month = Month.parse(args.month)
        now = _as_of(args.as_of)
        config = load_config(args.config)
        policies = select_policies(config, args.service)
        if args.results is None:
            reports = asyncio.run(_from_store(config, policies, month, now))
            meta: dict[str, Any] = {"source": "store", "database": str(_database(config))}
        else:
            results = read_results(args.results, skip_invalid=args.skip_invalid)
            reports = build_reports(
                config,
                grid_tallies(results, config.canary_intervals()),
                month,
                args.service,
                now=now,
            )
            meta = _input_meta(results, config)
            for note in _notes(results, meta):
                print(f"slawatch report: {note}", file=stderr)
        support = asyncio.run(_support(config, month, now)) if has_support(config) else None
        claim = None
        if args.fmt in ("claim", "html"):  # parties and evidence digests in the claim
            from monitor.cli.evidence import claim_context

            claim = claim_context(config, reports, args, None if args.results is None else results)
    except (ConfigError, StoreError, ValueError, OSError) as exc:
        print(f"slawatch report: {exc}", file=stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # issue 17: damage found while reading, one line
        from monitor.store.schema import RECOVERY

        print(
            f"slawatch report: {_database(config)}: reading failed: {exc}; {RECOVERY}", file=stderr
        )
        return 2
    if args.fmt == "html":  # the web view's SLA month page, as one self-contained file
        from monitor.web.report import report_html

        def draft(result: MonthResult) -> str:
            return compose([result], "claim", meta, support, claim)

        stdout.write(report_html(reports, policies, draft, config.monitor.name))
        return 0
    text = compose(reports, args.fmt, meta, support, claim)
    if args.results is None:  # issue 17: a sealed month shows its sealed figures
        try:
            text = _sealed(config, reports, month, text, args, stderr)
        except (StoreError, ValueError) as exc:
            print(f"slawatch report: {exc}", file=stderr)
            return 2
    stdout.write(text)
    return 0


def _sealed(
    config: Config,
    reports: Sequence[MonthResult],
    month: Month,
    text: str,
    args: argparse.Namespace,
    stderr: TextIO,
) -> str:
    from monitor.reports.seal import apply_seals, differences, load_seals
    from monitor.reports.stores import cli_store

    async def seals() -> list[Any]:
        # The month was just read from this file with the integrity check: not twice.
        store = cli_store(config, read_only=True, integrity_check=False)
        await store.open()
        try:
            policies = [p for p in config.sla_policies() if p.name in {r.sla for r in reports}]
            return await load_seals(store, policies, month)
        finally:
            await store.close()

    found = asyncio.run(seals())
    if not found:
        return text
    if args.recompute:
        by_sla = {r.sla: r for r in reports}
        for seal in found:
            changed = differences(seal.doc["report"], by_sla[seal.sla].to_json())
            print(
                f"slawatch report: {seal.sla} {seal.month} is sealed ({seal.digest}); showing "
                "today's recomputation"
                + (
                    f", which differs: {'; '.join(changed)}"
                    if changed
                    else ", identical to the seal"
                ),
                file=stderr,
            )
        return text
    text, notes = apply_seals(text, args.fmt, found, reports)
    for note in notes:
        print(f"slawatch report: {note}", file=stderr)
    return text


async def _support(
    config: Config, month: Month, now: datetime
) -> tuple[list[ContractSummary], dict[str, list[Violation]]]:
    """The support section's data: faults come from the daemon's store when there is one."""
    from monitor.reports.full import support_parts
    from monitor.reports.stores import cli_store, store_present

    if not store_present(config):
        return await support_parts(config, None, month, now)
    store = cli_store(config, read_only=True)
    await store.open()
    try:
        return await support_parts(config, store, month, now, await store.list_exclusions())
    finally:
        await store.close()


def _database(config: Config) -> str:
    from monitor.reports.stores import store_name

    return store_name(config)


async def _from_store(
    config: Config, policies: Sequence[SlaPolicy], month: Month, now: datetime
) -> list[MonthResult]:
    """The month from the daemon's store, opened read-only (a running daemon may hold it)."""
    from monitor.reports.stored import store_month_results
    from monitor.reports.stores import cli_store, store_present

    if not store_present(config):
        raise ValueError(
            f"--results: not given, and no store at {_database(config)} "
            "(monitor.state_dir/monitor.database); expected a results file or the database a "
            "daemon writes"
        )
    store = cli_store(config, read_only=True)
    await store.open()
    try:
        extra = await store.list_exclusions()
        return await store_month_results(config, store, policies, month, now, extra)
    finally:
        await store.close()


def _as_of(text: str | None) -> datetime:
    if text is None:
        return datetime.fromtimestamp(system_clock(), UTC)
    return parse_instant(text, "--as-of")


def _input_meta(results: ResultSet, config: Config) -> dict[str, Any]:
    known: set[str] = set(config.canaries())
    for definition in config.service_defs().values():
        known.update(definition.all_targets)
    seen = set(results.targets)
    return {
        "results_file": results.source,
        "lines": results.lines,
        "results": len(results),
        "invalid_lines_skipped": len(results.invalid),
        "targets_not_in_config": sorted(seen - known),
    }


def _notes(results: ResultSet, meta: Mapping[str, Any]) -> list[str]:
    notes = []
    if results.invalid:
        first = results.invalid[0]
        notes.append(
            f"skipped {len(results.invalid)} invalid line(s); first: "
            f"{results.source}:{first.line}: {first.message}"
        )
    if meta["targets_not_in_config"]:
        notes.append(
            "ignored results for targets not in the config: "
            + ", ".join(meta["targets_not_in_config"])
        )
    return notes
