"""Real SIP peers for the voice tests: Kamailio (the sip part) and baresip (the media part).

Import the fixtures in a test module with ``from tests.sip_peers import kamailio  # noqa: F401``
or through a conftest. Every peer listens on 127.0.0.1 on a port picked free at start-up and
runs in its own process group, ended as a group by tests.procs.stop_group.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers import require_binary
from tests.procs import spawn_peer, stop_group

KAMAILIO_CFG = Path(__file__).parent / "peers" / "kamailio" / "kamailio.cfg"
KAMAILIO_PASSWORD = "secret"
"""The password tests/peers/kamailio/kamailio.cfg accepts for any REGISTER user."""


@dataclass(frozen=True)
class KamailioPeer:
    """A running Kamailio: UDP and TCP on ``host:port``; its log file for post-mortems."""

    host: str
    port: int
    pid: int
    log_path: Path
    tls_port: int | None = None

    def uri(self, user: str = "ping", transport: str | None = None) -> str:
        param = f";transport={transport}" if transport else ""
        return f"sip:{user}@{self.host}:{self.port}{param}"


def free_udp_tcp_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP right now (Kamailio listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind((host, 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no port free for both UDP and TCP on loopback after 50 tries")


def free_sip_port_for_baresip(host: str = "127.0.0.1") -> int:
    """A port free for UDP and TCP whose next port is free for TCP too: baresip 1.0 always
    opens SIP over TLS on ``sip_listen`` + 1 and cannot be told not to."""
    for _ in range(100):
        port = free_udp_tcp_port(host)
        if port >= 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tls:
            try:
                tls.bind((host, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no port pair free for baresip on loopback after 100 tries")


def _options_answered(host: str, port: int) -> bool:
    request = (
        f"OPTIONS sip:ping@{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:9;branch=z9hG4bKready{time.monotonic_ns()};rport\r\n"
        f"From: <sip:ready@{host}>;tag=ready\r\nTo: <sip:ping@{host}>\r\n"
        f"Call-ID: ready-{time.monotonic_ns()}@{host}\r\nCSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        sock.bind((host, 0))
        try:
            sock.sendto(request, (host, port))
            data = sock.recv(65535)
        except OSError:
            return False
        return data.startswith(b"SIP/2.0 200")


class PeerStartError(RuntimeError):
    """Raised by ``start_kamailio`` when the peer exits or never answers."""


@dataclass(frozen=True)
class KamailioTls:
    """Files for Kamailio's tls module: its certificate and key, and the CA it verifies
    client certificates against (a client certificate is asked for, not required)."""

    certificate: Path
    private_key: Path
    ca_list: Path


def start_kamailio(
    binary: str, work: Path, host: str = "127.0.0.1", tls: KamailioTls | None = None
) -> tuple[subprocess.Popen[bytes], KamailioPeer]:
    """Start Kamailio in ``work`` on a free port; returns once it answers OPTIONS over UDP.

    With ``tls`` it also listens for SIP over TLS on ``peer.tls_port``.
    Used by the session fixture and by bench/sip_bench.py; stop it with ``stop_group(proc)``.
    """
    (work / "run").mkdir(exist_ok=True)
    port = free_udp_tcp_port(host)
    cfg = work / "kamailio.cfg"
    text = KAMAILIO_CFG.read_text().replace("@PORT@", str(port))
    defines: list[str] = []
    tls_port: int | None = None
    if tls is not None:
        tls_port = free_udp_tcp_port(host)
        tls_cfg = work / "tls.cfg"
        tls_cfg.write_text(
            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = yes\n"
            f"require_certificate = no\nprivate_key = {tls.private_key}\n"
            f"certificate = {tls.certificate}\nca_list = {tls.ca_list}\n"
        )
        text = text.replace("@TLS_PORT@", str(tls_port)).replace("@TLS_CFG@", str(tls_cfg))
        defines = ["-A", "WITH_TLS"]
    cfg.write_text(text)
    log_path = work / "kamailio.log"
    log_path.write_bytes(b"")
    # Its own process group: Kamailio forks a dozen workers, and stop_group ends them all.
    proc = spawn_peer(
        [binary, "-f", str(cfg), "-DD", "-E", "-Y", str(work / "run"), "-w", str(work), *defines],
        log=log_path,
    )
    try:
        deadline = time.monotonic() + 10
        while not _options_answered(host, port):
            if proc.poll() is not None:
                tail = log_path.read_text()[-2000:]
                raise PeerStartError(f"kamailio exited with {proc.returncode}: {tail}")
            if time.monotonic() > deadline:
                raise PeerStartError(f"kamailio not answering on {host}:{port} after 10 s")
            time.sleep(0.02)
    except BaseException:
        stop_group(proc)
        raise
    return proc, KamailioPeer(host, port, proc.pid, log_path, tls_port)


def _stop_kamailio(proc: subprocess.Popen[bytes]) -> None:
    stop_group(proc)


@pytest.fixture(scope="session")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KamailioPeer]:
    """Kamailio from tests/peers/kamailio/kamailio.cfg on a free port, for the whole session."""
    binary = require_binary("kamailio")
    try:
        proc, peer = start_kamailio(binary, tmp_path_factory.mktemp("kamailio"))
    except PeerStartError as exc:
        pytest.fail(str(exc))
    try:
        yield peer
    finally:
        _stop_kamailio(proc)


# --- baresip (owned by the media / sip_call work) ------------------------------------------
# Callees for the sip_call probe: templates in tests/peers/baresip/, one process per variant
# and test session, events read from its ctrl_tcp socket (netstring-framed JSON) by a thread.
import json  # noqa: E402
import random  # noqa: E402
import struct  # noqa: E402
import threading  # noqa: E402
import wave  # noqa: E402
from typing import Any  # noqa: E402

BARESIP_DIR = Path(__file__).parent / "peers" / "baresip"


@dataclass(frozen=True)
class BaresipVariant:
    """How one kind of callee differs from the template."""

    user: str
    app_module: str
    audio_source: str
    src_rate: int = 8000
    src_channels: int = 1
    answermode: str = "auto"
    max_calls: int = 8
    rtp_timeout: int = 10
    account_params: str = ""
    """Appended to the account line, e.g. ``;mediaenc=srtp-mand`` (needs module srtp.so)."""


BARESIP_VARIANTS: dict[str, BaresipVariant] = {
    # module echo loops received audio and DTMF back; it needs aubridge for source and player.
    # answermode=manual: with auto, the core answers first and echo never hooks the call's
    # DTMF handler, so digits are not relayed (measured).
    "echo": BaresipVariant("echo", "echo.so", "aubridge,nil", answermode="manual", max_calls=400),
    # ausine only does 48 kHz stereo; baresip resamples to 8 kHz for G.711.
    "sine": BaresipVariant("callee", "menu.so", "ausine,440", 48000, 2),
    # aufile needs the WAV's rate and channels to equal ausrc_srate/ausrc_channels.
    "silent": BaresipVariant("callee", "menu.so", "aufile,@WAV@"),
    "manual": BaresipVariant("callee", "menu.so", "ausine,440", 48000, 2, answermode="manual"),
    # Hangs up after 1 s without incoming RTP: proves the probe keeps sending.
    "strict": BaresipVariant("callee", "menu.so", "ausine,440", 48000, 2, rtp_timeout=1),
    # Mandatory SDES-SRTP (RFC 4568): start with extra_config loading srtp.so (and a TLS
    # certificate for SIP over TLS on sip_port + 1).
    "srtp_echo": BaresipVariant(
        "echo",
        "echo.so",
        "aubridge,nil",
        answermode="manual",
        max_calls=400,
        account_params=";mediaenc=srtp-mand",
    ),
}


class BaresipEvents:
    """Collects the events a baresip process pushes on one ctrl_tcp connection."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=2)
        self._sock.settimeout(0.2)
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"baresip-ctrl-{port}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b":" in buf:
                length_text, rest = buf.split(b":", 1)
                length = int(length_text)
                if len(rest) < length + 1:
                    break
                message, buf = rest[:length], rest[length + 1 :]
                with self._lock:
                    self._events.append(json.loads(message))

    def send(self, command: str, params: str = "") -> None:
        body = json.dumps({"command": command, "params": params, "token": "t"}).encode()
        self._sock.sendall(b"%d:%s," % (len(body), body))

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def of_type(self, kind: str, since: int = 0) -> list[dict[str, Any]]:
        """Events of one type (``CALL_ESTABLISHED``, ``CALL_DTMF_START``...) from ``since`` on."""
        return [e for e in self.snapshot()[since:] if e.get("type") == kind]

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(2)


