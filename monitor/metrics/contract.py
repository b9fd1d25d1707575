"""Metric families about the contract beside the month figures: which targets make up which
service, claims filed, and the support SLA (faults, deadlines, credits, notice violations).

Kept apart from ``monitor.metrics.collector`` (the per-probe and per-month families) so each
collector stays small; both are registered on the daemon's own registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.instants import utc_from_epoch
from monitor.sla.calendar import month_containing
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
    def __init__(self, daemon: DaemonView) -> None:
        self._daemon = daemon

    def collect(self) -> Iterable[Metric]:
        d = self._daemon
        info = GaugeMetricFamily(
            "slawatch_target_info", HELP_TARGET_INFO, labels=["target", "service", "kind"]
        )
        kinds = {t.name: t.kind for t in d.config.targets}
        for service in d.accounting.inputs.services.values():
            for target in service.all_targets:
                info.add_metric([target, service.name, kinds.get(target, "")], 1.0)
        yield info
        filed = GaugeMetricFamily(
            "slawatch_claim_filed", HELP_CLAIM_FILED, labels=["sla", "service"]
        )
        moment = utc_from_epoch(d.clock())
        for policy in d.accounting.inputs.policies:
            previous = month_containing(moment, policy.timezone).previous()
            claim = d.claims.get(f"{policy.name}|{previous}")
            filed.add_metric([policy.name, policy.service], 1.0 if claim else 0.0)
        yield filed
        families = {
            name: GaugeMetricFamily(name, text, labels=list(SUPPORT_LABELS[name]))
            for name, text in SUPPORT_HELP.items()
        }
        for sample in d.support_samples():
            families[sample.name].add_metric(list(sample.labels), sample.value)
        yield from families.values()
