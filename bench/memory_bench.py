#!/usr/bin/env python3
"""Benchmark: the daemon's memory and start-up time against the day of the month (issue 20).

    .venv/bin/python bench/memory_bench.py --targets 2000 --days 1 7 14 28

For each ``--days`` D it writes a store holding D days of 5-minute tallies (10 probes, one
failure in one bucket of 100) for ``--targets`` http targets, each in its own SLA (the worst
layout: one SLA per target), ending with the bucket before a fixed "now" (2026-12-29 12:00
UTC, or the 1st + D days) and a heartbeat then. A fresh interpreter then builds the daemon
(`Daemon` over that configuration and store, fixed clock), reads the history back as `slawatch
run` does at start (``Daemon._load_history``) and computes every SLA's month once, and prints:

- load_s      the start-up read and build (what `/readyz` waits for after the config is read)
- first_s     every SLA's current and previous month computed once after it
- rss_mb      the process's resident set after both, and ``rss_mb - base_mb`` (the same
              process before the read: interpreter, configuration, daemon objects)
- held        tallies held in the live state after start
- per_target  (rss_mb - base_mb) / targets, in KB

Run it from another checkout's bench/ to measure that code: it uses only the daemon's
start-up entry points.
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

DAY = 86400
MONTH_START = 1796083200  # 2026-12-01T00:00:00Z


def write_config(directory: Path, n: int) -> Path:
    names = [f"t{i:05d}" for i in range(n)]
    lines = ["monitor:", "  name: bench", f"  state_dir: {directory}", "targets:"]
    for name in names:
        lines += [
            f"  - name: {name}",
            "    kind: http",
            "    interval: 30s",
            "    timeout: 5s",
            "    http:",
            f"      url: http://127.0.0.1:9/t/{name}",
        ]
    lines.append("services:")
    lines += [f"  - name: s{name}\n    targets: [{name}]" for name in names]
    lines.append("slas:")
    for name in names:
        lines += [
            f"  - name: sla{name}",
            f"    service: s{name}",
            "    objective: 99.9",
            '    monthly_fee: "1000.00"',
            "    currency: EUR",
            "    credit_tiers:",
            "      - {below: 99.9, credit_percent: 10}",
        ]
    path = directory / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def prefill(config: Path, days: float, now: int) -> int:
    from monitor.config import load_config
    from monitor.store.base import TallyRow, WriteBatch
    from monitor.store.sqlite import SqliteStore

    loaded = load_config(config)
    names = [t.name for t in loaded.targets]
    last = now - now % 300 - 300
    first = last - int(days * DAY) // 300 * 300 + 300

    async def write() -> int:
        store = SqliteStore(loaded.monitor.database_path, vantage="bench")
        await store.open()
        rows = 0
        try:
            batch: list[TallyRow] = []
            for start in range(first, last + 1, 300):
                failing = (start // 300) % 100 == 0
                for name in names:
                    batch.append(
                        TallyRow(
                            "bench",
                            name,
                            start,
                            300,
                            9 if failing else 10,
                            1 if failing else 0,
                            {"http_503": 1} if failing else {},
                        )
                    )
                if len(batch) >= 200_000:
                    await store.write_batch(WriteBatch(tallies=batch))
                    rows += len(batch)
                    batch = []
            await store.write_batch(WriteBatch(tallies=batch, heartbeat=float(now)))
            rows += len(batch)
        finally:
            await store.close()
        return rows

    return asyncio.run(write())


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(config: Path, now: int) -> dict[str, float]:
    """In this (fresh) process: start-up read, build, every month once."""
    import gc

    from monitor.clock import FixedClock
    from monitor.config import load_config
    from monitor.instants import utc_from_epoch
    from monitor.runtime.daemon import Daemon

    daemon = Daemon(load_config(config), config, clock=FixedClock(float(now)))

    async def go() -> dict[str, float]:
        await daemon.store.open()
        try:
            gc.collect()
            base = rss_mb()
            began = time.perf_counter()
            await daemon._load_history(float(now))
            loaded = time.perf_counter()
            moment = utc_from_epoch(now)
            for policy in daemon.accounting.inputs.policies:
                result = daemon.accounting.month_result(policy, moment, stamp=False)
                daemon.accounting.month_result(policy, moment, result.month.previous())
            done = time.perf_counter()
            gc.collect()
            held = sum(
                len(column)
                for seconds in {p.bucket_seconds for p in daemon.accounting.inputs.policies}
                for column in daemon.state.tallies(seconds).values()
            )
            return {
                "load_s": loaded - began,
                "first_s": done - loaded,
                "base_mb": base,
                "rss_mb": rss_mb(),
                "held": float(held),
            }
        finally:
            await daemon.store.close()

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--days", type=float, nargs="+", default=[1, 7, 14, 28])
    parser.add_argument("--measure", nargs=2, metavar=("CONFIG", "NOW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), int(args.measure[1]))))
        return
    keys = ["days", "rows", "load_s", "first_s", "base_mb", "rss_mb", "held", "per_target_kb"]
    print(" | ".join(keys))
    for days in args.days:
        now = MONTH_START + int(days * DAY) + 12 * 3600
        with tempfile.TemporaryDirectory(prefix="slawatch-mem-") as tmp:
            config = write_config(Path(tmp), args.targets)
            rows = prefill(config, days, now)
            out = subprocess.run(
                [sys.executable, __file__, "--measure", str(config), str(now)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            row = json.loads(out.strip().splitlines()[-1])
            row.update(
                days=days,
                rows=rows,
                per_target_kb=(row["rss_mb"] - row["base_mb"]) * 1024 / args.targets,
            )
            print(
                " | ".join(
                    f"{row[k]:.2f}" if isinstance(row[k], float) else str(row[k]) for k in keys
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
