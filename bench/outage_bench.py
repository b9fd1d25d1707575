#!/usr/bin/env python3
"""Benchmark: a running month's outages at a month's end (issue 20, ot25).

    nice -n 19 .venv/bin/python bench/outage_bench.py --slas 2000 --every 100
    nice -n 19 .venv/bin/python bench/outage_bench.py --root /tmp/base --slas 2000

N one-target SLAs (distinct target names, as the daemon bench's), each with its previous
month complete and its current month judged to 28 Nov 2026, every bucket available but one in
``--every`` unavailable with a failed tally as evidence (``startup_bench --seeded``'s
pattern), restored from that judged state as at a start. Prints the time of the first summary
(``RunningMonth.result`` of both months, every SLA: what ``Daemon._summarise`` does first),
the time of a second summary after one bucket closed unavailable in every current month, and
the bytes tracemalloc sees held by the restored months (before any summary: their arrays and
evidence) and by the first results (per outage), and the process's resident set after the first
summary and at its peak (VmRSS, VmHWM). ``--root`` imports
``monitor`` from another tree (before / after on the same machine, alternated).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slas", type=int, default=2000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    sys.path.insert(0, args.root)
    from monitor.sla import running as running_module
    from monitor.sla.calendar import Month
    from monitor.sla.policy import (
        BucketState,
        CreditPolicy,
        CreditTier,
        ServiceDef,
        SlaPolicy,
        Tally,
    )
    from monitor.sla.running import JudgedState, RunningMonth

    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    states = tuple(BucketState)
    ok, down = states.index(BucketState.AVAILABLE), states.index(BucketState.UNAVAILABLE)
    credit = CreditPolicy(
        tiers=(CreditTier(Decimal(10), upper=Decimal("99.9")),),
        monthly_fee=Decimal(1000),
        currency="EUR",
    )
    months = []
    gc.collect()
    tracemalloc.start()
    before_months = tracemalloc.get_traced_memory()[0]
    for n in range(args.slas):
        target = f"https://t{n}.example/health"
        service = ServiceDef(f"svc{n}", (target,))
        policy = SlaPolicy(f"sla{n}", service.name, Decimal("99.9"), credit)
        failed = Tally(ok=0, failed=10, reasons={"http_503": 10})
        for month, judged in ((Month(2026, 10), 31 * 288), (Month(2026, 11), 27 * 288 + 144)):
            raw = bytearray([ok]) * judged
            evidence = []
            for index in range(37, judged, args.every):
                raw[index] = down
                evidence.append((index, ((target, failed),)))
            state = JudgedState(judged, bytes(raw), (), (), tuple(evidence), 0)
            months.append(RunningMonth.restored(policy, service, month, (), state))
            del state, evidence, raw
    gc.collect()
    # What the restored months hold (their arrays, evidence, policies), before any summary.
    held_months = tracemalloc.get_traced_memory()[0] - before_months
    tracemalloc.stop()
    t0 = time.perf_counter()
    results = [m.result(now) for m in months]
    first = time.perf_counter() - t0
    gc.collect()
    rss_first = _vm("VmRSS")  # the months and their first results held, as after a start
    outages = sum(len(r.outages) for r in results)
    # One bucket closes in every current month, unavailable, then a summary again.
    later = datetime(2026, 11, 28, 12, 5, tzinfo=UTC)
    edge = int(now.timestamp())
    for m in months[1::2]:
        # The closed bucket failed: the month's outages are found again.
        (target,) = m.leaves
        m.advance({target: {edge: Tally(ok=0, failed=10, reasons={"http_503": 10})}}, later)
    t0 = time.perf_counter()
    again = [m.result(later) for m in months]
    second = time.perf_counter() - t0
    del again, results
    for m in months:
        m._outages = None
        m._last_result = None
        # The outages found before are not reused: all counted.
        if hasattr(m, "_found_firsts"):  # before oc26: a tuple and an array of firsts
            m._found = ()
            m._found_firsts = type(m._found_firsts)("q")
        else:
            m._found = running_module._NO_OUTAGES
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    results = [m.result(now) for m in months]
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(results) == len(months)
    print(
        f"root={args.root} slas={args.slas} months={len(months)} outages={outages} "
        f"held_by_months_MB={held_months / 1e6:.1f} "
        f"first_summary_s={first:.3f} second_summary_s={second:.3f} "
        f"held_by_results_MB={held / 1e6:.1f} bytes_per_outage={held / max(1, outages):.0f} "
        f"rss_after_first_summary_MB={rss_first:.0f} peak_rss_MB={_vm('VmHWM'):.0f}"
    )


def _vm(field: str) -> float:
    """This process's ``field`` of /proc/self/status (VmRSS, VmHWM) in MB (NaN elsewhere)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
