"""Import benchmark: the figures quoted in docs/prometheus-import.md.

One 31-day month (2026-10) of 15-second `probe_success` scrapes for 100 targets (17,856,000
samples) is written as OpenMetrics, turned into TSDB blocks by `promtool tsdb
create-blocks-from openmetrics`, served by a real Prometheus on 127.0.0.1, then imported by
`slawatch import`'s own code into a fresh SQLite store. Prints the preparation times, then the
import's seconds, samples/s, queries issued and rows written.

    .venv/bin/python bench/prom_import_bench.py [--targets 100] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from monitor.config import load_config
from monitor.promsource.importer import build_rows, measured_targets
from monitor.sla.calendar import Month
from monitor.store.base import WriteBatch
from monitor.store.sqlite import SqliteStore

MONTH = Month(2026, 10)
START = 1_790_812_800  # 2026-10-01T00:00:00Z
END = 1_793_491_200  # 2026-11-01T00:00:00Z
SCRAPE = 15
BLOCK = 7200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_blocks(work: Path, data: Path, targets: int, seed: int) -> int:
    """Every target scraped every 15 s from 10 min before the month to its end; ~0.1 % failed.

    promtool re-reads its whole input once per 2-hour block it cuts, so a month in one file
    costs (blocks x file) parsing: 6 min for 3 targets. One file per 2-hour window instead.
    """
    rng = random.Random(seed)
    offsets = [rng.randrange(SCRAPE) for _ in range(targets)]  # Prometheus spreads targets
    names = [
        f'probe_success{{job="blackbox",instance="https://vendor-{n:03d}.example/"}}'
        for n in range(targets)
    ]
    written = 0
    first = (START - 600) // BLOCK * BLOCK
    for window in range(first, END, BLOCK):
        source = work / "window.om"
        with source.open("w", buffering=1 << 22) as out:
            out.write("# TYPE probe_success gauge\n")
            for name, offset in zip(names, offsets, strict=True):
                lo = max(window, START - 600)
                ts0 = lo + (offset - lo) % SCRAPE
                lines = [
                    f"{name} {0 if rng.random() < 0.001 else 1} {ts}\n"
                    for ts in range(ts0, min(window + BLOCK, END), SCRAPE)
                ]
                out.writelines(lines)
                written += len(lines)
            out.write("# EOF\n")
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(data)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return written


def write_config(directory: Path, url: str, targets: int) -> Path:
    names = [f"vendor-{n:03d}" for n in range(targets)]
    document = {
        "monitor": {"name": "bench", "state_dir": str(directory / "state")},
        "targets": [
            {
                "name": name,
                "kind": "prometheus",
                "interval": "15s",
                "prometheus": {
                    "url": url,
                    "selector": f'probe_success{{instance="https://{name}.example/"}}',
                    "timeout": "120s",
                },
            }
            for name in names
        ],
        "services": [{"name": "vendors", "targets": names}],
        "slas": [
            {
                "name": "vendors-sla",
                "service": "vendors",
                "objective": 99.9,
                "bucket": "5m",
                "monthly_fee": "1000.00",
                "currency": "EUR",
            }
        ],
    }
    path = directory / "slawatch.yaml"
    path.write_text(json.dumps(document))
    return path


async def run_import(config_path: Path) -> tuple[float, int, int, int]:
    config = load_config(config_path)
    started = time.perf_counter()
    rows, summary = await build_rows(config, MONTH, measured_targets(config), now=END + 86400)
    store = SqliteStore(config.monitor.database_path, vantage=config.monitor.name)
    await store.open()
    try:
        await store.write_batch(WriteBatch(tallies=rows))
    finally:
        await store.close()
    return time.perf_counter() - started, summary.samples, summary.queries, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--dir", default=None, help="where the temporary files go")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prom-import-bench-", dir=args.dir))
    proc = None
    try:
        t0 = time.perf_counter()
        data = work / "data"
        samples = write_blocks(work, data, args.targets, seed=15)
        t2 = time.perf_counter()
        print(
            f"{samples} samples written by promtool tsdb create-blocks-from openmetrics "
            f"(one file per 2 h block): {t2 - t0:.1f} s"
        )
        (work / "prometheus.yml").write_text("global: {}\n")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = (work / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={data}",
                "--storage.tsdb.retention.time=100y",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(url + "/-/ready", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("prometheus did not become ready")
            time.sleep(0.5)
        print(f"prometheus ready: {time.perf_counter() - t2:.1f} s")
        seconds, imported, queries, rows = asyncio.run(
            run_import(write_config(work, url, args.targets))
        )
        print(
            f"import: {args.targets} targets, {imported} samples in {seconds:.1f} s = "
            f"{imported / seconds:,.0f} samples/s; {queries} queries "
            f"({queries / seconds:.1f}/s); {rows} bucket tallies written"
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
