"""Metric families about the contract beside the month figures: which targets make up which
service, claims filed, and the support SLA (faults, deadlines, credits, notice violations).

Kept apart from ``monitor.metrics.collector`` (the per-probe and per-month families) so each
collector stays small. The support families go through the daemon's own registry; the target
info and the claims filed are written as text with the per-SLA families
(``monitor.metrics.sla_text``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.support.metrics import HELP as SUPPORT_HELP
from monitor.support.metrics import LABELS as SUPPORT_LABELS

if TYPE_CHECKING:
    from monitor.runtime.view import DaemonView

HELP_TARGET_INFO = "1 for each target of each service that an SLA measures (for grouping alerts)."
HELP_CLAIM_FILED = "1 once the claim for the previous month's credit has been recorded as filed."

CONTRACT_METRIC_NAMES: frozenset[str] = frozenset(
    {"slawatch_target_info", "slawatch_claim_filed", *SUPPORT_HELP}
)


class ContractCollector(Collector):
    """The support SLA's families (a few series per contract and fault).

    ``slawatch_target_info`` and ``slawatch_claim_filed`` (one series per target and per SLA)
    are written as cached text by ``monitor.metrics.sla_text`` with the other per-SLA families.
    """

    def __init__(self, daemon: DaemonView) -> None:
        self._daemon = daemon

    def collect(self) -> Iterable[Metric]:
        families = {
            name: GaugeMetricFamily(name, text, labels=list(SUPPORT_LABELS[name]))
            for name, text in SUPPORT_HELP.items()
        }
        for sample in self._daemon.support_samples():
            families[sample.name].add_metric(list(sample.labels), sample.value)
        yield from families.values()
