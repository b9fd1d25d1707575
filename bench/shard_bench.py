#!/usr/bin/env python3
"""Benchmark: 1, 2 and 3 members of one location sharing N loopback targets on one PostgreSQL.

    .venv/bin/python bench/shard_bench.py --targets 3000 --members 1 2 3 [--measure 60]

For each (N, members) it starts a throw-away PostgreSQL (tests/pg_cluster.py, default
durability), one target server (a separate process; every target is its own URL path; each
request's ``X-Member`` header says which member sent it), and ``members`` real daemons
(``slawatch run``) in location ``bench`` with ``monitor.sharding`` on, every target at a 30 s
interval (every target in an SLA, services of 100 targets, so bucketing, the SLA engine and a tally
write per probe all run). After every member
sees the others and one interval of warm-up, it measures over ``--measure`` seconds:

- per member: targets owned (its /metrics), probes/s, lag p50/p99 (arrival at the target
  minus the grid time ``phase_of(name) + k * interval``), CPU as a share of one core and per
  1,000 probes (/proc utime+stime: scheduling, probing, bucketing, SLA engine, PostgreSQL
  writes, heartbeats), peak RSS (VmHWM);
- the location: targets probed by more than one member in the window (must be 0), targets
  not probed (must be 0), and probes persisted per second (the growth of the tallies' counts
  in the database: every probe is one tally change, written at the next 1-s flush);
- the load average, since this machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import daemon_bench as db  # noqa: E402

from tests import pg_cluster  # noqa: E402

INTERVAL = 30.0
LEASE = "15s"
PER_SLA = 100

TARGET_SERVER = r"""
import sys, time, json
from aiohttp import web
port, log = int(sys.argv[1]), sys.argv[2]
arrivals = []
async def hit(request):
    arrivals.append((request.match_info["name"], time.time(), request.headers.get("X-Member", "")))
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


