#!/usr/bin/env python3
"""Benchmark: a configuration reload (SIGHUP) at N one-target SLAs late in a month, and the
hourly seal pass after it, in process (issue 20, round 34).

    .venv/bin/python bench/reload_bench.py DIR [--metrics]

``DIR`` holds what ``bench/daemon_bench.py --reuse-prefill`` leaves for a day-28 store
(``bench.yaml``, its ``state_dir`` pointing at ``DIR/state``; ``meta.json``, whose ``now`` is
the store's instant; ``pristine/``, the store). ``pristine/`` is copied to the state
directory first (never written). The daemon is built as ``bench/startup_bench.py``'s
``measure`` builds it (a ``FixedClock`` at ``now``, ``_load_history``, the schedule applied,
not started: no probe runs; the collector's policy as ``Daemon.start`` sets it), then
warmed: one summary (every SLA's months asked), with ``--metrics`` one ``/metrics`` per-SLA
refresh, and one seal pass (the previous month's seals are in the store: the pass writes the
"done" record, or, over a store whose record is older, asks about every SLA once). Then,
one after the other, each a ``reload_soon`` (the SIGHUP path) of the file edited:

(a) unchanged (the same file read again); (b) one target's URL edited; (c) one SLA added
(its target and service too); (d) one SLA removed (with its target and service).

After each: the reload (read in the worker thread, applied on the loop), the next summary,
with ``--metrics`` the next per-SLA refresh, and the next hourly seal pass
(``Daemon._seal_closed_months``). For each step: process CPU seconds (every thread), the
longest the loop went without running a 1 ms ticker (a block), and counts: months rebuilt
(``Accounting.prepare``), months asked by the summary, store calls (by name), and the
reload's parts on the loop, each one block, in wall and thread CPU ms (``reload_ms``:
``Daemon.reload``; ``apply_config_ms``, ``install_ms``: where months are read back first,
applied after the read). The blocks are wall time: on a busy machine they grow with its load;
the CPU figures do not.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seal_bench import Watch  # noqa: E402  (a 1 ms ticker's worst overrun, the longest GC)

from monitor.accounting import Accounting  # noqa: E402
from monitor.clock import FixedClock  # noqa: E402
from monitor.config import gc_paused, load_config  # noqa: E402
from monitor.runtime import heap  # noqa: E402
from monitor.runtime.daemon import FREEZE_FROM, Daemon, freeze_heap  # noqa: E402

COUNTS: Counter[str] = Counter()


def time_calls(owner: Any, name: str, label: str) -> None:
    """Record the longest call of ``owner.name`` (synchronous: one block of the loop) under
    ``label``: its wall time in ms, and its CPU time in the calling thread (``_cpu``), which
    another process's load on the machine does not inflate."""
    original = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        began, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent = round((time.perf_counter() - began) * 1000)
            COUNTS[label] = max(COUNTS[label], spent)
            spent = round((time.thread_time() - cpu) * 1000)
            COUNTS[label + "_cpu"] = max(COUNTS[label + "_cpu"], spent)

    setattr(owner, name, timed)


def count_calls(owner: Any, name: str, label: str) -> None:
    """Count calls of ``owner.name`` (a class or an instance) under ``label``."""
    original = getattr(owner, name)
    if asyncio.iscoroutinefunction(original):

        async def counted_async(*args: Any, **kwargs: Any) -> Any:
            COUNTS[label] += 1
            return await original(*args, **kwargs)

        setattr(owner, name, counted_async)
        return

    def counted(*args: Any, **kwargs: Any) -> Any:
        COUNTS[label] += 1
        return original(*args, **kwargs)

    setattr(owner, name, counted)


async def step(label: str, work: Callable[[], Awaitable[object]]) -> dict[str, Any]:
    watch = Watch()
    tick = asyncio.create_task(watch.ticker())
    await asyncio.sleep(0.01)
    gc.callbacks.append(watch.gc_pause)
    COUNTS.clear()
    cpu = time.process_time()
    await work()
    cpu = time.process_time() - cpu
    watch._stop = True
    await tick
    gc.callbacks.remove(watch.gc_pause)
    counts = dict(sorted(COUNTS.items()))
    print(
        f"  {label}: {cpu:.2f} s CPU, longest loop block {watch.block * 1000:.0f} ms "
        f"(longest collection {watch.gc * 1000:.0f} ms), {counts}",
        flush=True,
    )
    return {"cpu_s": cpu, "block_ms": watch.block * 1000, "gc_ms": watch.gc * 1000, **counts}


