#!/usr/bin/env python3
"""Benchmark: ``GET /metrics`` through the daemon's own HTTP app at N one-target SLAs, in
process: how long a scrape holds the event loop at a time, its CPU, the bytes it allocates.

    .venv/bin/python bench/scrape_bench.py --slas 10000 [--per-sla 1] [--hours 20] [--repeat 5]
    .venv/bin/python bench/scrape_bench.py --slas 10000 --tracemalloc   # allocation peaks

The daemon is built as ``bench/metrics_bench.py`` builds it (``--slas`` SLAs of ``--per-sla``
http targets, 5-minute buckets, UTC, ``--hours`` of tallies from 1 Dec 2026 00:00 UTC, every
target with a last result, a fixed clock: nothing depends on today's date). Its app
(``monitor.http.api.build_app``) listens on 127.0.0.1 port 0; a client in a worker thread
(off the loop, as Prometheus is) fetches ``/metrics``, while a ticker task on the loop notes the
longest time between two of its turns: the longest the loop was held at a time.

Scenarios: a steady scrape 5 s after the last (a sixth of the targets holding a new result),
a scrape right after a bucket closed with nothing done before it, and the daemon's refresh
after its summary (what brings the SLAs up to date off the scrape) then a scrape.
Prints per scenario: wall time, process CPU, longest loop block, and with ``--tracemalloc``
the peak of traced memory above what was allocated before the scrape began.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from metrics_bench import build_daemon, daemon_arguments, new_results, summarise  # noqa: E402

from monitor.http.api import build_app  # noqa: E402


class Ticker:
    """Notes the longest gap between two turns of a task that only yields: the longest any
    other callback held the loop."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.longest_cpu = 0.0
        self._last = time.perf_counter()
        self._last_cpu = time.thread_time()
        self._stop = False
        self.measuring = False

    def reset(self) -> None:
        """Start a measurement now (what ran synchronously before it is not counted)."""
        self.longest = self.longest_cpu = 0.0
        self._last = time.perf_counter()
        self._last_cpu = time.thread_time()

    async def run(self) -> None:
        while not self._stop:
            await asyncio.sleep(0)
            now, cpu = time.perf_counter(), time.thread_time()
            self.longest = max(self.longest, now - self._last)
            self.longest_cpu = max(self.longest_cpu, cpu - self._last_cpu)
            self._last, self._last_cpu = now, cpu

    def stop(self) -> None:
        self._stop = True


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.status, response.read()


async def measure(
    label: str,
    ticker: Ticker,
    action: Callable[[], Awaitable[object]],
    traced: bool,
    rows: dict[str, list[tuple[float, float, float, float, float]]],
) -> object:
    if traced:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    ticker.reset()
    ticker.measuring = True
    out = await action()
    ticker.measuring = False
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = (tracemalloc.get_traced_memory()[1] - base) / 1e6 if traced else float("nan")
    rows.setdefault(label, []).append((wall, cpu, ticker.longest, ticker.longest_cpu, peak))
    return out


CURL = shutil.which("curl")
"""The client: curl in its own process when installed, else urllib in a worker thread."""

STACKS: dict[str, int] | None = None
"""--stacks: what the loop's thread was running while it was held over 15 ms (5 ms samples)."""


def watch(ticker: Ticker, thread_id: int, stacks: dict[str, int]) -> None:
    """Sample the loop thread's stack every 5 ms while the ticker has not turned for 15 ms."""
    while not ticker._stop:
        time.sleep(0.005)
        if ticker.measuring and time.perf_counter() - ticker._last > 0.015:
            frame = sys._current_frames().get(thread_id)
            names: list[str] = []
            while frame is not None and len(names) < 12:
                code = frame.f_code
                names.append(f"{code.co_name}:{Path(code.co_filename).name}:{frame.f_lineno}")
                frame = frame.f_back
            key = " < ".join(names[:6])
            stacks[key] = stacks.get(key, 0) + 1


