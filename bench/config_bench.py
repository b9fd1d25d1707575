#!/usr/bin/env python3
"""Benchmark: loading (and reloading) a configuration of N targets, N services and N SLAs.

    .venv/bin/python bench/config_bench.py --slas 10000 [--profile]

Writes the configuration ``bench/daemon_bench.py --per-sla 1`` runs (N http targets, each in a
one-target service and its SLA, with a credit tier), then times, in process:

- load          ``monitor.config.load_config`` (read, YAML with line numbers, validation,
                cross-checks): what start-up and every SIGHUP reload pay
- policies      ``sla_policies()``, ``service_defs()``, the accounting inputs built from them
- check-config  ``slawatch check-config`` in a fresh process (start-up included), wall time
- reload        ``Daemon.reload()`` of an in-process daemon (its scheduler planned, its months
                built 20 hours into a month, one SLA's objective changed in the file), all of
                it on the caller's thread; then the part SIGHUP still runs on the event loop
                (``Daemon.reload_soon`` reads and validates the file in a worker thread and
                applies it on the loop): the time a reload blocks the probes

``--profile`` prints where ``load_config``'s time goes (cProfile, top functions by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.accounting import inputs_from_config  # noqa: E402
from monitor.clock import FixedClock  # noqa: E402
from monitor.config import Config, load_config  # noqa: E402
from monitor.instants import utc_from_epoch  # noqa: E402
from monitor.runtime.daemon import Daemon  # noqa: E402

MONTH_START = 1796083200  # 2026-12-01T00:00:00Z


def write_config(directory: Path, n: int) -> Path:
    names = [f"t{i:05d}" for i in range(n)]
    lines = ["monitor:", "  name: bench", f"  state_dir: {directory / 'state'}", "targets:"]
    for name in names:
        lines += [
            f"  - name: {name}",
            "    kind: http",
            "    interval: 30s",
            "    timeout: 5s",
            "    http:",
            f"      url: http://127.0.0.1:9/t/{name}",
        ]
    lines.append("services:")
    for number, name in enumerate(names):
        lines += [f"  - name: svc{number}", f"    targets: [{name}]"]
    lines.append("slas:")
    for number in range(n):
        lines += [
            f"  - name: sla{number}",
            f"    service: svc{number}",
            "    objective: 99.9",
            '    monthly_fee: "1000.00"',
            "    currency: EUR",
            "    credit_tiers:",
            "      - {below: 99.9, credit_percent: 10}",
        ]
    path = directory / "bench.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


async def reload_blocking(path: Path, config: Config) -> None:
    now = MONTH_START + 20 * 3600 + 17
    daemon = Daemon(config, path, clock=FixedClock(now))
    daemon.scheduler.apply(daemon._schedule(), now=now)
    moment = utc_from_epoch(now)
    for policy in daemon.accounting.inputs.policies:
        daemon.accounting.month_result(policy, moment, stamp=False)
    began = time.perf_counter()
    load_config(path)
    loaded = time.perf_counter() - began
    began = time.perf_counter()
    assert daemon.reload()
    took = time.perf_counter() - began
    print(
        f"Daemon.reload() (file read on the loop): {took:.2f} s, of which loading ~{loaded:.2f} s"
    )
    # SIGHUP reads the file in a worker thread (Daemon.reload_soon): only the apply blocks.
    config = daemon.read_config(path)
    began = time.perf_counter()
    assert daemon.reload(config)
    took = time.perf_counter() - began
    print(f"SIGHUP: the apply on the loop (file read in a worker thread): {took:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slas", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slawatch-config-"))
    path = write_config(work, args.slas)
    print(f"{args.slas} targets, services and SLAs: {path.stat().st_size / 2**20:.1f} MiB")
    loads = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        config = load_config(path)
        loads.append(time.perf_counter() - began)
    print(f"load_config: best {min(loads):.2f} s, worst {max(loads):.2f} s of {args.repeat}")
    began = time.perf_counter()
    inputs = inputs_from_config(config)
    print(
        f"sla_policies + service_defs + accounting inputs: {time.perf_counter() - began:.2f} s "
        f"({len(inputs.policies)} SLAs)"
    )
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "check-config", "--config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    print(
        f"slawatch check-config: {time.perf_counter() - began:.2f} s wall, exit "
        f"{done.returncode}: {done.stdout.strip().splitlines()[-1:] or done.stderr[-300:]}"
    )
    # The daemon runs the configuration loaded above; the file now changes one SLA.
    text = path.read_text()
    path.write_text(text.replace("    objective: 99.9\n", "    objective: 99.95\n", 1))
    asyncio.run(reload_blocking(path, config))
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        load_config(path)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
