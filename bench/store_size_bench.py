"""Store size per target per month, before and after a sealed month's roll-up (issue 17).

Writes one 30-day month of 5-minute tallies for ``--targets`` targets through the store's
real write path (row checksums included), failure evidence for ``--failure-rate`` of the
probes (one probe every 30 s), and one SLA's per-bucket service verdicts as the daemon
writes them; then drops the month's tallies as ``slawatch month roll-up`` does
(``Store.prune_tallies``). Sizes are measured after ``VACUUM`` (the file as a backup would
be), and printed in bytes per target per month and extrapolated to 10,000 targets.

    .venv/bin/python bench/store_size_bench.py [--targets 100] [--failure-rate 0.001]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from monitor.sla.policy import BucketState
from monitor.store.base import EvidenceRow, ServiceBucketRow, TallyRow, WriteBatch
from monitor.store.sqlite import SqliteStore
from probes.result import Outcome

BUCKET = 300
PROBES_PER_BUCKET = BUCKET // 30
MONTH_START = 1_793_491_200  # 2026-11-01T00:00:00Z
MONTH_BUCKETS = 30 * 86_400 // BUCKET


def vacuumed_size(path: Path) -> int:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
    finally:
        conn.close()
    return path.stat().st_size


async def fill(path: Path, targets: int, failure_rate: float) -> tuple[int, int]:
    rng = random.Random(17)
    store = SqliteStore(path, "bench")
    await store.open()
    evidence_rows = 0
    try:
        for b in range(MONTH_BUCKETS):
            start = MONTH_START + b * BUCKET
            tallies = []
            evidence = []
            for n in range(targets):
                failed = sum(rng.random() < failure_rate for _ in range(PROBES_PER_BUCKET))
                reasons = {"timeout": failed} if failed else {}
                tallies.append(
                    TallyRow(
                        "bench",
                        f"target-{n:05d}",
                        start,
                        BUCKET,
                        PROBES_PER_BUCKET - failed,
                        failed,
                        reasons,
                    )
                )
                for i in range(failed):
                    evidence.append(
                        EvidenceRow(
                            "bench",
                            start + 30.0 * i,
                            f"target-{n:05d}",
                            Outcome.TIMEOUT,
                            "timeout",
                            5.0,
                            {"attempt": 1},
                        )
                    )
            evidence_rows += len(evidence)
            verdict = ServiceBucketRow("bench", "sla", "service", start, BucketState.AVAILABLE)
            await store.write_batch(
                WriteBatch(
                    tallies=tallies,
                    evidence=evidence,
                    service_buckets=[verdict],
                    heartbeat=float(start + BUCKET),
                )
            )
    finally:
        await store.close()
    return targets * MONTH_BUCKETS, evidence_rows


async def roll_up(path: Path) -> int:
    store = SqliteStore(path, "bench")
    await store.open()
    try:
        return await store.prune_tallies(MONTH_START, MONTH_START + MONTH_BUCKETS * BUCKET)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--failure-rate", type=float, default=0.001)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "size.db"
        began = time.monotonic()
        tallies, evidence = asyncio.run(fill(path, args.targets, args.failure_rate))
        before = vacuumed_size(path)
        dropped = asyncio.run(roll_up(path))
        after = vacuumed_size(path)
        took = time.monotonic() - began
    per_before = before / args.targets
    per_after = after / args.targets
    gib = 1024**3
    print(
        f"targets {args.targets}, one 30-day month of {BUCKET}s buckets, "
        f"failure rate {args.failure_rate} ({evidence} evidence rows), {took:.0f} s"
    )
    print(f"tally rows {tallies}, rolled up {dropped}")
    print(
        f"before roll-up: {before} bytes = {per_before:.0f} bytes per target per month "
        f"(10,000 targets: {per_before * 10_000 / gib:.2f} GiB a month)"
    )
    print(
        f"after roll-up:  {after} bytes = {per_after:.0f} bytes per target per month "
        f"(10,000 targets, evidence scales, verdicts do not: "
        f"{(after - 0) * 10_000 / args.targets / gib:.3f} GiB a month at most)"
    )
    print(f"ratio: {before / after:.1f}x smaller")


if __name__ == "__main__":
    main()
