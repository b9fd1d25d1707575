"""Tests for the sip_options probe (probes/sip_options.py) and the SIP options model.

Real peers: Kamailio (tests/sip_peers.py), sipsak as a cross-check, scripted asyncio peers
for what Kamailio will not do (malformed replies, silence, TLS with our own certificate).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError

from probes.registry import PROBE_KINDS
from probes.result import Outcome, ProbeContext, ProbeResult
from probes.sip.message import SipRequest, StreamFramer, make_response, parse_message
from probes.sip.options import parse_codes
from probes.sip_options import SipOptionsOptions, probe
from tests import sip_peers
from tests.peers import require_binary
from tests.procs import run_client
from tests.sip_peers import KamailioPeer
from tests.test_sip_transaction import UdpResponder, answer, udp_responder

kamailio = sip_peers.kamailio


async def run(budget: float = 5.0, **options: object) -> ProbeResult:
    ctx = ProbeContext.starting_now("sip-test", budget)
    return await asyncio.wait_for(probe(SipOptionsOptions(**options), ctx), budget + 1)  # type: ignore[arg-type]


def _closed_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestAgainstKamailio:
    async def test_up_over_udp(self, kamailio: KamailioPeer) -> None:
        """OPTIONS over UDP -> 200: up, with status, reason, server and response time."""
        result = await run(uri=kamailio.uri())
        assert result.outcome is Outcome.UP, result
        assert result.reason == ""
        assert result.details["sip_status"] == 200
        assert result.details["sip_reason"] == "OK"
        assert result.details["server"] == "peer-kamailio"
        assert result.details["transport"] == "udp"
        assert 0 < result.phases["response"] < 1

    async def test_up_over_tcp(self, kamailio: KamailioPeer) -> None:
        """;transport=tcp in the URI selects TCP; the connect phase is recorded."""
        result = await run(uri=kamailio.uri(transport="tcp"))
        assert result.outcome is Outcome.UP, result
        assert result.details["transport"] == "tcp"
        assert "connect" in result.phases

    async def test_503_is_down_with_reason(self, kamailio: KamailioPeer) -> None:
        """A 503 fails the probe with status_code_503 and keeps the code as evidence."""
        result = await run(uri=kamailio.uri("down"))
        assert result.outcome is Outcome.DOWN
        assert result.reason == "status_code_503"
        assert result.details["sip_status"] == 503

    async def test_503_accepted_when_configured(self, kamailio: KamailioPeer) -> None:
        """expected_codes ["5xx"] makes any server answer proof of liveness."""
        result = await run(uri=kamailio.uri("down"), expected_codes=[200, "5xx"])
        assert result.outcome is Outcome.UP

    async def test_max_forwards_zero_is_answered_by_the_first_hop(
        self, kamailio: KamailioPeer
    ) -> None:
        """Max-Forwards: 0 gets Kamailio's own 483, which proves liveness when accepted."""
        refused = await run(uri=kamailio.uri(), max_forwards=0)
        assert (refused.outcome, refused.reason) == (Outcome.DOWN, "status_code_483")
        accepted = await run(uri=kamailio.uri(), max_forwards=0, expected_codes=[200, 483])
        assert accepted.outcome is Outcome.UP

    async def test_agrees_with_sipsak(self, kamailio: KamailioPeer) -> None:
        """sipsak (exit 0 on 200) and the probe agree on the up and the 503 user."""
        sipsak = require_binary("sipsak")
        for user, expected in (("ping", Outcome.UP), ("down", Outcome.DOWN)):
            returncode, _ = await run_client(
                sipsak, "-s", kamailio.uri(user), seconds=10, stdout=asyncio.subprocess.DEVNULL
            )
            ours = await run(uri=kamailio.uri(user))
            assert ours.outcome is expected
            assert (returncode == 0) == (expected is Outcome.UP)


