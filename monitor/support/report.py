"""The report's support section in every format (json, text, csv, claim). Pure: summaries in,
data or text out. Times are shown in the contract's Support Hours zone (UTC in JSON)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from monitor.support.contract import ContractSummary, FaultSummary
from monitor.support.faults import Level
from monitor.support.notice import Violation

LEVEL_NAMES: Mapping[Level, str] = {
    Level.ACKNOWLEDGE: "acknowledgement",
    Level.RESTORE: "restoration",
    Level.SOLVE: "solution",
}

CSV_COLUMNS = (
    "contract",
    "fault",
    "title",
    "severity",
    "received_at",
    "level",
    "deadline",
    "met_at",
    "breached",
    "lateness_seconds",
    "credit_days",
    "credit_percent",
    "credit_amount",
    "month",
    "month_credit_days",
    "month_credit_percent",
    "month_credit_amount",
    "currency",
)

BUSINESS_DAY_SENTENCE = (
    "Deadlines run on the support-hours clock: {hours}. A Business Day counts as {day} of "
    "support time. Credits run, per 24-hour period or part of one, from the deadline by which "
    "a Solution was due ({levels})."
)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _local(moment: datetime | None, summary: ContractSummary) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(summary.contract.hours.zone).strftime("%Y-%m-%d %H:%M %Z")


def _span(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{mins}m" if mins else ""]
    return "".join(parts) or "0m"


def fault_json(item: FaultSummary) -> dict[str, Any]:
    """One fault: history, deadlines per level, late days and credit."""
    fault = item.fault
    return {
        "id": fault.id,
        "title": fault.title,
        "severity": fault.severity.value,
        "severity_history": [
            {"from": _iso(at), "severity": sev.value} for at, sev in fault.severity_history()
        ],
        "received_at": _iso(fault.received_at),
        "open": item.open,
        "alert_key": fault.alert_key,
        "levels": [
            {
                "level": int(s.level),
                "name": LEVEL_NAMES[s.level],
                "deadline": _iso(s.deadline),
                "met_at": _iso(s.met_at),
                "breached": s.breached,
                "lateness_seconds": s.lateness.total_seconds(),
            }
            for s in item.levels
        ],
        "solution_due": _iso(item.solution_due),
        "late_days": [
            {
                "day": d.number,
                "start": _iso(d.start),
                "severity": d.severity.value,
                "percent": str(d.percent),
            }
            for d in item.late_days
        ],
        "credit_percent": str(item.credit_percent),
        "credit_amount": str(item.credit_amount),
        "in_month": item.in_month,
        "month_late_days": [d.number for d in item.month_late_days],
        "month_credit_percent": str(item.month_credit_percent),
        "month_credit_amount": str(item.month_credit_amount),
        "events": [
            {
                "kind": e.kind.value,
                "at": _iso(e.at),
                "source": e.source,
                "note": e.note,
                "severity": None if e.severity is None else e.severity.value,
            }
            for e in fault.events
        ],
    }


def contract_json(summary: ContractSummary) -> dict[str, Any]:
    """One contract's section of the JSON report (Decimals as strings, never floats)."""
    contract = summary.contract
    return {
        "contract": contract.name,
        "currency": contract.currency,
        "annual_fee": str(contract.annual_fee),
        "timezone": contract.hours.timezone,
        "as_of": _iso(summary.now),
        "business_day_seconds": contract.hours.business_day.total_seconds(),
        "month": summary.month_label,
        "year": summary.year_label,
        "credit_month_percent": str(summary.month.percent),
        "credit_month_amount": str(summary.month.amount),
        "credit_year_percent": str(summary.year.percent),
        "credit_year_amount": str(summary.year.amount),
        "faults": [fault_json(f) for f in summary.faults],
    }


def violation_json(sla: str, violation: Violation) -> dict[str, Any]:
    return {
        "sla": sla,
        "window": violation.window_id,
        "rule": violation.kind.value,
        "rejected": violation.rejected,
        "message": violation.message,
    }


