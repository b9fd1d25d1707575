"""The support SLA's metric samples as plain data, for the daemon's collector to export.

Names and labels are the ones fixed in docs/architecture.md. Deadline series exist only for
open faults (no Solution yet), so a solved fault's series disappear instead of piling up;
the report keeps the full history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from monitor.support.contract import ContractSummary

HELP_FAULT_OPEN = "1 for each open support fault (no permanent Solution recorded yet)."
HELP_FAULT_DEADLINE = "Deadline of each response level of an open fault (epoch seconds)."
HELP_FAULT_BREACHED = "1 if the level was met late or is unmet past its deadline, else 0."
HELP_SUPPORT_CREDIT_RATIO = (
    "Support service credits accrued in the period as a fraction of the annual licence fee."
)
HELP_SUPPORT_CREDIT_AMOUNT = "Support service credits accrued in the period, in the currency."
HELP_NOTICE_VIOLATIONS = "Maintenance notice rules broken by the SLA's scheduled maintenance."

HELP: Mapping[str, str] = {
    "slawatch_fault_open": HELP_FAULT_OPEN,
    "slawatch_fault_deadline_timestamp_seconds": HELP_FAULT_DEADLINE,
    "slawatch_fault_deadline_breached": HELP_FAULT_BREACHED,
    "slawatch_support_credit_ratio": HELP_SUPPORT_CREDIT_RATIO,
    "slawatch_support_credit_amount": HELP_SUPPORT_CREDIT_AMOUNT,
    "slawatch_maintenance_notice_violations": HELP_NOTICE_VIOLATIONS,
}
"""Every gauge's name -> help text; all are gauges."""

LABELS: Mapping[str, tuple[str, ...]] = {
    "slawatch_fault_open": ("contract", "fault", "severity"),
    "slawatch_fault_deadline_timestamp_seconds": ("contract", "fault", "severity", "level"),
    "slawatch_fault_deadline_breached": ("contract", "fault", "severity", "level"),
    "slawatch_support_credit_ratio": ("contract", "period"),
    "slawatch_support_credit_amount": ("contract", "period", "currency"),
    "slawatch_maintenance_notice_violations": ("sla",),
}


@dataclass(frozen=True)
class Sample:
    """One gauge value; ``labels`` in the order of ``LABELS[name]``."""

    name: str
    labels: tuple[str, ...]
    value: float


def _ratio(percent: Decimal) -> float:
    # floats only here, at the metrics edge.
    return float(percent / Decimal(100))


def support_samples(
    summaries: Sequence[ContractSummary], notice_violations: Mapping[str, int] | None = None
) -> list[Sample]:
    """Samples for every contract summary and the per-SLA notice violation counts."""
    samples: list[Sample] = []
    for s in summaries:
        name = s.contract.name
        for item in s.faults:
            fault = item.fault
            if not item.open:
                continue
            base = (name, fault.id, fault.severity.value)
            samples.append(Sample("slawatch_fault_open", base, 1.0))
            for status in item.levels:
                labels = (*base, str(int(status.level)))
                samples.append(
                    Sample(
                        "slawatch_fault_deadline_timestamp_seconds",
                        labels,
                        status.deadline.timestamp(),
                    )
                )
                samples.append(
                    Sample("slawatch_fault_deadline_breached", labels, float(status.breached))
                )
        for period, total in (("month", s.month), ("year", s.year)):
            samples.append(
                Sample("slawatch_support_credit_ratio", (name, period), _ratio(total.percent))
            )
            samples.append(
                Sample(
                    "slawatch_support_credit_amount",
                    (name, period, s.contract.currency),
                    float(total.amount),
                )
            )
    for sla, count in sorted((notice_violations or {}).items()):
        samples.append(Sample("slawatch_maintenance_notice_violations", (sla,), float(count)))
    return samples
