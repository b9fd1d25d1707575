"""PostgreSQL vs SQLite store benchmark (issue 14): the figures in docs/storage-postgresql.md.

At 10,000 targets:

1. **Steady flush**: targets probed every 30 s give ~333 results per second, so each 1-s
   flush is one ``write_batch`` of ~333 tally upserts (absolute counts) plus a heartbeat.
   Median and p99 milliseconds per flush, and tally rows written per second of flush time.
2. **Full flush**: one ``write_batch`` upserting every one of the 10,000 targets' tallies (the
   first flush after a restart or after a database outage): milliseconds, rows per second.
   PostgreSQL takes the COPY path here (batches of >= ``COPY_THRESHOLD`` rows).

PostgreSQL runs as a throw-away local cluster (tests/pg_cluster.py) with its DEFAULT
durability (fsync on, synchronous_commit on), reached over its unix socket; SQLite runs in WAL
with synchronous=NORMAL (the daemon's setting). Both on the same disk.

    .venv/bin/python bench/store_pg_bench.py [--flushes 300] [--full 10]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.store.base import Store, TallyRow, WriteBatch
from monitor.store.postgres import PostgresStore
from monitor.store.sqlite import SqliteStore
from tests import pg_cluster

TARGETS = 10_000
INTERVAL = 30
BUCKET = 300
START = 1_793_491_200  # 2026-11-01T00:00:00Z


def _rows(targets: range, bucket: int, ok: int) -> list[TallyRow]:
    return [
        TallyRow("bench", f"target-{i:05d}", bucket, BUCKET, ok, 1, {"timeout": 1}) for i in targets
    ]


async def steady(store: Store, flushes: int) -> list[float]:
    per_flush = TARGETS // INTERVAL
    times = []
    for n in range(flushes):
        second = n
        first = (second % INTERVAL) * per_flush
        bucket = START + (second // BUCKET) * BUCKET
        batch = WriteBatch(
            tallies=_rows(range(first, first + per_flush), bucket, n // INTERVAL + 1),
            heartbeat=float(START + second),
        )
        began = time.perf_counter()
        await store.write_batch(batch)
        times.append(time.perf_counter() - began)
    return times


async def full(store: Store, rounds: int) -> list[float]:
    times = []
    for n in range(rounds):
        batch = WriteBatch(tallies=_rows(range(TARGETS), START + BUCKET * 1000, n + 1))
        began = time.perf_counter()
        await store.write_batch(batch)
        times.append(time.perf_counter() - began)
    return times


def report(name: str, steady_s: list[float], full_s: list[float]) -> None:
    per_flush = TARGETS // INTERVAL
    med = statistics.median(steady_s)
    p99 = sorted(steady_s)[int(len(steady_s) * 0.99) - 1]
    fmed = statistics.median(full_s)
    print(
        f"{name:10s} steady flush ({per_flush} rows): median {med * 1000:6.2f} ms, "
        f"p99 {p99 * 1000:6.2f} ms, {per_flush / med:9.0f} rows/s | "
        f"full flush ({TARGETS} rows): median {fmed * 1000:7.1f} ms, {TARGETS / fmed:9.0f} rows/s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flushes", type=int, default=300)
    parser.add_argument("--full", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        sqlite = SqliteStore(Path(tmp) / "bench.db", "bench")
        await sqlite.open()
        try:
            report("sqlite", await steady(sqlite, args.flushes), await full(sqlite, args.full))
        finally:
            await sqlite.close()

    cluster = pg_cluster.start_cluster(durable=True)
    try:
        store = PostgresStore(cluster.dsn(), "bench")
        await store.open()
        try:
            report("postgresql", await steady(store, args.flushes), await full(store, args.full))
        finally:
            await store.close()
    finally:
        cluster.remove()


if __name__ == "__main__":
    asyncio.run(main())