class TestFailures:
    async def test_udp_port_closed_is_connection_refused(self) -> None:
        """ICMP port unreachable -> down/connection_refused, fast."""
        started = time.monotonic()
        result = await run(uri=f"sip:ping@127.0.0.1:{_closed_port(2)}")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "connection_refused")
        assert time.monotonic() - started < 1

    async def test_tcp_port_closed_is_connection_refused(self) -> None:
        """TCP RST -> down/connection_refused."""
        result = await run(uri=f"sip:ping@127.0.0.1:{_closed_port(1)};transport=tcp")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "connection_refused")

    @pytest.mark.parametrize("transport", ["udp", "tcp"])
    async def test_unresolvable_host(self, transport: str) -> None:
        """A name that does not resolve (.invalid, RFC 6761) -> down/resolve_failed."""
        result = await run(uri="sip:ping@no-such-host.invalid", transport=transport)
        assert (result.outcome, result.reason) == (Outcome.DOWN, "resolve_failed")
        assert "no-such-host.invalid" in str(result.details["error"])

    async def test_silent_peer_times_out_after_timer_f(self) -> None:
        """A bound but silent UDP socket -> timeout once 64*T1 passed, with retransmissions."""
        async with udp_responder(lambda p, r: []) as peer:
            started = time.monotonic()
            result = await run(uri=f"sip:ping@127.0.0.1:{peer.port}", t1="10ms")
            elapsed = time.monotonic() - started
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout")
        assert 0.64 <= elapsed < 1.5
        assert "Timer F" in str(result.details["error"])
        assert int(result.details["retransmissions"]) >= 5  # type: ignore[arg-type]
        assert len(peer.received) == int(result.details["retransmissions"]) + 1  # type: ignore[arg-type]

    async def test_tcp_connect_that_never_completes(self) -> None:
        """A listener whose backlog is full drops our SYN: timeout, saying the connect hung."""
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)
            port = listener.getsockname()[1]
            fillers = [socket.socket() for _ in range(3)]
            for filler in fillers:
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(("127.0.0.1", port))
            try:
                result = await run(budget=0.5, uri=f"sip:ping@127.0.0.1:{port};transport=tcp")
            finally:
                for filler in fillers:
                    filler.close()
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout")
        assert "connection not established" in str(result.details["error"])

    async def test_target_timeout_shorter_than_timer_f(self) -> None:
        """The probe ends itself before the target's timeout, reporting timeout."""
        async with udp_responder(lambda p, r: []) as peer:
            started = time.monotonic()
            result = await run(budget=0.5, uri=f"sip:ping@127.0.0.1:{peer.port}")
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout")
        assert time.monotonic() - started < 0.5

    async def test_ipv6_loopback(self) -> None:
        """An IPv6 target binds ::1 and writes a bracketed Via sent-by."""
        async with udp_responder(lambda p, r: [answer(r, 200, "OK")], host="::1") as peer:
            result = await run(uri=f"sip:ping@[::1]:{peer.port}")
        assert result.outcome is Outcome.UP, result
        [(_, raw)] = peer.received
        assert b"Via: SIP/2.0/UDP [::1]:" in raw

    async def test_503_from_scripted_peer(self) -> None:
        """A 503 with a User-Agent header: down, and the agent is kept as evidence."""

        def busy(_: UdpResponder, request: SipRequest) -> Sequence[bytes]:
            return [answer(request, 503, "Maintenance", extra=[("User-Agent", "sbc-9")])]

        async with udp_responder(busy) as peer:
            result = await run(uri=f"sip:ping@127.0.0.1:{peer.port}")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "status_code_503")
        assert result.details["server"] == "sbc-9"
        assert result.details["sip_reason"] == "Maintenance"

    async def test_malformed_and_foreign_replies(self) -> None:
        """Garbage and replies for other transactions never make the probe up; reason says why."""

        def hostile(_: UdpResponder, request: SipRequest) -> Sequence[bytes]:
            foreign = request.with_headers(
                request.headers.with_replaced("Via", "SIP/2.0/UDP x;branch=z9hG4bKnot-yours")
            )
            return [b"SIP/2.0 200\r\n\r\n", b"\xff" * 300, answer(foreign, 200, "OK")]

        async with udp_responder(hostile) as peer:
            result = await run(uri=f"sip:ping@127.0.0.1:{peer.port}", t1="5ms")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "malformed_response")
        assert int(result.details["unparseable_replies"]) >= 2  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost, made with the openssl CLI."""
    openssl = require_binary("openssl")
    directory = tmp_path_factory.mktemp("sip-tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=sip.test",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=20,
    )  # fmt: skip
    return cert, key


@contextlib.asynccontextmanager
async def tls_sip_server(cert: Path, key: Path) -> AsyncIterator[int]:
    """A TLS listener answering every framed SIP request with 200 OK."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = StreamFramer()
        with contextlib.suppress(OSError, ssl.SSLError):
            while chunk := await reader.read(65536):
                for raw in framer.feed(chunk):
                    request = parse_message(raw)
                    assert isinstance(request, SipRequest)
                    writer.write(make_response(request, 200, "OK", to_tag="tls").encode())
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    async with server:
        yield server.sockets[0].getsockname()[1]


