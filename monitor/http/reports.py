"""``/api/v1/report``: the report `slawatch report` would print, from the running daemon.

The current and previous months come from the daemon's memory (what ``/metrics`` shows); older
months are read back from the store. Both are computed by :func:`monitor.accounting.month_result`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.accounting import HistoryNotLoaded, select_policies
from monitor.instants import utc_from_epoch
from monitor.reports.full import REPORT_FORMATS as FORMATS
from monitor.reports.full import compose, has_support, support_parts
from monitor.reports.stored import store_month_results
from monitor.sla.calendar import Month, month_containing
from monitor.sla.month import MonthResult
from monitor.sla.policy import SlaPolicy

if TYPE_CHECKING:
    from monitor.runtime.view import DaemonView

CONTENT_TYPES = {
    "json": "application/json",
    "csv": "text/csv",
    "text": "text/plain",
    "claim": "text/plain",
    "faults-csv": "text/csv",
}


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


async def daemon_report(
    daemon: DaemonView, service: str | None, month: str | None, fmt: str
) -> tuple[str, str]:
    """The report text and its content type, as `slawatch report` would print it."""
    _check_format(fmt)
    now = utc_from_epoch(daemon.clock())
    policies = select_policies(daemon.config, service, field="service")
    results = await daemon_month_results(daemon, policies, month, now)
    zone = policies[0].timezone if policies else "UTC"
    chosen = Month.parse(month) if month else month_containing(now, zone)
    return await compose_report(daemon, results, chosen, fmt, now), CONTENT_TYPES[fmt]


async def compose_report(
    daemon: DaemonView, results: Sequence[MonthResult], month: Month, fmt: str, now: datetime
) -> str:
    """The report text for months already computed, with the support section for ``month``
    (the web view's claim draft is this too)."""
    meta: dict[str, Any] = {"source": "store", "vantage": daemon.config.monitor.name}
    support = None
    if has_support(daemon.config):
        support = await support_parts(
            daemon.config, daemon.store, month, now, daemon.api_exclusions
        )
    claim = None
    if fmt == "claim":  # the claim cites the stored evidence's digests
        from monitor.reports.claim_pack import context_for
        from monitor.reports.evidence import store_claim_evidence

        claim = context_for(daemon.config, await store_claim_evidence(results, daemon.store))
    return compose(results, fmt, meta, support, claim)


async def daemon_month_results(
    daemon: DaemonView, policies: Sequence[SlaPolicy], month: str | None, now: datetime
) -> list[MonthResult]:
    """Each policy's month as the daemon reports it (``month`` ``None``: the current one):
    from memory for the current and previous months, from the store before that. Both through
    :func:`monitor.accounting.month_result`."""
    results: list[MonthResult] = []
    for policy in policies:
        chosen = Month.parse(month) if month else month_containing(now, policy.timezone)
        current = month_containing(now, policy.timezone)
        if chosen > current:
            raise ValueError(f"month: {chosen} has not started yet in {policy.timezone}")
        if chosen >= current.previous():
            try:
                results.append(daemon.accounting.month_result(policy, now, chosen))
                continue
            except HistoryNotLoaded:
                # sm32 (issue 20): a previous month whose snapshot did not decode when asked
                # for: read back by the daemon at its next flush, until then from the store
                # (complete, and computed by the same function).
                pass
        results.extend(
            await store_month_results(
                daemon.config, daemon.store, [policy], chosen, now, daemon.api_exclusions
            )
        )
    return results
