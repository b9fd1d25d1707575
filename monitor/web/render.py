"""HTML for every page: pure functions, results in, one self-contained document out.

Pages carry their CSS, SVG and (optional) script inline and make no request of their own, so
the SLA month page written by ``slawatch report --format html`` can be attached to an e-mail
and reads the same offline. Templates are Jinja2 with autoescaping; the heat-map's thousands
of cells are joined here in Python (a template loop over 8,928 cells costs several times more).
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from html import escape
from typing import Any

import jinja2
from markupsafe import Markup

from monitor.sla.calendar import Month, zone
from monitor.sla.month import MonthResult
from monitor.sla.policy import BucketState, ExclusionKind, SlaPolicy
from monitor.sla.render import method_sentence
from monitor.support.calendar import open_intervals
from monitor.support.contract import ContractSummary, FaultSummary
from monitor.support.report import LEVEL_NAMES
from monitor.web.view import (
    KIND_CLASS,
    STATE_CLASS,
    STATE_WORDS,
    DayRow,
    Heatmap,
    TargetView,
    build_heatmap,
    kind_words,
    months_before,
    tier_words,
)

CELL_WIDTH = 3
MAX_OUTAGE_ROWS = 300
"""A pathological month (state flipping every bucket) has thousands of outages; the table
shows the first ones, the heat-map's tooltips and the JSON report have them all."""
ROW_HEIGHT = 14
LABEL_HOURS = 3


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        pct=pct, local=local_time, utc=utc_time, money=money, span=span_words, kind=kind_words
    )
    return env


# -- formatting -----------------------------------------------------------------------------


def pct(value: Fraction | Decimal | float | None, places: int = 6) -> str:
    """An exact uptime with ``places`` decimals (as the text report prints it), or ``n/a``."""
    return "n/a" if value is None else f"{float(value):.{places}f}%"


def local_time(moment: datetime | None, tz: str, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    return "–" if moment is None else moment.astimezone(zone(tz)).strftime(fmt)


def utc_time(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    return "–" if moment is None else moment.astimezone(UTC).strftime(fmt)


def _clock(epoch: float, fmt: str = "%H:%M UTC") -> str:
    return utc_time(datetime.fromtimestamp(epoch, UTC), fmt)


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:,} {currency}"


def span_words(value: timedelta | float) -> str:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{mins} min" if mins else "",
    ]
    text = " ".join(p for p in parts if p)
    return text or f"{seconds:g} s"


# -- the heat-map -------------------------------------------------------------------------------


def heatmap_rows(heat: Heatmap) -> list[dict[str, Any]]:
    """Each day's label, note and SVG (one ``<rect data-t=UTC-epoch>`` per cell, grouped by run
    under a ``<g>`` whose ``<title>`` is the run's tooltip)."""
    rows = []
    for row in heat.rows:
        rows.append(
            {
                "day": row.day,
                "label": f"{row.day:%a %d %b}",
                "note": _day_note(row),
                "cells": row.cells,
                "svg": Markup(_row_svg(row)),
                "counts": row.counts,
            }
        )
    return rows


def _day_note(row: DayRow) -> str:
    if row.hours < 24:
        return f"{row.hours:g} h (clocks go forward)"
    if row.hours > 24:
        return f"{row.hours:g} h (clocks go back)"
    return ""


def _row_svg(row: DayRow) -> str:
    summary = ", ".join(
        f"{row.counts[s]} {STATE_WORDS[s].split(' ')[0]}" for s in BucketState if row.counts.get(s)
    )
    parts = [
        f'<svg class="hm" width="{row.cells * CELL_WIDTH}" height="{ROW_HEIGHT}" role="img" '
        f'aria-label="{escape(f"{row.day:%A %d %B}: {summary}")}" data-day="{row.day}" '
        f'data-cells="{row.cells}">'
    ]
    for run in row.runs:
        extra = "" if run.outage is None else f' data-outage="{run.outage + 1}"'
        parts.append(
            f'<g class="{run.css}" data-state="{run.state.value}"{extra}>'
            f"<title>{escape(run.title)}</title>"
        )
        x = run.first * CELL_WIDTH
        for epoch in run.starts:
            parts.append(f'<rect x="{x}" data-t="{epoch}"/>')
            x += CELL_WIDTH
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def hour_axis(heat: Heatmap) -> Markup:
    """Hour labels above the rows (positions of a 24-hour day)."""
    per_hour = 3600 // heat.cell_seconds * CELL_WIDTH
    width = 25 * per_hour
    labels = "".join(
        f'<text x="{h * per_hour}" y="11">{h:02d}</text>' for h in range(0, 25, LABEL_HOURS)
    )
    return Markup(
        f'<svg class="axis" width="{width}" height="14" aria-hidden="true">{labels}</svg>'
    )


