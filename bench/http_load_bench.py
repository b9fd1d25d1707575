#!/usr/bin/env python3
"""Benchmark: 1,000 concurrent reads of each endpoint while the daemon probes N targets.

    .venv/bin/python bench/http_load_bench.py --targets 10000 --reads 1000 [--bucket 10s]
    .venv/bin/python bench/http_load_bench.py burst http://127.0.0.1:9180 --reads 200

The first form starts a loopback target server (a separate process), `slawatch run` with N http
targets every 30 s (10 SLAs, ``--bucket`` long buckets), waits one interval, then for each
endpoint sends ``--reads`` concurrent GETs (from this process; the target server and the daemon
are separate processes) and prints, per endpoint:

- statuses          how many reads got 200 and 503 (the read slots refuse beyond their queue)
- burst_s           time until the last read was answered
- lag_p99_le_ms     the daemon's slawatch_scheduler_lag_seconds over the burst (upper bound
                    of the bucket holding the 99th percentile)
- target_lag_p99_ms arrival at the target minus the grid time, measured outside the daemon
- timeouts          probe results ``timeout`` recorded during the burst (all false: the
                    target answers at once)
- late / skipped    slawatch_probe_runs_late_total / _skipped_total during the burst
- peak_rss_mb       the daemon's VmHWM after the burst

The second form only sends one burst over the endpoints and prints the statuses as JSON (the
bounded-time test, tests/test_http_load.py, uses it so that its reads do not share a process,
and a GIL, with its target server).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from daemon_bench import (  # noqa: E402
    INTERVAL,
    ROOT,
    TARGET_SERVER,
    dump,
    free_port,
    histogram_quantile,
    lag_histogram,
    lag_percentiles,
    peak_rss_mb,
    wait_http,
    write_config,
)

ENDPOINTS = ("/metrics", "/api/v1/status", "/api/v1/buckets", "/api/v1/report", "/")


async def burst(base: str, paths: list[str], reads: int) -> tuple[Counter[int], float]:
    """``reads`` concurrent GETs cycling over ``paths``: (statuses, seconds to the last)."""
    timeout = aiohttp.ClientTimeout(total=300)
    connector = aiohttp.TCPConnector(limit=0)
    start = time.perf_counter()
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:

        async def one(index: int) -> int:
            path = paths[index % len(paths)]
            try:
                async with http.get(base + path) as reply:
                    body = await reply.read()
                    if reply.status == 200 and path.startswith("/api/v1/buckets"):
                        json.loads(body)  # the streamed document is whole
                    return reply.status
            except (aiohttp.ClientError, TimeoutError):
                return 0

        statuses = Counter(await asyncio.gather(*(one(i) for i in range(reads))))
    return statuses, time.perf_counter() - start


def metric_sum(body: str, name: str, contains: str = "") -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name) and contains in line and not line.startswith("#"):
            head = line.split(" ", 1)[0]
            if head == name or head.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
    return total


def get(base: str) -> str:
    """The daemon's /metrics text."""
    with urllib.request.urlopen(base + "/metrics", timeout=120) as reply:
        return str(reply.read().decode())


def short_buckets(config: Path, bucket: str) -> None:
    """Every SLA on ``bucket`` buckets (shorter than 5 min needs allow_short_buckets)."""
    text = config.read_text()
    text = text.replace(
        "  log_level: warning\n", "  log_level: warning\n  allow_short_buckets: true\n"
    )
    text = text.replace("    objective: 99.9\n", f"    objective: 99.9\n    bucket: {bucket}\n")
    seconds = int(bucket[:-1]) * {"s": 1, "m": 60}[bucket[-1]]
    if seconds < INTERVAL:
        # The SLAs' 50 targets must fall in every bucket: probe them once a bucket.
        for i in range(50):
            text = text.replace(
                f"  - name: t{i:05d}\n    kind: http\n    interval: {int(INTERVAL)}s\n",
                f"  - name: t{i:05d}\n    kind: http\n    interval: {seconds}s\n",
            )
    config.write_text(text)


def run(n: int, reads: int, bucket: str) -> list[dict[str, object]]:
    work = Path(tempfile.mkdtemp(prefix=f"slawatch-http-load-{n}-"))
    target_port, port = free_port(), free_port()
    arrivals_log = work / "arrivals.json"
    server = subprocess.Popen(
        [sys.executable, "-c", TARGET_SERVER, str(target_port), str(arrivals_log)]
    )
    rows: list[dict[str, object]] = []
    daemon = None
    try:
        wait_http(f"http://127.0.0.1:{target_port}/t/ping")
        config = write_config(work, n, target_port, port)
        short_buckets(config, bucket)
        with (work / "daemon.log").open("w") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/readyz", timeout=120)
        time.sleep(INTERVAL)  # warm-up: every target has run once
        for endpoint in ENDPOINTS:
            dump(target_port)
            before = get(base)
            statuses, took = asyncio.run(burst(base, [endpoint], reads))
            time.sleep(6)  # the runs started during the burst (5 s timeout) have reported
            after = get(base)
            dump(target_port)
            arrivals = json.loads(arrivals_log.read_text())
            _, target_p99, _ = lag_percentiles([(a, b) for a, b, _ in arrivals])

            def delta(name: str, contains: str = "", b: str = before, a: str = after) -> float:
                return metric_sum(a, name, contains) - metric_sum(b, name, contains)

            rows.append(
                {
                    "endpoint": endpoint,
                    "targets": n,
                    "bucket": bucket,
                    "reads": reads,
                    "statuses": dict(sorted(statuses.items())),
                    "burst_s": round(took, 2),
                    "lag_p99_le_ms": histogram_quantile(
                        0.99, lag_histogram(before), lag_histogram(after)
                    )
                    * 1000,
                    "target_lag_p99_ms": round(target_p99 * 1000, 1),
                    "timeouts": delta("slawatch_probes_total", 'outcome="timeout"'),
                    "late": delta("slawatch_probe_runs_late_total"),
                    "skipped": delta("slawatch_probe_runs_skipped_total"),
                    "peak_rss_mb": round(peak_rss_mb(daemon.pid), 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        for proc in (daemon, server):
            if proc is not None:
                proc.terminate()
                proc.wait(30)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    one = sub.add_parser("burst", help="one burst over the endpoints; statuses as JSON")
    one.add_argument("base")
    one.add_argument("--reads", type=int, default=200)
    one.add_argument("--paths", nargs="+", default=list(ENDPOINTS))
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--bucket", default="5m")
    args = parser.parse_args()
    if args.mode == "burst":
        statuses, took = asyncio.run(burst(args.base, args.paths, args.reads))
        print(json.dumps({"statuses": statuses, "seconds": took}))
        return
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {' '.join(sys.argv)}")
    run(args.targets, args.reads, args.bucket)


if __name__ == "__main__":
    main()
