"""The report's four formats: json, text, csv and claim. Pure: results in, text out."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from monitor.sla.calendar import zone
from monitor.sla.month import MonthResult, Outage

if TYPE_CHECKING:
    from monitor.sla.evidence import OutageEvidence, SlaEvidence

FORMATS = ("json", "text", "csv")
"""The SLA month formats; the claim pack and the fault table are composed above the engine
(:data:`monitor.reports.full.REPORT_FORMATS`)."""
"""``faults-csv``: the support faults as their own CSV table (``csv`` is the SLAs' table)."""

CSV_COLUMNS = (
    "sla",
    "service",
    "month",
    "timezone",
    "objective_percent",
    "buckets_total",
    "buckets_available",
    "buckets_unavailable",
    "buckets_excluded",
    "buckets_unknown",
    "buckets_pending",
    "uptime_percent",
    "uptime_ratio_exact",
    "uptime_percent_worst_case",
    "month_to_date_uptime_percent",
    "error_budget_buckets",
    "error_budget_used",
    "error_budget_remaining",
    "breached",
    "credit_percent",
    "credit_amount",
    "currency",
    "buckets_to_next_tier",
    "claim_deadline",
    "outages",
    "outage_buckets",
    # Coverage and the monitor's own errors (issues 11, 12): how much of the claim rests on
    # evidence; appended so that existing columns keep their positions.
    "buckets_eligible",
    "buckets_measured",
    "coverage",
    "min_coverage",
    "coverage_low",
    "uptime_percent_estimate",
    "credit_percent_estimate",
    "credit_amount_estimate",
    "buckets_unknown_monitor_error",
    "monitor_errors",
    "recurring_occurrences",
    # Issue 14: the locations that saw the outages of an SLA judged by locations (empty else).
    "outage_locations",
)


def render(results: Sequence[MonthResult], fmt: str, meta: Mapping[str, Any] | None = None) -> str:
    """``results`` in format ``fmt`` (one of :data:`FORMATS`); ``meta`` describes the input."""
    if fmt == "json":
        return render_json(results, meta)
    if fmt == "text":
        return render_text(results)
    if fmt == "csv":
        return render_csv(results)
    raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


def render_json(results: Sequence[MonthResult], meta: Mapping[str, Any] | None = None) -> str:
    document: dict[str, Any] = {"reports": [r.to_json() for r in results]}
    if meta:
        document["input"] = dict(meta)
    return json.dumps(document, indent=2) + "\n"


def render_csv(results: Sequence[MonthResult]) -> str:
    """One row per SLA, the JSON report's scalar figures (outages as a count)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for result in results:
        row = result.to_json()
        row["outages"] = len(result.outages)
        row["outage_buckets"] = sum(o.buckets for o in result.outages)
        row["monitor_errors"] = sum(result.monitor_errors.values())
        row["recurring_occurrences"] = len(result.recurring_occurrences)
        row["outage_locations"] = ";".join(
            dict.fromkeys(name for o in result.outages for name in o.locations)
        )
        writer.writerow({key: _csv_cell(row[key]) for key in CSV_COLUMNS})
    return out.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def percent(value: Fraction | None, places: int = 6) -> str:
    """An exact uptime shown with ``places`` decimals, or ``n/a`` when nothing was measured."""
    return "n/a" if value is None else f"{float(value):.{places}f}%"


def render_text(results: Sequence[MonthResult]) -> str:
    blocks = []
    for r in results:
        lines = [
            f"{r.sla} ({r.service}) {r.month} [{r.timezone}]"
            + ("" if r.complete else f", as of {_local(r.now, r.timezone)}"),
            f"  objective        {r.objective_percent}%",
            f"  uptime           {percent(r.uptime_percent)}  ({_ratio(r)} not proven unavailable; "
            "the claim)" + ("" if r.complete else "  if every remaining bucket is available"),
            f"  estimate         {percent(r.uptime_percent_estimate)}  "
            f"(unknown buckets: {r.rules.get('unknown_policy', 'exclude')}; credit "
            f"{r.credit_percent_estimate}% = {r.credit_amount_estimate} {r.currency}; "
            "not claimable)",
            f"  worst case       {percent(r.uptime_percent_worst_case)}  (unknown as unavailable)",
            f"  coverage         {coverage_words(r)}",
            f"  month to date    {percent(r.month_to_date_uptime_percent)}",
            f"  buckets          {r.buckets_total} total: {r.buckets_available} available, "
            f"{r.buckets_unavailable} unavailable, {r.buckets_excluded} excluded, "
            f"{r.buckets_unknown} unknown, {r.buckets_pending} pending",
            f"  error budget     {r.error_budget_buckets} buckets, used {r.error_budget_used}, "
            f"remaining {r.error_budget_remaining}" + ("  BREACHED" if r.breached else ""),
            f"  credit           {r.credit_percent}% = {r.credit_amount} {r.currency}"
            + (
                ""
                if r.buckets_to_next_tier is None
                else f" (next tier after {r.buckets_to_next_tier} more unavailable bucket(s))"
            ),
            f"  claim deadline   {_local(r.claim_deadline, r.timezone)}",
        ]
        if r.excluded_by_kind:
            kinds = ", ".join(f"{k}: {n}" for k, n in r.excluded_by_kind.items())
            lines.append(f"  excluded         {kinds}")
        lines.extend(_monitor_error_lines(r))
        lines.extend(_occurrence_lines(r))
        lines.append(f"  outages          {len(r.outages)}")
        lines.extend(f"    {_period(o, r.timezone)}  {_evidence(o)}" for o in r.outages)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def coverage_words(r: MonthResult) -> str:
    """``97.2% (8,681 of 8,928 eligible buckets measured)``, with a warning when low."""
    measured = r.buckets_available + r.buckets_unavailable
    if r.coverage is None:
        return "n/a (no eligible bucket has elapsed)"
    # Rounded down: 8,913 of 8,916 must not read as 100%.
    shown = math.floor(r.coverage * 10_000) / 100
    text = f"{shown:.2f}% ({measured} of {r.buckets_eligible} eligible buckets measured)"
    if r.coverage_low:
        text += (
            f"  WARNING: below {float(r.min_coverage) * 100:g}%: unmeasured time is not "
            "claimable, so the figures understate what may be owed"
        )
    return text


def _monitor_error_lines(r: MonthResult) -> list[str]:
    """The monitor's own failures: never vendor downtime, shown apart."""
    if not r.monitor_errors:
        return []
    reasons = ", ".join(f"{reason} x{count}" for reason, count in r.monitor_errors.items())
    return [
        f"  monitor errors   {reasons} (the monitor's own failures, not counted against the "
        f"vendor; {r.buckets_unknown_monitor_error} bucket(s) unknown for monitor error)"
    ]


def _occurrence_lines(r: MonthResult) -> list[str]:
    """Every concrete occurrence of a recurring exclusion in the month."""
    if not r.recurring_occurrences:
        return []
    lines = [f"  recurring        {len(r.recurring_occurrences)} occurrence(s)"]
    lines.extend(
        f"    {_local(w.start, r.timezone)} to {_local(w.end, r.timezone)}  {w.kind} ({w.source})"
        for w in r.recurring_occurrences
    )
    return lines


def _ratio(r: MonthResult) -> str:
    if r.denominator <= 0:
        return "no measured buckets"
    return f"{r.denominator - r.counted_unavailable}/{r.denominator} buckets"


def _local(moment: datetime | None, tz: str) -> str:
    if moment is None:
        return "n/a"
    return moment.astimezone(zone(tz)).strftime("%Y-%m-%d %H:%M %Z")


def period_words(seconds: int) -> str:
    """``300`` -> ``5-minute``; ``10`` -> ``10-second`` (short buckets are for demos/tests)."""
    if seconds % 60 == 0:
        return f"{seconds // 60}-minute"
    return f"{seconds}-second"


def _period(outage: Outage, tz: str) -> str:
    """``local start to local end (UTC times), buckets, minutes``; UTC only when it differs."""
    start = outage.start.astimezone(zone(tz))
    end = outage.end.astimezone(zone(tz))
    minutes = round((outage.end - outage.start).total_seconds() / 60, 2)
    text = f"{_span(start, end, '%Z')}"
    if start.utcoffset() or end.utcoffset():
        text += f" ({_span(outage.start.astimezone(UTC), outage.end.astimezone(UTC), 'UTC')})"
    return f"{text}, {outage.buckets} bucket(s), {minutes:g} min"


def _span(start: datetime, end: datetime, label: str) -> str:
    same_day = end.date() == start.date()
    end_format = "%H:%M" if same_day else "%Y-%m-%d %H:%M"
    begin = f"{start:%Y-%m-%d %H:%M} {start.strftime(label)}"
    return f"{begin} to {end.strftime(end_format)} {end.strftime(label)}"


def _evidence(outage: Outage) -> str:
    errors = ", ".join(f"{reason} x{count}" for reason, count in outage.errors.items())
    targets = ", ".join(f"{name} ({count} failed)" for name, count in outage.failed_targets.items())
    failed = sum(outage.failed_targets.values())
    excused = (
        f" ({outage.excused} more failed while every canary failed too: excused)"
        if outage.excused
        else ""
    )
    seen = f"; seen from: {', '.join(outage.locations)}" if outage.locations else ""
    return (
        f"{failed} of {outage.probes} probes failed{excused}; "
        f"errors: {errors or 'none recorded'}; targets: {targets or 'none recorded'}{seen}"
    )


_BUCKET_RULE_WORDS = {
    "any_failed": "any probe of a target failed in it",
    "all_failed": "every probe of a target failed in it",
    "failed_fraction": "at least {fraction} of a target's probes failed in it",
}


def method_sentence(r: MonthResult) -> str:
    """How a period was judged unavailable, in words, from the rules the result applied."""
    return _method(r) + _locations_words(r.rules)


def _locations_words(rules: Mapping[str, Any]) -> str:
    """Issue 14: the location vote, when the SLA sets one."""
    located = rules.get("locations")
    if not isinstance(located, dict):
        return ""
    names = ", ".join(str(n) for n in located["of"])
    return (
        f" A target counts as failing in a period only when at least {located['quorum']} of "
        f"the {len(located['of'])} monitoring locations ({names}) saw it fail there; a "
        "location that measured too little, or whose own network was down, is not counted "
        "as seeing it available."
    )


def _method(r: MonthResult) -> str:
    rules = r.rules
    fraction = rules.get("failed_fraction")
    rule = _BUCKET_RULE_WORDS.get(str(rules["bucket_rule"]), str(rules["bucket_rule"]))
    targets = list(rules["service_targets"])
    members = rules.get("service_members")
    if isinstance(members, dict) and members.get("services"):
        # Nested services (issue 12): say the whole rule, each level with its own quorum.
        return (
            f"A {period_words(r.bucket_seconds)} period counts as Unavailable Time when "
            f"{rule.format(fraction=fraction)} (with at least {rules['min_probes']} probe(s) "
            f"per target) for {members_words(members)}."
        )
    return (
        f"A {period_words(r.bucket_seconds)} period counts as Unavailable Time when "
        f"{rule.format(fraction=fraction)} (with at least {rules['min_probes']} probe(s) per "
        f"target) for at least {rules['quorum']} of the {len(targets)} monitored target(s) "
        f"({', '.join(targets)})."
    )


_UNKNOWN_TREATMENT = {
    "exclude": "left out of the calculation, as neither proven available nor unavailable",
    "unavailable": "counted as Unavailable Time",
    "available": "counted as available",
}


def members_words(members: Mapping[str, Any]) -> str:
    """``at least 1 of: ivr-call, service sbc-pair (at least 2 of: sbc-a, sbc-b)``."""
    parts = [str(t) for t in members.get("targets", [])]
    parts.extend(
        f"service {child['service']} ({members_words(child)})"
        for child in members.get("services", [])
    )
    return f"at least {members['quorum']} of: {', '.join(parts)}"


def _unknown_lines(r: MonthResult) -> list[str]:
    """Coverage, and what the unmeasured periods are taken as (never Unavailable Time)."""
    lines = [f"Monitoring coverage: {coverage_words(r)}."]
    if r.buckets_unknown:
        lines.append(
            f"{r.buckets_unknown} period(s) without enough monitoring evidence are not claimed "
            "as Unavailable Time (counted as available); counting them all as Unavailable "
            f"Time would give {percent(r.uptime_percent_worst_case, 4)}."
        )
    if r.monitor_errors:
        lines.append(
            f"{sum(r.monitor_errors.values())} probe(s) failed on the monitor's own side and "
            "are not counted against the vendor."
        )
    return lines


def _excluded_lines(r: MonthResult) -> list[str]:
    lines = []
    for window in r.exclusions_applied:
        start = max(window.start, r.start)
        end = min(window.end, r.end)
        reason = f", {window.reason}" if window.reason else ""
        lines.append(
            f"  - {_local(start, r.timezone)} to {_local(end, r.timezone)}: {window.kind}"
            f" ({window.id}{reason})"
        )
    return lines


# --- The claim pack's availability section (issue 12; monitor.claim_pack assembles it) ------


def _instant(moment: datetime, tz: str) -> str:
    """``2026-11-14 13:54:02 GMT (13:54:02 UTC)``: local and UTC, to the second."""
    local = moment.astimezone(zone(tz))
    utc = moment.astimezone(UTC)
    same_day = utc.date() == local.date()
    return (
        f"{local:%Y-%m-%d %H:%M:%S} {local.strftime('%Z')} "
        f"({utc.strftime('%H:%M:%S' if same_day else '%Y-%m-%d %H:%M:%S')} UTC)"
    )


def outage_claim_lines(
    number: int, outage: Outage, tz: str, evidence: OutageEvidence | None
) -> list[str]:
    """One outage of a claim: its bucket bounds, and the first and last failed probe seen in
    it (from the exported evidence), so a short failure is not read as the whole bucket."""
    lines = [f"  {number}. {_period(outage, tz)}"]
    if evidence is None:
        return lines
    first, last = evidence.first_failure, evidence.last_failure
    if first is None or last is None:
        lines.append("     no individual failed probe kept for this period (see the counts)")
    else:
        lines.append(f"     first failure {_instant(first, tz)}, last failure {_instant(last, tz)}")
    return lines


def availability_claim_body(
    r: MonthResult, evidence: SlaEvidence | None, export_hint: str = ""
) -> list[str]:
    """The availability section of a claim document (no Subject: the document has one)."""
    month_name = datetime(r.month.year, r.month.month, 1).strftime("%B %Y")
    by_number = {o.number: o for o in evidence.outages} if evidence is not None else {}
    periods = [
        line
        for n, o in enumerate(r.outages, start=1)
        for line in outage_claim_lines(n, o, r.timezone, by_number.get(n))
    ]
    counts = [f"  {n}. {_evidence(o)}" for n, o in enumerate(r.outages, start=1)]
    excluded = (
        "; ".join(f"{k}: {n} bucket(s)" for k, n in r.excluded_by_kind.items())
        if r.excluded_by_kind
        else "none"
    )
    lines = [
        f"Service Credit claim for {month_name} ({r.service}, SLA {r.sla}).",
        "",
        f"The Monthly Uptime Percentage for {month_name} was {percent(r.uptime_percent, 4)}, "
        f"below the committed {r.objective_percent}%.",
        f"It counts the continuous {period_words(r.bucket_seconds)} periods of the calendar month "
        f"({r.timezone}): {r.buckets_total} in total, {r.buckets_excluded} under Exclusions "
        f"({excluded}), {r.buckets_unavailable} in Unavailable Time "
        f"({_ratio(r)} available).",
        *_unknown_lines(r),
        "",
        "Dates and times of the Unavailable Time (period bounds; first and last failed probe):",
        *(periods or ["  (none)"]),
        "",
        f"Credit requested: {r.credit_percent}% of the month's fees, "
        f"{r.credit_amount} {r.currency}.",
        "",
        "Evidence (failed probes of each period, by reason and by probe target):",
        *(counts or ["  (none)"]),
        method_sentence(r),
        "Exclusions applied (not claimed):",
        *(_excluded_lines(r) or ["  (none)"]),
        *_evidence_file_lines(evidence, export_hint),
        "This claim is made within the claim window, which ends "
        f"{_local(r.claim_deadline, r.timezone)}.",
    ]
    if not r.complete:
        lines.insert(
            0,
            f"NOTE: {r.month} has not ended (as of {_local(r.now, r.timezone)}); "
            "figures are provisional.",
        )
    return lines


def _evidence_file_lines(evidence: SlaEvidence | None, export_hint: str) -> list[str]:
    if evidence is None:
        return [
            "Per-probe records: export them with `slawatch evidence export` for this month "
            "and SLA (CSV and JSON Lines, with SHA-256 digests)."
        ]
    records = sum(len(o.records) for o in evidence.outages)
    failed = sum(len(o.failures) for o in evidence.outages)
    what = (
        "every probe result (successful and failed)"
        if evidence.complete
        else "every failed probe run kept (successful probes are stored as per-period counts)"
    )
    lines = [
        f"Per-probe records: {what} of the service's targets in these periods, {records} "
        f"record(s), {failed} failed, from {evidence.source}"
        + (f", exported with `{export_hint}`" if export_hint else "")
        + ". SHA-256 of the exported files:"
    ]
    lines += [f"  {digest}  {name}" for name, digest in sorted(evidence.digests().items())]
    return lines
