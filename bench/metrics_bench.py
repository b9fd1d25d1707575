#!/usr/bin/env python3
"""Benchmark: one ``/metrics`` rendering of the daemon at N one-target SLAs, in process.

    .venv/bin/python bench/metrics_bench.py --slas 10000 [--per-sla 1] [--hours 20]

Builds the configuration of ``bench/accounting_bench.py`` (``--slas`` SLAs of ``--per-sla``
http targets, 5-minute buckets, UTC), fills the daemon's live state with ``--hours`` of
tallies from 1 Dec 2026 00:00 UTC, gives every target a last result, brings the months up to
date (as the daemon's summary does before a scrape) and times ``MetricsExposition.render``
(what ``GET /metrics`` returns): the first scrape, a scrape 5 s later with a sixth of the
targets holding a new result (a 30 s interval), and one after a bucket closed (every SLA's
month moved), with and without the daemon's refresh after its summary (what it does before
the next scrape, off the scrape). The clock is fixed: nothing depends on today's date. Prints
the body's size and series count too.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
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

from monitor.clock import FixedClock  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.instants import utc_from_epoch  # noqa: E402
from monitor.metrics.collector import MetricsExposition  # noqa: E402
from monitor.metrics.contract import ContractCollector  # noqa: E402
from monitor.runtime import heap  # noqa: E402
from monitor.runtime.daemon import FREEZE_FROM, Daemon, freeze_heap  # noqa: E402
from monitor.runtime.state import bucket_floor  # noqa: E402
from monitor.sla.policy import Tally  # noqa: E402
from probes.result import Outcome, ProbeResult  # noqa: E402

PROFILE = False


def result(name: str, at: float, ok: bool = True) -> ProbeResult:
    return ProbeResult(
        name,
        Outcome.UP if ok else Outcome.DOWN,
        at,
        duration_seconds=0.0042,
        reason="" if ok else "status_code_503",
        details={"status_code": 200 if ok else 503},
    )


def build_daemon(work: Path, slas: int, per: int, hours: float) -> tuple[Daemon, FixedClock]:
    """The daemon of ``slas`` SLAs of ``per`` targets over a fixed clock ``hours`` into the
    month (``accounting_bench``'s configuration in ``work``): ``hours`` of tallies of ten
    successes per bucket in its live state, every target with a last result (1 in 7 down).
    Shared with bench/scrape_bench.py."""
    config = load_config(write_config(work, slas, per))
    now = MONTH_START + hours * 3600 + 17
    clock = FixedClock(now)
    daemon = Daemon(config, clock=clock)
    ten = Tally(ok=10)
    daemon.state.load(
        300,
        {t.name: {b: ten for b in range(MONTH_START, int(now) - 300, 300)} for t in config.targets},
    )
    daemon.scheduler.apply(daemon._schedule(), now=now)
    for number, target in enumerate(config.targets):
        daemon._on_result(
            daemon.scheduler.targets[target.name], result(target.name, now - 10, number % 7 != 0)
        )
    return daemon, clock


def summarise(daemon: Daemon, clock: FixedClock) -> float:
    """Every SLA's running and previous month brought up to ``clock()`` (as the daemon's
    summary does before a scrape); the seconds it took."""
    began = time.perf_counter()
    moment = utc_from_epoch(clock())
    built = 0
    for policy in daemon.accounting.inputs.policies:
        r = daemon.accounting.month_result(policy, moment, stamp=False)
        daemon.accounting.month_result(policy, moment, r.month.previous(), stamp=False)
        built += 1
        if built >= heap.FREEZE_AFTER:  # fw28: as the daemon's summary does (st26)
            heap.long_lived(built)
            built = 0
    heap.long_lived(len(daemon.accounting.inputs.policies))
    return time.perf_counter() - began


def new_results(daemon: Daemon, clock: FixedClock, round_: int) -> None:
    """A sixth of the targets (which sixth turns with ``round_``) report a success a second
    ago: five seconds of a 30 s interval."""
    for number, target in enumerate(daemon.config.targets):
        if number % 6 == round_ % 6:
            daemon._on_result(
                daemon.scheduler.targets[target.name], result(target.name, clock() - 1)
            )


async def run(slas: int, per: int, hours: float, repeat: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="slawatch-metrics-"))
    began = time.perf_counter()
    daemon, clock = build_daemon(work, slas, per, hours)
    config = daemon.config
    print(f"config loaded, daemon built: {time.perf_counter() - began:.2f} s")
    # fw28 (issue 20): the collector's policy of the daemon's start (Daemon.start): the heap
    # frozen after the load, the thresholds of monitor.runtime.heap for a large configuration.
    # Without it full collections over the months being built were most of the figures below,
    # and varied from run to run by seconds.
    freeze_heap(config)
    heap.manage(len(config.targets) + len(config.slas) >= FREEZE_FROM)
    exposition = MetricsExposition(daemon, extra=[ContractCollector(daemon)])
    print(f"first summary (every SLA's two months built): {summarise(daemon, clock):.2f} s")
    # The month's verdicts so far written once, as the daemon's first flushes do.
    while True:
        rows, marks = daemon._closed_verdicts(clock())
        daemon._verdicts_written.update(marks)
        daemon._verdicts_idle[1].update(daemon._verdicts_idle_next)
        if not rows:
            break

    async def scrape(label: str) -> bytes:
        began = time.perf_counter()
        body = await exposition.render()
        took = time.perf_counter() - began
        print(f"{label}: {took:.3f} s")
        return body

    body = await scrape("first scrape")
    series = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
    print(f"body {len(body) / 1e6:.1f} MB, {series} series")
    steady: list[float] = []
    summaries: list[float] = []
    verdicts: list[float] = []
    profile = cProfile.Profile() if PROFILE else None
    for round_ in range(repeat):
        clock.advance(5)
        new_results(daemon, clock, round_)
        summaries.append(summarise(daemon, clock))
        # The flush's verdict pass, with the keys a flush writes (a second of results).
        late = [(300, t.name, int(bucket_floor(clock() - 1, 300))) for t in config.targets[:333]]
        began = time.perf_counter()
        _, marks = daemon._closed_verdicts(clock(), late)
        verdicts.append(time.perf_counter() - began)
        daemon._verdicts_written.update(marks)  # as a flush that wrote them does
        daemon._verdicts_idle[1].update(daemon._verdicts_idle_next)
        began = time.perf_counter()
        if profile is not None:
            profile.enable()
        await exposition.render()
        if profile is not None:
            profile.disable()
        steady.append(time.perf_counter() - began)
    if profile is not None:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
    print(
        f"scrape 5 s later, 1/6 of targets with a new result: median "
        f"{statistics.median(steady):.3f} s, worst {max(steady):.3f} s over {repeat}"
    )
    print(
        f"  the daemon's summary between them (every SLA's two months asked, none moved): "
        f"median {statistics.median(summaries):.3f} s"
    )
    print(
        f"  the flush's verdict pass (Daemon._closed_verdicts, 333 tallies written): "
        f"median {statistics.median(verdicts):.3f} s"
    )
    if STEADY:
        await steady_state(daemon, exposition, clock, config.targets, STEADY)
    clock.advance(300)
    print(f"a bucket closed, months summarised: {summarise(daemon, clock):.2f} s")
    await scrape("scrape after a bucket closed (nothing done before it)")
    clock.advance(300)
    print(f"another bucket closed, months summarised: {summarise(daemon, clock):.2f} s")
    refresh = getattr(exposition, "refresh", None)  # absent before issue 20's change feed
    if refresh is not None:
        began = time.perf_counter()
        await refresh()
        print(
            f"  the daemon's refresh after its summary (sliced, off the scrape): "
            f"{time.perf_counter() - began:.3f} s"
        )
    await scrape("scrape after a bucket closed, refreshed before it")
    clock.advance(5)
    await scrape("scrape 5 s later, nothing changed")


STEADY = 0


async def steady_state(
    daemon: Daemon, exposition: MetricsExposition, clock: FixedClock, targets: Any, seconds: int
) -> None:
    """cpu26 (issue 20): ``seconds`` of the daemon's steady state between two bucket closes,
    as far as /metrics is concerned: every second a thirtieth of the targets (a 30 s
    interval) has a new result and the daemon's refresh runs after its summary; every 5 s a
    scrape. Prints the CPU of the refreshes and of the scrapes, per second simulated."""
    refreshing = scraping = 0.0
    profile = cProfile.Profile() if PROFILE else None
    clock.seconds = bucket_floor(clock(), 300) + 301  # just after a close, taken untimed
    await exposition.refresh()
    await exposition.render()
    for second in range(seconds):
        clock.advance(1)
        for number, target in enumerate(targets):
            if number % 30 == second % 30:
                daemon._on_result(
                    daemon.scheduler.targets[target.name], result(target.name, clock() - 0.5)
                )
        began = time.process_time()
        await exposition.refresh()
        refreshing += time.process_time() - began
        if second % 5 == 4:
            began = time.process_time()
            if profile is not None:
                profile.enable()
            await exposition.render()
            if profile is not None:
                profile.disable()
            scraping += time.process_time() - began
    print(
        f"steady state, {seconds} s (no bucket close): refresh {1000 * refreshing / seconds:.2f}"
        f" ms CPU per second, scrapes {1000 * scraping / seconds:.2f} ms per second, "
        f"together {1000 * (refreshing + scraping) / seconds:.2f} ms per second"
    )
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(15)


def daemon_arguments(doc: str) -> argparse.ArgumentParser:
    """The options of :func:`build_daemon` (and ``--repeat``), described by ``doc``'s first
    paragraph; logs below warnings silenced (1/7 of the targets fail: one log line each, not
    what is measured). Shared with bench/scrape_bench.py."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--slas", type=int, default=10000)
    parser.add_argument("--per-sla", type=int, default=1)
    parser.add_argument("--hours", type=float, default=20.0, help="history into the month")
    parser.add_argument("--repeat", type=int, default=5)
    return parser


def main() -> None:
    parser = daemon_arguments(__doc__)
    parser.add_argument("--profile", action="store_true", help="cProfile the steady scrapes")
    parser.add_argument(
        "--steady",
        type=int,
        default=0,
        help="seconds of steady state (results, refreshes, a "
        "scrape every 5 s) to time before the bucket close (cpu26)",
    )
    args = parser.parse_args()
    global PROFILE, STEADY
    PROFILE = args.profile
    STEADY = args.steady
    asyncio.run(run(args.slas, args.per_sla, args.hours, args.repeat))


if __name__ == "__main__":
    main()