@dataclass(frozen=True)
class BaresipPeer:
    """A running baresip callee: its SIP URI, ctrl_tcp events, and its log for post-mortems."""

    variant: str
    user: str
    sip_port: int
    rtp_ports: tuple[int, int]
    pid: int
    log_path: Path
    events: BaresipEvents

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@127.0.0.1:{self.sip_port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def write_silence_wav(path: Path, seconds: float) -> None:
    """An 8 kHz mono 16-bit WAV of digital silence (the answered-but-silent callee's source)."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(struct.pack("<h", 0) * int(8000 * seconds))


def _free_rtp_range(size: int) -> tuple[int, int]:
    # Clear of the probe's default 20000-20999 range so the peer and the probe never race.
    low = random.randrange(30000, 60000 - size, 2)
    return low, low + size - 1


def start_baresip(
    variant_name: str, work: Path, extra_config: str = ""
) -> tuple[subprocess.Popen[bytes], BaresipPeer]:
    """Start one baresip variant in ``work`` and wait for its ctrl_tcp port; ``extra_config``
    lines are appended to its config (modules, ``sip_certificate``)."""
    binary = require_binary("baresip")
    variant = BARESIP_VARIANTS[variant_name]
    sip_port = free_sip_port_for_baresip()
    ctrl_port = free_udp_tcp_port()
    cons_port = free_udp_tcp_port()
    rtp_low, rtp_high = _free_rtp_range(max(100, 4 * variant.max_calls))
    source = variant.audio_source
    if "@WAV@" in source:
        wav = work / "silence.wav"
        write_silence_wav(wav, 60)
        source = source.replace("@WAV@", str(wav))
    values = {
        "SIP_PORT": sip_port,
        "CTRL_PORT": ctrl_port,
        "CONS_PORT": cons_port,
        "RTP_PORTS": f"{rtp_low}-{rtp_high}",
        "AUDIO_SOURCE": source,
        "SRC_RATE": variant.src_rate,
        "SRC_CHANNELS": variant.src_channels,
        "APP_MODULE": variant.app_module,
        "MAX_CALLS": variant.max_calls,
        "RTP_TIMEOUT": variant.rtp_timeout,
        "USER": variant.user,
        "ANSWERMODE": variant.answermode,
        "ACCOUNT_PARAMS": variant.account_params,
        "EXTRA_CONFIG": extra_config,
    }
    for name in ("config", "accounts"):
        text = (BARESIP_DIR / f"{name}.template").read_text()
        for key, value in values.items():
            text = text.replace(f"@{key}@", str(value))
        (work / name).write_text(text)
    (work / "contacts").write_text("")
    log_path = work / "baresip.log"
    log_path.write_bytes(b"")
    proc = spawn_peer([binary, "-f", str(work)], log=log_path)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                events = BaresipEvents(ctrl_port)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text()[-2000:]
                    pytest.fail(f"baresip {variant_name} did not start: {tail}")
                time.sleep(0.02)
    except BaseException:
        stop_group(proc)
        raise
    peer = BaresipPeer(
        variant_name, variant.user, sip_port, (rtp_low, rtp_high), proc.pid, log_path, events
    )
    return proc, peer


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """End the peer's process group (tests.procs.stop_group; kept for bench/sip_bench.py)."""
    stop_group(proc)


def _baresip_fixture(variant_name: str) -> Any:
    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BaresipPeer]:
        proc, peer = start_baresip(variant_name, tmp_path_factory.mktemp(f"baresip-{variant_name}"))
        try:
            yield peer
        finally:
            peer.events.close()
            stop_process(proc)

    fixture.__doc__ = f"baresip callee variant {variant_name!r} for the whole session."
    return fixture