def support_json(
    summaries: Sequence[ContractSummary],
    notices: Mapping[str, Sequence[Violation]] | None = None,
) -> dict[str, Any]:
    """The ``support`` object of the JSON report; ``notices`` maps SLA name -> violations."""
    return {
        "contracts": [contract_json(s) for s in summaries],
        "maintenance_notice_violations": [
            violation_json(sla, v) for sla, found in (notices or {}).items() for v in found
        ],
    }


def _method(summary: ContractSummary) -> str:
    contract = summary.contract
    hours = contract.hours
    days = ", ".join(
        f"{name[:3].capitalize()} {' '.join(str(i) for i in intervals)}"
        for name, intervals in zip(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
            hours.week,
            strict=True,
        )
        if intervals
    )
    place = (
        "no public holidays"
        if hours.holiday_country is None
        else f"closed on {hours.holiday_country}"
        + (f"-{hours.holiday_subdivision}" if hours.holiday_subdivision else "")
        + " public holidays"
    )
    levels = "; ".join(
        f"{severity.value}: Level {int(rule.solution_level)}"
        for severity, rule in contract.deadlines.items()
    )
    return BUSINESS_DAY_SENTENCE.format(
        hours=f"{days} ({hours.timezone}), {place}",
        day=_span(hours.business_day),
        levels=levels,
    )


