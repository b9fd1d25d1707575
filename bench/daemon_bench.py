#!/usr/bin/env python3
"""Benchmark: the whole daemon probing N loopback HTTP targets at a 30 s interval.

    .venv/bin/python bench/daemon_bench.py --targets 1000 10000 [--measure 90]

For each N it starts a target server (a separate process, a small HTTP/1.1 server on asyncio's
epoll loop; every target is its own URL path), writes a configuration (N http targets, 10
services of 5 targets with 5-minute SLAs, so bucketing and the SLA engine run too), starts
`slawatch run` and measures over ``--measure`` seconds after one interval of warm-up:

- probes/s          probes counted by the daemon's own /metrics (slawatch_probes_total)
- lag p50/p99       arrival of each request at the target minus the time the scheduler's grid
                    says it was due (phase_of(name) + k * interval): measured outside the daemon,
                    "arrival" being when the target server read the complete request head (its
                    own wait for a core and its own loop included, as in every figure so far)
- kernel lag p50/p99 the same, "arrival" being when the kernel put the request's first bytes into
                    the target's socket (SO_TIMESTAMPNS): the target server's own wait for a
                    core left out, the daemon's whole path (timer, task, connect, write) kept in.
                    NaN where the kernel gave no timestamp
- CPU per 1,000     the daemon process's utime+stime (/proc) per 1,000 probes: scheduling,
                    probing, bucketing, SLA engine, SQLite writes and scrapes all included
- peak RSS          VmHWM of the daemon process
- scrape            time to GET /metrics: median and worst of the scrapes made every
                    ``--scrape-interval`` seconds during the measurement, as Prometheus would
                    (their CPU and the probes they delay are part of the figures above)
- daemon lag p99    the daemon's own slawatch_scheduler_lag_seconds histogram over the window
                    (upper bound of the bucket holding the 99th percentile): a cross-check of
                    the lag seen at the target
- target CPU        the target server's share of one core: near 1.0 it is saturated and the
                    lag it measures includes its own queueing

If `prometheus-blackbox-exporter` is installed, the same targets are then probed through it at
the same rate (a driver calls /probe?module=http_2xx for each target once per interval) and
its process CPU per 1,000 probes is printed beside the daemon's, with the ratio, and the rate
the driver reached (it must match the daemon's for the ratio to mean anything).

``--month-end DAY`` (issue 20, mw24): the daemon at a month's end. Writing a month tally by tally
(``--history-days``) is 80 M rows at 10,000 targets on day 28, more than an hour; instead the
store is given what a daemon that ran all month leaves (``bench/month_end.py``): every SLA's
previous and current month as snapshots up to an hour before "now" (judged by the daemon
itself from the old route's tallies for one SLA of the layout, renamed per SLA, written through
the product's codec, inputs digest and snapshot store), the last hour's tallies, the previous
month sealed (``make_seal`` of each SLA's ``month_result``) and a heartbeat. The daemon then
runs with its clock moved back by whole days to the latest DAY-th of a month (so probe phases
and bucket boundaries are those of the wall clock): on 2 Dec, ``--month-end 28`` runs it on
28 Nov, with October sealed. ``prefill_s`` is the whole prefill (the seal includes one full
restore of every month); ``--history-days`` (every tally, the wall clock) stays for small N
and for the faithfulness test (``tests/test_bench_month_end.py``).

``--reuse-prefill DIR`` (dy29, issue 20): with ``--month-end``, the prefill's store (~83 s to
write at 10,000 one-target SLAs) is kept in DIR, under a name of the layout (targets, targets
per SLA, day), with the configuration and the store's instant; a later run of the same layout
(either tree's bench, for an A/B) starts from a fresh copy of it instead of writing it again.
The configuration is the one kept, byte for byte (its state directory is in DIR, its ports
taken again: its ``content_hash`` is the one the seals name), and the daemon's clock is the
wall clock moved back to the store's instant by whole 5-minute buckets (probe phases and
bucket boundaries stay those of the wall clock), landing 0 to 5 minutes after it, as a fresh
prefill's start lands ~1.5 minutes after its own. If a kept port is taken, the prefill is
written again (and kept). ``prefill_s`` is then the copy's time.

``--diagnose DIR`` (a diagnostic run, its CPU figures slightly disturbed): the daemon runs with a
hook timing every event-loop callback and every garbage collection, and writes those over 20 ms
and 10 ms to DIR/loop-blocks.json at exit; if py-spy is installed it samples the daemon and the
target server over the window (``--nonblocking``, so neither is paused) into DIR/*.raw (and the
daemon from launch to ``/readyz`` into DIR/daemon-startup.raw), whose
collapsed stacks ``--summarise DIR`` folds into self and inclusive shares per function.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
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
sys.path.insert(0, str(ROOT / "bench"))

from monitor.runtime.scheduler import phase_of  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
INTERVAL = 30.0

TARGET_SERVER = r"""
# A small HTTP/1.1 server on epoll (issue 20, l22): every request is answered "200 ok" with
# Content-Length and the connection closed. Two arrival times are kept per request: when this
# server read the complete head (time.time(), the measure so far), and when the kernel received
# the request's first bytes into the socket (SO_TIMESTAMPNS, CLOCK_REALTIME). The second leaves
# out this server's own wait for a core and its own loop; it still includes everything on the
# prober's side (its timer, its connect, its write). No cmsg (timestamping unavailable): NaN.
import array, gc, json, select, socket, struct, sys, time
port, log = int(sys.argv[1]), sys.argv[2]
SO_TIMESTAMPNS = 35  # Linux asm-generic; SCM_TIMESTAMPNS has the same value
CMSG_SPACE = socket.CMSG_SPACE(16)
names, times, kernel = [], array.array("d"), array.array("d")
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
      b"Connection: close\r\n\r\nok")
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
listener.bind(("127.0.0.1", port))
listener.listen(4096)
listener.setblocking(False)
poller = select.epoll()
poller.register(listener.fileno(), select.EPOLLIN)
conns = {}  # fd -> [socket, head so far, kernel time of the first bytes]
def finish(fd, entry, reply):
    try:
        entry[0].send(reply)
    except OSError:
        pass
    poller.unregister(fd)
    entry[0].close()
    del conns[fd]
