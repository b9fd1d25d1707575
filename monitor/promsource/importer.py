"""``slawatch import``: a past month of a ``prometheus`` target's samples into the store.

Everything is fetched and bucketed first; only then is ONE write batch handed to the store,
which writes it in one transaction: a failure anywhere (Prometheus unreachable, an error
answer, a selector matching two series) writes nothing. Tallies are absolute counts upserted
on (vantage, target, bucket start, bucket length), so running the import twice changes
nothing. ``slawatch report`` then reads the month from the store like any other.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from monitor.promsource.bucketing import Sample, bucket_series, dedupe
from monitor.promsource.client import PrometheusClient, PrometheusError, one_series
from monitor.promsource.options import PrometheusOptions
from monitor.sla.calendar import Month, month_bounds
from monitor.sla.policy import BucketRule
from monitor.store.base import Store, StoreError, TallyRow, WriteBatch

if TYPE_CHECKING:
    from monitor.config import Config

KIND = "prometheus"
MARGIN_SECONDS = 600
"""Samples fetched before the range: they say whether its first bucket was covered."""
CONCURRENCY = 4
"""Targets fetched at once: a bounded load on Prometheus."""

Progress = Callable[[int, int], None]
"""Called with (chunks done, chunks in all)."""


@dataclass(frozen=True)
class Measured:
    """A prometheus target, the bucket lengths measuring it and the rules of each length."""

    name: str
    options: PrometheusOptions
    rules: Mapping[int, tuple[BucketRule, ...]]


@dataclass(frozen=True)
class ImportSummary:
    month: Month
    targets: int
    samples: int
    duplicates: int
    rows: int
    unknown_buckets: int
    queries: int
    seconds: float

    def line(self) -> str:
        return (
            f"slawatch import: {self.month}: {self.targets} target(s), {self.samples} samples "
            f"({self.duplicates} duplicate timestamps dropped), {self.rows} bucket tallies "
            f"written, {self.unknown_buckets} buckets unknown (gaps, stale, exporter down), "
            f"{self.queries} queries, {self.seconds:.1f} s"
        )


def measured_targets(config: Config, only: str | None = None) -> list[Measured]:
    """The configuration's prometheus targets (or ``only``), with their SLAs' bucket rules.

    A canary is measured at every SLA's bucket length, as the daemon does.
    """
    policies = config.sla_policies()
    services = config.service_defs()
    canaries = set(config.canaries())
    out: list[Measured] = []
    names = [t.name for t in config.targets]
    if only is not None and only not in names:
        raise ValueError(f"--target: expected one of {', '.join(names)}, got {only!r}")
    for target in config.targets:
        if only is not None and target.name != only:
            continue
        if target.kind != KIND:
            if only is not None:
                raise ValueError(
                    f"--target: {only} is a {target.kind} target; only kind: {KIND} targets "
                    "are imported"
                )
            continue
        rules: dict[int, list[BucketRule]] = {}
        for policy in policies:
            if target.name in canaries or target.name in services[policy.service].targets:
                rules.setdefault(policy.bucket_seconds, []).append(policy.bucket_rule)
        assert isinstance(target.options, PrometheusOptions)
        out.append(Measured(target.name, target.options, {k: tuple(v) for k, v in rules.items()}))
    if not out:
        raise ValueError(f"--config: no target with kind: {KIND} to import")
    return out


def month_range(config: Config, month: Month) -> tuple[int, int]:
    """[start, end) epoch covering ``month`` in every SLA's zone (UTC without SLAs)."""
    zones = {p.timezone for p in config.sla_policies()} or {"UTC"}
    bounds = [month_bounds(month, zone) for zone in zones]
    return int(min(b[0] for b in bounds).timestamp()), int(max(b[1] for b in bounds).timestamp())


def chunks(start: int, end: int, size: int) -> list[tuple[int, int]]:
    """[start, end) cut into pieces of ``size`` seconds (the last may be shorter)."""
    return [(lo, min(lo + size, end)) for lo in range(start, end, size)]


async def fetch_series(
    client: PrometheusClient,
    selector: str,
    target: str,
    pieces: Iterable[tuple[int, int]],
    tick: Callable[[], None],
) -> list[Sample]:
    samples: list[Sample] = []
    for lo, hi in pieces:
        series = await client.raw_samples(selector, lo * 1000, hi * 1000)
        samples.extend(one_series(series, selector, target))
        tick()
    return samples