def support_text(
    summaries: Sequence[ContractSummary],
    notices: Mapping[str, Sequence[Violation]] | None = None,
) -> str:
    """The human-readable section: per contract, its faults, deadlines and credits."""
    blocks = []
    for s in summaries:
        c = s.contract
        # Only the faults open during the month or with late days in it: a fault solved in
        # an earlier month belongs to that month's report.
        shown = [f for f in s.faults if f.in_month]
        lines = [
            f"support contract {c.name} [{c.hours.timezone}], as of {_local(s.now, s)}",
            f"  credit {s.month_label}   {s.month.percent}% of the annual fee = "
            f"{s.month.amount} {c.currency} ({s.month.days} late day(s))",
            f"  credit {s.year_label}      {s.year.percent}% = {s.year.amount} {c.currency} "
            f"({s.year.days} late day(s))",
            f"  faults           {len(shown)} relevant to {s.month_label} "
            f"({sum(f.open for f in shown)} open now)",
        ]
        for item in shown:
            f = item.fault
            lines.append(
                f"    {f.id} {f.severity.value} received {_local(f.received_at, s)}: {f.title}"
            )
            for status in item.levels:
                state = f"met {_local(status.met_at, s)}" if status.met_at is not None else "open"
                late = f", LATE by {_span(status.lateness)}" if status.breached else ""
                lines.append(
                    f"      L{int(status.level)} {LEVEL_NAMES[status.level]:<15} due "
                    f"{_local(status.deadline, s)}, {state}{late}"
                )
            if item.late_days:
                lines.append(
                    f"      credit {item.credit_percent}% = {item.credit_amount} {c.currency} "
                    f"for {len(item.late_days)} late day(s) from {_local(item.solution_due, s)}"
                    f"; in {s.month_label}: {item.month_credit_percent}% = "
                    f"{item.month_credit_amount} {c.currency} "
                    f"({len(item.month_late_days)} day(s))"
                )
        lines.append("  " + _method(s))
        blocks.append("\n".join(lines))
    for sla, found in (notices or {}).items():
        for v in found:
            action = "not honoured" if v.rejected else "honoured, flagged"
            blocks.append(f"maintenance notice ({sla}, {action}): {v.message}")
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def support_csv(summaries: Sequence[ContractSummary]) -> str:
    """One row per fault and level (the fault's credit repeated on each of its rows)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for s in summaries:
        for item in s.faults:
            for status in item.levels:
                writer.writerow(
                    {
                        "contract": s.contract.name,
                        "fault": item.fault.id,
                        "title": item.fault.title,
                        "severity": item.fault.severity.value,
                        "received_at": _iso(item.fault.received_at),
                        "level": int(status.level),
                        "deadline": _iso(status.deadline),
                        "met_at": _iso(status.met_at) or "",
                        "breached": "true" if status.breached else "false",
                        "lateness_seconds": f"{status.lateness.total_seconds():g}",
                        "credit_days": len(item.late_days),
                        "credit_percent": item.credit_percent,
                        "credit_amount": item.credit_amount,
                        "month": s.month_label,
                        "month_credit_days": len(item.month_late_days),
                        "month_credit_percent": item.month_credit_percent,
                        "month_credit_amount": item.month_credit_amount,
                        "currency": s.contract.currency,
                    }
                )
    return out.getvalue()


SUPPORT_CLAIM_SUBJECT = "Service Credit claim (Schedule 1, clause 5.1)"


def _month_name(label: str) -> str:
    year, month = (int(part) for part in label.split("-"))
    return datetime(year, month, 1).strftime("%B %Y")


def support_claim_body(s: ContractSummary) -> list[str] | None:
    """The body (no Subject line) of one contract's claim for its summary's month, or
    ``None`` when no late day began in that month.

    Only the late days that began in the month are claimed (in the Support Hours zone): a
    fault late across a month end is claimed partly in each month, never twice.
    """
    late = [f for f in s.faults if f.month_credit_percent > 0]
    if not late:
        return None
    c = s.contract
    lines = [
        f"Contract {c.name}: Service Credits for Operational Faults whose Solution was not "
        f"provided within the Service Level response time, for the late days that began in "
        f"{_month_name(s.month_label)} ({c.hours.timezone}), as of {_local(s.now, s)}.",
        "",
    ]
    for n, item in enumerate(late, start=1):
        f = item.fault
        solved = f.met_at(c.deadlines[f.severity].solution_level)
        days = item.month_late_days
        lines += [
            f'  {n}. {f.id} "{f.title}" ({f.severity.value}), Support Request received '
            f"{_local(f.received_at, s)}.",
            f"     Solution due {_local(item.solution_due, s)}; "
            + (f"provided {_local(solved, s)}." if solved else "not yet provided."),
            f"     {len(days)} day(s) or part-day(s) late in {s.month_label} (late days "
            f"{days[0].number}-{days[-1].number} of {len(item.late_days)}): "
            + ", ".join(f"{d.percent}% from {_local(d.start, s)}" for d in days),
            f"     Credit: {item.month_credit_percent}% of the annual Licence fee = "
            f"{item.month_credit_amount} {c.currency}.",
        ]
        others = len(item.late_days) - len(days)
        if others:
            lines.append(
                f"     The other {others} late day(s) of this fault began in other months and "
                "are claimed in those months' claims."
            )
        changes = f.severity_history()[1:]
        if changes:
            lines.append(
                "     Severity reassessed: "
                + ", ".join(f"{sev.value} from {_local(at, s)}" for at, sev in changes)
                + "."
            )
    lines += [
        "",
        f"Total support credit requested for {s.month_label}: {s.month.percent}% of the annual "
        f"Licence fee = {s.month.amount} {c.currency} (annual Licence fee {c.annual_fee} "
        f"{c.currency}).",
        _method(s),
    ]
    return lines


def support_claim(summaries: Sequence[ContractSummary]) -> str:
    """A Service Credit claim per contract with late days in the month (clause 5.1), each
    with one Subject line."""
    claims = []
    for s in summaries:
        body = support_claim_body(s)
        if body is not None:
            claims.append("\n".join([f"Subject: {SUPPORT_CLAIM_SUBJECT}", "", *body]))
    if not claims:
        names = ", ".join(s.contract.name for s in summaries) or "no contracts"
        months = ", ".join(sorted({s.month_label for s in summaries}))
        return (
            f"No support Service Credit is due ({names}): no Solution was late in "
            f"{months or 'the month'}.\n"
        )
    return "\n\n----------------------------------------\n\n".join(claims) + "\n"


FORMATS = ("json", "text", "csv", "claim")


def render_support(
    summaries: Sequence[ContractSummary],
    fmt: str,
    notices: Mapping[str, Sequence[Violation]] | None = None,
) -> dict[str, Any] | str:
    """The support section in ``fmt``: a dict for ``json`` (the report's ``support`` key),
    text for the others."""
    if fmt == "json":
        return support_json(summaries, notices)
    if fmt == "text":
        return support_text(summaries, notices)
    if fmt == "csv":
        return support_csv(summaries)
    if fmt == "claim":
        return support_claim(summaries)
    raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
