"""A calendar month computed from recorded probe results (a results file's tallies), through
the one month assembly. The command line around it is ``monitor.cli.report``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.accounting import inputs_from_config, month_result, select_policies
from monitor.reports.results import ResultSet, tally_results
from monitor.sla.calendar import BucketGrid, Month, month_bounds, month_grid
from monitor.sla.month import MonthResult
from monitor.sla.policy import ExclusionWindow, Tally

if TYPE_CHECKING:
    from monitor.config import Config

Tallies = Mapping[str, Mapping[int, Tally]]
TallySource = Tallies | Callable[[BucketGrid], Tallies]
"""Tallies keyed by bucket start epoch, or a function giving them for an SLA's bucket grid
(needed when SLAs differ in bucket length or zone alignment)."""


def build_reports(
    config: Config,
    tallies: TallySource,
    month: Month,
    service: str | None = None,
    now: datetime | None = None,
    extra_exclusions: Sequence[ExclusionWindow] = (),
    gaps: Sequence[tuple[datetime, datetime]] = (),
) -> list[MonthResult]:
    """One :class:`MonthResult` per selected SLA for ``month``, through the one month
    assembly (:func:`monitor.accounting.month_result`).

    ``extra_exclusions`` (e.g. added through the API) join the configured windows. ``now``
    ``None`` means the month is over.
    """
    inputs = inputs_from_config(config, api_windows=extra_exclusions, gaps=gaps)
    results = []
    for policy in select_policies(config, service):
        moment = month_bounds(month, policy.timezone)[1] if now is None else now
        grid_tallies = (
            tallies(month_grid(month, policy.timezone, policy.bucket_seconds))
            if callable(tallies)
            else tallies
        )
        results.append(month_result(inputs, policy, month, grid_tallies, moment))
    return results


def grid_tallies(
    results: ResultSet, canaries: Mapping[str, float]
) -> Callable[[BucketGrid], Tallies]:
    """Tally ``results`` once per distinct grid asked for. ``canaries`` (canary target -> its
    interval, the configuration's ``canary_intervals()``) is required so that no path tallies a
    results file without the canaries' excuse of the instants they cover."""
    cache: dict[tuple[int, int, int], Tallies] = {}

    def for_grid(grid: BucketGrid) -> Tallies:
        key = (grid.start_epoch, grid.end_epoch, grid.bucket_seconds)
        if key not in cache:
            cache[key] = tally_results(results, grid, canaries=canaries)
        return cache[key]

    return for_grid
