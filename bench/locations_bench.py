"""What reading every location costs a daemon per flush (issue 14): docs/locations.md figures.

Three locations (dublin, frankfurt, paris) each hold tallies of N targets probed every 30 s
in 5-minute buckets for the first ``--hours`` hours of a month, on a throw-away PostgreSQL
(tests/pg_cluster.py, default durability, unix socket). N one-target SLAs list the three
locations (one group: ``monitor.runtime.locations``). Measured:

1. **Full read** (at start and every 5 minutes): the two months of every location.
2. **Steady read** (every other flush): the recent window, after one flush of each location
   changed ~1/30 of the targets' running bucket (what 1 s of probing at 30 s intervals does).

    .venv/bin/python bench/locations_bench.py [--targets 1000 10000] [--hours 6] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.runtime.locations import LocationFeed
from monitor.sla.policy import LocationRule, ServiceDef, SlaPolicy
from monitor.store.base import TallyRow, WriteBatch
from monitor.store.postgres import PostgresStore
from tests import pg_cluster
from tests.strategies import STANDARD_CREDIT

LOCATIONS = ("dublin", "frankfurt", "paris")
BUCKET = 300
START = 1_793_491_200  # 2026-11-01T00:00:00Z


async def one_size(cluster: pg_cluster.Cluster, targets: int, hours: int, rounds: int) -> None:
    schema = f"bench_{targets}"
    names = [f"t-{i:05d}" for i in range(targets)]
    rule = LocationRule(quorum=2, of=LOCATIONS)
    policies = [
        SlaPolicy(f"sla-{n}", f"svc-{n}", Decimal("99.9"), STANDARD_CREDIT, locations=rule)
        for n in names
    ]
    services = {f"svc-{n}": ServiceDef(f"svc-{n}", (n,)) for n in names}
    stores = {
        where: PostgresStore(cluster.schema_dsn(schema), f"{where}-1", location=where)
        for where in LOCATIONS
    }
    for store in stores.values():
        await store.open()
    try:
        buckets = hours * 3600 // BUCKET
        for where, store in stores.items():
            for b in range(buckets):
                await store.write_batch(
                    WriteBatch(
                        tallies=[
                            TallyRow(
                                f"{where}-1", n, START + b * BUCKET, BUCKET, 10, 0, location=where
                            )
                            for n in names
                        ]
                    )
                )
        now = float(START + buckets * BUCKET + 1)
        reader = stores["dublin"]
        fulls, steadies = [], []
        for r in range(rounds):
            feed = LocationFeed()
            feed.configure(policies, services, ())
            began = time.perf_counter()
            await feed.refresh(reader, now, settle=11.0)
            fulls.append(time.perf_counter() - began)
            if r:
                continue
            for s in range(rounds):
                chunk = names[(s * targets // 30) % targets :][: max(1, targets // 30)]
                for where, store in stores.items():
                    await store.write_batch(
                        WriteBatch(
                            tallies=[
                                TallyRow(
                                    f"{where}-1",
                                    n,
                                    START + buckets * BUCKET,
                                    BUCKET,
                                    s + 1,
                                    0,
                                    location=where,
                                )
                                for n in chunk
                            ]
                        )
                    )
                began = time.perf_counter()
                moved = await feed.refresh(reader, now + 1 + s, settle=11.0)
                steadies.append(time.perf_counter() - began)
                assert moved, "the steady read found nothing"
        rows = targets * buckets * len(LOCATIONS)
        print(
            f"{targets:6d} targets x {len(LOCATIONS)} locations, {hours} h stored ({rows} rows): "
            f"full read median {statistics.median(fulls) * 1000:8.1f} ms | "
            f"steady read median {statistics.median(steadies) * 1000:6.1f} ms, "
            f"max {max(steadies) * 1000:6.1f} ms"
        )
    finally:
        for store in stores.values():
            await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    cluster = pg_cluster.start_cluster(durable=True)
    try:
        for targets in args.targets:
            await one_size(cluster, targets, args.hours, args.rounds)
    finally:
        cluster.remove()


if __name__ == "__main__":
    asyncio.run(main())
