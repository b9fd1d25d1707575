#!/usr/bin/env python3
"""Benchmark: CPU of ``RunningMonth.restored`` (issue 20, e23), in process.

    .venv/bin/python bench/restore_bench.py --months 20000

Months shaped like ``bench/startup_bench.py --seeded``'s: one target, 5-minute buckets, a
complete month judged available but one bucket in ``--unavailable-every`` (unavailable, its
tally kept as evidence), through the snapshot codec (as a start decodes it), restored with
``--windows`` exclusion windows of a day each. Prints the process's CPU time for all of them.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.sla import policy as p
from monitor.sla.calendar import Month, month_grid
from monitor.sla.running import JudgedState, RunningMonth
from monitor.sla.running_codec import decode, encode


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--months", type=int, default=20_000)
    parser.add_argument("--unavailable-every", type=int, default=2000, metavar="N")
    parser.add_argument("--windows", type=int, default=0)
    args = parser.parse_args()
    credit = p.CreditPolicy(
        tiers=(p.CreditTier(Decimal(10), upper=Decimal("99.9")),),
        monthly_fee=Decimal("100.00"),
        currency="USD",
    )
    policy = p.SlaPolicy(
        name="sla",
        service="svc",
        objective_percent=Decimal("99.9"),
        credit=credit,
        bucket_seconds=300,
        timezone="UTC",
    )
    service = p.ServiceDef("svc", ("t0",), p.ServiceRule(kind=p.ServiceRuleKind.ANY))
    month = Month(2026, 11)
    grid = month_grid(month, "UTC", 300)
    codes = tuple(p.BucketState)
    raw = bytearray([codes.index(p.BucketState.AVAILABLE)]) * grid.count
    failed = p.Tally(failed=1, reasons={"http_503": 1})
    evidence = []
    for index in range(0, grid.count, args.unavailable_every):
        raw[index] = codes.index(p.BucketState.UNAVAILABLE)
        evidence.append((index, (("t0", failed),)))
    state = decode(encode(JudgedState(grid.count, bytes(raw), (), (), tuple(evidence), 0)))
    windows = [
        p.ExclusionWindow(
            id=f"w{n}",
            start=grid.start + timedelta(days=2 * n),
            end=grid.start + timedelta(days=2 * n + 1),
            kind=p.ExclusionKind.SCHEDULED_MAINTENANCE,
        )
        for n in range(args.windows)
    ]
    began = time.process_time()
    for _ in range(args.months):
        RunningMonth.restored(policy, service, month, windows, state)
    print(
        f"{args.months} months restored ({args.windows} windows): "
        f"{time.process_time() - began:.2f} s CPU"
    )


if __name__ == "__main__":
    main()
