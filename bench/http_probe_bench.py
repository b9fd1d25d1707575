#!/usr/bin/env python3
"""CPU per ``http`` probe, on loopback.

Starts an aiohttp target (``GET /`` -> ``200 ok``) in a separate process, then runs N probes of
``probes.http.probe`` at concurrency C in this process and reports this process's CPU time
(``time.process_time()``, user + system, all threads) per probe and probes per second. Warm-up
probes are excluded. With ``--compare`` it also measures an aiohttp client with one shared
session and a ``force_close`` connector (fresh connection per probe) on the same target; with
``--blackbox`` the exporter's own CPU (from /proc) per ``/probe`` request of an ``http_2xx``
module, the anchor the daemon's budget is set against.

usage: .venv/bin/python bench/http_probe_bench.py [-n 2000] [-c 4] [--reps 3]
                                                  [--compare] [--blackbox] [--tls] [--streams]

``--streams`` also runs plain HTTP over asyncio streams (the path before issue 20's socket
calls, ``probes/rawconn.py``), for an A/B in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.http import HttpOptions, probe
from probes.result import ProbeContext

Variant = Callable[[str, int, int, "str | None"], Coroutine[Any, Any, dict[str, float]]]

_TARGET = """
import asyncio, ssl, sys
from aiohttp import web

async def ok(request):
    return web.Response(text="ok")

async def main():
    app = web.Application()
    app.router.add_get("/", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tls = None
    if len(sys.argv) > 2:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(sys.argv[1], sys.argv[2])
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


async def _measure(
    one: Callable[[], Awaitable[bool]],
    n: int,
    concurrency: int,
    warmup: int = 50,
    cpu: Callable[[], float] = time.process_time,
) -> dict[str, float]:
    for _ in range(warmup):
        if not await one():
            raise RuntimeError("warm-up probe failed: is the target up?")
    remaining = iter(range(n))
    ok = 0

    async def worker() -> None:
        nonlocal ok
        for _ in remaining:
            # Await first: ``ok += await ...`` would read ``ok`` before suspending.
            passed = await one()
            ok += passed

    cpu0, wall0 = cpu(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu1, wall1 = cpu(), time.perf_counter()
    return {
        "ok": ok,
        "cpu_ms_per_probe": (cpu1 - cpu0) * 1000 / n,
        "probes_per_s": n / (wall1 - wall0),
    }


async def _slawatch(url: str, n: int, concurrency: int, ca: str | None) -> dict[str, float]:
    options = HttpOptions.model_validate({"url": url, "tls": {"ca_file": ca} if ca else {}})

    async def one() -> bool:
        # The runner builds a context per probe, so its cost is counted too.
        result = await probe(options, ProbeContext.starting_now("bench", 5.0))
        return result.ok

    return await _measure(one, n, concurrency)


async def _slawatch_streams(url: str, n: int, concurrency: int, ca: str | None) -> dict[str, float]:
    """The same probe with plain HTTP over asyncio streams, as before issue 20 (l22): the
    TLS path's exchange without TLS, in place of the loop's socket calls."""
    import probes.http as http

    if ca:
        raise SystemExit("--streams compares plain HTTP only")
    fetch = http._fetch

    async def over_streams(  # type: ignore[no-untyped-def]
        options, url, request, head_request, keep_body, attempt
    ) -> Any:
        return await http._fetch_streams(
            options, url, request, head_request, keep_body, attempt, None
        )

    http._fetch = over_streams
    try:
        return await _slawatch(url, n, concurrency, ca)
    finally:
        http._fetch = fetch


async def _aiohttp_shared(url: str, n: int, concurrency: int, ca: str | None) -> dict[str, float]:
    import ssl

    import aiohttp

    timeout = aiohttp.ClientTimeout(total=5)
    context = ssl.create_default_context(cafile=ca) if ca else True
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True, ssl=context), timeout=timeout
    ) as session:

        async def one() -> bool:
            async with session.get(url) as response:
                await response.read()
                return response.status == 200

        return await _measure(one, n, concurrency)


