"""Store benchmark: the figures quoted in README.md ("Durable state").

1. Flush cost at 10,000 targets probed every 30 s (333 results/s): every second one
   ``write_batch`` with ~333 tally upserts (absolute counts), the failures' evidence
   (``--failure-rate``) and a heartbeat; simulated time, so it runs faster than real time.
   The table first holds ``--prefill-hours`` of every target's tallies (2.88 M rows a day).
   Run for synchronous=NORMAL (with the periodic checkpoint) and synchronous=FULL.
2. ``load_tallies`` of one calendar month for 3 services x 3 targets at 5-minute buckets,
   from a database holding a year of them.
3. ``open()`` (including PRAGMA quick_check) of that year's database.

    .venv/bin/python bench/store_bench.py [--seconds 120] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Literal

from monitor.store.base import EvidenceRow, TallyRow, WriteBatch
from monitor.store.sqlite import SqliteStore
from probes.result import Outcome

TARGETS = 10_000
INTERVAL = 30
BUCKET = 300
MONTH_START = 1_793_491_200  # 2026-11-01T00:00:00Z
MONTH_BUCKETS = 30 * 86_400 // BUCKET


def file_size(path: Path) -> int:
    return path.stat().st_size


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def prefill(path: Path, hours: int) -> None:
    """Tallies of every target for the ``hours`` before the run, written in SQL (fast), so
    flushes run against a table the size of a month already under way."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(
        """
        WITH RECURSIVE b(s) AS (SELECT ? UNION ALL SELECT s + ? FROM b WHERE s + ? < ?),
                       t(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM t WHERE n + 1 < ?)
        INSERT INTO tallies (vantage, target, bucket_start, bucket_seconds, ok, failed, reasons)
        SELECT 'bench', printf('target-%05d', n), s, ?, 10, 0, '{}' FROM b, t
        """,
        (MONTH_START - hours * 3600, BUCKET, BUCKET, MONTH_START, TARGETS, BUCKET),
    )
    conn.execute("COMMIT")
    conn.close()


async def flush_run(
    path: Path,
    seconds: int,
    failure_rate: float,
    synchronous: Literal["NORMAL", "FULL"],
    prefill_hours: int,
) -> dict[str, float]:
    """Simulate ``seconds`` of the 10,000-target daemon; return per-flush timings."""
    rng = random.Random(7)
    store = SqliteStore(path, "bench", synchronous=synchronous)
    await store.open()
    await store.close()
    prefill(path, prefill_hours)
    store = SqliteStore(path, "bench", synchronous=synchronous)
    await store.open()
    counts: dict[tuple[int, int], list[int]] = {}
    per_second = TARGETS // INTERVAL
    timings: list[float] = []
    rows = evidence_rows = 0
    for tick in range(seconds):
        now = MONTH_START + tick
        bucket = now - now % BUCKET
        tallies, evidence = [], []
        # Target t is probed when tick % INTERVAL == t % INTERVAL: 333 or 334 per second.
        for target in range(tick % INTERVAL, TARGETS, INTERVAL):
            ok_failed = counts.setdefault((target, bucket), [0, 0])
            failed = rng.random() < failure_rate
            ok_failed[1 if failed else 0] += 1
            reasons = {"timeout": ok_failed[1]} if ok_failed[1] else {}
            name = f"target-{target:05d}"
            ok, failures = ok_failed
            tallies.append(TallyRow("bench", name, bucket, BUCKET, ok, failures, reasons))
            if failed:
                evidence.append(
                    EvidenceRow(
                        "bench",
                        float(now),
                        name,
                        Outcome.TIMEOUT,
                        "timeout",
                        10.0,
                        {"phase": "connect"},
                    )
                )
        batch = WriteBatch(tallies=tallies, evidence=evidence, heartbeat=float(now))
        started = time.perf_counter()
        await store.write_batch(batch)
        timings.append(time.perf_counter() - started)
        rows += len(tallies)
        evidence_rows += len(evidence)
    await store.close()
    total = sum(timings)
    return {
        "rows_before": TARGETS * prefill_hours * 3600 // BUCKET,
        "flushes": len(timings),
        "tally_rows_per_flush": rows / len(timings),
        "evidence_per_flush": evidence_rows / len(timings),
        "mean_ms": statistics.mean(timings) * 1000,
        "p50_ms": percentile(timings, 0.5) * 1000,
        "p99_ms": percentile(timings, 0.99) * 1000,
        "max_ms": max(timings) * 1000,
        "rows_per_s": (rows + evidence_rows) / total,
        "expected_results_per_s": per_second,
        "busy_fraction": total / seconds,
    }


