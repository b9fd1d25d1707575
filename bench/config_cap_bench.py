#!/usr/bin/env python3
"""Benchmark: check-config on the largest files the 8 MiB cap lets through.

    .venv/bin/python bench/config_cap_bench.py [--kinds exclusions targets]

For each kind it writes a valid configuration filled to just under ``MAX_FILE_BYTES`` with
exclusion windows (one SLA) or http targets (one service each side), then runs
``slawatch check-config`` on it in a fresh process and prints:

- entries        how many exclusions/targets fit under the cap
- size           the file's size in MiB
- wall           the process's wall time (start-up included), seconds
- peak RSS       the process's maxrss (MiB)

A 700,000-exclusion file once ran past 60 s; the cap bounds the worst case to what is printed.
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

from monitor.config.loader import MAX_FILE_BYTES  # noqa: E402

HEAD = {
    "targets": [{"name": "web-login", "kind": "http", "http": {"url": "http://127.0.0.1:1/"}}],
    "services": [{"name": "web", "targets": ["web-login"]}],
    "slas": [
        {
            "name": "web-sla",
            "service": "web",
            "objective": 99.9,
            "monthly_fee": "1000.00",
            "currency": "EUR",
        }
    ],
}


def exclusion(i: int) -> str:
    day = i % 28 + 1
    return (
        f'  - {{id: "x-{i}", kind: scheduled_maintenance, start: "2026-11-{day:02d}T01:00:00Z",'
        f' end: "2026-11-{day:02d}T02:00:00Z", reason: "window {i}", services: [web]}}\n'
    )


def target(i: int) -> str:
    return f'  - {{name: "t-{i}", kind: http, http: {{url: "http://127.0.0.1:1/{i}"}}}}\n'


def fill(kind: str) -> tuple[str, int]:
    """The configuration text and the number of entries, just under the cap."""
    if kind == "exclusions":
        # JSON is YAML: each top-level section as one flow value.
        start = "\n".join(f"{k}: {json.dumps(v)}" for k, v in HEAD.items()) + "\nexclusions:\n"
        entry = exclusion
    else:
        start, entry = "services: [{name: web, targets: [t-0]}]\ntargets:\n", target
    parts, size, count = [start], len(start), 0
    while True:
        line = entry(count)
        if size + len(line) > MAX_FILE_BYTES:
            return "".join(parts), count
        parts.append(line)
        size += len(line)
        count += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=["exclusions", "targets"])
    args = parser.parse_args()
    print(f"{'kind':<12}{'entries':>10}{'size MiB':>10}{'wall s':>9}{'peak RSS MiB':>14}  status")
    for kind in args.kinds:
        text, count = fill(kind)
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / "slawatch.yaml"
            path.write_text(text, encoding="utf-8")
            output = Path(work) / "output"
            started = time.monotonic()
            with output.open("wb") as sink:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "monitor.cli", "check-config", "--config", str(path)],
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                    env={**os.environ, "PYTHONPATH": str(ROOT)},
                )
                _, _, usage = os.wait4(proc.pid, 0)
            wall = time.monotonic() - started
            rss = usage.ru_maxrss / 1024
            size = path.stat().st_size / 1024**2
            lines = output.read_text(encoding="utf-8", errors="replace").splitlines()
        status = (lines or ["(no output)"])[-1][:60]
        print(f"{kind:<12}{count:>10}{size:>10.2f}{wall:>9.1f}{rss:>14.0f}  {status}")


if __name__ == "__main__":
    main()