# -- legend ---------------------------------------------------------------------------------------


def legend(kinds: Sequence[ExclusionKind]) -> list[tuple[str, str]]:
    """(css class, words) for each state, and each exclusion kind present."""
    items = [
        (STATE_CLASS[BucketState.AVAILABLE], "available"),
        (STATE_CLASS[BucketState.UNAVAILABLE], "unavailable (outage)"),
    ]
    seen = set()
    for kind in kinds:
        css = KIND_CLASS[kind]
        if css not in seen:
            seen.add(css)
            same = [kind_words(k) for k in kinds if KIND_CLASS[k] == css]
            items.append((css, "excluded: " + ", ".join(same)))
    items.append((STATE_CLASS[BucketState.UNKNOWN], "unknown (not measured)"))
    items.append((STATE_CLASS[BucketState.PENDING], "pending (not yet elapsed)"))
    return items


# -- pages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nav:
    """Links around a month page; ``None`` fields are left out (a standalone file has none)."""

    previous: str | None = None
    next: str | None = None
    overview: str | None = None
    claim: str | None = None
    """Where the claim draft downloads from; ``None`` puts it in a ``data:`` link instead."""


def tier_rows(result: MonthResult, policy: SlaPolicy | None) -> list[dict[str, Any]]:
    """The credit table with the band the month's uptime falls in marked."""
    if policy is None:
        return []
    rows = []
    current = result.credit_tier
    for tier in sorted(policy.credit.tiers, key=lambda t: t.credit_percent):
        amount = min(
            policy.credit.monthly_fee * tier.credit_percent / 100, policy.credit.effective_cap
        )
        rows.append(
            {
                "band": tier_words(
                    tier.lower, tier.upper, tier.lower_inclusive, tier.upper_inclusive
                ),
                "credit_percent": tier.credit_percent,
                "amount": money(amount.quantize(Decimal("0.01")), policy.credit.currency),
                "current": tier == current,
            }
        )
    return rows


def claim_href(text: str) -> str:
    """A ``data:`` link holding the claim text: the download works offline, in a saved file."""
    return "data:text/plain;charset=utf-8," + urllib.parse.quote(text, safe="")


def sla_page(
    result: MonthResult,
    policy: SlaPolicy | None,
    claim_text: str,
    nav: Nav | None = None,
    pid: str = "",
) -> dict[str, Any]:
    """One SLA month's part of the page (``pid`` prefixes its element ids)."""
    heat = build_heatmap(result)
    tz = result.timezone
    outages = [
        {
            "number": i + 1,
            "start_local": local_time(o.start, tz),
            "end_local": local_time(o.end, tz),
            "start_utc": utc_time(o.start),
            "end_utc": utc_time(o.end),
            "start_epoch": int(o.start.timestamp()),
            "buckets": o.buckets,
            "duration": span_words(o.end - o.start),
            "errors": list(o.errors.items()),
            "targets": list(o.failed_targets.items()),
            "probes": o.probes,
            "failed": sum(o.failed_targets.values()),
            "locations": list(o.locations),  # issue 14: the locations that saw it
        }
        for i, o in enumerate(result.outages[:MAX_OUTAGE_ROWS])
    ]
    nav = nav or Nav()
    return {
        "r": result,
        "nav": nav,
        "outages_total": len(result.outages),
        "pid": pid,
        "heat": heat,
        "rows": heatmap_rows(heat),
        "axis": hour_axis(heat),
        "legend": legend(heat.kinds),
        "outages": outages,
        "exclusions": [
            {
                "id": w.id or "–",
                "kind": kind_words(w.kind),
                "css": KIND_CLASS[w.kind],
                "start": local_time(w.start, tz),
                "end": local_time(w.end, tz),
                "reason": w.reason,
                "source": w.source,
            }
            for w in result.exclusions_applied
        ],
        "excluded_by_kind": [(kind_words(k), n) for k, n in result.excluded_by_kind.items()],
        "tiers": tier_rows(result, policy),
        "method": method_sentence(result),
        "claim_text": claim_text,
        "claim_href": nav.claim or claim_href(claim_text),
        "claim_name": f"claim-{result.sla}-{result.month}.txt",
        "tz": tz,
        "cell_minutes": f"{heat.cell_seconds / 60:g}",
    }


