#!/usr/bin/env python3
"""Benchmark: start-up at the D-th day of the month with and without month snapshots (issue 20).

    .venv/bin/python bench/startup_bench.py --targets 200 --days 28
    .venv/bin/python bench/startup_bench.py --targets 2000 --days 7

The store and configuration are ``bench/memory_bench.py``'s (one-target SLAs, the worst
layout; D days of 5-minute tallies ending before a fixed "now" in December 2026). Three fresh
interpreters, one after the other, each building the daemon over that store (fixed clock):

1. ``full``: no snapshot in the store (as before issue 20's snapshots): ``Daemon._load_history``
   reads every stored tally of the current and previous month and judges them; then the
   months are saved (``save_s``: serialising and writing every SLA-month, what the hourly save
   costs at most), and their size in the store is measured (``snap_kb``: all of them);
2. ``snapshot``: a restart a minute later: ``_load_history`` starts from the snapshots and
   reads only the tallies after them (``restored``: months started from a snapshot);
3. ``spoiled``: the same after one tally per target was written by another process (an
   import) into the month: every current month's snapshot is spoiled and read in full again.

``load_s`` is the read and build (what ``/readyz`` waits for after the configuration is
read), ``first_s`` every SLA's current and previous month computed once after it.

``--fresh RUNS`` (issue 20, s23): a month's start instead, an empty store 12 hours into
the month, RUNS fresh interpreters, each timed as ``--seeded`` (``ready_s``, ``ready_cpu_s``)
with the configuration (``config_s``), ``Daemon()`` and the months (``load_s``) apart.

``--seeded HOURS`` (issue 20, month end at 10,000 SLAs): a month of tallies for 10,000 targets
is 80 M rows, which neither fits the time to write nor the "full" start to read (that start is
the 2,000-SLA rows above). Instead the store is given what a daemon stopped at day D leaves in
it: the guards armed (by ``MonthSnapshots.restorable``, as at a start), every SLA's previous
month and current month saved as snapshots up to ``HOURS`` before now (built synthetically
through the real codec and inputs digest: every bucket available but one in 100,
``--unavailable-every``, unavailable with its tallies as evidence), and the last ``HOURS`` of
real tallies. A fresh interpreter then times what ``slawatch run`` does before ``/readyz``:
the imports (``ready_s`` counts from the interpreter's start), ``load_config``, ``Daemon()``,
``_load_history`` and the schedule (``ready_cpu_s``: the process's CPU time up to the same
point, every thread, less disturbed than ``ready_s`` by other work on a shared machine), and
checks that every month started from its snapshot
(``first_s``: per SLA, over 200 SLAs). The tallies before the snapshots are not in the store:
a start from proven snapshots never reads them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

T_START = time.perf_counter()
"""The interpreter's start, near enough (the stdlib imports above take milliseconds)."""

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from memory_bench import DAY, MONTH_START, prefill, write_config  # noqa: E402


def measure(config: Path, now: int, save: bool, first_limit: int | None = None) -> dict[str, float]:
    """In this (fresh) process: start-up read and build, every month once (or the first
    ``first_limit`` SLAs': ``first_s`` is then per SLA), then a save."""
    from monitor.clock import FixedClock
    from monitor.config import gc_paused, load_config
    from monitor.instants import utc_from_epoch
    from monitor.runtime.daemon import Daemon

    began = time.perf_counter()
    loaded_config = load_config(config)
    config_s = time.perf_counter() - began
    began = time.perf_counter()
    daemon = Daemon(loaded_config, config, clock=FixedClock(float(now)))
    daemon_s = time.perf_counter() - began

    async def go() -> dict[str, float]:
        await daemon.store.open()
        try:
            began = time.perf_counter()
            with gc_paused():  # as Daemon.start
                await daemon._load_history(float(now))
                daemon.scheduler.apply(daemon._schedule(), now=float(now))
            loaded = time.perf_counter()
            ready = loaded - T_START
            ready_cpu = time.process_time()
            moment = utc_from_epoch(now)
            asked = daemon.accounting.inputs.policies[:first_limit]
            for policy in asked:
                result = daemon.accounting.month_result(policy, moment, stamp=False)
                daemon.accounting.month_result(policy, moment, result.month.previous())
            done = time.perf_counter()
            out = {
                "ready_s": ready,
                "ready_cpu_s": ready_cpu,
                "config_s": config_s,
                "daemon_s": daemon_s,
                "load_s": loaded - began,
                "first_s": (done - loaded) / (1 if first_limit is None else len(asked)),
                "restored": float(daemon.snapshots.restored),
                "save_s": float("nan"),
                "snap_kb": float("nan"),
            }
            if save:
                began = time.perf_counter()
                await daemon._save_snapshots(float(now))
                out["save_s"] = time.perf_counter() - began

                def size(conn: object) -> int:
                    row = conn.execute(  # type: ignore[attr-defined]
                        "SELECT coalesce(sum(length(state)), 0) FROM month_snapshots"
                    ).fetchone()
                    return int(row[0])

                out["snap_kb"] = await daemon.store._call(size) / 1024  # type: ignore[attr-defined]
            return out
        finally:
            await daemon.store.close()

    return asyncio.run(go())


