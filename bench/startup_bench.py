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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from memory_bench import DAY, MONTH_START, prefill, write_config  # noqa: E402


def measure(config: Path, now: int, save: bool) -> dict[str, float]:
    """In this (fresh) process: start-up read and build, every month once, then a save."""
    from monitor.clock import FixedClock
    from monitor.config import load_config
    from monitor.instants import utc_from_epoch
    from monitor.runtime.daemon import Daemon

    daemon = Daemon(load_config(config), config, clock=FixedClock(float(now)))

    async def go() -> dict[str, float]:
        await daemon.store.open()
        try:
            began = time.perf_counter()
            await daemon._load_history(float(now))
            loaded = time.perf_counter()
            moment = utc_from_epoch(now)
            for policy in daemon.accounting.inputs.policies:
                result = daemon.accounting.month_result(policy, moment, stamp=False)
                daemon.accounting.month_result(policy, moment, result.month.previous())
            done = time.perf_counter()
            out = {
                "load_s": loaded - began,
                "first_s": done - loaded,
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


def run(config: Path, now: int, save: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(config), str(now), str(int(save))],
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
        "--measure", nargs=3, metavar=("CONFIG", "NOW", "SAVE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        config, now, save = args.measure
        print(json.dumps(measure(Path(config), int(now), save == "1")))
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
