#!/usr/bin/env python3
"""Benchmark: the whole daemon probing N loopback HTTP targets at a 30 s interval.

    .venv/bin/python bench/daemon_bench.py --targets 1000 10000 [--measure 90]

For each N it starts a target server (a separate process, one aiohttp app; every target is its
own URL path), writes a configuration (N http targets, 10 services of 5 targets with 5-minute
SLAs, so bucketing and the SLA engine run too), starts `slawatch run` and measures over
``--measure`` seconds after one interval of warm-up:

- probes/s          probes counted by the daemon's own /metrics (slawatch_probes_total)
- lag p50/p99       arrival of each request at the target minus the time the scheduler's grid
                    says it was due (phase_of(name) + k * interval): measured outside the daemon
- CPU per 1,000     the daemon process's utime+stime (/proc) per 1,000 probes: scheduling,
                    probing, bucketing, SLA engine, SQLite writes and scrapes all included
- peak RSS          VmHWM of the daemon process
- scrape            time to GET /metrics (median of 5)

If `prometheus-blackbox-exporter` is installed, the same targets are then probed through it at
the same rate (a driver calls /probe?module=http_2xx for each target once per interval) and
its process CPU per 1,000 probes is printed beside the daemon's, with the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.scheduler import phase_of  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
INTERVAL = 30.0

TARGET_SERVER = r"""
import sys, time, json
from aiohttp import web
port, log = int(sys.argv[1]), sys.argv[2]
arrivals = []
async def hit(request):
    arrivals.append((request.match_info["name"], time.time()))
    return web.Response(text="ok")
async def dump(request):
    with open(log, "w") as f:
        json.dump(arrivals, f)
    arrivals.clear()
    return web.Response(text="dumped")
app = web.Application()
app.router.add_get("/t/{name}", hit)
app.router.add_post("/dump", dump)
web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_http(url: str, timeout: float = 60) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"not up: {url}")


