#!/usr/bin/env python3
"""Benchmark: the service verdicts a restart writes again (issue 20, rw25).

    nice -n 19 .venv/bin/python bench/restart_verdicts_bench.py --slas 200 --hours 24

Builds the configuration of ``bench/accounting_bench.py`` (``--slas`` one-target SLAs, 5-minute
buckets) with its real SQLite store in a temporary directory, feeds the month's first
``--hours`` through the daemon's own result path (1 in 97 failing) and flushes until every
settled bucket's verdict is stored. Then a second ``Daemon`` over the same store starts as a
restart does (``_load_history``) at the same fixed instant, with no new result, no exclusion
and no configuration change: nothing it judges can differ from what is stored. It flushes
(``Daemon.flush``: verdicts + SQLite write) until a flush writes no verdict, and prints the
rows each flush wrote and its wall time, the total, and what that is per SLA-bucket, so the
figure at day 28 and 10,000 SLAs can be read off (rows = SLAs x buckets settled since the
first probe). The clock is fixed: nothing depends on today's date.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
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
from monitor.runtime.daemon import MAX_VERDICTS_PER_FLUSH, Daemon  # noqa: E402
from monitor.store.base import WriteBatch  # noqa: E402

BUCKET = 300


class _Counting:
    """Wraps a store's ``write_batch`` to count the verdict rows each write carries."""

    def __init__(self, daemon: Daemon) -> None:
        self.rows: list[int] = []
        inner = daemon.store.write_batch

        async def write_batch(batch: WriteBatch) -> None:
            self.rows.append(len(batch.service_buckets))
            await inner(batch)

        daemon.store.write_batch = write_batch  # type: ignore[method-assign]


async def run(slas: int, hours: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="slawatch-restart-verdicts-"))
    config = load_config(write_config(work, slas, 1))
    now = MONTH_START + int(hours * 3600) // BUCKET * BUCKET + 17
    clock = FixedClock(now)
    first = Daemon(config, clock=clock)
    await first.store.open()
    first.scheduler.apply(first._schedule(), now=now)
    names = [t.name for t in config.targets]
    began = time.perf_counter()
    for bucket in range(MONTH_START, int(now) - 17, BUCKET):
        for number, name in enumerate(names):
            ok = (bucket // BUCKET + number) % 97 != 0
            first._on_result(first.scheduler.targets[name], result(name, bucket + 7, ok))
    settled = slas * ((int(now) - MONTH_START) // BUCKET - 1)
    for _ in range(3 + settled // MAX_VERDICTS_PER_FLUSH):
        await first.flush()
    stored = 0
    for policy in config.sla_policies():
        stored += len(await first.store.load_service_buckets(policy.name, MONTH_START, int(now)))
    print(
        f"{slas} one-target SLAs, {hours} h fed and flushed in "
        f"{time.perf_counter() - began:.1f} s: {stored} verdict rows stored"
    )
    await first.store.close()

    # The restart: same store, same instant, same inputs; nothing new to judge.
    second = Daemon(config, clock=clock)
    await second.store.open()
    counting = _Counting(second)
    began = time.perf_counter()
    await second._load_history(float(now))
    print(f"restart: history loaded in {time.perf_counter() - began:.1f} s")
    walls: list[float] = []
    while True:
        began = time.perf_counter()
        await second.flush()
        walls.append(time.perf_counter() - began)
        # rw25: a pass leaves SLAs without a mark to the next flush's resume: done when a
        # flush writes nothing and none waits.
        if counting.rows[-1] == 0 and not getattr(second, "_verdicts_resume", None):
            break
    total = sum(counting.rows)
    for number, (rows, wall) in enumerate(zip(counting.rows, walls, strict=True)):
        if number < 3 or number == len(walls) - 1:
            print(f"  flush {number + 1}: {rows} verdict rows, {wall * 1000:.0f} ms")
    spent = sum(walls)
    print(
        f"after the restart: {total} verdict rows written again ({total / max(1, stored):.2f} "
        f"of those stored) in {len(walls)} flushes until none is left to write, "
        f"{spent:.2f} s of flushing, the longest {max(walls) * 1000:.0f} ms; "
        f"{spent / max(1, stored) * 1e6:.1f} us per stored SLA-bucket"
    )
    per_sla_day28 = (27 * 86400) // BUCKET
    print(
        f"at day 28 with 10,000 one-target SLAs ({per_sla_day28 * 10000:,} SLA-buckets), at "
        f"this cost per stored SLA-bucket: about "
        f"{per_sla_day28 * 10000 * spent / max(1, stored) / 3600:.2f} h of flush time "
        f"(with one flush a second when each takes under a second)"
    )
    await second.store.close()


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slas", type=int, default=200)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    asyncio.run(run(args.slas, args.hours))


if __name__ == "__main__":
    main()