baresip_echo = _baresip_fixture("echo")
baresip_sine = _baresip_fixture("sine")
baresip_silent = _baresip_fixture("silent")
baresip_manual = _baresip_fixture("manual")
baresip_strict = _baresip_fixture("strict")


# SIPp user-agent servers for what baresip cannot do: a digest-challenged INVITE and a 3xx.
SIPP_DIR = Path(__file__).parent / "peers" / "sipp"
SIPP_USER = "probe"
SIPP_PASSWORD = "secret"
"""The credentials tests/peers/sipp/uas_digest_busy.xml accepts."""


@dataclass(frozen=True)
class SippPeer:
    """A SIPp UAS running one scenario on ``127.0.0.1:port`` (UDP)."""

    scenario: str
    port: int
    pid: int
    log_path: Path

    def uri(self, user: str = "ivr") -> str:
        return f"sip:{user}@127.0.0.1:{self.port}"


def _udp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def _tcp_port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def _sipp_fixture(
    scenario: str, extra: tuple[str, ...] = (), prepare: Any = None, transport: str = "u1"
) -> Any:
    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SippPeer]:
        binary = require_binary("sipp", "sip-tester")
        work = tmp_path_factory.mktemp(f"sipp-{scenario}")
        if prepare is not None:
            prepare(work)
        port = free_udp_tcp_port()
        # Every SIPp binds a media port (6000 by default): each its own, so they never clash.
        media = ("-mp", str(free_udp_tcp_port())) if "-mp" not in extra else ()
        log_path = work / "sipp.log"
        proc = spawn_peer(
            [
                binary,
                "-sf",
                str(SIPP_DIR / f"{scenario}.xml"),
                "-i",
                "127.0.0.1",
                "-p",
                str(port),
                "-m",
                "10000",
                "-nostdin",
                "-timeout",
                "600s",
                "-t",
                transport,
                *media,
                *extra,
            ],
            log=log_path,
            cwd=work,
        )
        try:
            deadline = time.monotonic() + 10
            while not (
                _tcp_port_taken(port) if transport.startswith("t") else _udp_port_taken(port)
            ):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"sipp {scenario} did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.02)
            yield SippPeer(scenario, port, proc.pid, log_path)
        finally:
            stop_process(proc)

    fixture.__doc__ = f"SIPp UAS running tests/peers/sipp/{scenario}.xml for the whole session."
    return fixture