def readable(fd):
    entry = conns[fd]
    try:
        data, ancillary, _, _ = entry[0].recvmsg(65536, CMSG_SPACE)
    except BlockingIOError:
        return
    except OSError:
        data, ancillary = b"", []
    if not data:
        poller.unregister(fd)
        entry[0].close()
        del conns[fd]
        return
    if entry[2] is None:
        entry[2] = float("nan")
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= 16:
                seconds, nanoseconds = struct.unpack("qq", payload[:16])
                entry[2] = seconds + nanoseconds * 1e-9
    head = entry[1] + data
    end = head.find(b"\r\n\r\n")
    if end < 0 and len(head) < 65536:
        entry[1] = head
        return
    line = head[: head.find(b"\r\n")].split(b" ") if end >= 0 else []
    if len(line) != 3 or not line[2].startswith(b"HTTP/1."):
        finish(fd, entry, BAD)
    elif line[0] == b"GET" and line[1].startswith(b"/t/"):
        times.append(time.time())
        kernel.append(entry[2])
        names.append(line[1][3:].decode())
        finish(fd, entry, OK)
    elif line[0] == b"POST" and line[1] == b"/dump":
        with open(log, "w") as f:
            json.dump([[n, t, None if k != k else k] for n, t, k in zip(names, times, kernel)], f)
        del names[:], times[:], kernel[:]
        finish(fd, entry, OK)
    else:
        finish(fd, entry, BAD)
gc.freeze()
lfd = listener.fileno()
while True:
    for fd, _ in poller.poll():
        if fd == lfd:
            while True:
                try:
                    conn, _ = listener.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                conn.setblocking(False)
                conns[conn.fileno()] = [conn, b"", None]
                poller.register(conn.fileno(), select.EPOLLIN)
        elif fd in conns:
            readable(fd)
"""


CLOCK_SHIFT = r"""
import os, time
_shift = float(os.environ.get("BENCH_CLOCK_SHIFT", "0"))
if _shift:  # --month-end: the daemon's clock is the wall clock moved by whole days
    import types
    import monitor.cli.run as _run
    import probes.result as _result
    _run.run_daemon.__kwdefaults__["clock"] = lambda: time.time() + _shift
    # A probe stamps its result with the wall clock (probes.result): moved the same.
    _result.time = types.SimpleNamespace(
        time=lambda: time.time() + _shift, monotonic=time.monotonic
    )
