#!/usr/bin/env python3
"""Benchmark: the daemon's month accounting per SLA, in process, against compute_month.

    .venv/bin/python bench/accounting_bench.py --slas 300 --per-sla 1 --hours 660

Builds a configuration of ``--slas`` SLAs of ``--per-sla`` http targets (5-minute buckets, UTC),
fills the daemon's live state with ``--hours`` of tallies from 1 Dec 2026 00:00 UTC (10 probes,
no failure, per target and bucket), and times, over every SLA: the reference path
(``accounting.month_result`` = ``compute_month``, what every call cost before issue 20), the
running month's first build, a call when nothing changed (a flush or a scrape), and a call
after one more bucket closed. The clock is fixed: nothing depends on today's date.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.accounting import month_result  # noqa: E402
from monitor.clock import FixedClock  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.instants import utc_from_epoch  # noqa: E402
from monitor.runtime.daemon import Daemon  # noqa: E402
from monitor.sla.calendar import Month  # noqa: E402
from monitor.sla.policy import Tally  # noqa: E402

MONTH_START = 1796083200  # 2026-12-01T00:00:00Z


def write_config(directory: Path, slas: int, per: int) -> Path:
    names = [f"t{i:05d}" for i in range(slas * per)]
    lines = ["monitor:", "  name: bench", f"  state_dir: {directory}", "targets:"]
    for name in names:
        lines += [
            f"  - name: {name}",
            "    kind: http",
            "    interval: 30s",
            "    timeout: 5s",
            "    http:",
            f"      url: http://127.0.0.1:1/t/{name}",
        ]
    lines.append("services:")
    for s in range(slas):
        lines += [
            f"  - name: svc{s}",
            f"    targets: [{', '.join(names[s * per : (s + 1) * per])}]",
        ]
    lines.append("slas:")
    for s in range(slas):
        lines += [
            f"  - name: sla{s}",
            f"    service: svc{s}",
            "    objective: 99.9",
            '    monthly_fee: "1000.00"',
            "    currency: EUR",
            "    credit_tiers:",
            "      - {below: 99.9, credit_percent: 10}",
        ]
    path = directory / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slas", type=int, default=300)
    parser.add_argument("--per-sla", type=int, default=1)
    parser.add_argument("--hours", type=float, default=660.0, help="history into the month")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slawatch-accounting-"))
    config = load_config(write_config(work, args.slas, args.per_sla))
    now = MONTH_START + args.hours * 3600
    daemon = Daemon(config, clock=FixedClock(now))
    ten = Tally(ok=10)
    daemon.state.load(
        300,
        {t.name: {b: ten for b in range(MONTH_START, int(now) - 300, 300)} for t in config.targets},
    )
    policies = daemon.accounting.inputs.policies
    accounting = daemon.accounting

    def timed(label: str, work: Callable[[], object]) -> None:
        began = time.perf_counter()
        work()
        took = time.perf_counter() - began
        print(f"{label}: {took:.3f} s, {took / len(policies) * 1000:.3f} ms per SLA")

    moment = utc_from_epoch(now)
    december = Month(2026, 12)
    timed(
        "reference compute_month (before: every flush and scrape)",
        lambda: [
            month_result(accounting.inputs, p, december, daemon.state.tallies(300), moment)
            for p in policies
        ],
    )
    timed(
        "running month, first build",
        lambda: [accounting.month_result(p, moment, stamp=False) for p in policies],
    )
    later = utc_from_epoch(now + 5)
    timed(
        "running month, nothing changed",
        lambda: [accounting.month_result(p, later, stamp=False) for p in policies],
    )
    closed = utc_from_epoch(now + 305)
    timed(
        "running month, one bucket closed",
        lambda: [accounting.month_result(p, closed, stamp=False) for p in policies],
    )


if __name__ == "__main__":
    main()