def render_sla_month(
    result: MonthResult,
    *,
    policy: SlaPolicy | None,
    claim_text: str,
    vantage: str = "",
    nav: Nav | None = None,
    standalone: bool = False,
) -> str:
    """The SLA month page: figures, heat-map, outages, exclusions, credit table, claim draft."""
    return render_sla_pages(
        [sla_page(result, policy, claim_text, nav)],
        title=f"{result.sla} {result.month}",
        vantage=vantage,
        standalone=standalone,
    )


def render_sla_pages(
    pages: Sequence[Mapping[str, Any]], *, title: str, vantage: str, standalone: bool
) -> str:
    """One document holding one or more SLA months (``sla_page`` each)."""
    template = environment().get_template("sla.html.j2")
    return template.render(
        title=title, pages=pages, vantage=vantage, standalone=standalone, nav=Nav()
    )


def render_overview(
    results: Sequence[MonthResult],
    summaries: Sequence[ContractSummary],
    *,
    month: Month | None,
    latest: Month,
    now: datetime,
    vantage: str,
) -> str:
    """Every SLA's month and every support contract, with links to the detail pages."""
    template = environment().get_template("overview.html.j2")
    return template.render(
        title="SLA overview" + (f" {month}" if month else ""),
        results=results,
        summaries=[_contract_row(s) for s in summaries],
        month=month,
        months=_month_choices(month, latest),
        selected=str(month) if month else "",
        now=now,
        vantage=vantage,
        nav=Nav(),
        standalone=False,
    )


def _month_choices(month: Month | None, latest: Month) -> list[str]:
    """The last 13 months, and the shown month with its neighbours when it is older."""
    choices = set(months_before(latest, 13))
    if month is not None:
        choices.update(m for m in (month.previous(), month, month.next()) if m <= latest)
    return [str(m) for m in sorted(choices, reverse=True)]


def _contract_row(summary: ContractSummary) -> dict[str, Any]:
    return {
        "name": summary.contract.name,
        "open": sum(1 for f in summary.faults if f.open),
        "faults": len(summary.faults),
        "month": summary.month_label,
        "percent": summary.month.percent,
        "amount": money(summary.month.amount, summary.contract.currency),
        "year_amount": money(summary.year.amount, summary.contract.currency),
        "year": summary.year_label,
    }


# -- support page ---------------------------------------------------------------------------

TIMELINE_WIDTH = 860


def render_support(summary: ContractSummary, *, vantage: str) -> str:
    """A contract's faults: deadlines per level on a support-hours timeline, late days, credit."""
    template = environment().get_template("support.html.j2")
    tz = summary.contract.hours.timezone
    faults = [_fault_view(f, summary) for f in summary.faults]
    return template.render(
        title=f"Support contract {summary.contract.name}",
        s=summary,
        row=_contract_row(summary),
        faults=faults,
        tz=tz,
        vantage=vantage,
        nav=Nav(),
        standalone=False,
    )


def _fault_view(item: FaultSummary, summary: ContractSummary) -> dict[str, Any]:
    tz = summary.contract.hours.timezone
    levels = [
        {
            "name": f"L{int(s.level)} {LEVEL_NAMES[s.level]}",
            "deadline": local_time(s.deadline, tz),
            "met": local_time(s.met_at, tz) if s.met_at else "not yet",
            "status": "late" if s.breached else ("met" if s.met_at else "open"),
            "lateness": span_words(s.lateness) if s.breached else "",
        }
        for s in item.levels
    ]
    return {
        "id": item.fault.id,
        "title": item.fault.title,
        "severity": item.fault.severity.value.replace("_", " "),
        "received": local_time(item.fault.received_at, tz),
        "open": item.open,
        "levels": levels,
        "late_days": [
            {"number": d.number, "start": local_time(d.start, tz), "percent": d.percent}
            for d in item.late_days
        ],
        "credit_percent": item.credit_percent,
        "credit_amount": money(item.credit_amount, summary.contract.currency),
        "timeline": Markup(_timeline(item, summary)),
    }