async def build_rows(
    config: Config,
    month: Month,
    targets: Sequence[Measured],
    now: float,
    progress: Progress | None = None,
) -> tuple[list[TallyRow], ImportSummary]:
    """Fetch and bucket everything (nothing written). Raises PrometheusError on any failure."""
    started = time.monotonic()
    start, end = month_range(config, month)
    if start >= now:
        raise ValueError(f"--month: {month} has not started yet")
    vantage = config.monitor.name
    plans = []
    total = 0
    for target in targets:
        options = target.options
        # Only closed buckets whose samples Prometheus has had time to store.
        longest = max(target.rules, default=300)
        stop = min(end, int(now - options.lag) // longest * longest)
        margin = max(MARGIN_SECONDS, int(2 * (options.scrape_interval or 0)))
        # A target no SLA measures has nothing to fill: not even asked for.
        pieces = chunks(start - margin, stop, int(options.chunk)) if stop > start else []
        if not target.rules:
            pieces = []
        plans.append((target, stop, pieces))
        total += len(pieces) * (2 if options.up else 1)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    clients: dict[PrometheusOptions, PrometheusClient] = {}
    gate = asyncio.Semaphore(CONCURRENCY)
    rows: list[TallyRow] = []
    counts = {"samples": 0, "duplicates": 0, "unknown": 0}

    async def one(target: Measured, stop: int, pieces: list[tuple[int, int]]) -> None:
        options = target.options
        client = clients.setdefault(options, PrometheusClient(options))
        async with gate:
            success = await fetch_series(client, options.selector, target.name, pieces, tick)
            up = (
                await fetch_series(client, options.up, target.name, pieces, tick)
                if options.up
                else []
            )
        success, dropped = dedupe(success)
        counts["duplicates"] += dropped
        counts["samples"] += sum(
            1 for ts, v in success if start * 1000 <= ts < stop * 1000 and v in (0.0, 1.0)
        )
        interval = int(options.scrape_interval * 1000) if options.scrape_interval else None
        for seconds, rules in sorted(target.rules.items()):
            result = bucket_series(
                success,
                start=start,
                end=max(start, stop // seconds * seconds),
                bucket_seconds=seconds,
                up=up,
                scrape_interval_ms=interval,
                rules=rules,
            )
            counts["unknown"] += len(result.unknown)
            rows.extend(
                TallyRow(vantage, target.name, b, seconds, t.ok, t.failed, t.reasons)
                for b, t in result.tallies.items()
            )

    try:
        await asyncio.gather(*(one(*plan) for plan in plans))
    finally:
        for client in clients.values():
            await client.close()
    summary = ImportSummary(
        month=month,
        targets=len(targets),
        samples=counts["samples"],
        duplicates=counts["duplicates"],
        rows=len(rows),
        unknown_buckets=counts["unknown"],
        queries=sum(c.queries for c in clients.values()),
        seconds=time.monotonic() - started,
    )
    return rows, summary


async def import_month(
    config: Config,
    store: Store,
    month: Month,
    *,
    target: str | None = None,
    now: float,
    progress: Progress | None = None,
) -> ImportSummary:
    """Fetch, bucket, then write everything in one batch (all or nothing)."""
    targets = measured_targets(config, target)
    rows, summary = await build_rows(config, month, targets, now, progress)
    if rows:
        await store.write_batch(WriteBatch(tallies=rows))
    return summary


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import`` to the ``slawatch`` command line."""
    parser = subparsers.add_parser(
        "import",
        help="fill a past month of kind: prometheus targets from Prometheus into the store",
        description="Read the raw samples of each kind: prometheus target's 0/1 series "
        "(probe_success of blackbox_exporter) for a calendar month, bucket them with "
        "slawatch's own rules and write the tallies into the store (all or nothing; running "
        "it twice changes nothing). Then `slawatch report --month` works on that month.",
    )
    parser.add_argument("--config", required=True, help="slawatch YAML configuration")
    parser.add_argument("--month", required=True, help="calendar month, YYYY-MM")
    parser.add_argument("--target", help="import only this target")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``slawatch import``; 0 on success, 2 on bad input, 1 when Prometheus fails."""
    from monitor.config import ConfigError, load_config

    stdout = sys.stdout if out is None else out
    stderr = sys.stderr if err is None else err
    try:
        month = Month.parse(args.month)
        config = load_config(args.config)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"slawatch import: {exc}", file=stderr)
        return 2
    progress = _bar(stderr) if stderr.isatty() else None
    try:
        summary = asyncio.run(_import(config, month, args.target, progress))
    except ValueError as exc:
        print(f"slawatch import: {exc}", file=stderr)
        return 2
    except (PrometheusError, StoreError, OSError) as exc:
        if progress is not None:
            print(file=stderr)
        print(f"slawatch import: {exc}; nothing was written", file=stderr)
        return 1
    if progress is not None:
        print(file=stderr)
    print(summary.line(), file=stdout)
    return 0


async def _import(
    config: Config, month: Month, target: str | None, progress: Progress | None
) -> ImportSummary:
    from monitor.reports.stores import cli_store

    # Fetch first: an unreachable Prometheus must not even create an empty database.
    now = datetime.now(UTC).timestamp()
    targets = measured_targets(config, target)
    rows, summary = await build_rows(config, month, targets, now, progress)
    store = cli_store(config, read_only=False)
    await store.open()
    try:
        if rows:
            await store.write_batch(WriteBatch(tallies=rows))
    finally:
        await store.close()
    return summary


def _bar(stream: TextIO) -> Progress:
    width = 30

    def show(done: int, total: int) -> None:
        filled = width * done // max(total, 1)
        stream.write(f"\rimporting [{'#' * filled}{'.' * (width - filled)}] {done}/{total} queries")
        stream.flush()

    return show
