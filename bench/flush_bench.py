#!/usr/bin/env python3
"""Benchmark: the daemon's flush (summary + verdicts + SQLite write) at many one-target SLAs.

    .venv/bin/python bench/flush_bench.py --slas 10000 [--rounds 2] [--quiet 8] [--profile F]

Builds the configuration of ``bench/accounting_bench.py`` (``--slas`` one-target SLAs, 5-minute
buckets, UTC, 30 s interval, 5 s timeout) with its real SQLite store in a temporary directory,
feeds the month's first ``--hours`` (1.5) through the daemon's own result path (1 in 97 failing) and
flushes them, then freezes the heap (as the daemon does after start-up). Each round: ``--quiet``
seconds in the middle of a bucket, then the seconds around a bucket close (from 2 s before it to
10 s after, past the settle time, when every SLA's verdict is written); every second a
thirtieth of the targets report (as at a 30 s interval) and the daemon's flush iteration runs
(``Daemon._summarise_and_flush``, what ``_flush_loop`` runs every second) as a task on the loop.

Prints, for the quiet seconds and for the seconds of a close: the wall time per flush
iteration, the loop thread's CPU in its callbacks (every loop callback is timed), and its
longest callback (wall and CPU: on a loaded machine the wall time holds the OS running others
and the store's thread holding the GIL, the CPU is the code's own); then every loop callback
and collection over 20 ms, and where the task stood when it ended (the await that ended the
block). The clock is fixed: nothing depends on today's date.
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
from typing import Any

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accounting_bench import MONTH_START, write_config  # noqa: E402
from metrics_bench import result  # noqa: E402

from monitor.clock import FixedClock  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.runtime import heap  # noqa: E402
from monitor.runtime.daemon import MAX_VERDICTS_PER_FLUSH, Daemon  # noqa: E402

BUCKET = 300
BLOCKS: list[tuple[float, float, str]] = []
"""Loop callbacks over 20 ms: (seconds, where the task stood after it: the await ending it),
and collections over 10 ms."""


def _where(handle: asyncio.Handle) -> str:
    """The innermost frame a task's coroutine is suspended at (the await that ended a step)."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if not isinstance(task, asyncio.Task):
        return repr(callback)[:80]
    coro: Any = task.get_coro()
    where = task.get_name()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None and "asyncio" not in frame.f_code.co_filename:
            where = f"{frame.f_code.co_qualname}:{frame.f_lineno}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return where


_GC_BEGAN = [0.0, 0.0]


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    """Collections over 10 ms, beside the blocks (a block holding one is not the flush's)."""
    if phase == "start":
        _GC_BEGAN[:] = [time.perf_counter(), time.thread_time()]
    else:
        took = time.perf_counter() - _GC_BEGAN[0]
        if took > 0.01:
            used = time.thread_time() - _GC_BEGAN[1]
            BLOCKS.append((took, used, f"(gc generation {info['generation']})"))


def _watch_blocks() -> None:
    """Time every loop callback; keep those over 20 ms with where they ended."""
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.Handle) -> None:
        began, cpu = time.perf_counter(), time.thread_time()
        run(handle)
        took = time.perf_counter() - began
        used = time.thread_time() - cpu
        if getattr(getattr(handle, "_callback", None), "__self__", None) is FLUSH.task:
            FLUSH.cpu += used
            FLUSH.wall_max = max(FLUSH.wall_max, took)
            FLUSH.cpu_max = max(FLUSH.cpu_max, used)
        if took > 0.02:
            # The loop thread's own CPU beside the wall time: on a loaded machine the rest
            # is the OS running others (or the store's thread holding the GIL).
            BLOCKS.append((took, used, _where(handle)))

    asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]


class _Flush:
    """The flush task being timed and what its loop callbacks took."""

    task: object = None
    cpu = 0.0
    wall_max = 0.0
    cpu_max = 0.0


FLUSH = _Flush()


async def _timed_flush(daemon: Daemon) -> tuple[float, float, float, float]:
    """One flush iteration as a task: (its wall seconds, the loop thread's CPU in its
    callbacks, its longest callback's wall seconds, the most CPU one of them took)."""
    FLUSH.cpu = FLUSH.wall_max = FLUSH.cpu_max = 0.0
    task = asyncio.create_task(daemon._summarise_and_flush())
    FLUSH.task = task
    began = time.perf_counter()
    await task
    return time.perf_counter() - began, FLUSH.cpu, FLUSH.wall_max, FLUSH.cpu_max