def _process_cpu(pid: int) -> float:
    """utime + stime of another process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_blackbox(directory: str, ca: str | None) -> tuple[subprocess.Popen[bytes], int]:
    """prometheus-blackbox-exporter with one ``http_2xx`` module, on a free loopback port."""
    tls = f"\n      tls_config: {{ca_file: {ca}}}" if ca else ""
    config = Path(directory) / "blackbox.yml"
    config.write_text(
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n"
        "      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n"
        f"      follow_redirects: false{tls}\n"
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    exporter = subprocess.Popen(
        ["prometheus-blackbox-exporter", f"--config.file={config}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
    )  # fmt: skip
    return exporter, port


def _blackbox_variant(exporter: subprocess.Popen[bytes], port: int) -> Variant:
    async def run(url: str, n: int, concurrency: int, ca: str | None) -> dict[str, float]:
        """The exporter's own CPU per ``/probe`` (http_2xx: a fresh Go client per probe)."""
        import aiohttp

        probe_url = f"http://127.0.0.1:{port}/probe?module=http_2xx&target={url}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as s:
            for _ in range(100):
                try:
                    async with s.get(f"http://127.0.0.1:{port}/-/healthy") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.05)

            async def one() -> bool:
                async with s.get(probe_url) as response:
                    return "\nprobe_success 1" in await response.text()

            return await _measure(one, n, concurrency, cpu=lambda: _process_cpu(exporter.pid))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="probes per repetition")
    parser.add_argument("-c", type=int, default=4, help="concurrent probes")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument("--compare", action="store_true", help="also run an aiohttp client")
    parser.add_argument(
        "--blackbox", action="store_true", help="also measure prometheus-blackbox-exporter"
    )
    parser.add_argument("--tls", action="store_true", help="HTTPS (self-signed EC P-256 cert)")
    parser.add_argument(
        "--streams",
        action="store_true",
        help="also run plain HTTP over asyncio streams (the path before issue 20's socket calls)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        cert_args: list[str] = []
        if args.tls:
            cert, key = f"{directory}/cert.pem", f"{directory}/key.pem"
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                 "-days", "2", "-subj", "/CN=bench", "-addext", "subjectAltName=IP:127.0.0.1"],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            cert_args = [cert, key]
        _bench(args, cert_args, directory)


def _bench(args: argparse.Namespace, cert_args: list[str], directory: str) -> None:
    target = subprocess.Popen(
        [sys.executable, "-c", _TARGET, *cert_args], stdout=subprocess.PIPE, text=True
    )
    ca = cert_args[0] if cert_args else None
    exporter: subprocess.Popen[bytes] | None = None
    try:
        assert target.stdout is not None
        port = int(target.stdout.readline())
        url = f"{'https' if ca else 'http'}://127.0.0.1:{port}/"
        variants: dict[str, Variant] = {"slawatch_http": _slawatch}
        if args.streams:
            variants["slawatch_http_streams"] = _slawatch_streams
        if args.compare:
            variants["aiohttp_shared_force_close"] = _aiohttp_shared
        if args.blackbox:
            exporter, exporter_port = _start_blackbox(directory, ca)
            variants["blackbox_exporter"] = _blackbox_variant(exporter, exporter_port)
        for name, variant in variants.items():
            runs = [asyncio.run(variant(url, args.n, args.c, ca)) for _ in range(args.reps)]
            if any(r["ok"] != args.n for r in runs):
                raise SystemExit(f"{name}: some probes failed: {[r['ok'] for r in runs]}")
            cpu = [r["cpu_ms_per_probe"] for r in runs]
            rate = [r["probes_per_s"] for r in runs]
            print(
                json.dumps(
                    {
                        "variant": name,
                        "n": args.n,
                        "concurrency": args.c,
                        "tls": bool(ca),
                        "cpu_ms_per_probe_median": round(statistics.median(cpu), 4),
                        "cpu_ms_per_probe_reps": [round(v, 4) for v in cpu],
                        "probes_per_s_median": round(statistics.median(rate)),
                    }
                )
            )
    finally:
        for process in (target, exporter):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    main()