"""
LAUNCH = (
    CLOCK_SHIFT
    + r"""
import runpy, sys
sys.argv = ["monitor.cli", *sys.argv[1:]]
runpy.run_module("monitor.cli", run_name="__main__")
"""
)
"""The daemon's launcher without --diagnose (``python -m monitor.cli`` with the clock shift)."""

LOOP_HOOK = (
    CLOCK_SHIFT
    + r"""
import asyncio, atexit, gc, json, os, runpy, sys, time
blocks, pauses = [], []
_run = asyncio.events.Handle._run
def _timed(self):
    began = time.perf_counter()
    _run(self)
    took = time.perf_counter() - began
    if took > 0.02:
        what = getattr(self._callback, "__self__", None)
        name = repr(self._callback)[:160]
        if isinstance(what, asyncio.Task):
            name = "task " + getattr(what.get_coro(), "__qualname__", "?")
        blocks.append((round(took, 4), round(time.time(), 3), name))
asyncio.events.Handle._run = _timed
_gc = [0.0]
def _collected(phase, info):
    if phase == "start":
        _gc[0] = time.perf_counter()
    else:
        took = time.perf_counter() - _gc[0]
        if took > 0.01:
            pauses.append((round(took, 4), round(time.time(), 3), info["generation"]))
gc.callbacks.append(_collected)
def _dump():
    with open(os.environ["BENCH_LOOP_BLOCKS"], "w") as f:
        json.dump({"blocks": blocks, "gc": pauses}, f)
atexit.register(_dump)
sys.argv = ["monitor.cli", *sys.argv[1:]]
runpy.run_module("monitor.cli", run_name="__main__")
"""
)
DIAGNOSE: Path | None = None
"""--diagnose: where the loop blocks, GC pauses and py-spy samples go."""


def spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``pid`` for ``seconds`` into ``out`` (collapsed stacks), if installed."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(binary).exists():
        return None
    return subprocess.Popen(
        [binary, "record", "--nonblocking", "--format", "raw", "--rate", "50",
         "--duration", str(int(seconds)), "--pid", str(pid), "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def summarise(directory: Path, top: int = 40) -> None:
    """Self and inclusive shares per function of each collapsed-stack file in ``directory``."""
    for raw in sorted(directory.glob("*.raw")):
        own: dict[str, int] = {}
        inclusive: dict[str, int] = {}
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            total += count
            frames = [f.split(" (", 1)[0] + " " + f.rsplit("/", 1)[-1].split(":")[0].rstrip(")")
                      for f in stack.split(";")]  # fmt: skip
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
        print(f"== {raw.name}: {total} samples")
        for title, table in (("self", own), ("inclusive", inclusive)):
            print(f"-- {title}")
            for frame, count in sorted(table.items(), key=lambda kv: -kv[1])[:top]:
                print(f"{100 * count / max(total, 1):6.1f} %  {frame}")
    blocks = directory / "loop-blocks.json"
    if blocks.exists():
        data = json.loads(blocks.read_text())
        blocked, collected = len(data["blocks"]), len(data["gc"])
        print(f"== loop callbacks over 20 ms: {blocked}; GC over 10 ms: {collected}")
        for took, at, name in sorted(data["blocks"], reverse=True)[:top]:
            print(f"{took * 1000:8.1f} ms  {at:.3f}  {name}")
        for took, at, generation in sorted(data["gc"], reverse=True)[:10]:
            print(f"{took * 1000:8.1f} ms  {at:.3f}  gc gen {generation}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    user, system = cpu_split(pid)
    return user + system


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` (every thread): utime, stime."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    """VmRSS now (the resident set at the end of the window; the peak includes start-up)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
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


def scrape(base: str, timeout: float = 60) -> tuple[float, str]:
    """One GET /metrics: (seconds it took, body)."""
    start = time.perf_counter()
    body = urllib.request.urlopen(base + "/metrics", timeout=timeout).read().decode()
    return time.perf_counter() - start, body


def probes_total(body: str) -> float:
    total = 0.0
    for line in body.splitlines():
        if line.startswith("slawatch_probes_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def lag_histogram(body: str) -> dict[float, float]:
    """Cumulative counts of slawatch_scheduler_lag_seconds by upper bound."""
    out: dict[float, float] = {}
    for line in body.splitlines():
        if line.startswith("slawatch_scheduler_lag_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            out[float(bound)] = float(line.rsplit(" ", 1)[1])
    return out


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float:
    """Upper bound of the bucket holding quantile ``q`` of the observations between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if total and count >= q * total:
            return bound
    return float("nan")


PER_SLA: int | None = None
"""--per-sla: targets per service/SLA, every target in one (None: the 10 SLAs of 5 targets)."""


def write_config(
    directory: Path, n: int, target_port: int, port: int, per_sla: int | None = None
) -> Path:
    """The bench's configuration: ``n`` targets, SLAs as ``--per-sla`` (``per_sla`` given:
    that many targets per SLA, every target in one)."""
    per_sla = PER_SLA if per_sla is None else per_sla
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
    per = 5 if per_sla is None else per_sla
    groups = 10 if per_sla is None else n // per_sla
    lines.append("services:")
    for s in range(groups):
        members = ", ".join(names[s * per : s * per + per])
        lines += [f"  - name: svc{s}", f"    targets: [{members}]"]
    lines.append("slas:")
    for s in range(groups):
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
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


HISTORY_DAYS = 0.0
"""--history-days: tallies stored before the daemon starts, for every target in an SLA."""

MONTH_END: int | None = None
"""--month-end: the day of the month the daemon starts on, from a month-end store."""


def prefill(config: Path, days: float) -> int:
    """Store ``days`` of 5-minute tallies (10 probes, one failure in one bucket of 100) for
    every target in an SLA, ending with the bucket before now, and a heartbeat now (no gap):
    the daemon starts as it would after running that long. Returns the rows written."""
    from monitor.config import load_config
    from monitor.store.base import TallyRow, WriteBatch
    from monitor.store.sqlite import SqliteStore

    loaded = load_config(config)
    names = sorted({t for s in loaded.service_defs().values() for t in s.targets})
    now = time.time()
    last = int(now) - int(now) % 300 - 300
    first = last - int(days * 86400) // 300 * 300

    async def write() -> int:
        store = SqliteStore(loaded.monitor.database_path, vantage=loaded.monitor.name)
        await store.open()
        rows = 0
        try:
            batch: list[TallyRow] = []
            for start in range(first, last + 1, 300):
                failing = (start // 300) % 100 == 0
                for name in names:
                    batch.append(
                        TallyRow(
                            loaded.monitor.name,
                            name,
                            start,
                            300,
                            9 if failing else 10,
                            1 if failing else 0,
                            {"http_503": 1} if failing else {},
                        )
                    )
                if len(batch) >= 200_000:
                    await store.write_batch(WriteBatch(tallies=batch))
                    rows += len(batch)
                    batch = []
            await store.write_batch(WriteBatch(tallies=batch, heartbeat=time.time()))
            rows += len(batch)
        finally:
            await store.close()
        return rows

    return asyncio.run(write())


def lag_percentiles(arrivals: list[tuple[str, float]]) -> tuple[float, float, int]:
    lags = []
    for name, at in arrivals:
        if at != at:  # NaN: no kernel timestamp for this request
            continue
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


def dump(target_port: int) -> None:
    """Make the target server write the arrivals it saw so far, and forget them."""
    urllib.request.urlopen(
        urllib.request.Request(f"http://127.0.0.1:{target_port}/dump", method="POST"),
        timeout=30,
    ).read()


def verdict_rows_after_start(
    config: Path, daemon_log: Path, out: dict[str, float]
) -> dict[str, float]:
    """vm26 (issue 20): the service verdict rows the daemon added to the month-end store
    after its start (rows now stored less those the prefill wrote) and the stored verdicts
    its resumes read back (its last ``verdict_marks_resumed`` line, logged at info: -1 at the
    bench's ``log_level: warning``; tests/test_verdict_vouch.py counts them in process)."""
    import re
    import sqlite3

    from monitor.config import load_config

    path = load_config(config).monitor.database_path
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT count(*) FROM service_buckets").fetchone()[0]
    read = re.findall(r"verdict_marks_resumed\W.*?rows_read\W+(\d+)", daemon_log.read_text())
    return {
        "verdict_rows_added": float(stored - out.get("month_end_verdict_rows", 0.0)),
        "verdict_rows_read": float(read[-1]) if read else -1.0,
    }


REUSE_PREFILL: Path | None = None
"""--reuse-prefill: where month-end stores are kept and reused (dy29, issue 20)."""


def port_free(port: int) -> bool:
    """Whether ``port`` can be listened on again (as the servers do: SO_REUSEADDR, so the
    last run's connections in TIME_WAIT do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def kept_prefill(n: int) -> tuple[Path, dict[str, object] | None]:
    """--reuse-prefill: this layout's directory, and what it keeps if it can be reused (its
    ports free again), else None (dy29, issue 20)."""
    assert REUSE_PREFILL is not None
    kept = REUSE_PREFILL / f"targets{n}-per{PER_SLA}-day{MONTH_END}"
    meta_path = kept / "meta.json"
    if not (meta_path.exists() and (kept / "pristine").is_dir()):
        return kept, None
    meta = json.loads(meta_path.read_text())
    if not (port_free(int(meta["target_port"])) and port_free(int(meta["port"]))):
        print(f"--reuse-prefill: a port of {kept} is taken; writing the prefill again")
        return kept, None
    return kept, meta


def run(n: int, measure: float, scrape_every: float, keep: bool) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix=f"slawatch-bench-{n}-"))
    target_port, port = free_port(), free_port()
    kept: Path | None = None
    meta: dict[str, object] | None = None
    if REUSE_PREFILL is not None and MONTH_END is not None:
        kept, meta = kept_prefill(n)
        if meta is not None:
            target_port, port = int(meta["target_port"]), int(meta["port"])  # type: ignore[call-overload]
    arrivals_log = work / "arrivals.json"
    server = subprocess.Popen(
        [sys.executable, "-c", TARGET_SERVER, str(target_port), str(arrivals_log)]
    )
    procs = [server]
    out: dict[str, float] = {"targets": n}
    try:
        wait_http(f"http://127.0.0.1:{target_port}/t/ping")
        env = dict(os.environ)
        if kept is not None:  # --reuse-prefill: the store lives in the kept directory
            config = write_config(kept, n, target_port, port)
        else:
            config = write_config(work, n, target_port, port)
        if kept is not None and meta is not None:
            began = time.time()
            shutil.rmtree(kept / "state", ignore_errors=True)
            shutil.copytree(kept / "pristine", kept / "state")
            now = int(meta["now"])  # type: ignore[call-overload]
            # Back to the store's instant by whole buckets (>= it: no tally after the clock).
            shift = -((int(time.time()) - now) // 300) * 300
            env["BENCH_CLOCK_SHIFT"] = str(shift)
            figures = dict(meta["figures"])  # type: ignore[call-overload]
            out.update({f"month_end_{k}": v for k, v in figures.items()})
            out["prefill_s"] = time.time() - began
            out["history_rows"] = figures["tail_rows"]
            out["prefill_reused"] = 1.0
            from month_end import write_heartbeat

            write_heartbeat(config, time.time() + shift)  # no downtime gap before the start
        elif MONTH_END is not None:
            from month_end import month_end_now, prefill_month_end, write_heartbeat

            if kept is not None:  # written again: the last run's store is not its start
                shutil.rmtree(kept / "state", ignore_errors=True)
            real = time.time()
            now = month_end_now(MONTH_END, real)
            shift = now - int(real)
            env["BENCH_CLOCK_SHIFT"] = str(shift)
            figures = prefill_month_end(
                config, now, lambda d, k: write_config(d, k, target_port, port, per_sla=k)
            )
            out.update({f"month_end_{k}": v for k, v in figures.items()})
            out["prefill_s"] = figures["prefill_s"]
            out["history_rows"] = figures["tail_rows"]
            if kept is not None:  # --reuse-prefill: kept as written, before any heartbeat
                shutil.rmtree(kept / "pristine", ignore_errors=True)
                shutil.copytree(kept / "state", kept / "pristine")
                (kept / "meta.json").write_text(
                    json.dumps(
                        {"now": now, "target_port": target_port, "port": port, "figures": figures}
                    )
                )
            write_heartbeat(config, time.time() + shift)  # no downtime gap before the start
        elif HISTORY_DAYS > 0:
            began = time.time()
            out["history_rows"] = prefill(config, HISTORY_DAYS)
            out["prefill_s"] = time.time() - began
        command = [sys.executable, "-c", LAUNCH, "run", "--config", str(config)]
        if DIAGNOSE is not None:
            DIAGNOSE.mkdir(parents=True, exist_ok=True)
            command[2] = LOOP_HOOK
            env["BENCH_LOOP_BLOCKS"] = str(DIAGNOSE / "loop-blocks.json")
        daemon = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=open(work / "daemon.log", "w"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
        )
        procs.append(daemon)
        base = f"http://127.0.0.1:{port}"
        launched = time.time()
        starting = None
        if DIAGNOSE is not None:  # the start-up too: launch to /readyz (mw24)
            starting = spy(daemon.pid, 600, DIAGNOSE / "daemon-startup.raw")
        wait_http(base + "/readyz", timeout=600)
        out["ready_s"] = time.time() - launched
        # st26: the daemon's CPU (every thread) from launch to ready: less disturbed by the
        # machine's load than ready_s.
        out["ready_cpu_s"] = cpu_seconds(daemon.pid)
        if starting is not None:
            starting.send_signal(signal.SIGINT)  # py-spy writes what it sampled, and exits
            starting.wait(60)
        # st26: /readyz no longer waits for the first summary after a start (at a month's
        # end at 10,000 SLAs, tens of seconds); a scrape meanwhile computes what it has not
        # reached. The first scrape's time from ready is its own figure, and the window
        # opens after it, as it did when ready came after the summary.
        out["first_scrape_s"] = scrape(base, timeout=900)[0]
        time.sleep(INTERVAL)  # warm-up: every target has run once
        out["load_before"] = os.getloadavg()[0]
        dump(target_port)
        # The window opens and closes on a scrape, and is scraped every scrape_every seconds
        # in between: the scrapes are part of the daemon's work, as in production.
        _, body0 = scrape(base)
        (u0, s0), g0, t0 = cpu_split(daemon.pid), cpu_seconds(server.pid), time.time()
        c0 = u0 + s0  # one read of the daemon's CPU: the total is its user and system time
        p0, h0 = probes_total(body0), lag_histogram(body0)
        spies = []
        if DIAGNOSE is not None:
            spies = [
                spy(daemon.pid, measure, DIAGNOSE / "daemon.raw"),
                spy(server.pid, measure, DIAGNOSE / "target-server.raw"),
            ]
        scrapes: list[float] = []
        while True:
            left = t0 + measure - time.time()
            if left <= 0:
                break
            time.sleep(min(scrape_every, left))
            if time.time() < t0 + measure - 1:
                scrapes.append(scrape(base)[0])
        (u1, s1), g1, t1 = cpu_split(daemon.pid), cpu_seconds(server.pid), time.time()
        c1 = u1 + s1
        took, body1 = scrape(base)
        scrapes.append(took)
        p1, h1 = probes_total(body1), lag_histogram(body1)
        dump(target_port)
        arrivals = json.loads(arrivals_log.read_text())
        p50, p99, samples = lag_percentiles([(a, b) for a, b, _ in arrivals])
        k50, k99, ksamples = lag_percentiles(
            [(a, float("nan") if k is None else k) for a, _, k in arrivals]
        )
        probes = p1 - p0
        out.update(
            probes_per_s=probes / (t1 - t0),
            lag_p50_ms=p50 * 1000,
            lag_p99_ms=p99 * 1000,
            kernel_lag_p50_ms=k50 * 1000,
            kernel_lag_p99_ms=k99 * 1000,
            kernel_lag_samples=ksamples,
            daemon_lag_p99_le_ms=histogram_quantile(0.99, h0, h1) * 1000,
            lag_samples=samples,
            cpu_s_per_1000=(c1 - c0) * 1000 / max(probes, 1),
            # pp33: the kernel's share (connect, send, receive, close, epoll) apart from
            # the interpreter's.
            user_s_per_1000=(u1 - u0) * 1000 / max(probes, 1),
            sys_s_per_1000=(s1 - s0) * 1000 / max(probes, 1),
            peak_rss_mb=peak_rss_mb(daemon.pid),
            rss_end_mb=rss_mb(daemon.pid),
            scrape_s=statistics.median(scrapes),
            scrape_max_s=max(scrapes),
            scrapes=len(scrapes),
            target_cpu_share=(g1 - g0) / (t1 - t0),
            load_after=os.getloadavg()[0],
        )
        for sampler in spies:
            if sampler is not None:
                sampler.wait(60)
        stopping = time.time()
        daemon.terminate()
        try:
            daemon.wait(30)
            out["stop_s"] = time.time() - stopping
        except subprocess.TimeoutExpired:  # keep the figures taken; say the stop was slow
            daemon.kill()
            daemon.wait(30)
            out["stop_s"] = float("inf")
        if MONTH_END is not None:
            out.update(verdict_rows_after_start(config, work / "daemon.log", out))
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
            b0, w0 = cpu_seconds(exporter.pid), time.time()
            ok = asyncio.run(drive_blackbox(bb_port, target_port, n, measure))
            b1, w1 = cpu_seconds(exporter.pid), time.time()
            out["blackbox_probes_ok"] = ok
            # Probes are due over [0, measure); the last ones finish a moment later.
            out["blackbox_probes_per_s"] = ok / measure
            out["blackbox_wall_s"] = w1 - w0
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
    parser.add_argument(
        "--scrape-interval", type=float, default=15.0, help="seconds between /metrics scrapes"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--history-days",
        type=float,
        default=0.0,
        help="days of tallies stored before start for every target in an SLA (31: the "
        "steady state at a month's end, the previous month complete)",
    )
    parser.add_argument(
        "--month-end",
        type=int,
        default=None,
        metavar="DAY",
        help="start the daemon on the DAY-th of a month (its clock the wall clock moved back "
        "by whole days) from the store a daemon that ran all month leaves: snapshots, the "
        "last hour's tallies, the previous month sealed (bench/month_end.py)",
    )
    parser.add_argument(
        "--reuse-prefill",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --month-end: keep the prefilled store in DIR and start later runs of the "
        "same --targets/--per-sla/--month-end (this tree's bench or another's) from a copy "
        "of it, skipping the prefill (~83 s at 10,000 one-target SLAs); the daemon's clock "
        "is moved back to the store's instant by whole 5-minute buckets",
    )
    parser.add_argument(
        "--per-sla",
        type=int,
        default=None,
        help="targets per service and SLA, every target in one (1: N one-target SLAs; "
        "100: N/100 SLAs of 100); default: 10 SLAs of 5 targets",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per N; the table shows their medians"
    )
    parser.add_argument(
        "--diagnose",
        type=Path,
        default=None,
        help="directory for loop blocks, GC pauses and py-spy samples (a diagnostic run)",
    )
    parser.add_argument(
        "--summarise", type=Path, default=None, help="print a --diagnose directory and exit"
    )
    args = parser.parse_args()
    if args.summarise is not None:
        summarise(args.summarise)
        return
    global PER_SLA, HISTORY_DAYS, DIAGNOSE, MONTH_END, REUSE_PREFILL
    MONTH_END = args.month_end
    REUSE_PREFILL = args.reuse_prefill
    DIAGNOSE = args.diagnose
    PER_SLA = args.per_sla
    HISTORY_DAYS = args.history_days
    runs = [
        [run(n, args.measure, args.scrape_interval, args.keep) for _ in range(args.repeat)]
        for n in args.targets
    ]
    print(json.dumps(runs), file=sys.stderr)
    rows = [
        {key: statistics.median(r[key] for r in reps) for key in reps[0] if key in reps[-1]}
        for reps in runs
    ]
    keys = [
        "targets",
        "history_rows",
        "prefill_s",
        "ready_s",
        "ready_cpu_s",
        "first_scrape_s",
        "probes_per_s",
        "lag_p50_ms",
        "lag_p99_ms",
        "kernel_lag_p50_ms",
        "kernel_lag_p99_ms",
        "daemon_lag_p99_le_ms",
        "cpu_s_per_1000",
        "user_s_per_1000",
        "sys_s_per_1000",
        "peak_rss_mb",
        "rss_end_mb",
        "stop_s",
        "scrape_s",
        "scrape_max_s",
        "target_cpu_share",
        "blackbox_probes_per_s",
        "blackbox_cpu_s_per_1000",
        "daemon_to_blackbox_cpu_ratio",
        "load_before",
        "load_after",
        "verdict_rows_added",
        "verdict_rows_read",
    ]
    if args.repeat > 1:
        print(f"medians of {args.repeat} runs per N")
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