async def run(
    slas: int, rounds: int, quiet_seconds: int, hours: float, profile: str | None
) -> None:
    work = Path(tempfile.mkdtemp(prefix="slawatch-flush-"))
    config = load_config(write_config(work, slas, 1))
    now = MONTH_START + int(hours * 3600) // BUCKET * BUCKET + 17
    clock = FixedClock(now)
    daemon = Daemon(config, clock=clock)
    await daemon.store.open()
    daemon.scheduler.apply(daemon._schedule(), now=now)
    names = [t.name for t in config.targets]
    per_second = max(1, slas // 30)
    reported = 0

    def report(name: str, at: float, ok: bool = True) -> None:
        daemon._on_result(daemon.scheduler.targets[name], result(name, at, ok))

    def second() -> None:
        """One second: a thirtieth of the targets report, just before the clock's instant."""
        nonlocal reported
        clock.advance(1)
        for _ in range(per_second):
            report(names[reported % slas], clock() - 0.5, reported % 97 != 0)
            reported += 1

    began = time.perf_counter()
    for bucket in range(MONTH_START, int(now) - 17, BUCKET):
        for number, name in enumerate(names):
            report(name, bucket + 7, (bucket // BUCKET + number) % 97 != 0)
    # The history's verdicts, at most MAX_VERDICTS_PER_FLUSH a flush, until none is left.
    for _ in range(2 + slas * int(now - MONTH_START) // BUCKET // MAX_VERDICTS_PER_FLUSH):
        await daemon._summarise_and_flush()
    print(
        f"{slas} one-target SLAs, {len(names)} targets, {hours} h fed and flushed: "
        f"{time.perf_counter() - began:.1f} s"
    )
    gc.collect()
    gc.freeze()
    heap.manage(True)  # as Daemon.start does at this size
    _watch_blocks()
    gc.callbacks.append(_gc_timer)
    quiet: list[tuple[float, float, float, float]] = []
    close: list[tuple[float, float, float, float]] = []
    profiler = cProfile.Profile() if profile is not None else None
    calm = cProfile.Profile() if profile is not None else None
    for _ in range(rounds):
        for _ in range(quiet_seconds):
            second()
            if calm is not None:
                calm.enable()
            quiet.append(await _timed_flush(daemon))
            if calm is not None:
                calm.disable()
        edge = (int(clock()) // BUCKET + 1) * BUCKET
        clock.seconds = edge - 3 + 0.25
        for _ in range(12):
            second()
            if profiler is not None:
                profiler.enable()
            close.append(await _timed_flush(daemon))
            if profiler is not None:
                profiler.disable()
    if profiler is not None and calm is not None and profile is not None:
        profiler.dump_stats(profile)
        calm.dump_stats(profile + ".quiet")
    for label, figures in (("quiet second", quiet), ("around a bucket close", close)):
        walls, cpus, longest, most = ([f[n] * 1000 for f in figures] for n in range(4))
        print(
            f"{label} ({len(figures)} flushes): flush iteration wall median "
            f"{statistics.median(walls):.1f} ms, max {max(walls):.1f} ms; loop-thread CPU in "
            f"its callbacks median {statistics.median(cpus):.1f} ms, max {max(cpus):.1f} ms; "
            f"its longest callback median {statistics.median(longest):.1f} ms, max "
            f"{max(longest):.1f} ms wall, at most {max(most):.1f} ms CPU"
        )
    if BLOCKS:
        over = sum(1 for took, _, _ in BLOCKS if took > 0.03)
        cpu = sum(1 for _, used, _ in BLOCKS if used > 0.02)
        print(
            f"loop callbacks (and collections) over 20 ms: {len(BLOCKS)}, over 30 ms: {over}, "
            f"over 20 ms of the loop thread's CPU: {cpu}; the longest, where they ended:"
        )
        for took, used, where in sorted(BLOCKS, reverse=True)[:6]:
            print(f"  {took * 1000:.1f} ms ({used * 1000:.1f} ms CPU)  {where}")
        print("the most CPU:")
        for took, used, where in sorted(BLOCKS, key=lambda b: -b[1])[:6]:
            print(f"  {took * 1000:.1f} ms ({used * 1000:.1f} ms CPU)  {where}")
    await daemon.store.close()


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slas", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quiet", type=int, default=8, help="quiet seconds per round")
    parser.add_argument("--hours", type=float, default=1.5, help="history fed before measuring")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="write cProfiles of the seconds around the closes (FILE) and the quiet ones "
        "(FILE.quiet)",
    )
    args = parser.parse_args()
    asyncio.run(run(args.slas, args.rounds, args.quiet, args.hours, args.profile))


if __name__ == "__main__":
    main()
