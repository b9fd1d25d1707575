"""``slawatch report --format html``: the SLA month page as one self-contained file.

The same renderer as the daemon's ``/sla/{name}/{YYYY-MM}`` page, without links to other
pages (they would be dead in an e-mail attachment) and without script. Each SLA's claim draft
is the text ``--format claim`` prints for that SLA alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monitor.sla.month import MonthResult
from monitor.sla.policy import SlaPolicy
from monitor.web.render import render_sla_pages, sla_page


def report_html(
    results: Sequence[MonthResult],
    policies: Sequence[SlaPolicy],
    claim_for: Callable[[MonthResult], str],
    vantage: str = "",
) -> str:
    """One document with every result's month page; ``claim_for`` gives its claim text."""
    by_name = {p.name: p for p in policies}
    pages = [
        sla_page(r, by_name.get(r.sla), claim_for(r), pid="" if len(results) == 1 else f"s{i}-")
        for i, r in enumerate(results)
    ]
    months = sorted({str(r.month) for r in results})
    title = (
        f"{results[0].sla} {results[0].month}"
        if len(results) == 1
        else f"SLA report {', '.join(months)}"
    )
    return render_sla_pages(pages, title=title, vantage=vantage, standalone=True)