def spoil(config: Path, now: int) -> None:
    """Another process rewrites one tally per target in the month (as ``slawatch import``)."""
    from monitor.config import load_config
    from monitor.store.base import TallyRow, WriteBatch
    from monitor.store.sqlite import SqliteStore

    loaded = load_config(config)
    bucket = MONTH_START + 3600

    async def write() -> None:
        store = SqliteStore(loaded.monitor.database_path, vantage="bench")
        await store.open()
        try:
            rows = [TallyRow("bench", t.name, bucket, 300, 10, 0) for t in loaded.targets]
            await store.write_batch(WriteBatch(tallies=rows))
        finally:
            await store.close()

    asyncio.run(write())


def seed(config: Path, now: int, hours: float, every: int = 100) -> int:
    """The store a daemon stopped at ``now`` leaves (see the module docs): guards armed,
    snapshots of every SLA's previous month and of its current month up to ``hours`` before
    ``now``, and the tallies of those last hours. Returns the snapshots written."""
    from monitor.clock import FixedClock
    from monitor.config import load_config
    from monitor.instants import utc_from_epoch
    from monitor.runtime.daemon import Daemon
    from monitor.sla.calendar import month_containing, month_grid
    from monitor.sla.policy import BucketState, Tally
    from monitor.sla.running import JudgedState
    from monitor.sla.running_codec import encode, inputs_digest
    from monitor.store.snapshots import MonthSnapshot

    prefill(config, hours / 24, now)
    daemon = Daemon(load_config(config), config, clock=FixedClock(float(now)))
    states = tuple(BucketState)
    available, unavailable = (
        states.index(BucketState.AVAILABLE),
        states.index(BucketState.UNAVAILABLE),
    )
    moment = utc_from_epoch(now)
    through_epoch = now - now % 300 - int(hours * 3600) // 300 * 300

    async def go() -> int:
        await daemon.store.open()
        try:
            inputs = daemon._inputs()
            await daemon.snapshots.restorable(inputs, inputs.policies, moment, "fresh")
            store = daemon.snapshots.store
            assert store is not None, "the bench's store is SQLite, which keeps snapshots"
            written = 0
            pending: list[MonthSnapshot] = []
            for policy in inputs.policies:
                service = inputs.services[policy.service]
                current = month_containing(moment, policy.timezone)
                for month in (current.previous(), current):
                    grid = month_grid(month, policy.timezone, policy.bucket_seconds)
                    judged = min(
                        grid.count, (through_epoch - grid.start_epoch) // grid.bucket_seconds
                    )
                    raw = bytearray([available]) * judged
                    failed = Tally(ok=0, failed=10, reasons={"http_503": 10})
                    evidence = []
                    for index in range(37, judged, every):
                        raw[index] = unavailable
                        evidence.append(
                            (index, tuple((name, failed) for name in service.all_targets))
                        )
                    state = JudgedState(judged, bytes(raw), (), (), tuple(evidence), 0)
                    digest = inputs_digest(
                        policy, service, month, inputs.canaries, inputs.gaps, judged
                    )
                    pending.append(
                        MonthSnapshot(
                            policy.name,
                            str(month),
                            policy.bucket_seconds,
                            grid.start_epoch + judged * grid.bucket_seconds,
                            digest,
                            encode(state),
                        )
                    )
                if len(pending) >= 1000:
                    written += await store.save_month_snapshots(pending)
                    pending = []
            written += await store.save_month_snapshots(pending)
            return written
        finally:
            await daemon.store.close()

    return asyncio.run(go())


