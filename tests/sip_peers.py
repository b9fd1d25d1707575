"""Real SIP peers for the voice tests: Kamailio (the sip part) and baresip (the media part).

Import the fixtures in a test module with ``from tests.sip_peers import kamailio  # noqa: F401``
or through a conftest. Every peer listens on 127.0.0.1 on a port picked free at start-up and
is stopped by its own PID.
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


def _options_answered(host: str, port: int) -> bool:
    request = (
        f"OPTIONS sip:ping@{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:9;branch=z9hG4bKready{time.monotonic_ns()}\r\n"
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


@pytest.fixture(scope="session")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KamailioPeer]:
    """Kamailio from tests/peers/kamailio/kamailio.cfg on a free port, for the whole session."""
    binary = require_binary("kamailio")
    work = tmp_path_factory.mktemp("kamailio")
    (work / "run").mkdir()
    host = "127.0.0.1"
    port = free_udp_tcp_port(host)
    cfg = work / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.read_text().replace("@PORT@", str(port)))
    log_path = work / "kamailio.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [binary, "-f", str(cfg), "-DD", "-E", "-Y", str(work / "run"), "-w", str(work)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 10
        while not _options_answered(host, port):
            if proc.poll() is not None:
                pytest.fail(
                    f"kamailio exited with {proc.returncode}: {log_path.read_text()[-2000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"kamailio not answering on {host}:{port} after 10 s")
            time.sleep(0.02)
        yield KamailioPeer(host, port, proc.pid, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