class TestTls:
    async def test_sips_uri_up_with_trusted_ca(self, certificate: tuple[Path, Path]) -> None:
        """sips: selects TLS; the server's certificate is verified against the configured CA."""
        cert, key = certificate
        async with tls_sip_server(cert, key) as port:
            result = await run(uri=f"sips:ping@127.0.0.1:{port}", tls={"ca_file": str(cert)})
        assert result.outcome is Outcome.UP, result
        assert result.details["transport"] == "tls"
        assert "connect" in result.phases

    async def test_untrusted_certificate_fails_handshake(
        self, certificate: tuple[Path, Path]
    ) -> None:
        """Without the CA the handshake fails: down/tls_handshake_failed."""
        cert, key = certificate
        async with tls_sip_server(cert, key) as port:
            result = await run(uri=f"sips:ping@127.0.0.1:{port}")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_handshake_failed")

    async def test_verify_off_accepts_self_signed(self, certificate: tuple[Path, Path]) -> None:
        """tls.verify: false still speaks TLS but accepts the unverified certificate."""
        cert, key = certificate
        async with tls_sip_server(cert, key) as port:
            result = await run(
                uri=f"sip:ping@127.0.0.1:{port};transport=tls", tls={"verify": False}
            )
        assert result.outcome is Outcome.UP, result

    async def test_unloadable_ca_file_is_our_error(self, tmp_path: Path) -> None:
        """A CA file that is not a certificate is a local error, never the vendor's downtime."""
        bogus = tmp_path / "ca.pem"
        bogus.write_text("not a certificate\n")
        result = await run(uri="sips:ping@127.0.0.1:9", tls={"ca_file": str(bogus)})
        assert (result.outcome, result.reason) == (Outcome.ERROR, "tls_config_error")
        assert "TLS set-up failed" in str(result.details["error"])

    async def test_plain_tcp_peer_is_not_tls(self) -> None:
        """A TLS client against a plain listener fails as tls_handshake_failed, not a hang."""

        async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(100)
            writer.write(b"SIP/2.0 400 Bad\r\n\r\n")
            writer.close()

        server = await asyncio.start_server(plain, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            result = await run(uri=f"sips:ping@127.0.0.1:{port}", tls={"verify": False})
        assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_handshake_failed")


class TestOptionsModel:
    def test_transport_and_port_from_uri(self) -> None:
        """sips -> tls:5061; ;transport=tcp -> tcp; default udp:5060; host/port override."""
        assert SipOptionsOptions(uri="sips:a@example.org").target(None).transport == "tls"
        assert SipOptionsOptions(uri="sips:a@example.org").destination() == ("example.org", 5061)
        assert SipOptionsOptions(uri="sip:a@h;transport=TCP").effective_transport() == "tcp"
        assert SipOptionsOptions(uri="sip:a@h").destination() == ("h", 5060)
        over = SipOptionsOptions(uri="sip:a@h", host="10.0.0.1", port=5080)
        assert over.destination() == ("10.0.0.1", 5080)

    def test_bind_defaults_to_loopback_only_for_loopback_targets(self) -> None:
        """127.0.0.1 targets bind 127.0.0.1; others 0.0.0.0; explicit bind wins."""
        assert SipOptionsOptions(uri="sip:a@127.0.0.1").bind_address() == ("127.0.0.1", 0)
        assert SipOptionsOptions(uri="sip:a@192.0.2.1").bind_address() == ("0.0.0.0", 0)
        explicit = SipOptionsOptions(uri="sip:a@127.0.0.1", bind="127.0.0.2", bind_port=5099)
        assert explicit.bind_address() == ("127.0.0.2", 5099)

    def test_expected_code_classes(self) -> None:
        """Codes and classes combine; 1xx is never a final code."""
        codes = parse_codes((200, "404", "5xx"))
        assert 200 in codes
        assert 404 in codes
        assert 599 in codes
        assert 486 not in codes

    @pytest.mark.parametrize(
        ("options", "message"),
        [
            ({"uri": "http://example.org"},
             "expected a SIP URI such as sip:ping@192.0.2.10:5060, got 'http://example.org'"),
            ({"uri": "sip:a@h", "expected_codes": ["7xx"]},
             "expected a final status code 200..699 or a class like 2xx, got '7xx'"),
            ({"uri": "sip:a@h", "expected_codes": [180]},
             "expected a final status code 200..699 or a class like 2xx, got 180"),
            ({"uri": "sip:a@h", "expected_codes": []}, "expected at least one final status code"),
            ({"uri": "sips:a@h", "transport": "udp"},
             "a sips: URI needs transport tls, got transport 'udp'"),
            ({"uri": "sip:a@h;transport=sctp"},
             "expected ;transport=udp|tcp|tls in uri, got 'sctp'"),
            ({"uri": "sip:a@h", "bind": "eth0"},
             "expected an IP address such as 0.0.0.0, got 'eth0'"),
            ({"uri": "sip:a@h", "t1": "0s"}, "greater than 0"),
            ({"uri": "sip:a@h", "user_agent": "a\r\nX: y"}, "expected a single-line user agent"),
            ({"uri": "sip:a@h", "bogus": 1}, "Extra inputs are not permitted"),
        ],
    )  # fmt: skip
    def test_bad_options_name_the_value(self, options: dict[str, object], message: str) -> None:
        """Each invalid option is refused with a message naming what was expected and got."""
        with pytest.raises(ValidationError) as info:
            SipOptionsOptions(**options)  # type: ignore[arg-type]
        assert message in str(info.value)

    def test_registered(self) -> None:
        """Both SIP kinds are in the registry with their options models."""
        assert PROBE_KINDS["sip_options"].options is SipOptionsOptions
        assert PROBE_KINDS["sip_register"].run.__module__ == "probes.sip_register"