async def run(slas: int, per: int, hours: float, repeat: int, traced: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="slawatch-scrape-"))
    daemon, clock = build_daemon(work, slas, per, hours)
    summarise(daemon, clock)
    app = build_app(daemon)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/metrics"
    loop = asyncio.get_running_loop()
    ticker = Ticker()
    ticking = loop.create_task(ticker.run())
    if STACKS is not None:
        threading.Thread(
            target=watch, args=(ticker, threading.get_ident(), STACKS), daemon=True
        ).start()

    keep_body = False

    async def scrape() -> bytes:
        if CURL is None:
            status, body = await loop.run_in_executor(None, fetch, url)
            assert status == 200, status
            return body
        # A client in its own process: no GIL shared with the loop's thread.
        # The body to a file, not through a pipe read on this loop.
        process = await asyncio.create_subprocess_exec(
            CURL, "-sf", "--max-time", "120", "-o", str(work / "body"), url
        )
        assert await process.wait() == 0, process.returncode
        return (work / "body").read_bytes() if keep_body else b""

    if traced:
        tracemalloc.start()
    rows: dict[str, list[tuple[float, float, float, float, float]]] = {}
    rss_before = _rss()
    keep_body = True
    body = await measure("first scrape", ticker, scrape, traced, rows)
    keep_body = False
    assert isinstance(body, bytes)
    series = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
    print(f"body {len(body) / 1e6:.1f} MB, {series} series; {threading.active_count()} threads")
    del body
    for round_ in range(repeat):
        clock.advance(5)
        new_results(daemon, clock, round_)
        summarise(daemon, clock)
        await measure("steady scrape (1/6 new results)", ticker, scrape, traced, rows)
    exposition_refresh = None
    for hook in daemon.summary_hooks:
        exposition_refresh = hook
    for _ in range(max(1, repeat // 2)):
        clock.advance(300)
        summarise(daemon, clock)
        await measure("scrape after a bucket closed, not refreshed", ticker, scrape, traced, rows)
        clock.advance(300)
        summarise(daemon, clock)
        if exposition_refresh is not None:
            await exposition_refresh()  # starts the refresh in its own task, as the daemon
            await measure("  refresh after a bucket closed", ticker, settle(app), traced, rows)
        await measure("scrape after a bucket closed, refreshed", ticker, scrape, traced, rows)
    ticker.stop()
    await ticking
    rss = _status()
    print(
        f"RSS after the scrapes {rss['VmRSS']:.0f} MB, peak (VmHWM) {rss['VmHWM']:.0f} MB, "
        f"before the first scrape {rss_before:.0f} MB"
    )
    if STACKS is not None:
        print("-- the loop thread while held over 15 ms (5 ms samples):")
        for key, count in sorted(STACKS.items(), key=lambda kv: -kv[1])[:25]:
            print(f"{count:5d}  {key}")
    await runner.cleanup()
    print(
        f"{'scenario':46} {'wall s':>7} {'cpu s':>6} {'block ms':>8} {'cpu-block':>9} "
        f"{'alloc MB':>8}  (worst block wall/cpu)"
    )
    for label, values in rows.items():
        wall, cpu, block, held, peak = (statistics.median(v[i] for v in values) for i in range(5))
        print(
            f"{label:46} {wall:7.3f} {cpu:6.3f} {block * 1000:8.1f} {held * 1000:9.1f} "
            f"{peak:8.1f}  ({max(v[2] for v in values) * 1000:.1f}/"
            f"{max(v[3] for v in values) * 1000:.1f} ms, n={len(values)})"
        )


def _status() -> dict[str, float]:
    """VmRSS and VmHWM of this process, MB."""
    return {
        line[:5]: int(line.split()[1]) / 1024
        for line in Path("/proc/self/status").read_text().splitlines()
        if line[:5] in ("VmRSS", "VmHWM")
    }


def _rss() -> float:
    return _status()["VmRSS"]


def settle(app: web.Application) -> Callable[[], Awaitable[None]]:
    """Wait for the per-SLA refresh the summary hook started."""

    async def wait() -> None:
        from monitor.http import api

        exposition = app.get(api.EXPOSITION) if hasattr(api, "EXPOSITION") else None
        if exposition is not None:
            await exposition.settled()
        else:  # before the key existed: the refresh task is the only other one running
            others = [
                t
                for t in asyncio.all_tasks()
                if t is not asyncio.current_task() and "refresh" in repr(t.get_coro())
            ]
            await asyncio.gather(*others)

    return wait


def main() -> None:
    parser = daemon_arguments(__doc__)
    parser.add_argument("--tracemalloc", action="store_true", help="trace allocation peaks")
    parser.add_argument(
        "--blocks", action="store_true", help="asyncio debug: log each callback over 20 ms"
    )
    parser.add_argument("--stacks", action="store_true", help="sample the loop while held")
    args = parser.parse_args()
    if args.stacks:
        global STACKS
        STACKS = {}
    if args.blocks:
        logging.basicConfig(level=logging.WARNING)

        async def debugged() -> None:
            loop = asyncio.get_running_loop()
            loop.slow_callback_duration = 0.02
            await run(args.slas, args.per_sla, args.hours, args.repeat, args.tracemalloc)

        asyncio.run(debugged(), debug=True)
        return
    asyncio.run(run(args.slas, args.per_sla, args.hours, args.repeat, args.tracemalloc))


if __name__ == "__main__":
    main()
