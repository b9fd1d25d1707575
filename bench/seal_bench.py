#!/usr/bin/env python3
"""Benchmark: the daemon sealing the previous month of N one-target SLAs, in process (issue 20).

    .venv/bin/python bench/seal_bench.py --slas 10000 [--per-sla 1] [--november-hours 2]

Builds the configuration of ``bench/accounting_bench.py`` (``--slas`` SLAs of ``--per-sla``
http targets, 5-minute buckets, UTC) over a fresh SQLite store, writes the last
``--november-hours`` of November 2026 into it (every target ``ok=10``, one bucket in 50 of
them failed; 0: November holds nothing, as after a start early in December on a new store,
which is what ``bench/daemon_bench.py`` measures), reads the history back as the daemon's
start does (``Daemon._load_history``: every SLA's current and previous month held), then at
a fixed instant (2 Dec 2026 08:00 UTC) times ``Daemon._seal_closed_months``:

- the first pass (what a start early in a month, or the hour after a month's end, does);
- the next pass (an hour later: nothing left to seal);
- a restart: a new ``Daemon`` over the same store, its months read back, one pass.

Printed for each: wall and CPU seconds, the longest the event loop went without running a
1 ms ticker (a block, as ``daemon_bench``'s lag sees it; the store's worker thread holding the
GIL counts), the VmRSS peak above the pass's start (sampled every 5 ms), seals written; then
the sealed reports of ``--check`` SLAs compared with the reference (``monitor.accounting.
month_result`` over the store's tallies, as ``slawatch report`` computes them).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import pstats
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accounting_bench import MONTH_START, write_config  # noqa: E402

from monitor.clock import FixedClock  # noqa: E402
from monitor.config import gc_paused, load_config  # noqa: E402
from monitor.reports.stored import store_month_results  # noqa: E402
from monitor.runtime.daemon import Daemon, freeze_heap  # noqa: E402
from monitor.sla.calendar import Month  # noqa: E402
from monitor.store.base import TallyRow, WriteBatch  # noqa: E402

NOW = MONTH_START + 86400 + 8 * 3600  # 2 Dec 2026 08:00 UTC
NOVEMBER = Month(2026, 11)


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Watch:
    """Longest loop block (a 1 ms ticker's worst overrun) and RSS peak during a pass."""

    def __init__(self) -> None:
        self.block = 0.0
        self.peak = 0
        self.gc = 0.0
        self._gc = 0.0
        self._stop = False

    def gc_pause(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc = time.perf_counter()
        else:
            self.gc = max(self.gc, time.perf_counter() - self._gc)

    async def ticker(self) -> None:
        while not self._stop:
            began = time.perf_counter()
            await asyncio.sleep(0.001)
            self.block = max(self.block, time.perf_counter() - began - 0.001)

    def sampler(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, rss_kb())
            time.sleep(0.005)


async def timed(label: str, daemon: Daemon) -> None:
    watch = Watch()
    base = rss_kb()
    thread = threading.Thread(target=watch.sampler, daemon=True)
    thread.start()
    gc.callbacks.append(watch.gc_pause)
    tick = asyncio.create_task(watch.ticker())
    await asyncio.sleep(0.01)
    before = await daemon.store.load_month_seal("sla0", str(NOVEMBER))
    wall, cpu = time.perf_counter(), time.process_time()
    profile = PROFILE if PROFILE is not None and PROFILED in label else None
    if profile is not None:
        profile.enable()
    await daemon._seal_closed_months(NOW)
    if profile is not None:
        profile.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    watch._stop = True
    gc.callbacks.remove(watch.gc_pause)
    await tick
    thread.join()
    after = await daemon.store.load_month_seal("sla0", str(NOVEMBER))
    print(
        f"{label}: {wall:.2f} s wall, {cpu:.2f} s CPU, longest loop block "
        f"{watch.block * 1000:.0f} ms (longest GC {watch.gc * 1000:.0f} ms), "
        f"RSS +{max(0, watch.peak - base) / 1024:.0f} MB "
        f"(from {base / 1024:.0f} MB), sla0 sealed before/after: "
        f"{before is not None}/{after is not None}"
    )


async def seed(daemon: Daemon, hours: float) -> int:
    names = [t.name for t in daemon.config.targets]
    first = MONTH_START - int(hours * 3600)
    rows: list[TallyRow] = []
    written = 0
    vantage = daemon.store.vantage
    for start in range(first, MONTH_START, 300):
        failed = (start // 300) % 50 == 0
        for name in names:
            rows.append(
                TallyRow(
                    vantage,
                    name,
                    start,
                    300,
                    ok=9 if failed else 10,
                    failed=1 if failed else 0,
                    reasons={"http_503": 1} if failed else {},
                )
            )
            if len(rows) >= 20_000:
                await daemon.store.write_batch(WriteBatch(tallies=rows))
                written += len(rows)
                rows = []
    if rows:
        await daemon.store.write_batch(WriteBatch(tallies=rows))
        written += len(rows)
    return written


async def daemon_over(config_path: Path) -> Daemon:
    daemon = Daemon(load_config(config_path), clock=FixedClock(NOW))
    await daemon.store.open()
    began = time.perf_counter()
    with gc_paused():  # as Daemon.start does, then its freeze_heap
        await daemon._load_history(NOW)
    freeze_heap(daemon.config)
    print(f"  history read back, months held: {time.perf_counter() - began:.2f} s")
    return daemon


HELD = {"held": 0, "not": 0}
PROFILE: cProfile.Profile | None = None
PROFILED = ""


def count_held() -> None:
    """Count the months handed over by the accounting (absent before se24's change)."""
    try:
        from monitor.runtime import sealing
    except ImportError:
        return
    original = sealing.held_result

    def counted(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        HELD["held" if result is not None else "not"] += 1
        return result

    sealing.held_result = counted


async def run(slas: int, per: int, hours: float, check: int) -> None:
    count_held()
    work = Path(tempfile.mkdtemp(prefix="slawatch-seal-"))
    path = write_config(work, slas, per)
    daemon = Daemon(load_config(path), clock=FixedClock(NOW))
    await daemon.store.open()
    began = time.perf_counter()
    rows = await seed(daemon, hours) if hours > 0 else 0
    print(f"November tallies stored: {rows} ({time.perf_counter() - began:.1f} s)")
    await daemon.store.close()
    daemon = await daemon_over(path)
    await timed("first pass (seals November)", daemon)
    print(f"  months taken from the accounting: {HELD['held']}, computed: {HELD['not']}")
    await timed("next pass (an hour later)", daemon)
    await daemon.store.close()
    daemon = await daemon_over(path)
    await timed("after a restart", daemon)
    # The sealed reports against the reference computation from the store.
    policies = list(daemon.config.sla_policies())[:check]
    moment = datetime.fromtimestamp(NOW, UTC)
    reference = await store_month_results(daemon.config, daemon.store, policies, NOVEMBER, moment)
    same = sealed = 0
    for policy, result in zip(policies, reference, strict=True):
        seal = await daemon.store.load_month_seal(policy.name, str(NOVEMBER))
        if seal is None:
            continue
        sealed += 1
        same += seal.doc["report"] == result.to_json()
    print(f"sealed reports equal to the reference: {same} of {sealed} sealed (of {check} checked)")
    await daemon.store.close()
    if PROFILE is not None:
        pstats.Stats(PROFILE).sort_stats("cumulative").print_stats(30)


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--slas", type=int, default=10000)
    parser.add_argument("--per-sla", type=int, default=1)
    parser.add_argument("--november-hours", type=float, default=0.0)
    parser.add_argument(
        "--profile", metavar="PASS", help="cProfile the passes whose label holds PASS"
    )
    parser.add_argument("--check", type=int, default=200, help="SLAs compared with the reference")
    args = parser.parse_args()
    global PROFILE, PROFILED
    PROFILE = cProfile.Profile() if args.profile else None
    PROFILED = args.profile or ""
    asyncio.run(run(args.slas, args.per_sla, args.november_hours, args.check))


if __name__ == "__main__":
    main()
