"""The running daemon as a :class:`~monitor.web.view.WebSource`.

Months come from :func:`monitor.http.reports.daemon_month_results` (what ``/api/v1/report``
and ``/metrics`` show), support summaries from :func:`monitor.reports.full.support_parts`, claim
drafts from :func:`monitor.http.reports.compose_report` (as ``/api/v1/report``): the pages
add no computation of their own. It sees the daemon through :class:`DaemonView` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monitor.http.reports import compose_report, daemon_month_results
from monitor.reports.full import support_parts
from monitor.sla.calendar import Month, month_containing
from monitor.sla.month import MonthResult
from monitor.sla.policy import SlaPolicy
from monitor.support.contract import ContractSummary
from monitor.web.recent import RecentResults
from monitor.web.view import FailureRecord, TargetView

if TYPE_CHECKING:
    from monitor.runtime.view import DaemonView

FAILURES_SHOWN = 200


class DaemonWebSource:
    """Reads the daemon's accounting, store and live state for the pages."""

    def __init__(self, daemon: DaemonView, recent: RecentResults | None = None) -> None:
        self.daemon = daemon
        self.recent = recent

    @property
    def vantage(self) -> str:
        return self.daemon.config.monitor.name

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.daemon.clock(), UTC)

    def policies(self) -> Sequence[SlaPolicy]:
        return self.daemon.accounting.inputs.policies

    async def month_results(self, month: Month | None, sla: str | None = None) -> list[MonthResult]:
        chosen = [p for p in self.policies() if sla is None or p.name == sla]
        return await daemon_month_results(
            self.daemon, chosen, None if month is None else str(month), self.now()
        )

    async def support_summaries(self, month: Month | None) -> list[ContractSummary]:
        daemon = self.daemon
        support = daemon.config.support
        if support is None or not support.contracts:
            return []
        now = self.now()
        zone = next(iter(support.support_contracts().values())).hours.timezone
        summaries, _ = await support_parts(
            daemon.config,
            daemon.store,
            month or month_containing(now, zone),
            now,
            daemon.api_exclusions,
        )
        return summaries

    async def claim_draft(self, result: MonthResult) -> str:
        return await compose_report(self.daemon, [result], result.month, "claim", self.now())

    def target_names(self) -> Sequence[str]:
        return [t.name for t in self.daemon.config.targets]

    async def target_view(self, name: str) -> TargetView | None:
        daemon = self.daemon
        target = next((t for t in daemon.config.targets if t.name == name), None)
        if target is None:
            return None
        now = self.daemon.clock()
        status = daemon.state.targets.get(name)
        rows = await daemon.store.load_evidence(
            now - 86400, now + 1, target=name, limit=FAILURES_SHOWN
        )
        services = tuple(
            s.name for s in daemon.accounting.inputs.services.values() if name in s.targets
        )
        recent = self.recent
        return TargetView(
            name=name,
            kind=target.kind,
            role=target.role,
            interval_seconds=float(target.interval),
            services=services,
            last=None if status is None else status.last,
            outcomes={} if status is None else {str(k): v for k, v in status.outcomes.items()},
            slots=() if recent is None else recent.slots(name, now),
            slot_seconds=1800 if recent is None else recent.slot_seconds,
            failures=tuple(
                FailureRecord(
                    at=datetime.fromtimestamp(r.ts, UTC),
                    outcome=str(r.outcome),
                    reason=r.reason,
                    duration=r.duration,
                    details=dict(r.details),
                )
                for r in sorted(rows, key=lambda r: r.ts, reverse=True)
            ),
        )
