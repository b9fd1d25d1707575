#!/usr/bin/env python3
"""CPU per probe of the scheduler and the result path, in process (issue 20, pp24).

    .venv/bin/python bench/probe_path_bench.py [--targets 5000] [--interval 15] [--per-sla 5]
                                               [--warmup 15] [--measure 20] [--json]

Builds a real ``Daemon`` over ``bench/daemon_bench.py``'s configuration (N plain HTTP targets
against the same epoll target server in its own process; 10 SLAs of 5 by default, or SLAs of
``--per-sla`` targets), starts only its scheduler (no flush, no ``/metrics``, no store), and
over ``--measure`` seconds after ``--warmup`` reports:

- CPU per 1,000 probes: this process's ``time.process_time()`` (user + system, every thread)
  and the loop thread's ``time.thread_time()``: timers, tasks, the probe (socket calls, the
  kernel's loopback work included), ``Daemon._on_result`` and what it calls;
- the scheduler's lag (timer fire minus grid time) p50 / p99 / max;
- the cyclic collector: collections per generation and their total and longest wall time;
- the probes' outcomes (every one must be ``up``);
- the lag at the target: the request's arrival at the target server (the kernel's receive
  time, as ``daemon_bench``'s ``kernel_lag``) minus its grid time, p50 / p99: the scheduler's
  lag plus what runs between the timer and the request's send.

``--block MS --block-every S`` also runs a callback busy for MS milliseconds every S seconds on
the loop (the daemon's ``/metrics`` render chunks and flushes are such blocks): a run whose send
waits for one more loop iteration waits behind them.

``BENCH_CODE=/path/to/a/checkout`` runs that checkout's code instead of this one's (the bench
and its target server stay this file's), for an A/B in the same minutes: run the two in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType

HERE = Path(__file__).resolve().parent
CODE = Path(os.environ.get("BENCH_CODE", HERE.parent)).resolve()
sys.path.insert(0, str(CODE))
sys.path.insert(1, str(HERE))

import daemon_bench  # noqa: E402  (its target server and configuration)

if HERE.parent != CODE:
    # pp33: daemon_bench puts its own tree first and imports the scheduler from it, so the
    # imports below took this tree's code, not BENCH_CODE's: forget those modules and put
    # BENCH_CODE's tree first again (daemon_bench keeps its ``phase_of``, a pure function).
    for module in [m for m in sys.modules if m.split(".", 1)[0] in ("monitor", "probes")]:
        del sys.modules[module]
    sys.path.insert(0, str(CODE))

from monitor.config import load_config  # noqa: E402
from monitor.runtime.daemon import Daemon  # noqa: E402


class _Collector:
    """Counts and times every garbage collection (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.times: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.times[info["generation"]].append(time.perf_counter() - self.started)

    def reset(self) -> None:
        for values in self.times.values():
            values.clear()


def _busy(seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


def _blocking(loop: asyncio.AbstractEventLoop, seconds: float, every: float) -> None:
    _busy(seconds)
    loop.call_later(every, _blocking, loop, seconds, every)


def _count_calls(seconds: float, probes: Callable[[], int]) -> None:
    """Count the Python and C calls on the loop's thread for ``seconds`` (``sys.setprofile``)
    and print them per probe, the most frequent first (pp33: a measure that does not move
    with the machine's load; the window's CPU figures are taken after it)."""
    counts: Counter[str] = Counter()

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            code = frame.f_code
            counts[f"{code.co_name} ({code.co_filename.rsplit('/', 1)[-1]})"] += 1
        elif event == "c_call":
            counts["C " + str(getattr(arg, "__qualname__", arg))] += 1

    loop = asyncio.get_running_loop()
    start = probes()

    def stop() -> None:
        sys.setprofile(None)
        done = max(probes() - start, 1)
        python = sum(n for key, n in counts.items() if not key.startswith("C "))
        print(f"calls per probe over {done} probes: Python {python / done:.1f}, "
              f"C {(sum(counts.values()) - python) / done:.1f}", file=sys.stderr)  # fmt: skip
        for key, n in counts.most_common(100):
            print(f"{n / done:8.2f}  {key}", file=sys.stderr)

    sys.setprofile(profile)
    loop.call_later(seconds, stop)


async def _run(
    args: argparse.Namespace, config_path: Path, target_port: int, arrivals: Path
) -> dict[str, float | str]:
    config = load_config(config_path)
    daemon = Daemon(config, config_path)
    lags: list[float] = []
    daemon.scheduler._lag_observer = lags.append  # the bench's own record of every run
    daemon.scheduler.apply(daemon._schedule(), now=time.time())
    gc.collect()
    gc.freeze()  # as the daemon does once the configuration and months are built
    daemon.scheduler.start()
    if args.block > 0:
        loop = asyncio.get_running_loop()
        loop.call_later(args.block_every, _blocking, loop, args.block / 1e3, args.block_every)
    await asyncio.sleep(args.warmup)

    def probes() -> int:
        return sum(sum(status.outcomes.values()) for status in daemon.state.targets.values())

    def failures() -> int:
        return sum(
            count
            for status in daemon.state.targets.values()
            for outcome, count in status.outcomes.items()
            if not outcome.ok
        )

    if args.calls > 0:
        _count_calls(args.calls, probes)
        await asyncio.sleep(args.calls)
    collector = _Collector()
    gc.callbacks.append(collector)
    await asyncio.to_thread(daemon_bench.dump, target_port)
    lags.clear()
    n0, f0 = probes(), failures()
    c0, t0, w0 = time.process_time(), time.thread_time(), time.perf_counter()
    await asyncio.sleep(args.measure)
    c1, t1, w1 = time.process_time(), time.thread_time(), time.perf_counter()
    n1, f1 = probes(), failures()
    gc.callbacks.remove(collector)
    await asyncio.to_thread(daemon_bench.dump, target_port)
    await daemon.scheduler.shutdown()
    seen = json.loads(await asyncio.to_thread(arrivals.read_text))
    k50, k99, _ = daemon_bench.lag_percentiles(
        [(name, float("nan") if kernel is None else kernel) for name, _, kernel in seen]
    )
    done = n1 - n0
    lags.sort()
    out: dict[str, float | str] = {
        "code": str(CODE),
        "targets": args.targets,
        "probes": done,
        "probes_per_s": done / (w1 - w0),
        "failed": f1 - f0,
        "cpu_ms_per_probe": (c1 - c0) / done * 1e3,
        "loop_cpu_ms_per_probe": (t1 - t0) / done * 1e3,
        "lag_p50_ms": lags[len(lags) // 2] * 1e3,
        "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1e3,
        "lag_max_ms": lags[-1] * 1e3,
        "target_lag_p50_ms": k50 * 1e3,
        "target_lag_p99_ms": k99 * 1e3,
        "load": os.getloadavg()[0],
        "block_ms": args.block,
    }
    for generation, values in collector.times.items():
        out[f"gc{generation}_count"] = len(values)
        out[f"gc{generation}_ms"] = sum(values) * 1e3
        out[f"gc{generation}_max_ms"] = max(values, default=0.0) * 1e3
    if out["gc0_count"]:
        out["gc0_median_ms"] = statistics.median(collector.times[0]) * 1e3
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=5000)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--per-sla", type=int, default=None)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--measure", type=float, default=20.0)
    parser.add_argument(
        "--calls", type=float, default=0.0, help="seconds of counting calls after the warm-up"
    )
    parser.add_argument("--block", type=float, default=0.0, help="ms busy on the loop")
    parser.add_argument("--block-every", type=float, default=1.0, help="seconds between")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of a table")
    args = parser.parse_args()
    daemon_bench.INTERVAL = args.interval
    daemon_bench.PER_SLA = args.per_sla
    work = Path(tempfile.mkdtemp(prefix="slawatch-probe-path-"))
    target_port, port = daemon_bench.free_port(), daemon_bench.free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", daemon_bench.TARGET_SERVER, str(target_port), str(work / "a")]
    )
    try:
        daemon_bench.wait_http(f"http://127.0.0.1:{target_port}/t/ping")
        config_path = daemon_bench.write_config(work, args.targets, target_port, port)
        out = asyncio.run(_run(args, config_path, target_port, work / "a"))
    finally:
        server.terminate()
        server.wait()
    if args.json:
        print(json.dumps(out))
        return
    for key, value in out.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key:24} {shown}")


if __name__ == "__main__":
    main()