sipp_digest_busy = _sipp_fixture("uas_digest_busy")
sipp_redirect = _sipp_fixture("uas_redirect")
sipp_no_media = _sipp_fixture("uas_no_media")
sipp_bad_sdp = _sipp_fixture("uas_bad_sdp")
sipp_hangup = _sipp_fixture("uas_hangup")


# --- RFC 3263 and TLS peers: a loopback DNS server and a test CA ----------------------------
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402


class LoopbackDns:
    """An authoritative DNS server on 127.0.0.1 (UDP, a free port) built on dnspython, answering
    from records a test sets; names it knows nothing of get NXDOMAIN. ``raw_reply`` replaces
    every answer with those bytes (the fuzz tests' hostile server); ``silent`` drops queries."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = int(self._sock.getsockname()[1])
        self._records: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.Lock()
        self.raw_reply: bytes | None = None
        self.silent = False
        self.queries: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="loopback-dns", daemon=True)
        self._thread.start()

    @property
    def nameserver(self) -> str:
        """The ``resolver:`` entry naming this server."""
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, rdtype: str, *rdatas: str) -> None:
        """Publish ``rdatas`` (zone-file text) as the ``rdtype`` records of ``name``."""
        with self._lock:
            self._records[(name.lower().rstrip("."), rdtype.upper())] = list(rdatas)

    def _answer(self, query: dns.message.Message) -> bytes:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        rdtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries.append((name, rdtype))
            rdatas = self._records.get((name, rdtype))
            known = any(key[0] == name for key in self._records)
        if rdatas:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, rdtype, rdatas)
            )
        elif not known:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if self.silent:
                continue
            try:
                query = dns.message.from_wire(data)
                reply = self.raw_reply if self.raw_reply is not None else self._answer(query)
                if self.raw_reply is not None:
                    # Keep the query id so the resolver reads the garbage as its answer.
                    reply = data[:2] + reply[2:] if len(reply) >= 2 else reply
            except Exception:  # a test server: a query it cannot parse goes unanswered
                continue
            with contextlib.suppress(OSError):
                self._sock.sendto(reply, addr)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@pytest.fixture
def loopback_dns() -> Iterator[LoopbackDns]:
    """A fresh LoopbackDns for one test."""
    server = LoopbackDns()
    try:
        yield server
    finally:
        server.close()


@dataclass(frozen=True)
class CaFiles:
    """A CA made by ``make_test_ca`` and what it signed: a server certificate for the names
    given, and a client certificate (CN ``slawatch-probe``)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_test_ca(
    work: Path, names: tuple[str, ...], ips: tuple[str, ...] = ("127.0.0.1",)
) -> CaFiles:
    """A throw-away CA and the certificates it signed, made with the openssl CLI."""
    openssl = require_binary("openssl")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=work, timeout=30)

    ca_ext = ("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "30", "-subj", "/CN=slawatch test CA", *ca_ext)  # fmt: skip
    san = ",".join([f"DNS:{n}" for n in names] + [f"IP:{ip}" for ip in ips])
    for who, subject, ext in (
        ("server", f"/CN={names[0]}", f"subjectAltName={san}"),
        ("client", "/CN=slawatch-probe", "extendedKeyUsage=clientAuth"),
    ):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
            "-subj", subject)  # fmt: skip
        (work / f"{who}.ext").write_text(ext + "\n")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{who}.pem", "-days", "20",
            "-extfile", f"{who}.ext")  # fmt: skip
    return CaFiles(
        work / "ca.pem",
        work / "server.pem",
        work / "server.key",
        work / "client.pem",
        work / "client.key",
    )