def probes_total(base: str) -> float:
    body = urllib.request.urlopen(base + "/metrics", timeout=30).read().decode()
    total = 0.0
    for line in body.splitlines():
        if line.startswith("slawatch_probes_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def write_config(directory: Path, n: int, target_port: int, port: int) -> Path:
    names = [f"t{i:05d}" for i in range(n)]
    lines = [
        "monitor:",
        "  name: bench",
        f"  state_dir: {directory / 'state'}",
        f"  listen: 127.0.0.1:{port}",
        "  log_level: warning",
        "targets:",
    ]
    for name in names:
        lines += [
            f"  - name: {name}",
            "    kind: http",
            f"    interval: {int(INTERVAL)}s",
            "    timeout: 5s",
            "    http:",
            f"      url: http://127.0.0.1:{target_port}/t/{name}",
        ]
    lines.append("services:")
    for s in range(10):
        members = ", ".join(names[s * 5 : s * 5 + 5])
        lines += [f"  - name: svc{s}", f"    targets: [{members}]"]
    lines.append("slas:")
    for s in range(10):
        lines += [
            f"  - name: sla{s}",
            f"    service: svc{s}",
            "    objective: 99.9",
            '    monthly_fee: "1000.00"',
            "    currency: EUR",
            "    credit_tiers:",
            "      - {below: 99.9, credit_percent: 10}",
        ]
    path = directory / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def lag_percentiles(arrivals: list[tuple[str, float]]) -> tuple[float, float, int]:
    lags = []
    for name, at in arrivals:
        phase = phase_of(name, INTERVAL)
        due = phase + ((at - phase) // INTERVAL) * INTERVAL
        lags.append(at - due)
    lags.sort()
    if not lags:
        return float("nan"), float("nan"), 0
    return lags[len(lags) // 2], lags[int(len(lags) * 0.99)], len(lags)


async def drive_blackbox(bb_port: int, target_port: int, n: int, seconds: float) -> int:
    import aiohttp

    names = [f"t{i:05d}" for i in range(n)]
    ok = 0
    start = time.time()
    sem = asyncio.Semaphore(200)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:

        async def one(name: str, at: float) -> None:
            nonlocal ok
            await asyncio.sleep(max(0.0, at - time.time()))
            async with sem:
                url = (
                    f"http://127.0.0.1:{bb_port}/probe?module=http_2xx&target="
                    f"http://127.0.0.1:{target_port}/t/{name}"
                )
                async with session.get(url) as reply:
                    body = await reply.text()
                    ok += "\nprobe_success 1" in body

        tasks = []
        k = 0
        while True:
            for name in names:
                at = start + k * INTERVAL + phase_of(name, INTERVAL)
                if at - start < seconds:
                    tasks.append(one(name, at))
            k += 1
            if k * INTERVAL >= seconds:
                break
        await asyncio.gather(*tasks)
    return ok


def run(n: int, measure: float, keep: bool) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"slawatch-bench-{n}-"))
    target_port, port = free_port(), free_port()
    arrivals_log = work / "arrivals.json"
    server = subprocess.Popen(
        [sys.executable, "-c", TARGET_SERVER, str(target_port), str(arrivals_log)]
    )
    procs = [server]
    out: dict[str, float] = {"targets": n}
    try:
        wait_http(f"http://127.0.0.1:{target_port}/t/ping")
        config = write_config(work, n, target_port, port)
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=open(work / "daemon.log", "w"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
        )
        procs.append(daemon)
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/readyz", timeout=120)
        time.sleep(INTERVAL)  # warm-up: every target has run once
        urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{target_port}/dump", method="POST"),
            timeout=30,
        ).read()
        c0, p0, t0 = cpu_seconds(daemon.pid), probes_total(base), time.time()
        time.sleep(measure)
        c1, p1, t1 = cpu_seconds(daemon.pid), probes_total(base), time.time()
        urllib.request.urlopen(
            urllib.request.Request(f"http://127.0.0.1:{target_port}/dump", method="POST"),
            timeout=30,
        ).read()
        arrivals = json.loads(arrivals_log.read_text())
        p50, p99, samples = lag_percentiles([(a, b) for a, b in arrivals])
        scrapes = []
        for _ in range(5):
            s0 = time.perf_counter()
            urllib.request.urlopen(base + "/metrics", timeout=30).read()
            scrapes.append(time.perf_counter() - s0)
        probes = p1 - p0
        out.update(
            probes_per_s=probes / (t1 - t0),
            lag_p50_ms=p50 * 1000,
            lag_p99_ms=p99 * 1000,
            lag_samples=samples,
            cpu_s_per_1000=(c1 - c0) * 1000 / max(probes, 1),
            peak_rss_mb=peak_rss_mb(daemon.pid),
            scrape_s=statistics.median(scrapes),
        )
        daemon.terminate()
        daemon.wait(30)
        bb = shutil.which("prometheus-blackbox-exporter")
        if bb:
            bb_port = free_port()
            (work / "blackbox.yml").write_text(
                "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n"
                "    http:\n      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n"
            )
            exporter = subprocess.Popen(
                [
                    bb,
                    f"--config.file={work / 'blackbox.yml'}",
                    f"--web.listen-address=127.0.0.1:{bb_port}",
                    "--log.level=warn",
                ]
            )
            procs.append(exporter)
            wait_http(f"http://127.0.0.1:{bb_port}/-/healthy")
            b0 = cpu_seconds(exporter.pid)
            ok = asyncio.run(drive_blackbox(bb_port, target_port, n, measure))
            b1 = cpu_seconds(exporter.pid)
            out["blackbox_probes_ok"] = ok
            out["blackbox_cpu_s_per_1000"] = (b1 - b0) * 1000 / max(ok, 1)
            out["daemon_to_blackbox_cpu_ratio"] = (
                out["cpu_s_per_1000"] / out["blackbox_cpu_s_per_1000"]
            )
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--measure", type=float, default=90.0, help="seconds measured per N")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    rows = [run(n, args.measure, args.keep) for n in args.targets]
    keys = [
        "targets",
        "probes_per_s",
        "lag_p50_ms",
        "lag_p99_ms",
        "cpu_s_per_1000",
        "peak_rss_mb",
        "scrape_s",
        "blackbox_cpu_s_per_1000",
        "daemon_to_blackbox_cpu_ratio",
    ]
    print(" | ".join(keys))
    for row in rows:
        print(
            " | ".join(
                f"{row[k]:.3f}" if isinstance(row.get(k), float) else str(row.get(k, "-"))
                for k in keys
            )
        )


if __name__ == "__main__":
    main()
