#!/usr/bin/env python3
"""RSS timeline of a running daemon: VmRSS every 100 ms, to see when its peak happens.

    .venv/bin/python bench/rss_timeline.py --out rss.json --match slawatch-bench- [--seconds 300]

Waits for a process whose command line contains ``--match`` and ``monitor.cli`` or
``runpy.run_module("monitor.cli"`` (the daemon ``bench/daemon_bench.py`` starts, also under
``--diagnose``), samples ``/proc/PID/status`` VmRSS and VmHWM every ``--interval`` seconds
until it exits, writes ``[[seconds since start, rss MB, hwm MB], ...]`` to ``--out`` and
prints where the peak happened with the samples around it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def find(match: str) -> int | None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if match in line and "monitor.cli" in line and "rss_timeline" not in line:
            return int(proc.name)
    return None


def sample(pid: int) -> tuple[float, float] | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line[:5]] = int(line.split()[1]) / 1024
    if "VmRSS" not in values:  # a zombie (exited, not yet reaped) has no memory lines
        return None
    return values["VmRSS"], values.get("VmHWM", 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--match", default="slawatch-bench-")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=900.0, help="give up after")
    args = parser.parse_args()
    deadline = time.time() + args.seconds
    pid = None
    while pid is None and time.time() < deadline:
        pid = find(args.match)
        time.sleep(0.05)
    if pid is None:
        raise SystemExit("no daemon found")
    began = time.time()
    rows: list[tuple[float, float, float]] = []
    while time.time() < deadline:
        got = sample(pid)
        if got is None:
            break
        rows.append((round(time.time() - began, 2), round(got[0], 1), round(got[1], 1)))
        time.sleep(args.interval)
    args.out.write_text(json.dumps({"pid": pid, "started": began, "samples": rows}))
    if not rows:
        return
    peak = max(range(len(rows)), key=lambda i: rows[i][1])
    print(f"pid {pid}: {len(rows)} samples over {rows[-1][0]:.0f} s")
    print(f"peak VmRSS {rows[peak][1]:.0f} MB at {rows[peak][0]:.1f} s; VmHWM {rows[-1][2]:.0f} MB")
    for at, rss, _ in rows[max(0, peak - 20) : peak + 21 : 4]:
        print(f"  {at:7.1f} s  {rss:6.0f} MB")
    step = max(1, len(rows) // 40)
    print("every ~%.1f s:" % (step * args.interval))
    for at, rss, _ in rows[::step]:
        print(f"  {at:7.1f} s  {rss:6.0f} MB")


if __name__ == "__main__":
    main()