def _write_prompt(work: Path) -> None:
    """prompt.ulaw: 60 s of a 440 Hz tone as raw PCMU, what SIPp's rtp_stream plays."""
    from probes.sip.audio import Codec, encode, tone

    (work / "prompt.ulaw").write_bytes(encode(tone(440, 8000, 8000), Codec.PCMU) * 60)


sipp_early_media = _sipp_fixture("uas_early_media", prepare=_write_prompt)
"""Answers with a 183 + SDP, plays a tone as early media for 1.5 s, then 200 OK."""
sipp_reinvite = _sipp_fixture("uas_reinvite", extra=("-rtp_echo", "-base_cseq", "100"))
"""Echoes RTP; mid-call sends a re-INVITE (session refresh), UPDATE, OPTIONS and INFO."""
sipp_timer_uac = _sipp_fixture("uas_timer_uac", extra=("-rtp_echo",))
"""Makes us the session refresher (2 s) and answers our refresh re-INVITEs."""
sipp_timer_lapse = _sipp_fixture("uas_timer_lapse", extra=("-rtp_echo",))
"""Takes the refresher role for a 2 s session and never refreshes."""
sipp_srtp_wrong_key = _sipp_fixture("uas_srtp_wrong_key", extra=("-rtp_echo",))
"""Announces one SRTP key and echoes packets protected with ours: keys never match."""
sipp_timer_switch = _sipp_fixture("uas_timer_switch", extra=("-rtp_echo",))
"""Refreshes once, handing the refresher role to us, then expects our refreshes."""
