#!/usr/bin/env python3
"""In one process, alternating: the per-probe path before and after issue 20's pp24 changes.

    .venv/bin/python bench/probe_ab_bench.py [-n 2000] [-c 4] [--reps 6]

Plain HTTP probes (``probes.http.probe``) of the daemon bench's epoll target server (its own
process), each run as the scheduler runs it (a task per probe, the target's timeout, the result
to a sink), ``-c`` at a time, ``-n`` per repetition; the two variants alternate ``--reps``
times so that both see the same load. CPU per probe is this process's ``time.process_time()``.

- before: ``loop.sock_connect`` / ``loop.sock_recv`` under ``RawStream``, and ``run_probe``
  (``asyncio.timeout``) awaited by the scheduler's task (the code of 9ce5b4a);
- after: ``probes.rawconn.connect`` / ``receive`` and ``ProbeScheduler._run``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(1, str(HERE))

import daemon_bench  # noqa: E402

from monitor.runtime.scheduler import ProbeScheduler, ScheduledTarget, run_probe  # noqa: E402
from probes import rawconn  # noqa: E402
from probes.http import HttpOptions  # noqa: E402
from probes.registry import PROBE_KINDS  # noqa: E402
from probes.result import ProbeResult  # noqa: E402

_CONNECT, _RECEIVE = rawconn.connect, rawconn.receive


async def _asyncio_connect(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, address: str, port: int
) -> None:
    await loop.sock_connect(sock, (address, port))


async def _asyncio_receive(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytes:
    return await loop.sock_recv(sock, n)


def _variant(after: bool) -> None:
    rawconn.connect = _CONNECT if after else _asyncio_connect
    rawconn.receive = _RECEIVE if after else _asyncio_receive  # type: ignore[assignment]


async def _before_run(scheduler: ProbeScheduler, target: ScheduledTarget) -> None:
    """The scheduler's ``_run`` of 9ce5b4a: ``run_probe`` (``asyncio.timeout``), then the sink."""
    result = await run_probe(target)
    scheduler._sink(target, result)


async def _rep(after: bool, targets: list[ScheduledTarget], concurrency: int) -> float:
    _variant(after)
    results: list[ProbeResult] = []
    scheduler = ProbeScheduler(lambda t, r: results.append(r))
    queue = iter(targets)

    async def worker() -> None:
        for target in queue:
            if after:
                await asyncio.create_task(scheduler._run(target))
            else:
                await asyncio.create_task(_before_run(scheduler, target))

    began = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    spent = time.process_time() - began
    if len(results) != len(targets) or any(not r.ok for r in results):
        raise RuntimeError(f"a probe failed: {[r for r in results if not r.ok][:1]}")
    return spent / len(targets) * 1e6


async def _main(port: int, n: int, concurrency: int, reps: int) -> dict[str, list[float]]:
    kind = PROBE_KINDS["http"]
    targets = [
        ScheduledTarget(
            f"t{i}", kind, HttpOptions(url=f"http://127.0.0.1:{port}/t/t{i}"), 30.0, 5.0
        )
        for i in range(n)
    ]
    for target in targets:
        target.options.plan()
    await _rep(True, targets[:200], concurrency)  # warm-up
    await _rep(False, targets[:200], concurrency)
    out: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(reps):
        out["before"].append(await _rep(False, targets, concurrency))
        out["after"].append(await _rep(True, targets, concurrency))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=4)
    parser.add_argument("--reps", type=int, default=6)
    args = parser.parse_args()
    port = daemon_bench.free_port()
    work = Path(tempfile.mkdtemp(prefix="slawatch-probe-ab-"))
    server = subprocess.Popen(
        [sys.executable, "-c", daemon_bench.TARGET_SERVER, str(port), str(work / "a")]
    )
    try:
        daemon_bench.wait_http(f"http://127.0.0.1:{port}/t/ping")
        load = __import__("os").getloadavg()[0]
        out = asyncio.run(_main(port, args.n, args.c, args.reps))
    finally:
        server.terminate()
        server.wait()
    for name, values in out.items():
        shown = " ".join(f"{v:.0f}" for v in values)
        print(f"{name:7} CPU per probe, us: {shown}   median {statistics.median(values):.0f}")
    ratio = statistics.median(out["after"]) / statistics.median(out["before"])
    print(f"after / before {ratio:.3f}   load before {load:.2f}")


if __name__ == "__main__":
    main()
