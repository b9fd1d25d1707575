"""SIP benchmarks on loopback against real peers.

``calls``: how many concurrent ``sip_call`` probes one process sustains against the baresip
echo peer with RTP loss below 1 %. Each level starts N calls at once (spread over 200 ms),
every call lasting ``--duration`` seconds with audio both ways, and reports per level: calls
up, worst and mean loss, worst jitter, lowest MOS, and the CPU the probe process and the peer
used. Levels go up until a call fails or loss reaches 1 %.

    .venv/bin/python bench/sip_bench.py calls [--levels 1,10,25,50,100] [--duration 3]

``options``: how many ``sip_options`` probes per second one event loop sustains against
Kamailio, the way the daemon runs them (each probe a full run: socket, OPTIONS, 200, close),
at rising concurrency, per transport; with the CPU milliseconds one probe costs this process
and Kamailio, latency percentiles, and failures.

    .venv/bin/python bench/sip_bench.py options [--levels 1,4,16,64] [--seconds 3]

``options-tls``: OPTIONS over TLS 1.3 against Kamailio's tls module (certificate from a test
CA, verified): ``fresh`` opens a new TLS connection per probe (what ``sip_options`` does),
``kept`` sends every OPTIONS over one connection per worker; probes/s and CPU ms per probe.

    .venv/bin/python bench/sip_bench.py options-tls [--levels 1,4,16] [--seconds 3]

``srtp-calls``: ``calls`` with ``srtp: mandatory`` over TLS signalling against baresip with
its srtp module (``mediaenc=srtp-mand``).

    .venv/bin/python bench/sip_bench.py srtp-calls [--levels 1,10,25,50] [--duration 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from probes.result import ProbeContext, ProbeResult
from probes.sip.message import new_call_id, new_tag
from probes.sip.transaction import SipEndpoint, SipError, build_request
from probes.sip_call import SipCallOptions, probe
from probes.sip_options import SipOptionsOptions
from probes.sip_options import probe as options_probe
from probes.tls import client_context
from tests.peers import require_binary
from tests.sip_peers import (
    KamailioTls,
    make_test_ca,
    start_baresip,
    start_kamailio,
    stop_process,
)

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass(frozen=True)
class Level:
    calls: int
    up: int
    worst_loss: float
    mean_loss: float
    worst_jitter_ms: float
    min_mos: float
    probe_cpu_percent: float
    peer_cpu_percent: float
    wall_seconds: float
    reasons: str


def _float(result: ProbeResult, key: str, default: float) -> float:
    value = result.details.get(key)
    return float(value) if isinstance(value, int | float) else default


async def _run_level(
    uri: str, calls: int, duration: float, peer_pid: int, extra: dict[str, object] | None = None
) -> Level:
    options = SipCallOptions.model_validate(
        {
            "uri": uri,
            "bind": "127.0.0.1",
            "duration": duration,
            "answer_timeout": "5s",
            "send_tone_hz": 1000,
            **(extra or {}),
        }
    )

    async def one(delay: float) -> ProbeResult:
        await asyncio.sleep(delay)
        return await probe(options, ProbeContext.starting_now("bench", duration + 10))

    cpu0, peer0, wall0 = time.process_time(), _cpu_seconds(peer_pid), time.monotonic()
    results = await asyncio.gather(*(one(0.2 * i / calls) for i in range(calls)))
    wall = time.monotonic() - wall0
    cpu, peer = time.process_time() - cpu0, _cpu_seconds(peer_pid) - peer0
    losses = [_float(r, "rtp_loss_ratio", 1.0) for r in results]
    reasons: dict[str, int] = {}
    for r in results:
        if not r.ok:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
    return Level(
        calls=calls,
        up=sum(r.ok for r in results),
        worst_loss=max(losses),
        mean_loss=sum(losses) / len(losses),
        worst_jitter_ms=1000 * max(_float(r, "rtp_jitter_seconds", 0.0) for r in results),
        min_mos=min(_float(r, "mos", 1.0) for r in results),
        probe_cpu_percent=100 * cpu / wall,
        peer_cpu_percent=100 * peer / wall,
        wall_seconds=wall,
        reasons=",".join(f"{k}:{v}" for k, v in sorted(reasons.items())) or "-",
    )


def calls_main(levels: list[int], duration: float, srtp: bool = False) -> int:
    work = Path(tempfile.mkdtemp(prefix="sip-bench-"))
    extra: dict[str, object] = {}
    if srtp:
        ca = make_test_ca(work, (TLS_NAME,))
        pem = work / "sip-cert.pem"
        pem.write_text(ca.server_cert.read_text() + ca.server_key.read_text())
        proc, peer = start_baresip(
            "srtp_echo", work, extra_config=f"module srtp.so\nsip_certificate {pem}\n"
        )
        uri = f"sips:{peer.user}@127.0.0.1:{peer.sip_port + 1}"
        extra = {"srtp": "mandatory", "tls": {"ca_file": str(ca.ca_cert), "server_name": TLS_NAME}}
    else:
        proc, peer = start_baresip("echo", work)
        uri = peer.uri
    mode = "SRTP AES_CM_128_HMAC_SHA1_80 over TLS 1.3 signalling" if srtp else "plain RTP, UDP"
    print(
        f"echo peer {uri} pid {peer.pid}; {duration:g} s calls, PCMU 20 ms, tone both ways, {mode}"
    )
    print(
        f"{'calls':>5} {'up':>5} {'loss max':>9} {'loss mean':>9} {'jitter ms':>9} "
        f"{'MOS min':>7} {'probe CPU%':>10} {'peer CPU%':>9} {'wall s':>6}  failures"
    )
    sustained = 0
    try:
        for calls in levels:
            level = asyncio.run(_run_level(uri, calls, duration, peer.pid, extra))
            print(
                f"{level.calls:>5} {level.up:>5} {level.worst_loss:>9.4f} {level.mean_loss:>9.4f} "
                f"{level.worst_jitter_ms:>9.2f} {level.min_mos:>7.2f} "
                f"{level.probe_cpu_percent:>10.1f} {level.peer_cpu_percent:>9.1f} "
                f"{level.wall_seconds:>6.2f}  {level.reasons}",
                flush=True,
            )
            if level.up < calls or level.worst_loss >= 0.01:
                break
            sustained = calls
    finally:
        peer.events.close()
        stop_process(proc)
    print(f"sustained: {sustained} concurrent calls with every call up and loss < 1 %")
    return 0


def _tree_cpu_seconds(pid: int) -> float:
    """CPU of ``pid`` and its direct children (Kamailio's workers)."""
    total = _cpu_seconds(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


@dataclass(frozen=True)
class OptionsLevel:
    transport: str
    concurrency: int
    probes: int
    up: int
    per_second: float
    probe_cpu_ms: float
    peer_cpu_ms: float
    p50_ms: float
    p99_ms: float
    reasons: str


async def _options_level(
    uri: str, transport: str, concurrency: int, seconds: float, peer_pid: int
) -> OptionsLevel:
    options = SipOptionsOptions.model_validate({"uri": uri, "transport": transport})
    results: list[ProbeResult] = []
    stop_at = time.monotonic() + seconds

    async def worker() -> None:
        # Back to back, like a daemon whose targets are all due: each run is a whole probe.
        while time.monotonic() < stop_at:
            results.append(await options_probe(options, ProbeContext.starting_now("bench", 5)))

    cpu0, peer0, wall0 = time.process_time(), _tree_cpu_seconds(peer_pid), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.monotonic() - wall0
    cpu, peer = time.process_time() - cpu0, _tree_cpu_seconds(peer_pid) - peer0
    latencies = sorted(r.phases.get("response", 0.0) for r in results if r.ok) or [0.0]
    reasons: dict[str, int] = {}
    for r in results:
        if not r.ok:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
    return OptionsLevel(
        transport=transport,
        concurrency=concurrency,
        probes=len(results),
        up=sum(r.ok for r in results),
        per_second=len(results) / wall,
        probe_cpu_ms=1000 * cpu / len(results),
        peer_cpu_ms=1000 * peer / len(results),
        p50_ms=1000 * latencies[len(latencies) // 2],
        p99_ms=1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        reasons=",".join(f"{k}:{v}" for k, v in sorted(reasons.items())) or "-",
    )


def options_main(levels: list[int], seconds: float, transports: list[str]) -> int:
    work = Path(tempfile.mkdtemp(prefix="sip-bench-kamailio-"))
    proc, peer = start_kamailio(require_binary("kamailio"), work)
    print(f"kamailio {peer.uri()} pid {peer.pid}; {seconds:g} s per level; CPU ms per probe")
    print(
        f"{'transport':>9} {'conc':>4} {'probes':>7} {'up':>7} {'probes/s':>9} "
        f"{'CPU ms':>7} {'peer ms':>7} {'p50 ms':>7} {'p99 ms':>7}  failures"
    )
    try:
        for transport in transports:
            for concurrency in levels:
                level = asyncio.run(
                    _options_level(peer.uri(), transport, concurrency, seconds, peer.pid)
                )
                print(
                    f"{level.transport:>9} {level.concurrency:>4} {level.probes:>7} "
                    f"{level.up:>7} {level.per_second:>9.0f} {level.probe_cpu_ms:>7.3f} "
                    f"{level.peer_cpu_ms:>7.3f} {level.p50_ms:>7.2f} {level.p99_ms:>7.2f}  "
                    f"{level.reasons}",
                    flush=True,
                )
    finally:
        stop_process(proc)
    return 0


TLS_NAME = "sip.bench.test"


async def _options_tls_level(
    port: int, ca_file: Path, mode: str, concurrency: int, seconds: float, peer_pid: int
) -> OptionsLevel:
    uri = f"sips:ping@127.0.0.1:{port}"
    options = SipOptionsOptions.model_validate(
        {"uri": uri, "tls": {"ca_file": str(ca_file), "server_name": TLS_NAME}}
    )
    latencies: list[float] = []
    failures: dict[str, int] = {}
    count = 0
    stop_at = time.monotonic() + seconds

    async def fresh() -> None:
        nonlocal count
        while time.monotonic() < stop_at:
            result = await options_probe(options, ProbeContext.starting_now("bench", 5))
            count += 1
            if result.ok:
                latencies.append(result.phases.get("connect", 0) + result.phases["response"])
            else:
                failures[result.reason] = failures.get(result.reason, 0) + 1

    async def kept() -> None:
        nonlocal count
        target = options.target(client_context(options.tls))
        try:
            endpoint = await SipEndpoint.open(target)
        except SipError as exc:
            failures[exc.reason] = failures.get(exc.reason, 0) + 1
            count += 1
            return
        async with endpoint:
            while time.monotonic() < stop_at:
                request = build_request(
                    "OPTIONS", uri, from_uri="sips:bench@127.0.0.1", to_uri=uri,
                    call_id=new_call_id("bench"), cseq=1, from_tag=new_tag(),
                )  # fmt: skip
                started = time.monotonic()
                try:
                    response = await endpoint.request(request)
                except SipError as exc:
                    failures[exc.reason] = failures.get(exc.reason, 0) + 1
                    count += 1
                    continue
                count += 1
                if response.status == 200:
                    latencies.append(time.monotonic() - started)
                else:
                    failures[str(response.status)] = failures.get(str(response.status), 0) + 1

    worker = fresh if mode == "fresh" else kept
    cpu0, peer0, wall0 = time.process_time(), _tree_cpu_seconds(peer_pid), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.monotonic() - wall0
    cpu, peer = time.process_time() - cpu0, _tree_cpu_seconds(peer_pid) - peer0
    latencies.sort()
    latencies = latencies or [0.0]
    return OptionsLevel(
        transport=f"tls-{mode}",
        concurrency=concurrency,
        probes=count,
        up=count - sum(failures.values()),
        per_second=count / wall,
        probe_cpu_ms=1000 * cpu / max(1, count),
        peer_cpu_ms=1000 * peer / max(1, count),
        p50_ms=1000 * latencies[len(latencies) // 2],
        p99_ms=1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        reasons=",".join(f"{k}:{v}" for k, v in sorted(failures.items())) or "-",
    )


def options_tls_main(levels: list[int], seconds: float) -> int:
    work = Path(tempfile.mkdtemp(prefix="sip-bench-kamailio-tls-"))
    ca = make_test_ca(work, (TLS_NAME,))
    tls = KamailioTls(ca.server_cert, ca.server_key, ca.ca_cert)
    proc, peer = start_kamailio(require_binary("kamailio"), work, tls=tls)
    assert peer.tls_port is not None
    print(f"kamailio TLS 127.0.0.1:{peer.tls_port} pid {peer.pid}; {seconds:g} s per level")
    print(
        f"{'mode':>9} {'conc':>4} {'probes':>7} {'up':>7} {'probes/s':>9} "
        f"{'CPU ms':>7} {'peer ms':>7} {'p50 ms':>7} {'p99 ms':>7}  failures"
    )
    try:
        for mode in ("fresh", "kept"):
            for concurrency in levels:
                level = asyncio.run(
                    _options_tls_level(
                        peer.tls_port, ca.ca_cert, mode, concurrency, seconds, peer.pid
                    )
                )
                print(
                    f"{level.transport:>9} {level.concurrency:>4} {level.probes:>7} "
                    f"{level.up:>7} {level.per_second:>9.0f} {level.probe_cpu_ms:>7.3f} "
                    f"{level.peer_cpu_ms:>7.3f} {level.p50_ms:>7.2f} {level.p99_ms:>7.2f}  "
                    f"{level.reasons}",
                    flush=True,
                )
    finally:
        stop_process(proc)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    calls = sub.add_parser("calls", help="concurrent test calls against the baresip echo peer")
    calls.add_argument("--levels", default="1,10,25,50,100,150,200")
    calls.add_argument("--duration", type=float, default=3.0)
    opts = sub.add_parser("options", help="sip_options probes per second against Kamailio")
    opts.add_argument("--levels", default="1,4,16,64")
    opts.add_argument("--seconds", type=float, default=3.0)
    opts.add_argument("--transports", default="udp,tcp")
    tls = sub.add_parser("options-tls", help="OPTIONS over TLS: fresh vs kept connection")
    tls.add_argument("--levels", default="1,4,16")
    tls.add_argument("--seconds", type=float, default=3.0)
    srtp = sub.add_parser("srtp-calls", help="concurrent SRTP calls over TLS against baresip")
    srtp.add_argument("--levels", default="1,10,25,50,100")
    srtp.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args(argv)
    if args.command == "options-tls":
        return options_tls_main([int(n) for n in args.levels.split(",")], args.seconds)
    if args.command == "srtp-calls":
        return calls_main([int(n) for n in args.levels.split(",")], args.duration, srtp=True)
    if args.command == "options":
        levels = [int(n) for n in args.levels.split(",")]
        return options_main(levels, args.seconds, args.transports.split(","))
    if args.command == "calls":
        return calls_main([int(n) for n in args.levels.split(",")], args.duration)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