def write_config(directory: Path, member: str, n: int, target_port: int, port: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    names = [f"t{i:05d}" for i in range(n)]
    lines = [
        "monitor:",
        f"  name: {member}",
        "  location: bench",
        f"  state_dir: {directory / 'state'}",
        f"  listen: 127.0.0.1:{port}",
        "  log_level: warning",
        "  store: {backend: postgresql, dsn: {env: SLAWATCH_PG_DSN}}",
        f"  sharding: {{lease: {LEASE}}}",
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
            f"      headers: {{X-Member: {member}}}",
        ]
    # Every target in an SLA (services of 50), so every probe's tally is written: the rows/s
    # figure is the whole location's.
    groups = range(0, n, PER_SLA)
    lines.append("services:")
    for s, first in enumerate(groups):
        lines += [
            f"  - name: svc{s}",
            f"    targets: [{', '.join(names[first : first + PER_SLA])}]",
        ]
    lines.append("slas:")
    for s, _ in enumerate(groups):
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


def metric(body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return float("nan")


def stored_probes(dsn: str) -> int:
    """Probes the location's tallies hold in the database (every member's rows). Each probe
    changes one tally row, written at the next 1-s flush, so the growth per second is the
    rate of probes persisted; the tally rows upserted per second are at most that (a row
    probed twice between two flushes is written once)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(sum(ok + failed + errors), 0) FROM tallies").fetchone()
    return int(row[0]) if row else 0


def run(cluster: pg_cluster.Cluster, n: int, members: int, measure: float) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix=f"slawatch-shard-bench-{n}-{members}-"))
    schema = f"shard_{n}_{members}_{os.getpid()}"
    dsn = cluster.schema_dsn(schema)
    target_port = db.free_port()
    arrivals_log = work / "arrivals.json"
    server = subprocess.Popen(
        [sys.executable, "-c", TARGET_SERVER, str(target_port), str(arrivals_log)]
    )
    procs: list[subprocess.Popen[bytes]] = [server]
    daemons: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    out: dict[str, object] = {"targets": n, "members": members}
    try:
        db.wait_http(f"http://127.0.0.1:{target_port}/t/ping")
        env = {**os.environ, "SLAWATCH_PG_DSN": dsn, "PYTHONPATH": str(ROOT)}
        launched = time.time()
        for i in range(members):
            name, port = f"m{i + 1}", db.free_port()
            config = write_config(work / name, name, n, target_port, port)
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
                cwd=ROOT,
                env=env,
                stdout=open(work / f"{name}.log", "w"),  # noqa: SIM115 (closed with the process)
                stderr=subprocess.STDOUT,
            )
            procs.append(proc)
            daemons[name] = (proc, f"http://127.0.0.1:{port}")
        for _, base in daemons.values():
            db.wait_http(base + "/readyz", timeout=600)
        deadline = time.time() + 120
        while time.time() < deadline:
            seen = [metric(db.scrape(b)[1], "slawatch_shard_members") for _, b in daemons.values()]
            if all(s == members for s in seen):
                break
            time.sleep(1)
        out["ready_s"] = round(time.time() - launched, 1)
        time.sleep(INTERVAL + 5)  # warm-up: every target has run once on its owner
        out["load_before"] = os.getloadavg()[0]
        db.dump(target_port)
        w0 = stored_probes(dsn)
        before = {
            m: (db.cpu_seconds(p.pid), db.probes_total(db.scrape(b)[1]))
            for m, (p, b) in daemons.items()
        }
        t0 = time.time()
        time.sleep(measure)
        t1 = time.time()
        after = {m: (db.cpu_seconds(p.pid), db.scrape(b)[1]) for m, (p, b) in daemons.items()}
        w1 = stored_probes(dsn)
        db.dump(target_port)
        arrivals = json.loads(arrivals_log.read_text())
        by_target: dict[str, set[str]] = {}
        for name, _, member in arrivals:
            by_target.setdefault(name, set()).add(member)
        out["targets_probed_by_two"] = sum(1 for s in by_target.values() if len(s) > 1)
        # Meaningful only when the window holds a whole interval.
        out["targets_not_probed"] = n - len(by_target) if measure >= INTERVAL else "n/a"
        out["stored_probes_per_s"] = round((w1 - w0) / (t1 - t0), 1)
        rows = []
        for m, (proc, _) in daemons.items():
            cpu0, probes0 = before[m]
            cpu1, body = after[m]
            probes = db.probes_total(body) - probes0
            p50, p99, _ = db.lag_percentiles([(a, at) for a, at, who in arrivals if who == m])
            rows.append(
                {
                    "member": m,
                    "owned": metric(body, "slawatch_shard_targets_owned"),
                    "probes_per_s": round(probes / (t1 - t0), 1),
                    "lag_p50_ms": round(p50 * 1000, 1),
                    "lag_p99_ms": round(p99 * 1000, 1),
                    "cpu_share": round((cpu1 - cpu0) / (t1 - t0), 3),
                    "cpu_s_per_1000": round((cpu1 - cpu0) * 1000 / max(probes, 1), 3),
                    "peak_rss_mb": round(db.peak_rss_mb(proc.pid), 1),
                }
            )
        out["per_member"] = rows
        out["load_after"] = os.getloadavg()[0]
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return out


def main() -> None:
    import signal

    # SIGTERM ends the run through the finally blocks: daemons, server and cluster stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, nargs="+", default=[3000])
    parser.add_argument("--members", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--measure", type=float, default=60.0, help="seconds measured per run")
    args = parser.parse_args()
    db.INTERVAL = INTERVAL
    cluster = pg_cluster.start_cluster(durable=True)
    try:
        for n in args.targets:
            for members in args.members:
                result = run(cluster, n, members, args.measure)
                print(
                    f"targets {n:6d} members {members}: ready {result['ready_s']} s, "
                    f"probes stored/s {result['stored_probes_per_s']}, probed by two "
                    f"{result['targets_probed_by_two']}, not probed "
                    f"{result['targets_not_probed']}, load {result['load_before']:.1f}"
                    f"->{result['load_after']:.1f}",
                    flush=True,
                )
                for row in result["per_member"]:  # type: ignore[attr-defined]
                    print(
                        f"    {row['member']}: owned {row['owned']:.0f}, "
                        f"{row['probes_per_s']} probes/s, lag p50 {row['lag_p50_ms']} ms "
                        f"p99 {row['lag_p99_ms']} ms, CPU {row['cpu_share']:.1%} of a core "
                        f"({row['cpu_s_per_1000']} s per 1,000 probes), "
                        f"peak RSS {row['peak_rss_mb']} MB",
                        flush=True,
                    )
    finally:
        cluster.remove()


if __name__ == "__main__":
    main()