async def commit_latency(path: Path, synchronous: Literal["NORMAL", "FULL"]) -> dict[str, float]:
    """Commit latency of one-row batches: isolates what the per-commit fsync costs."""
    store = SqliteStore(path, "bench", synchronous=synchronous, checkpoint_interval=None)
    await store.open()
    timings = []
    for i in range(200):
        batch = WriteBatch(tallies=[TallyRow("bench", "t", i * BUCKET, BUCKET, 1, 0)])
        started = time.perf_counter()
        await store.write_batch(batch)
        timings.append(time.perf_counter() - started)
    await store.close()
    return {
        "commits": len(timings),
        "mean_ms": statistics.mean(timings) * 1000,
        "p50_ms": percentile(timings, 0.5) * 1000,
        "p99_ms": percentile(timings, 0.99) * 1000,
    }


async def month_load(path: Path) -> dict[str, float]:
    """A year of 9 targets at 5-minute buckets; time loading one month of it."""
    store = SqliteStore(path, "bench")
    await store.open()
    targets = [f"{svc}-{n}" for svc in ("voice", "ivr", "web") for n in range(3)]
    year_start = MONTH_START - 10 * MONTH_BUCKETS * BUCKET
    started = time.perf_counter()
    for month in range(12):
        base = year_start + month * MONTH_BUCKETS * BUCKET
        rows = [
            TallyRow("bench", t, base + i * BUCKET, BUCKET, 10, int(i % 97 == 0), {})
            for t in targets
            for i in range(MONTH_BUCKETS)
        ]
        await store.write_batch(WriteBatch(tallies=rows))
    fill = time.perf_counter() - started
    await store.close()
    size = file_size(path)

    store = SqliteStore(path, "bench")
    started = time.perf_counter()
    await store.open()
    open_s = time.perf_counter() - started
    loads = []
    for _ in range(5):
        started = time.perf_counter()
        loaded = await store.load_tallies(MONTH_START, MONTH_START + MONTH_BUCKETS * BUCKET)
        loads.append(time.perf_counter() - started)
    await store.close()
    assert sum(len(b) for b in loaded.values()) == len(targets) * MONTH_BUCKETS
    return {
        "rows_in_db": 12 * len(targets) * MONTH_BUCKETS,
        "rows_loaded": len(targets) * MONTH_BUCKETS,
        "fill_s": fill,
        "db_mib": size / 2**20,
        "bytes_per_tally_row": size / (12 * len(targets) * MONTH_BUCKETS),
        "open_with_quick_check_ms": open_s * 1000,
        "load_month_ms_best": min(loads) * 1000,
        "load_month_ms_median": statistics.median(loads) * 1000,
    }


def show(title: str, figures: dict[str, float]) -> None:
    print(title)
    for key, value in figures.items():
        shown = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}"
        print(f"  {key:28} {shown}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=120, help="simulated seconds of flushing")
    parser.add_argument("--failure-rate", type=float, default=0.05)
    parser.add_argument("--prefill-hours", type=int, default=24, help="tallies already stored")
    parser.add_argument("--dir", default=None, help="where the databases go (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for mode in ("NORMAL", "FULL"):
            figures = await flush_run(
                Path(tmp, f"flush-{mode}.db"),
                args.seconds,
                args.failure_rate,
                mode,
                args.prefill_hours,
            )
            show(f"flush, 10,000 targets / 30 s, synchronous={mode}", figures)
            latency = await commit_latency(Path(tmp, f"commit-{mode}.db"), mode)
            show(f"one-row commit, synchronous={mode} (no checkpoints)", latency)
        show("one month of 3 services x 3 targets from a year", await month_load(Path(tmp, "y.db")))
    print(f"(sqlite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    asyncio.run(main())
