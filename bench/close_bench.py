#!/usr/bin/env python3
"""Benchmark: the CPU of the daemon's per-SLA work in a quiet second and at a bucket close.

    .venv/bin/python bench/close_bench.py --slas 10000 [--rounds 3]

Builds the configuration of ``bench/accounting_bench.py`` (``--slas`` one-target SLAs, 5-minute
buckets, UTC), feeds two hours of results from 1 Dec 2026 00:00 UTC through the daemon's own
result path (1 in 97 failing), brings the months and ``/metrics`` up to date, then freezes the
heap and turns the cyclic collector off, so what is measured is the work, not when the
collector happens to run (``monitor.runtime.heap`` is about that). Each round: five quiet
seconds (a thirtieth of the targets report each second, as at a 30 s interval; the daemon's
summary and the ``/metrics`` refresh it starts), then every target reports in the running
bucket, the bucket closes and the summary, the refresh and a scrape run. Prints the process
CPU (``time.process_time``) of each. The clock is fixed: nothing depends on today's date.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accounting_bench import MONTH_START, write_config  # noqa: E402
from metrics_bench import result  # noqa: E402

from monitor.clock import FixedClock  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.metrics.collector import MetricsExposition  # noqa: E402
from monitor.metrics.contract import ContractCollector  # noqa: E402
from monitor.runtime.daemon import Daemon  # noqa: E402


async def run(slas: int, rounds: int, profile: str | None = None) -> None:
    config = load_config(write_config(Path(tempfile.mkdtemp(prefix="slawatch-close-")), slas, 1))
    now = MONTH_START + 2 * 3600 + 17
    clock = FixedClock(now)
    daemon = Daemon(config, clock=clock)
    daemon.scheduler.apply(daemon._schedule(), now=now)
    names = [t.name for t in config.targets]

    def report(name: str, at: float, ok: bool = True) -> None:
        daemon._on_result(daemon.scheduler.targets[name], result(name, at, ok))

    for bucket in range(MONTH_START, int(now) - 17, 300):
        for number, name in enumerate(names):
            report(name, bucket + 7, (bucket // 300 + number) % 97 != 0)
    exposition = MetricsExposition(daemon, extra=[ContractCollector(daemon)])
    await daemon._summarise()
    await exposition.render()
    gc.collect()
    gc.freeze()
    gc.disable()
    quiet: list[float] = []
    closes: list[float] = []
    per_second = max(1, slas // 30)
    for number in range(rounds):
        for second in range(5):
            clock.advance(1)
            first = (number * 5 + second) * per_second
            for index in range(first, first + per_second):
                report(names[index % slas], clock() - 0.5)
            began = time.process_time()
            await daemon._summarise()
            await exposition.settled()
            quiet.append(time.process_time() - began)
        for name in names:
            report(name, clock() - 0.2)
        clock.seconds = (clock() // 300 + 1) * 300 + 1
        profiler = cProfile.Profile() if profile is not None and number == rounds - 1 else None
        began = time.process_time()
        if profiler is not None:
            profiler.enable()
        await daemon._summarise()
        await exposition.settled()
        await exposition.render()
        closes.append(time.process_time() - began)
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
    print(
        f"a quiet second (summary + /metrics refresh): median "
        f"{statistics.median(quiet) * 1000:.1f} ms CPU over {len(quiet)}"
    )
    print(
        "a bucket close (summary + refresh + scrape): "
        + ", ".join(f"{c:.2f}" for c in closes)
        + " s CPU"
    )


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slas", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--profile", metavar="FILE", help="write a cProfile of the last round's bucket close here"
    )
    args = parser.parse_args()
    asyncio.run(run(args.slas, args.rounds, args.profile))


if __name__ == "__main__":
    main()