def _timeline(item: FaultSummary, summary: ContractSummary) -> str:
    """Received → each deadline and when it was met, over shaded support hours."""
    hours = summary.contract.hours
    start = item.fault.received_at.astimezone(UTC)
    # A solved fault's timeline ends at its last deadline or level met; an open one runs to now.
    marks: list[datetime] = [start, summary.now] if item.open else [start]
    for s in item.levels:
        marks.append(s.deadline)
        if s.met_at is not None:
            marks.append(s.met_at)
    end = max(marks)
    first_day = start.astimezone(hours.zone).date()
    last_day = end.astimezone(hours.zone).date()
    begin = datetime.combine(first_day, datetime.min.time(), tzinfo=hours.zone).astimezone(UTC)
    finish = datetime.combine(
        last_day + timedelta(days=1), datetime.min.time(), tzinfo=hours.zone
    ).astimezone(UTC)
    total = (finish - begin).total_seconds()

    def x(moment: datetime) -> float:
        return round((moment - begin).total_seconds() / total * TIMELINE_WIDTH, 1)

    parts = [
        f'<svg class="tl" width="{TIMELINE_WIDTH}" height="64" role="img" '
        f'aria-label="{escape(f"Timeline of fault {item.fault.id}")}">',
        f'<rect class="closed" x="0" y="14" width="{TIMELINE_WIDTH}" height="22"/>',
    ]
    day = first_day
    while day <= last_day:
        for lo, hi in open_intervals(day, hours):
            parts.append(
                f'<rect class="open" x="{x(lo)}" y="14" width="{max(x(hi) - x(lo), 0.5)}" '
                f'height="22"><title>support open '
                f"{local_time(lo, hours.timezone, '%a %d %b %H:%M')}"
                f"–{local_time(hi, hours.timezone, '%H:%M')}</title></rect>"
            )
        if (day - first_day).days % max(1, (last_day - first_day).days // 8 + 1) == 0:
            midnight = datetime.combine(day, datetime.min.time(), tzinfo=hours.zone)
            parts.append(f'<text x="{x(midnight) + 2}" y="60">{day:%a %d %b}</text>')
        day += timedelta(days=1)
    parts.append(
        f'<line class="received" x1="{x(start)}" x2="{x(start)}" y1="6" y2="44">'
        f"<title>received {local_time(start, hours.timezone)}</title></line>"
    )
    for s in item.levels:
        name = f"L{int(s.level)}"
        css = "late" if s.breached else "due"
        parts.append(
            f'<g class="{css}"><title>{name} {LEVEL_NAMES[s.level]} due '
            f"{local_time(s.deadline, hours.timezone)}"
            f"{' – late' if s.breached else ''}</title>"
            f'<line x1="{x(s.deadline)}" x2="{x(s.deadline)}" y1="8" y2="42"/>'
            f'<text x="{x(s.deadline) + 2}" y="10">{name}</text></g>'
        )
        if s.met_at is not None:
            parts.append(
                f'<g class="met"><title>{name} met {local_time(s.met_at, hours.timezone)}</title>'
                f'<circle cx="{x(s.met_at)}" cy="25" r="4"/></g>'
            )
    parts.append("</svg>")
    return "".join(parts)


# -- target page ------------------------------------------------------------------------------

CHART_WIDTH = 860
CHART_HEIGHT = 120


def render_target(view: TargetView, *, now: datetime, vantage: str) -> str:
    """A target's last result, the last day's probes, latency and call quality, failures."""
    template = environment().get_template("target.html.j2")
    last = view.last
    return template.render(
        title=f"Target {view.name}",
        t=view,
        last_at=None
        if last is None
        else utc_time(datetime.fromtimestamp(last.started_at, UTC), "%Y-%m-%d %H:%M:%S UTC"),
        last_details=[] if last is None else sorted(last.details.items()),
        latency=Markup(_latency_chart(view, now)),
        quality=Markup(_quality_chart(view, now)) if _has_quality(view) else None,
        failures=[
            {
                "at": utc_time(f.at, "%Y-%m-%d %H:%M:%S UTC"),
                "outcome": f.outcome,
                "reason": f.reason,
                "duration": f"{f.duration * 1000:.0f} ms",
                "details": ", ".join(f"{k}={v}" for k, v in sorted(f.details.items())),
            }
            for f in view.failures
        ],
        probes=sum(s.probes for s in view.slots),
        failed=sum(s.failed for s in view.slots),
        vantage=vantage,
        nav=Nav(),
        standalone=False,
    )


def _has_quality(view: TargetView) -> bool:
    return any(s.mos_min is not None or s.loss_max is not None for s in view.slots)


def _slot_x(view: TargetView, start: float, now: datetime) -> float:
    day_start = now.timestamp() - 86400
    return round((start - day_start) / 86400 * CHART_WIDTH, 1)


def _chart_frame(label: str, top: str) -> list[str]:
    return [
        f'<svg class="chart" width="{CHART_WIDTH}" height="{CHART_HEIGHT + 16}" role="img" '
        f'aria-label="{escape(label)}">',
        f'<line class="base" x1="0" x2="{CHART_WIDTH}" y1="{CHART_HEIGHT}" y2="{CHART_HEIGHT}"/>',
        f'<text x="2" y="10">{escape(top)}</text>',
        f'<text x="0" y="{CHART_HEIGHT + 14}">24 h ago</text>',
        f'<text x="{CHART_WIDTH - 30}" y="{CHART_HEIGHT + 14}">now</text>',
    ]


def _latency_chart(view: TargetView, now: datetime) -> str:
    peak = max((s.duration_max for s in view.slots), default=0.0) or 1.0
    width = max(1.0, view.slot_seconds / 86400 * CHART_WIDTH - 1)
    parts = _chart_frame(
        f"Probe duration and failures of {view.name} over the last day",
        f"max {peak * 1000:.0f} ms",
    )
    for slot in view.slots:
        x = _slot_x(view, slot.start, now)
        h_max = slot.duration_max / peak * (CHART_HEIGHT - 14)
        h_mean = slot.duration_mean / peak * (CHART_HEIGHT - 14)
        css = "bad" if slot.failed else "ok"
        parts.append(
            f'<g class="{css}"><title>{_clock(slot.start)}: '
            f"{slot.probes} probes, {slot.failed} failed, mean {slot.duration_mean * 1000:.0f} ms, "
            f"max {slot.duration_max * 1000:.0f} ms</title>"
            f'<rect class="max" x="{x}" y="{CHART_HEIGHT - h_max:.1f}" width="{width:.1f}" '
            f'height="{h_max:.1f}"/>'
            f'<rect class="mean" x="{x}" y="{CHART_HEIGHT - h_mean:.1f}" width="{width:.1f}" '
            f'height="{h_mean:.1f}"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _quality_chart(view: TargetView, now: datetime) -> str:
    parts = _chart_frame(
        f"Call quality of {view.name} over the last day: lowest MOS per period", "MOS 1–5"
    )
    width = max(1.0, view.slot_seconds / 86400 * CHART_WIDTH - 1)
    for slot in view.slots:
        if slot.mos_min is None:
            continue
        x = _slot_x(view, slot.start, now)
        h = (slot.mos_min - 1) / 4 * (CHART_HEIGHT - 14)
        loss = "–" if slot.loss_max is None else f"{slot.loss_max * 100:.2f}%"
        jitter = "–" if slot.jitter_max is None else f"{slot.jitter_max * 1000:.1f} ms"
        parts.append(
            f'<g class="mos"><title>{_clock(slot.start)}: '
            f"MOS {slot.mos_min:.2f}, loss {loss}, jitter {jitter}</title>"
            f'<rect x="{x}" y="{CHART_HEIGHT - h:.1f}" width="{width:.1f}" height="{h:.1f}"/></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def error_page(status: int, message: str) -> str:
    template = environment().get_template("error.html.j2")
    return template.render(
        title=f"{status}", status=status, message=message, vantage="", nav=Nav(), standalone=False
    )
