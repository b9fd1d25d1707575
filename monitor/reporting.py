"""``slawatch report``: a calendar month computed from recorded probe results.

:func:`build_reports` is the reusable core (the daemon's HTTP API calls it with tallies from
its store); :func:`register` adds the command line around it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from monitor.results import ResultSet, read_results, tally_results
from monitor.sla.calendar import BucketGrid, Month, month_bounds, month_grid
from monitor.sla.exclusions import expand_recurring
from monitor.sla.month import MonthResult, compute_month
from monitor.sla.policy import (
    ExclusionWindow,
    RecurringExclusion,
    ServiceDef,
    SlaPolicy,
    Tally,
)
from monitor.sla.render import FORMATS

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.support.contract import ContractSummary
    from monitor.support.notice import Violation

Tallies = Mapping[str, Mapping[int, Tally]]
TallySource = Tallies | Callable[[BucketGrid], Tallies]
"""Tallies keyed by bucket start epoch, or a function giving them for an SLA's bucket grid
(needed when SLAs differ in bucket length or zone alignment)."""


class ReportConfig(Protocol):
    """What a report needs from the configuration (``monitor.config.Config`` provides it)."""

    def sla_policies(self) -> tuple[SlaPolicy, ...]: ...
    def service_defs(self) -> dict[str, ServiceDef]: ...
    def exclusion_windows(self) -> tuple[ExclusionWindow, ...]: ...
    def recurring_exclusions(self) -> tuple[RecurringExclusion, ...]: ...
    def canaries(self) -> tuple[str, ...]: ...


def select_policies(
    config: ReportConfig, service: str | None, field: str = "--service"
) -> list[SlaPolicy]:
    """The SLAs to report: all, or those over ``service`` (an error names the known ones)."""
    policies = list(config.sla_policies())
    if service is None:
        return policies
    chosen = [p for p in policies if service in (p.service, p.name)]
    if not chosen:
        known = sorted({p.service for p in policies})
        raise ValueError(f"{field}: expected one of {', '.join(known)}, got {service!r}")
    return chosen


def build_reports(
    config: ReportConfig,
    tallies: TallySource,
    month: Month,
    service: str | None = None,
    now: datetime | None = None,
    extra_exclusions: Sequence[ExclusionWindow] = (),
    gaps: Sequence[tuple[datetime, datetime]] = (),
) -> list[MonthResult]:
    """One :class:`MonthResult` per selected SLA for ``month``.

    Recurring exclusions are expanded over each SLA's month; ``extra_exclusions`` (e.g. added
    through the API) join the configured windows. ``now`` ``None`` means the month is over.
    """
    services = config.service_defs()
    fixed = (*config.exclusion_windows(), *extra_exclusions)
    recurring = config.recurring_exclusions()
    canaries = config.canaries()
    results = []
    for policy in select_policies(config, service):
        definition = services.get(policy.service)
        if definition is None:
            raise ValueError(
                f"sla {policy.name}: service: expected one of {sorted(services)}, "
                f"got {policy.service!r}"
            )
        start, end = month_bounds(month, policy.timezone)
        windows = list(fixed)
        for rec in recurring:
            windows.extend(expand_recurring(rec, start, end))
        grid_tallies = (
            tallies(month_grid(month, policy.timezone, policy.bucket_seconds))
            if callable(tallies)
            else tallies
        )
        results.append(
            compute_month(
                policy,
                definition,
                month,
                grid_tallies,
                windows,
                canaries=canaries,
                gaps=gaps,
                now=now,
            )
        )
    return results


def grid_tallies(results: ResultSet) -> Callable[[BucketGrid], Tallies]:
    """Tally ``results`` once per distinct grid asked for."""
    cache: dict[tuple[int, int, int], Tallies] = {}

    def for_grid(grid: BucketGrid) -> Tallies:
        key = (grid.start_epoch, grid.end_epoch, grid.bucket_seconds)
        if key not in cache:
            cache[key] = tally_results(results, grid)
        return cache[key]

    return for_grid


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``slawatch report``; 0 on success, 2 on bad input (named on stderr)."""
    from monitor.config import ConfigError, load_config
    from monitor.full_report import compose, has_support
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
            as_of = _now_within(now, month, policies)
            reports = build_reports(config, grid_tallies(results), month, args.service, now=as_of)
            meta = _input_meta(results, config)
            for note in _notes(results, meta):
                print(f"slawatch report: {note}", file=stderr)
        support = asyncio.run(_support(config, month, now)) if has_support(config) else None
    except (ConfigError, StoreError, ValueError, OSError) as exc:
        print(f"slawatch report: {exc}", file=stderr)
        return 2
    if args.fmt == "html":  # the web view's SLA month page, as one self-contained file
        from monitor.web.report import report_html

        claim = lambda r: compose([r], "claim", meta, support)  # noqa: E731
        stdout.write(report_html(reports, policies, claim, config.monitor.name))
        return 0
    stdout.write(compose(reports, args.fmt, meta, support))
    return 0


async def _support(
    config: Config, month: Month, now: datetime
) -> tuple[list[ContractSummary], dict[str, list[Violation]]]:
    """The support section's data: faults come from the daemon's store when there is one."""
    from monitor.full_report import support_parts
    from monitor.store.sqlite import SqliteStore

    path = _database(config)
    if not path.exists():
        return await support_parts(config, None, month, now)
    store = SqliteStore(path, vantage=config.monitor.name, read_only=True, integrity_check=False)
    await store.open()
    try:
        return await support_parts(config, store, month, now, await store.list_exclusions())
    finally:
        await store.close()


def _database(config: Config) -> Path:
    return config.monitor.database_path


async def _from_store(
    config: Config, policies: Sequence[SlaPolicy], month: Month, now: datetime
) -> list[MonthResult]:
    """The month from the daemon's store, opened read-only (a running daemon may hold it)."""
    from monitor.daemon_reports import store_month_results
    from monitor.store.sqlite import SqliteStore

    path = _database(config)
    if not path.exists():
        raise ValueError(
            f"--results: not given, and no store at {path} (monitor.state_dir/monitor.database); "
            "expected a results file or the database a daemon writes"
        )
    store = SqliteStore(path, vantage=config.monitor.name, read_only=True, integrity_check=False)
    await store.open()
    try:
        extra = await store.list_exclusions()
        return await store_month_results(config, store, policies, month, now, extra)
    finally:
        await store.close()


def _as_of(text: str | None) -> datetime:
    if text is None:
        return datetime.fromtimestamp(time.time(), UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--as-of: expected an RFC 3339 timestamp, got {text!r}") from None
    if moment.tzinfo is None:
        raise ValueError(f"--as-of: expected a UTC offset or Z, got naive {text!r}")
    return moment


def _now_within(now: datetime, month: Month, policies: Sequence[SlaPolicy]) -> datetime | None:
    """``now`` if the month has not ended in some SLA's zone yet, else ``None`` (month over)."""
    for policy in policies:
        if now < month_bounds(month, policy.timezone)[1]:
            return now
    return None


def _input_meta(results: ResultSet, config: ReportConfig) -> dict[str, Any]:
    known: set[str] = set(config.canaries())
    for definition in config.service_defs().values():
        known.update(definition.targets)
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
