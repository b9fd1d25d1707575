#!/usr/bin/env python3
"""Benchmark: where the daemon's memory goes per SLA, in process (issue 20).

    .venv/bin/python bench/sla_memory_bench.py --slas 10000 --day 28 [--tracemalloc]

Builds the configuration of ``bench/accounting_bench.py`` (``--slas`` SLAs of ``--per-sla``
http targets, 5-minute buckets, UTC) and a daemon over it (fixed clock on day ``--day`` of
December 2026 at 12:00 UTC), then in stages, printing the resident set (VmRSS) after each and
the growth per SLA:

1. ``config``     the configuration loaded (and frozen, as the daemon does);
2. ``daemon``     the daemon built over it (scheduler planned);
3. ``months``     every SLA's current month (to ``--day``) and previous month (complete)
                  built from tallies and installed, as start-up from the store does (10
                  probes per target and bucket, one failing bucket in 100: each failing bucket
                  an outage, the tallies of its bucket kept as evidence);
4. ``results``    every SLA's two months asked (the daemon's summary: the cached results);
5. ``metrics``    one ``/metrics`` rendering (the per-SLA text kept);
6. ``next``       a bucket later: every month advanced and asked again, rendered again.

The tallies are synthetic columns (no store, no 89 M rows): what is measured is what the
daemon keeps, not the read. With ``--tracemalloc`` the Python allocations alive at the end
are listed by file and line (the allocator's own overhead and freed arenas are not in them).
The clock is fixed: nothing depends on today's date.

``--store DIR`` (mem34, issue 20): a real start instead, from a store a daemon that ran all
month leaves, as ``bench/daemon_bench.py --month-end D --reuse-prefill`` keeps it (``DIR``
holds ``bench.yaml``, ``meta.json`` with the store's instant ``now``, and ``pristine/``,
the store as written; it is copied to a temporary directory, never written). The stages are
what ``Daemon.start`` does before ``/readyz``, in process, without probing: ``config``,
``daemon``, ``loaded`` (``_load_history``, the schedule, the heap frozen and trimmed),
``summary`` (the first summary and the per-SLA ``/metrics`` text it refreshes) and
``metrics`` (one ``/metrics`` body rendered, its process CPU printed). With
``--tracemalloc`` the allocations alive at the end are also summed by component (the
files they were made in) and printed in bytes per SLA.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import logging
import re
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Mapping
from pathlib import Path

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from accounting_bench import MONTH_START, write_config  # noqa: E402

from monitor.clock import FixedClock  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.instants import utc_from_epoch  # noqa: E402
from monitor.sla.calendar import month_bounds, month_containing  # noqa: E402
from monitor.sla.policy import BucketState, Tally  # noqa: E402
from monitor.sla.running import JudgedState  # noqa: E402

FAIL_EVERY = 100
"""One bucket in this many fails (0: none)."""
TEN = Tally(ok=10)
FAILING = Tally(ok=9, failed=1, reasons={"http_503": 1})


class Column(Mapping[int, Tally]):
    """A target's tallies from ``first`` to ``last`` (bucket starts), one bucket in 100
    failing, without a dict of them."""

    def __init__(self, first: int, last: int, size: int = 300) -> None:
        self.first, self.last, self.size = first, last, size

    def __getitem__(self, epoch: int) -> Tally:
        if not (self.first <= epoch <= self.last and (epoch - self.first) % self.size == 0):
            raise KeyError(epoch)
        return FAILING if FAIL_EVERY and (epoch // self.size) % FAIL_EVERY == 0 else TEN

    def __contains__(self, epoch: object) -> bool:
        return (
            isinstance(epoch, int)
            and self.first <= epoch <= self.last
            and (epoch - self.first) % self.size == 0
        )

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.last + 1, self.size))

    def __len__(self) -> int:
        return (self.last - self.first) // self.size + 1


class Columns(Mapping[str, Mapping[int, Tally]]):
    def __init__(self, names: frozenset[str], column: Column) -> None:
        self.names, self.column = names, column

    def __getitem__(self, name: str) -> Mapping[int, Tally]:
        if name not in self.names:
            raise KeyError(name)
        return self.column

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def judged(start: int, count: int, leaves: tuple[str, ...]) -> JudgedState:
    """The first ``count`` buckets of a month starting at ``start`` as start-up restores them
    from a snapshot: available, one bucket in 100 unavailable (its tallies kept as evidence)."""
    codes = tuple(BucketState)
    available, unavailable = (
        codes.index(BucketState.AVAILABLE),
        codes.index(BucketState.UNAVAILABLE),
    )
    raw = bytearray([available]) * count
    evidence = []
    for index in range(count):
        if FAIL_EVERY and ((start + index * 300) // 300) % FAIL_EVERY == 0:
            raw[index] = unavailable
            evidence.append((index, tuple((name, FAILING) for name in leaves)))
    return JudgedState(
        judged=count,
        raw=bytes(raw),
        excused=(),
        errors=(),
        evidence=tuple(evidence),
        first_tallied=0 if count else None,
    )


def vm(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def run(slas: int, per: int, day: int, trace: bool, top: int) -> None:
    from monitor.metrics.collector import MetricsExposition
    from monitor.metrics.contract import ContractCollector
    from monitor.runtime.daemon import Daemon

    if trace:
        tracemalloc.start(1)
    rows: list[tuple[str, float, float]] = []

    def stage(label: str, began: float) -> None:
        gc.collect()
        rows.append((label, vm(), time.perf_counter() - began))
        print(f"{label:8} rss {rows[-1][1]:8.1f} MB  ({rows[-1][2]:.1f} s)", flush=True)

    stage("start", time.perf_counter())
    work = Path(tempfile.mkdtemp(prefix="slawatch-slamem-"))
    began = time.perf_counter()
    config = load_config(write_config(work, slas, per))
    stage("config", began)
    now = MONTH_START + (day - 1) * 86400 + 12 * 3600 + 17
    clock = FixedClock(float(now))
    began = time.perf_counter()
    daemon = Daemon(config, clock=clock)
    daemon.scheduler.apply(daemon._schedule(), now=now)
    stage("daemon", began)

    began = time.perf_counter()
    accounting = daemon.accounting
    inputs = accounting.inputs
    moment = utc_from_epoch(now)
    names = frozenset(t.name for t in config.targets)
    current_start = MONTH_START
    month = month_containing(moment, "UTC")
    previous_start = int(month_bounds(month.previous(), "UTC")[0].timestamp())
    last = now - now % 300 - 300
    # The open window (the last hour) in the live state, as after start-up's eviction.
    ten = Tally(ok=10)
    edge = last - 3600
    daemon.state.load(
        300, {t.name: {b: ten for b in range(edge, last + 1, 300)} for t in config.targets}
    )
    daemon.state.evict_before({300: edge})  # older tallies: the store's
    recent = Columns(names, Column(edge, last))
    prepared = []
    for policy in inputs.policies:
        service = inputs.services[policy.service]
        leaves = service.all_targets
        prepared.append(
            accounting.prepare(
                inputs,
                policy,
                month.previous(),
                recent,
                moment,
                judged(previous_start, (current_start - previous_start) // 300, leaves),
            )
        )
        prepared.append(
            accounting.prepare(
                inputs,
                policy,
                month,
                recent,
                moment,
                judged(current_start, (edge - current_start) // 300, leaves),
            )
        )
    accounting.install(inputs, prepared)
    del prepared
    stage("months", began)

    def summarise() -> None:
        m = utc_from_epoch(clock())
        for policy in accounting.inputs.policies:
            r = accounting.month_result(policy, m, stamp=False)
            accounting.month_result(policy, m, r.month.previous(), stamp=False)

    began = time.perf_counter()
    summarise()
    stage("results", began)
    exposition = MetricsExposition(daemon, extra=[ContractCollector(daemon)])
    began = time.perf_counter()
    body = await exposition.render()
    size = len(body)
    del body
    stage("metrics", began)
    clock.advance(300)
    daemon.state.load(300, {t.name: {last + 300: ten} for t in config.targets})
    began = time.perf_counter()
    summarise()
    refresh = getattr(exposition, "refresh", None)
    if refresh is not None:
        await refresh()
    body = await exposition.render()
    del body
    stage("next", began)
    print(f"body {size / 1e6:.1f} MB; peak (VmHWM) {vm('VmHWM'):.1f} MB")
    print()
    print("| stage | RSS MB | growth MB | KB per SLA |")
    print("|---|---|---|---|")
    before = rows[0][1]
    for label, rss, _ in rows:
        print(f"| {label} | {rss:.1f} | {rss - before:+.1f} | {(rss - before) * 1024 / slas:.1f} |")
        before = rss
    if trace:
        snapshot = tracemalloc.take_snapshot()
        print()
        print(f"tracemalloc, top {top} lines alive at the end:")
        for stat in snapshot.statistics("lineno")[:top]:
            frame = stat.traceback[0]
            where = frame.filename.replace(str(ROOT) + "/", "")
            print(f"{stat.size / 1e6:8.1f} MB {stat.count:9d}  {where}:{frame.lineno}")
        print()
        print("by file:")
        for stat in snapshot.statistics("filename")[:top]:
            where = stat.traceback[0].filename.replace(str(ROOT) + "/", "")
            print(f"{stat.size / 1e6:8.1f} MB {stat.count:9d}  {where}")


COMPONENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("configuration", ("monitor/config/", "pydantic/", "yaml/", "probes/")),
    ("running months", ("monitor/sla/running.py", "monitor/sla/packed.py")),
    ("snapshot codec", ("monitor/sla/running_codec.py",)),
    ("month results", ("monitor/sla/", "monitor/accounting.py", "fractions.py", "decimal")),
    ("/metrics text", ("monitor/metrics/",)),
    ("live tallies", ("monitor/runtime/state.py", "monitor/store/sqlite_availability.py")),
    ("store reads, snapshots", ("monitor/store/", "monitor/runtime/snapshots.py")),
    ("scheduler", ("monitor/runtime/scheduler.py",)),
    ("daemon, other runtime", ("monitor/runtime/", "monitor/")),
)
"""Components of the per-SLA memory, by the file an allocation was made in (first match)."""


def component(filename: str) -> str:
    for label, parts in COMPONENTS:
        if any(part in filename for part in parts):
            return label
    return "other (stdlib, asyncio, sqlite3)"


def store_config(source: Path, work: Path) -> tuple[Path, int]:
    """``source``'s configuration with its store's directory moved to ``work/state`` (a copy
    of ``source/pristine``), and the store's instant."""
    now = int(json.loads((source / "meta.json").read_text())["now"])
    text = (source / "bench.yaml").read_text()
    text, found = re.subn(r"(?m)^  state_dir: .*$", f"  state_dir: {work / 'state'}", text)
    if found != 1:
        raise SystemExit(f"{source / 'bench.yaml'}: expected one monitor.state_dir line")
    shutil.copytree(source / "pristine", work / "state")
    path = work / "bench.yaml"
    path.write_text(text)
    return path, now