def run(
    config: Path, now: int, save: bool, first: int = 0, profile: str | None = None
) -> dict[str, float]:
    """One fresh interpreter's :func:`measure`; ``profile``: under cProfile, its stats
    written there (``python -m pstats``), the figures then inflated by the profiler."""
    wrap = [] if profile is None else ["-m", "cProfile", "-o", profile]
    out = subprocess.run(
        [
            sys.executable,
            *wrap,
            __file__,
            "--measure",
            str(config),
            str(now),
            f"{int(save)},{first}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    row: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=200)
    parser.add_argument("--days", type=float, nargs="+", default=[28])
    parser.add_argument(
        "--seeded",
        type=float,
        metavar="HOURS",
        help="snapshots up to HOURS before now and those hours' tallies (see above)",
    )
    parser.add_argument(
        "--unavailable-every",
        type=int,
        default=100,
        metavar="N",
        help="with --seeded: one bucket in N judged unavailable (its tallies kept as evidence)",
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="with --seeded: a third start under cProfile, its stats written to PATH",
    )
    parser.add_argument(
        "--fresh",
        type=int,
        metavar="RUNS",
        help="a month's start instead (issue 20, s23): an empty store 12 h into the month, "
        "RUNS fresh interpreters one after the other",
    )
    parser.add_argument(
        "--measure", nargs=3, metavar=("CONFIG", "NOW", "SAVE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        config, now, save = args.measure
        saving, first = save.split(",")
        limit = int(first) or None
        print(json.dumps(measure(Path(config), int(now), saving == "1", limit)))
        return
    if args.fresh:
        now = MONTH_START + 12 * 3600
        with tempfile.TemporaryDirectory(prefix="slawatch-start-") as tmp:
            config = write_config(Path(tmp), args.targets)
            for attempt in range(args.fresh):
                row = run(config, now + attempt, False, first=1)
                print(
                    f"{args.targets} SLAs, a month's start (empty store): "
                    + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if k in _FRESH),
                    flush=True,
                )
        return
    if args.seeded is not None:
        for days in args.days:
            now = MONTH_START + int(days * DAY) + 12 * 3600
            with tempfile.TemporaryDirectory(prefix="slawatch-start-") as tmp:
                config = write_config(Path(tmp), args.targets)
                began = time.perf_counter()
                written = seed(config, now, args.seeded, args.unavailable_every)
                print(
                    f"seeded {written} snapshots and {args.seeded} h of tallies in "
                    f"{time.perf_counter() - began:.1f} s",
                    flush=True,
                )
                for attempt in range(2):
                    row = run(config, now + 60 + attempt, False, first=200)
                    print(
                        f"{args.targets} SLAs, day {days}, from snapshots: "
                        + ", ".join(f"{k} {v:.2f}" for k, v in row.items()),
                        flush=True,
                    )
                if args.profile:
                    run(config, now + 62, False, first=200, profile=args.profile)
                    print(f"profile of a third start written to {args.profile}", flush=True)
        return
    keys = [
        "targets",
        "days",
        "rows",
        "start",
        "load_s",
        "first_s",
        "restored",
        "save_s",
        "snap_kb",
    ]
    print(" | ".join(keys))
    for days in args.days:
        now = MONTH_START + int(days * DAY) + 12 * 3600
        with tempfile.TemporaryDirectory(prefix="slawatch-start-") as tmp:
            config = write_config(Path(tmp), args.targets)
            rows = prefill(config, days, now)
            for label, at, save in (("full", now, True), ("snapshot", now + 60, False)):
                row = run(config, at, save)
                _print(keys, row, args.targets, days, rows, label)
            spoil(config, now)
            _print(keys, run(config, now + 120, False), args.targets, days, rows, "spoiled")


_FRESH = ("ready_s", "ready_cpu_s", "config_s", "daemon_s", "load_s")
"""What ``--fresh`` prints: nothing is restored or saved at a month's start."""


def _print(
    keys: list[str], row: dict[str, float], targets: int, days: float, rows: int, label: str
) -> None:
    shown: dict[str, object] = {**row, "targets": targets, "days": days, "rows": rows}
    shown["start"] = label
    print(
        " | ".join(
            f"{shown[k]:.2f}" if isinstance(shown[k], float) else str(shown[k]) for k in keys
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
