"""The whole report: the availability months and, when the configuration has them, the support
SLA (faults, deadlines, credits) and broken maintenance notice rules, in one document.

Used by `slawatch report` and by the daemon's `/api/v1/report`, so both print the same thing.
Faults live only in the store; a report from a results file reads them from the daemon's
database when it exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.accounting import inputs_from_config, month_violations
from monitor.config import Config
from monitor.reports.claim_pack import SEPARATE_FORMATS, ClaimContext, render_separate
from monitor.sla.calendar import Month
from monitor.sla.month import MonthResult
from monitor.sla.policy import ExclusionWindow
from monitor.sla.render import FORMATS, render
from monitor.store.base import Store
from monitor.support.contract import ContractSummary, summarize_all
from monitor.support.notice import Violation
from monitor.support.report import render_support
from monitor.support.service import load_summaries


def has_support(config: Config) -> bool:
    return bool(config.support and config.support.contracts) or any(
        sla.maintenance_notice is not None for sla in config.slas
    )


async def support_parts(
    config: Config,
    store: Store | None,
    month: Month,
    now: datetime,
    api_exclusions: Sequence[ExclusionWindow] = (),
) -> tuple[list[ContractSummary], dict[str, list[Violation]]]:
    """The support summaries for ``month`` (faults from ``store``; none without one) and the
    notice rules broken by the month's scheduled maintenance, per SLA."""
    summaries: list[ContractSummary] = []
    if config.support is not None and config.support.contracts:
        contracts = config.support.support_contracts()
        if store is None:
            summaries = summarize_all(contracts, [], now, month=month)
        else:
            summaries = await load_summaries(store, contracts, now, month=month)
    inputs = inputs_from_config(config, api_windows=api_exclusions)
    return summaries, month_violations(inputs, lambda _: month)


REPORT_FORMATS = (*FORMATS, "claim", "faults-csv")
"""Every format of `slawatch report` and ``/api/v1/report``."""


def compose(
    reports: Sequence[MonthResult],
    fmt: str,
    meta: Mapping[str, Any] | None,
    support: tuple[list[ContractSummary], Mapping[str, Sequence[Violation]]] | None,
    claim: ClaimContext | None = None,
) -> str:
    """The report text in ``fmt``; ``support`` ``None`` leaves the support section out."""
    if fmt in SEPARATE_FORMATS:  # issue 12: one claim pack; one table per CSV
        return render_separate(reports, fmt, None if support is None else support[0], claim)
    if support is None:
        return render(reports, fmt, meta)
    summaries, notices = support
    section = render_support(summaries, fmt, notices)
    if fmt == "json":
        document = json.loads(render(reports, "json", meta))
        document["support"] = section
        return json.dumps(document, indent=2) + "\n"
    assert isinstance(section, str)
    return render(reports, fmt, meta).rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