async def run_store(source: Path, trace: bool, top: int) -> None:
    """What ``Daemon.start`` does before ready (no probing, no HTTP), stage by stage, from the
    store ``source`` holds."""
    from monitor.config import gc_paused
    from monitor.metrics.collector import MetricsExposition
    from monitor.metrics.contract import ContractCollector
    from monitor.runtime import heap
    from monitor.runtime.daemon import FREEZE_FROM, Daemon, freeze_heap

    work = Path(tempfile.mkdtemp(prefix="slawatch-slamem-"))
    try:
        path, now = store_config(source, work)
        if trace:
            tracemalloc.start(1)
        rows: list[tuple[str, float, float]] = []

        def stage(label: str) -> None:
            gc.collect()
            traced = tracemalloc.get_traced_memory()[0] / 1e6 if trace else float("nan")
            rows.append((label, vm(), traced))
            print(
                f"{label:8} rss {vm():8.1f} MB  hwm {vm('VmHWM'):8.1f} MB  traced {traced:7.1f} MB"
                f"  cpu {time.process_time():6.1f} s",
                flush=True,
            )

        stage("start")
        config = load_config(path)
        slas = len(config.slas)
        stage("config")
        daemon = Daemon(config, path, clock=FixedClock(float(now)))
        exposition = MetricsExposition(daemon, extra=[ContractCollector(daemon)])
        stage("daemon")
        await daemon.store.open()
        try:
            with gc_paused():  # as Daemon.start
                await daemon._load_history(float(now))
                daemon.scheduler.apply(daemon._schedule(), now=float(now))
            freeze_heap(daemon.config)
            heap.manage(len(config.targets) + len(config.slas) >= FREEZE_FROM)
            heap.trim()
            await asyncio.sleep(0.2)  # the trim runs in a thread of its own
            stage("loaded")
            await daemon._summarise()  # the flush loop's first iteration's summary
            await exposition.settled()  # the per-SLA text its hook refreshes
            heap.trim()
            await asyncio.sleep(0.2)
            stage("summary")
            began = time.process_time()
            body = await exposition.render()
            render_cpu = time.process_time() - began
            size = len(body)
            digest = hashlib.sha256(body).hexdigest()[:16]
            del body
            # A scrape as /metrics sends it (monitor.http.pieces): the pieces rendered, their
            # lengths summed, then each read in turn (never joined).
            began = time.process_time()
            parts = await exposition.render_parts()
            known = getattr(parts, "nbytes", None)
            sent = known if isinstance(known, int) else sum(len(piece) for piece in parts)
            for piece in parts:
                sent -= len(piece)
            del parts, piece
            again_cpu = time.process_time() - began
            assert sent == 0
            heap.trim()
            await asyncio.sleep(0.2)
            stage("metrics")
        finally:
            await daemon.store.close()
        print(
            f"slas {slas}; body {size / 1e6:.1f} MB (sha256 {digest}); render CPU "
            f"{render_cpu:.3f} s, then a scrape's pieces {again_cpu:.3f} s; "
            f"peak (VmHWM) {vm('VmHWM'):.1f} MB"
        )
        print()
        print("| stage | RSS MB | growth MB | KB per SLA |")
        print("|---|---|---|---|")
        before = rows[0][1]
        for label, rss, _ in rows:
            growth = rss - before
            print(f"| {label} | {rss:.1f} | {growth:+.1f} | {growth * 1024 / slas:.1f} |")
            before = rss
        print(
            f"| all after start | {rows[-1][1]:.1f} | {rows[-1][1] - rows[0][1]:+.1f} | "
            f"{(rows[-1][1] - rows[0][1]) * 1024 / slas:.1f} |"
        )
        if trace:
            snapshot = tracemalloc.take_snapshot()
            tracemalloc.stop()
            sums: dict[str, list[int]] = {}
            for stat in snapshot.statistics("filename"):
                got = sums.setdefault(component(stat.traceback[0].filename), [0, 0])
                got[0] += stat.size
                got[1] += stat.count
            total = sum(size for size, _ in sums.values())
            print()
            print(f"Python allocations alive after start, by component ({slas} SLAs):")
            print("| component | MB | objects | bytes per SLA |")
            print("|---|---|---|---|")
            for label, (size, count) in sorted(sums.items(), key=lambda kv: -kv[1][0]):
                print(f"| {label} | {size / 1e6:.1f} | {count} | {size / slas:.0f} |")
            print(f"| all | {total / 1e6:.1f} | | {total / slas:.0f} |")
            print()
            print(f"top {top} lines:")
            for stat in snapshot.statistics("lineno")[:top]:
                frame = stat.traceback[0]
                where = frame.filename.replace(str(ROOT) + "/", "")
                print(
                    f"{stat.size / 1e6:8.1f} MB {stat.count:9d} {stat.size / slas:7.0f} B/SLA"
                    f"  {where}:{frame.lineno}"
                )
        globals()["_KEPT"] = (daemon, exposition)  # alive until here: nothing freed early
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slas", type=int, default=10000)
    parser.add_argument("--per-sla", type=int, default=1)
    parser.add_argument("--day", type=int, default=28, help="day of December 2026 (1-31)")
    parser.add_argument(
        "--fail-every", type=int, default=100, help="one failing bucket in N (0: none)"
    )
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--store",
        type=Path,
        help="start from this month-end store instead (bench.yaml, meta.json, pristine/, as "
        "daemon_bench.py --reuse-prefill keeps it); --slas, --per-sla, --day are its",
    )
    args = parser.parse_args()
    global FAIL_EVERY
    FAIL_EVERY = args.fail_every
    if args.store is not None:
        asyncio.run(run_store(args.store, args.tracemalloc, args.top))
        return
    asyncio.run(run(args.slas, args.per_sla, args.day, args.tracemalloc, args.top))


if __name__ == "__main__":
    main()
