"""Benchmark the web view's server-side rendering.

Renders, in this process, the SLA month page of a 31-day month of 5-minute buckets (2026-10 in
Europe/London: 8,940 buckets with its extra hour) and the overview of 30 SLAs, and prints the
median render time and HTML size of each. The months are computed by the engine beforehand
(the daemon caches them too); the figures are the pages' own cost.

    .venv/bin/python bench/web_bench.py [--runs 20]

Cases: a typical month (9 outages, maintenance, a carrier exclusion, an unmeasured stretch),
the worst case (state flips every bucket: 8,940 runs, each with its own tooltip), and the
overview with 30 SLAs and a support contract.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.reports.claim_pack import render_claim
from monitor.sla.calendar import Month
from monitor.web.render import Nav, render_overview, render_sla_month
from tests import web_sample


def measure(render: Callable[[], str], runs: int) -> tuple[float, int, int]:
    """(median seconds, bytes, gzip bytes) over ``runs`` renders after one warm-up."""
    html = render()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        html = render()
        times.append(time.perf_counter() - start)
    body = html.encode()
    return statistics.median(times), len(body), len(gzip.compress(body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    policy, typical = web_sample.sample_month()
    _, worst = web_sample.sample_month(flip=True)
    claim = render_claim([typical])
    worst_claim = render_claim([worst])
    # As the daemon serves it: links around, the claim downloaded from its own URL.
    nav = Nav("/sla/v/2026-09", "/sla/v/2026-11", "/?month=2026-10", "/sla/v/2026-10/claim.txt")
    results = [web_sample.sample_month(name=f"sla-{i:02d}")[1] for i in range(30)]
    now = datetime(2026, 11, 5, tzinfo=UTC)

    cases: list[tuple[str, Callable[[], str]]] = [
        (
            "SLA month page, 31 days, typical",
            lambda: render_sla_month(typical, policy=policy, claim_text=claim, nav=nav),
        ),
        (
            "same, report --format html (standalone)",
            lambda: render_sla_month(typical, policy=policy, claim_text=claim, standalone=True),
        ),
        (
            "SLA month page, 31 days, worst case",
            lambda: render_sla_month(worst, policy=policy, claim_text=worst_claim, nav=nav),
        ),
        (
            "overview, 30 SLAs",
            lambda: render_overview(
                results, [], month=Month(2026, 10), latest=Month(2026, 11), now=now, vantage="b"
            ),
        ),
    ]
    print(f"{'page':40} {'median ms':>10} {'HTML bytes':>11} {'gzip bytes':>11}")
    for name, render in cases:
        seconds, size, packed = measure(render, args.runs)
        print(f"{name:40} {seconds * 1000:10.1f} {size:11,} {packed:11,}")


if __name__ == "__main__":
    main()
