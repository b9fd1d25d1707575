#!/usr/bin/env python3
"""Benchmark: the hourly snapshot save after a day-28 start, in process (issue 20, hd34).

    .venv/bin/python bench/snapshot_save_bench.py --dir DIR [--advance 3600]

``DIR`` is a copy of a ``bench/daemon_bench.py --month-end 28`` store's directory
(``bench.yaml``, ``meta.json``, ``pristine/slawatch.db``) whose ``bench.yaml`` points its
``state_dir`` at ``DIR/state``: the pristine store is copied there afresh, the daemon built as
``bench/startup_bench.py``'s ``measure()`` does (``FixedClock`` at meta ``now``), started from
its snapshots, its heap frozen as ``Daemon.start`` does, then saved twice ``--advance`` seconds
later (the first save, and one with nothing changed since). For each save: the months written,
the process's CPU (every thread), the loop thread's CPU, and the most CPU one step of the loop
took (every callback timed in the loop thread's CPU, robust to a busy machine). No port is
opened.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


_LONGEST = [0.0]
"""The most CPU one callback of the loop (a task's step) took while recording."""


def _record_steps() -> None:
    """Every loop callback timed in the loop thread's CPU (``asyncio.events.Handle._run``
    wrapped): no task spinning beside the save, so the CPU figures are the save's own."""
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        began = time.thread_time()
        run(handle)
        _LONGEST[0] = max(_LONGEST[0], time.thread_time() - began)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--advance", type=float, default=3600.0)
    args = parser.parse_args()
    from monitor.clock import FixedClock
    from monitor.config import gc_paused, load_config
    from monitor.runtime import heap
    from monitor.runtime.daemon import FREEZE_FROM, Daemon, freeze_heap

    now = float(json.loads((args.dir / "meta.json").read_text())["now"])
    config = args.dir / "bench.yaml"
    loaded = load_config(config)
    database = loaded.monitor.database_path
    if not database.resolve().is_relative_to(args.dir.resolve() / "state"):
        sys.exit(f"{config}: expected monitor.state_dir {args.dir / 'state'}, got {database}")
    shutil.rmtree(database.parent, ignore_errors=True)
    database.parent.mkdir(parents=True)
    shutil.copy(args.dir / "pristine" / "slawatch.db", database)
    clock = FixedClock(now)
    daemon = Daemon(loaded, config, clock=clock)

    async def go() -> None:
        await daemon.store.open()
        try:
            with gc_paused():
                await daemon._load_history(now)
            freeze_heap(daemon.config)
            heap.manage(len(daemon.config.targets) + len(daemon.config.slas) >= FREEZE_FROM)
            print(f"months restored from snapshots: {daemon.snapshots.restored}")
            clock.advance(args.advance)
            original = daemon.snapshots.save
            written: list[int] = []

            async def save(*a: Any, **k: Any) -> int:
                written.append(await original(*a, **k))
                return written[-1]

            daemon.snapshots.save = save  # type: ignore[method-assign]
            for label in ("first save", "unchanged since"):
                written.clear()
                await asyncio.sleep(0)
                _LONGEST[0] = 0.0
                cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
                await daemon._save_snapshots(clock())
                cpu, loop_cpu = time.process_time() - cpu, time.thread_time() - loop_cpu
                wall = time.perf_counter() - wall
                print(
                    f"{label}: {sum(written)} months written, CPU {cpu:.2f} s (loop thread "
                    f"{loop_cpu:.2f} s, wall {wall:.2f} s), longest loop step "
                    f"{1000 * _LONGEST[0]:.0f} ms CPU"
                )
        finally:
            await daemon.store.close()

    _record_steps()
    asyncio.run(go())


if __name__ == "__main__":
    main()
