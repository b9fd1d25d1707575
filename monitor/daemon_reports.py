"""Reports computed from the store: the daemon's `/api/v1/report`, and `slawatch report`
without `--results` (reading the SQLite file the daemon writes).

The running daemon answers the current and previous months from memory (what `/metrics`
shows); older months, and the CLI, read tallies and gaps back from the store, so a report is
reproducible from stored evidence alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.accounting import Accounting, AccountingInputs, utc_now
from monitor.full_report import compose, has_support, support_parts
from monitor.reporting import ReportConfig, select_policies
from monitor.sla.calendar import Month, month_bounds, month_containing
from monitor.sla.month import MonthResult
from monitor.sla.policy import ExclusionWindow, SlaPolicy
from monitor.sla.render import FORMATS
from monitor.store.base import Store

if TYPE_CHECKING:
    from monitor.daemon import Daemon

CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv",
    "text": "text/plain",
    "claim": "text/plain",
}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


async def store_month_results(
    config: ReportConfig,
    store: Store,
    policies: Sequence[SlaPolicy],
    month: Month,
    now: datetime,
    extra_exclusions: Sequence[ExclusionWindow] = (),
) -> list[MonthResult]:
    """Each policy's ``month`` from what ``store`` holds (tallies, gaps, API exclusions)."""
    results = []
    for policy in policies:
        start, end = month_bounds(month, policy.timezone)
        if start > now:
            raise ValueError(f"month: {month} has not started yet in {policy.timezone}")
        tallies = await store.load_tallies(
            int(start.timestamp()), int(end.timestamp()), bucket_seconds=policy.bucket_seconds
        )
        gaps = tuple(
            (utc_now(g.start), utc_now(g.end))
            for g in await store.load_gaps(start.timestamp(), end.timestamp())
        )
        inputs = AccountingInputs(
            policies=(policy,),
            services=config.service_defs(),
            windows=(*config.exclusion_windows(), *extra_exclusions),
            recurring=config.recurring_exclusions(),
            canaries=config.canaries(),
            gaps=gaps,
        )
        accounting = Accounting(inputs, lambda *_, loaded=tallies: loaded)
        results.append(accounting.month_result(policy, now, month))
    return results


async def daemon_report(
    daemon: Daemon, service: str | None, month: str | None, fmt: str
) -> tuple[str, str]:
    """The report text and its content type, as `slawatch report` would print it."""
    _check_format(fmt)
    now = utc_now(time.time())
    policies = select_policies(daemon.config, service, field="service")
    results = await daemon_month_results(daemon, policies, month, now)
    zone = policies[0].timezone if policies else "UTC"
    chosen = Month.parse(month) if month else month_containing(now, zone)
    return await compose_report(daemon, results, chosen, fmt, now), CONTENT_TYPES[fmt]


async def compose_report(
    daemon: Daemon, results: Sequence[MonthResult], month: Month, fmt: str, now: datetime
) -> str:
    """The report text for months already computed, with the support section for ``month``."""
    meta: dict[str, Any] = {"source": "store", "vantage": daemon.config.monitor.name}
    support = None
    if has_support(daemon.config):
        support = await support_parts(
            daemon.config, daemon.store, month, now, daemon.api_exclusions
        )
    return compose(results, fmt, meta, support)


async def daemon_month_results(
    daemon: Daemon, policies: Sequence[SlaPolicy], month: str | None, now: datetime
) -> list[MonthResult]:
    """Each policy's month as the daemon reports it (``month`` ``None``: the current one):
    from memory for the current and previous months, from the store before that."""
    results: list[MonthResult] = []
    for policy in policies:
        chosen = Month.parse(month) if month else month_containing(now, policy.timezone)
        current = month_containing(now, policy.timezone)
        if chosen > current:
            raise ValueError(f"month: {chosen} has not started yet in {policy.timezone}")
        if chosen >= current.previous():
            results.append(daemon.accounting.month_result(policy, now, chosen))
        else:
            results.extend(
                await store_month_results(
                    daemon.config, daemon.store, [policy], chosen, now, daemon.api_exclusions
                )
            )
    return results
