"""Months computed from the store: `slawatch report` without `--results` (reading the SQLite
file the daemon writes) and the daemon's `/api/v1/report` for months it no longer holds.

Tallies and gaps are read back from the store, so a report is reproducible from stored
evidence alone; the month itself is computed by :func:`monitor.accounting.month_result`, as
everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from monitor.accounting import AccountingInputs, Tallies, inputs_from_config, month_result
from monitor.config import Config
from monitor.instants import utc_from_epoch
from monitor.sla.calendar import Month, month_bounds
from monitor.sla.month import MonthResult
from monitor.sla.policy import ExclusionWindow, SlaPolicy
from monitor.store.base import Store
from monitor.store.located import load_located


async def store_month_results(
    config: Config,
    store: Store,
    policies: Sequence[SlaPolicy],
    month: Month,
    now: datetime,
    extra_exclusions: Sequence[ExclusionWindow] = (),
) -> list[MonthResult]:
    """Each policy's ``month`` from what ``store`` holds (tallies, gaps, API exclusions)."""
    results = []
    # Read once per month span and bucket length, not once per SLA: every SLA in the same
    # zone reads the same tallies and gaps (each read is O(targets x buckets)), and the
    # inputs differ only by the gaps (each build is O(SLAs)): per SLA, 10,000 SLAs took
    # minutes.
    tallies_of: dict[tuple[int, int, int], Tallies] = {}
    gaps_of: dict[tuple[int, int], tuple[tuple[datetime, datetime], ...]] = {}
    built: dict[tuple[tuple[datetime, datetime], ...], AccountingInputs] = {}
    for policy in policies:
        start, end = month_bounds(month, policy.timezone)
        if start > now:
            raise ValueError(f"month: {month} has not started yet in {policy.timezone}")
        span = (int(start.timestamp()), int(end.timestamp()))
        tallies: Tallies | None
        if policy.locations is not None:
            # Judged by a quorum of locations (issue 14): every location's tallies and gaps.
            tallies = await load_located(
                store,
                policy.locations,
                config.service_defs()[policy.service].all_targets,
                config.canaries(),
                *span,
                policy.bucket_seconds,
            )
        else:
            tallies = tallies_of.get((*span, policy.bucket_seconds))
            if tallies is None:
                tallies = tallies_of[(*span, policy.bucket_seconds)] = await store.load_tallies(
                    *span, bucket_seconds=policy.bucket_seconds
                )
        gaps = gaps_of.get(span)
        if gaps is None:
            gaps = gaps_of[span] = tuple(
                (utc_from_epoch(g.start), utc_from_epoch(g.end))
                for g in await store.load_gaps(start.timestamp(), end.timestamp())
            )
        inputs = built.get(gaps)
        if inputs is None:
            inputs = built[gaps] = inputs_from_config(
                config, api_windows=extra_exclusions, gaps=gaps
            )
        results.append(month_result(inputs, policy, month, tallies, now))
        # A whole month per SLA costs milliseconds: let the daemon's probes run between them.
        await asyncio.sleep(0)
    return results
