#!/usr/bin/env python3
"""CPU per run of the scheduler alone (issue 20, pp24): no network, no kernel.

    .venv/bin/python bench/scheduler_bench.py [--targets 3000] [--interval 1] [--seconds 10]

``ProbeScheduler`` runs N targets of a probe kind that answers ``up`` at once, through a sink
doing nothing, for ``--seconds`` after one interval of warm-up: what is left per run is the
scheduler's own work (planning, the timer, the task, the timeout, the result's construction).
``BENCH_CODE=/path/to/a/checkout`` runs that checkout's scheduler (A/B in the same minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

CODE = Path(os.environ.get("BENCH_CODE", Path(__file__).resolve().parent.parent)).resolve()
sys.path.insert(0, str(CODE))

from pydantic import BaseModel  # noqa: E402

from monitor.runtime.scheduler import ProbeScheduler, ScheduledTarget  # noqa: E402
from probes.registry import ProbeKind  # noqa: E402
from probes.result import Outcome, ProbeContext, ProbeResult  # noqa: E402


class _NoOptions(BaseModel):
    pass


async def _instant(options: Any, ctx: ProbeContext) -> ProbeResult:
    await asyncio.sleep(0)  # one loop iteration, as a probe's I/O would take at least
    return ctx.result(Outcome.UP)


async def _run(n: int, interval: float, seconds: float) -> tuple[float, int]:
    count = [0]

    def sink(target: ScheduledTarget, result: ProbeResult) -> None:
        count[0] += 1

    kind = ProbeKind("instant", _NoOptions, _instant, "answers at once")
    options = _NoOptions()
    scheduler = ProbeScheduler(sink, lambda lag: None)
    scheduler.apply(
        [ScheduledTarget(f"t{i:05d}", kind, options, interval, interval / 2) for i in range(n)]
    )
    scheduler.start()
    await asyncio.sleep(interval)
    c0, n0 = time.process_time(), count[0]
    await asyncio.sleep(seconds)
    c1, n1 = time.process_time(), count[0]
    await scheduler.shutdown()
    return (c1 - c0) / max(1, n1 - n0) * 1e6, n1 - n0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=3000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    per_run, runs = asyncio.run(_run(args.targets, args.interval, args.seconds))
    print(f"code {CODE}  runs {runs}  CPU per run {per_run:.1f} us  load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