def edits(base: str) -> list[tuple[str, str]]:
    """(label, file text) of the edits, each on top of the one before."""
    moved = base.replace("/t/t00005\n", "/t/t00005-moved\n", 1)
    assert moved != base
    target = (
        "  - name: t99999\n    kind: http\n    interval: 30s\n    timeout: 5s\n"
        "    http:\n      url: http://127.0.0.1:9/t/t99999\n"
    )
    sla = (
        "  - name: sla99999\n    service: svc99999\n    objective: 99.9\n"
        '    monthly_fee: "1000.00"\n    currency: EUR\n    credit_tiers:\n'
        "      - {below: 99.9, credit_percent: 10}\n"
    )
    added = (
        moved.replace("\nservices:\n", "\n" + target + "services:\n", 1).replace(
            "\nslas:\n", "\n  - name: svc99999\n    targets: [t99999]\nslas:\n", 1
        )
        + sla
    )
    last = re.findall(r"  - name: (sla\d+)\n    service: (svc\d+)\n", base)[-1]
    removed = re.sub(rf"  - name: {last[0]}\n(    .*\n|      .*\n)+", "", added, count=1)
    service = re.search(rf"  - name: {last[1]}\n    targets: \[(\S+)\]\n", removed)
    assert service is not None
    removed = removed.replace(service.group(0), "", 1)
    removed = re.sub(rf"  - name: {service.group(1)}\n(    .*\n|      .*\n)+", "", removed, count=1)
    return [
        ("(a) unchanged", base),
        ("(b) one target's URL edited", moved),
        ("(c) one SLA added", added),
        ("(d) one SLA removed", removed),
    ]


async def run(folder: Path, metrics: bool) -> None:
    config_path = folder / "bench.yaml"
    now = float(json.loads((folder / "meta.json").read_text())["now"])
    base = config_path.read_text()
    config = load_config(config_path)
    state = config.monitor.state_dir
    if state.exists():
        shutil.rmtree(state)
    shutil.copytree(folder / "pristine", state)
    edited = folder / "edited.yaml"
    edited.write_text(base)
    count_calls(Accounting, "prepare", "months_rebuilt")
    count_calls(Accounting, "month_result", "month_results")
    time_calls(Daemon, "reload", "reload_ms")  # the part on the loop, in one block
    time_calls(Daemon, "_apply_config", "apply_config_ms")  # (within reload, or after a read)
    time_calls(Accounting, "install", "install_ms")  # the months read back, after reload
    daemon = Daemon(load_config(edited), edited, clock=FixedClock(now))
    store = daemon.store
    for name in dir(type(store)):
        coroutine = asyncio.iscoroutinefunction(getattr(store, name))
        if coroutine and not name.startswith("_") and name not in ("open", "close"):
            count_calls(store, name, f"store.{name}")
    await store.open()
    try:
        began = time.process_time()
        with gc_paused():
            await daemon._load_history(now)
            daemon.scheduler.apply(daemon._schedule(), now=now)
        freeze_heap(daemon.config)
        # As Daemon.start: the collector's policy for a large configuration.
        heap.manage(len(daemon.config.targets) + len(daemon.config.slas) >= FREEZE_FROM)
        slas = len(daemon.config.sla_policies())
        print(f"built: {slas} SLAs, {time.process_time() - began:.1f} s CPU")
        exposition = None
        if metrics:
            from monitor.metrics.collector import MetricsExposition

            exposition = MetricsExposition(daemon)
            daemon.summary_hooks.clear()  # refreshed below, as its own step
        print("warm-up:")
        await step("summary", daemon._summarise)
        if exposition is not None:
            await step("/metrics per-SLA refresh", exposition.refresh)
        await step("seal pass", lambda: daemon._seal_closed_months(now))

        async def reload() -> None:
            daemon.reload_soon()
            while daemon._reload_tasks or any(not t.done() for t in daemon._background):
                await asyncio.gather(*daemon._reload_tasks, *daemon._background)

        for label, text in edits(base):
            edited.write_text(text)
            print(f"{label}:")
            await step("reload", reload)
            print(f"    SLAs now {len(daemon.config.sla_policies())}")
            await step("summary", daemon._summarise)
            if exposition is not None:
                await step("/metrics per-SLA refresh", exposition.refresh)
            await step("seal pass", lambda: daemon._seal_closed_months(now))
            await step("next seal pass", lambda: daemon._seal_closed_months(now))
    finally:
        await store.close()


def main() -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--metrics", action="store_true", help="the /metrics per-SLA text too")
    args = parser.parse_args()
    asyncio.run(run(args.dir, args.metrics))


if __name__ == "__main__":
    main()
