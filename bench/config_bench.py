#!/usr/bin/env python3
"""Benchmark: loading (and reloading) a configuration of N targets, N services and N SLAs.

    .venv/bin/python bench/config_bench.py --slas 10000 [--profile] [--startup]

Writes the configuration ``bench/daemon_bench.py --per-sla 1`` runs (N http targets, each in a
one-target service and its SLA, with a credit tier), then times, in process:

- load          ``monitor.config.load_config`` (read, YAML with line numbers, validation,
                cross-checks): what start-up and every SIGHUP reload pay
- policies      ``sla_policies()``, ``service_defs()``, the accounting inputs built from them
- check-config  ``slawatch check-config`` in a fresh process (start-up included), wall time
- reload        SIGHUP on an in-process daemon (its scheduler planned, its months built 20
                hours into a month): ``Daemon.read_config`` in a worker thread, as
                ``Daemon.reload_soon`` does, then ``Daemon.reload(loaded)`` on the event loop
                (the time a reload blocks the probes), for the same content written again and
                for one SLA's objective changed
- --startup     ``slawatch run`` on a fresh store, launch to ``/readyz`` (the daemon bench's
                ``ready_s`` without its targets and blackbox exporter)

``--profile`` prints where ``load_config``'s time goes (cProfile, top functions by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.accounting import inputs_from_config  # noqa: E402
from monitor.clock import FixedClock  # noqa: E402
from monitor.config import Config, ConfigError, load_config  # noqa: E402
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


async def reload_blocking(path: Path, config: Config, text: str) -> None:
    now = MONTH_START + 20 * 3600 + 17
    daemon = Daemon(config, path, clock=FixedClock(now))
    daemon.scheduler.apply(daemon._schedule(), now=now)
    moment = utc_from_epoch(now)
    for policy in daemon.accounting.inputs.policies:
        daemon.accounting.month_result(policy, moment, stamp=False)
    # SIGHUP reads the file in a worker thread (Daemon.reload_soon, Daemon.read_config):
    # only Daemon.reload(loaded) runs on the event loop. First the same content written again
    # (a comment added), then one SLA's objective changed.
    for what, changed in (
        ("same content", "# touched\n" + text),
        ("one SLA changed", text.replace("    objective: 99.9\n", "    objective: 99.95\n", 1)),
    ):
        await asyncio.to_thread(path.write_text, changed)
        began = time.perf_counter()
        loaded = await asyncio.to_thread(daemon.read_config, path)
        read = time.perf_counter() - began
        began = time.perf_counter()
        assert daemon.reload(loaded)
        took = time.perf_counter() - began
        print(
            f"SIGHUP, {what}: read_config in the worker thread {read:.2f} s, "
            f"then on the loop {took * 1000:.0f} ms"
        )


def startup(path: Path, slas: int) -> None:
    """``slawatch run`` on a fresh store (its own directory), launch to ``/readyz``."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = path.parent / "startup"
    run.mkdir()
    text = path.read_text()
    text = text.replace("monitor:\n", f"monitor:\n  listen: 127.0.0.1:{port}\n", 1)
    text = text.replace(f"state_dir: {path.parent / 'state'}", f"state_dir: {run / 'state'}")
    config = run / "bench.yaml"
    config.write_text(text)
    began = time.perf_counter()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            if daemon.poll() is not None:
                raise SystemExit(f"slawatch run exited with {daemon.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        ready = time.perf_counter() - began
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.wait(timeout=300)
    print(f"slawatch run, {slas} SLAs, empty store: ready (launch to /readyz) {ready:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slas", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--startup", action="store_true", help="also time slawatch run's start")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slawatch-config-"))
    path = write_config(work, args.slas)
    text = path.read_text()
    print(f"{args.slas} targets, services and SLAs: {path.stat().st_size / 2**20:.1f} MiB")
    loads = []
    for _ in range(args.repeat):
        began = time.perf_counter()
        config = load_config(path)
        loads.append(time.perf_counter() - began)
    print(f"load_config: best {min(loads):.2f} s, worst {max(loads):.2f} s of {args.repeat}")
    # One problem in the last SLA: every line of the file read again with its line number.
    path.write_text(
        text[: text.rindex("objective: 99.9")]
        + text[text.rindex("objective: 99.9") :].replace("99.9\n", "101\n", 1)
    )
    began = time.perf_counter()
    try:
        load_config(path)
    except ConfigError as exc:
        print(
            f"load_config of the file with one problem: {time.perf_counter() - began:.2f} s ({exc})"
        )
    path.write_text(text)
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
    asyncio.run(reload_blocking(path, config, text))
    path.write_text(text)
    if args.startup:
        startup(path, args.slas)
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        load_config(path)
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
