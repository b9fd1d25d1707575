"""Months computed from the store: `slawatch report` without `--results` (reading the SQLite
file the daemon writes) and the daemon's `/api/v1/report` for months it no longer holds.

Tallies and gaps are read back from the store, so a report is reproducible from stored
evidence alone; the month itself is computed by :func:`monitor.accounting.month_result`, as
everywhere.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from monitor.accounting import AccountingInputs, Tallies, inputs_from_config, month_result
from monitor.config import Config
from monitor.instants import utc_from_epoch
from monitor.sla.calendar import Month, month_bounds
from monitor.sla.month import MonthResult
from monitor.sla.policy import ExclusionWindow, SlaPolicy
from monitor.store.base import Store
from monitor.store.located import load_located

SLICE_SECONDS = 0.01
"""Work done on the loop between two yields while taking held months (issue 20, se24)."""


class Unmeasured:
    """What ``held`` returns for a month it holds in which no bucket held a tally (every
    bucket unknown or excluded): the month need not be built to know nothing was measured."""


UNMEASURED = Unmeasured()

MAX_NAMED_TARGETS = 2000
"""Above this many targets, the month's tallies are read whole (one range) rather than by
name (one index seek per target)."""


async def store_month_results(
    config: Config,
    store: Store,
    policies: Sequence[SlaPolicy],
    month: Month,
    now: datetime,
    extra_exclusions: Sequence[ExclusionWindow] = (),
) -> list[MonthResult]:
    """Each policy's ``month`` from what ``store`` holds (tallies, gaps, API exclusions)."""
    results = await month_results_held(config, store, policies, month, now, extra_exclusions)
    return [result for result in results if result is not None]


async def month_results_held(
    config: Config,
    store: Store,
    policies: Sequence[SlaPolicy],
    month: Month,
    now: datetime,
    extra_exclusions: Sequence[ExclusionWindow] = (),
    *,
    held: Callable[[SlaPolicy, AccountingInputs], MonthResult | Unmeasured | None] | None = None,
    unmeasured_as_none: bool = False,
) -> list[MonthResult | None]:
    """:func:`store_month_results`, taking each month ``held(policy, inputs)`` returns
    instead of computing it (issue 20, se24: the daemon's accounting holds every SLA's
    previous month, judged from the same tallies, and hands it over only when it is provably
    the same month; see ``monitor.runtime.sealing``); the others are computed from the
    store's tallies, read once for just their targets. ``unmeasured_as_none``: None, not a
    month, for an SLA none of whose targets holds a tally in the month (every bucket of it
    unknown or excluded, nothing measured: what the daemon does not seal), without
    computing it."""
    # Read once per month span and bucket length, not once per SLA: every SLA in the same
    # zone reads the same tallies and gaps (each read is O(targets x buckets)), and the
    # inputs differ only by the gaps (each build is O(SLAs)): per SLA, 10,000 SLAs took
    # minutes.
    gaps_of: dict[tuple[int, int], tuple[tuple[datetime, datetime], ...]] = {}
    built: dict[tuple[tuple[datetime, datetime], ...], AccountingInputs] = {}
    results: list[MonthResult | None] = []
    computed: list[tuple[int, SlaPolicy, AccountingInputs, tuple[int, int]]] = []
    began = time.perf_counter()
    for policy in policies:
        start, end = month_bounds(month, policy.timezone)
        if start > now:
            raise ValueError(f"month: {month} has not started yet in {policy.timezone}")
        span = (int(start.timestamp()), int(end.timestamp()))
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
        taken = None if held is None else held(policy, inputs)
        if taken is None or (isinstance(taken, Unmeasured) and not unmeasured_as_none):
            computed.append((len(results), policy, inputs, span))
        # An Unmeasured month (no bucket of the held month held a tally) is left None.
        results.append(taken if isinstance(taken, MonthResult) else None)
        if time.perf_counter() - began > SLICE_SECONDS:
            await asyncio.sleep(0)  # let the daemon's probes run between slices
            began = time.perf_counter()
    if not computed:
        return results
    # The tallies of the SLAs computed here only (a batch of the daemon's 10,000 SLAs read
    # every target's month), in one read per month span and bucket length.
    services = config.service_defs()
    wanted: dict[tuple[int, int, int], set[str]] = {}
    for _, policy, _, span in computed:
        if policy.locations is None:
            wanted.setdefault((*span, policy.bucket_seconds), set()).update(
                services[policy.service].all_targets if policy.service in services else ()
            )
    tallies_of: dict[tuple[int, int, int], Tallies] = {}
    for key, targets in wanted.items():
        tallies_of[key] = await store.load_tallies(
            key[0],
            key[1],
            None if len(targets) > MAX_NAMED_TARGETS else sorted(targets),
            bucket_seconds=key[2],
        )
    for index, policy, inputs, span in computed:
        tallies: Tallies
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
            tallies = tallies_of[(*span, policy.bucket_seconds)]
            if unmeasured_as_none and policy.service in services:
                leaves = services[policy.service].all_targets
                if not any(tallies.get(name) for name in leaves):
                    continue  # no tally: every bucket unknown or excluded (left None)
        results[index] = month_result(inputs, policy, month, tallies, now)
        # A whole month per SLA costs milliseconds: let the daemon's probes run between them.
        await asyncio.sleep(0)
    return results
