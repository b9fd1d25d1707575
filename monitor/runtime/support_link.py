"""Where the support SLA meets the running daemon: the support figures the metrics show, and
the log line for each broken maintenance notice rule.

The notice rules are applied to the month's windows in ``monitor.accounting`` (the one month
assembly); this module only logs what it found and reads the faults in the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from monitor.config import Config
from monitor.store.base import Store
from monitor.support.metrics import Sample, support_samples
from monitor.support.notice import Violation
from monitor.support.service import load_summaries, log_notice_violations


class SupportFigures:
    """The latest support samples for /metrics, refreshed from the store by the daemon.

    A scrape must not wait on the store, so the daemon refreshes these every few seconds and
    the collector reads the last ones; a violation is logged once per window, not per refresh.
    """

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self._logged: set[tuple[str, str, str]] = set()

    async def refresh(
        self,
        config: Config,
        store: Store,
        now: datetime,
        broken: Mapping[str, Sequence[Violation]],
    ) -> None:
        """``broken``: SLA name -> the notice rules broken this month
        (:func:`monitor.accounting.month_violations`)."""
        for sla, items in broken.items():
            fresh = [v for v in items if (sla, v.window_id, v.kind.value) not in self._logged]
            log_notice_violations(sla, fresh)
            self._logged.update((sla, v.window_id, v.kind.value) for v in fresh)
        summaries = []
        if config.support is not None and config.support.contracts:
            summaries = await load_summaries(store, config.support.support_contracts(), now)
        self.samples = support_samples(
            summaries, {sla: len(items) for sla, items in broken.items()}
        )
