"""SIP over TLS end to end against Kamailio's tls module (Debian kamailio-tls-modules).

A CA made by the test signs Kamailio's certificate (for ``voice.example.test`` and 127.0.0.1)
and a client certificate; the probes verify the server against that CA file, send SNI, may
present the client certificate, and report the TLS version and the certificate's expiry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from probes.result import Outcome, ProbeContext, ProbeResult
from probes.sip_options import SipOptionsOptions
from probes.sip_options import probe as options_probe
from probes.sip_register import SipRegisterOptions
from probes.sip_register import probe as register_probe
from tests import sip_peers
from tests.peers import require_binary
from tests.sip_peers import CaFiles, KamailioPeer, KamailioTls, LoopbackDns, make_test_ca

pytestmark = pytest.mark.timeout(60)
loopback_dns = sip_peers.loopback_dns
DOMAIN = "voice.example.test"


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> CaFiles:
    """A CA, a server certificate for voice.example.test/127.0.0.1, a client certificate."""
    return make_test_ca(tmp_path_factory.mktemp("sip-ca"), (DOMAIN,))


@pytest.fixture(scope="module")
def kamailio_tls(
    tmp_path_factory: pytest.TempPathFactory, test_ca: CaFiles
) -> Iterator[KamailioPeer]:
    """Kamailio with SIP over TLS on ``tls_port`` using the test CA's server certificate."""
    binary = require_binary("kamailio", "kamailio kamailio-tls-modules")
    tls = KamailioTls(test_ca.server_cert, test_ca.server_key, test_ca.ca_cert)
    try:
        proc, peer = sip_peers.start_kamailio(binary, tmp_path_factory.mktemp("kam-tls"), tls=tls)
    except sip_peers.PeerStartError as exc:
        pytest.fail(str(exc))
    try:
        yield peer
    finally:
        sip_peers.stop_process(proc)


async def _options(budget: float = 4.0, **options: object) -> ProbeResult:
    ctx = ProbeContext.starting_now("sip-tls-test", budget)
    return await asyncio.wait_for(
        options_probe(SipOptionsOptions(**options), ctx),  # type: ignore[arg-type]
        budget + 1,
    )


def _log_lines(peer: KamailioPeer, marker: str) -> list[str]:
    return [line for line in peer.log_path.read_text().splitlines() if marker in line]


class TestOptionsOverTls:
    async def test_verified_tls13_with_expiry(
        self, kamailio_tls: KamailioPeer, test_ca: CaFiles
    ) -> None:
        """sips: to 127.0.0.1 with the test CA and the certificate's name: up over TLS 1.3; the
        certificate's expiry (20 days out) and the version are in the result."""
        assert kamailio_tls.tls_port is not None
        result = await _options(
            uri=f"sips:ping@127.0.0.1:{kamailio_tls.tls_port}",
            tls={"ca_file": str(test_ca.ca_cert), "server_name": DOMAIN},
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["transport"] == "tls"
        assert result.details["tls_version"] == "TLS1.3"
        expiry = float(result.details["certificate_expiry_timestamp"])  # type: ignore[arg-type]
        assert 19 * 86400 < expiry - time.time() < 21 * 86400
        assert "connect" in result.phases

    async def test_tls12_pinned(self, kamailio_tls: KamailioPeer, test_ca: CaFiles) -> None:
        """max_version TLS1.2 negotiates TLS 1.2 (the server allows 1.2+)."""
        result = await _options(
            uri=f"sips:ping@127.0.0.1:{kamailio_tls.tls_port}",
            tls={"ca_file": str(test_ca.ca_cert), "server_name": DOMAIN, "max_version": "TLS1.2"},
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["tls_version"] == "TLS1.2"

    async def test_untrusted_ca_fails(self, kamailio_tls: KamailioPeer) -> None:
        """Without the test CA the system trust store refuses the chain: tls_handshake_failed."""
        result = await _options(
            uri=f"sips:ping@127.0.0.1:{kamailio_tls.tls_port}", tls={"server_name": DOMAIN}
        )
        assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_handshake_failed")
        assert "certificate verify failed" in str(result.details["error"])

    async def test_wrong_host_name_fails(
        self, kamailio_tls: KamailioPeer, test_ca: CaFiles
    ) -> None:
        """A trusted certificate for another name is refused (host-name verification)."""
        result = await _options(
            uri=f"sips:ping@127.0.0.1:{kamailio_tls.tls_port}",
            tls={"ca_file": str(test_ca.ca_cert), "server_name": "other.example.test"},
        )
        assert (result.outcome, result.reason) == (Outcome.DOWN, "tls_handshake_failed")
        assert "other.example.test" in str(result.details["error"])

    async def test_verify_off_still_reports_expiry(self, kamailio_tls: KamailioPeer) -> None:
        """verify: false completes against the untrusted chain and still records its expiry."""
        result = await _options(
            uri=f"sips:ping@127.0.0.1:{kamailio_tls.tls_port}", tls={"verify": False}
        )
        assert result.outcome is Outcome.UP, result
        assert "certificate_expiry_timestamp" in result.details

    async def test_sni_and_client_certificate(
        self, kamailio_tls: KamailioPeer, test_ca: CaFiles
    ) -> None:
        """The server sees our SNI and, when configured, our client certificate's CN."""
        marker = f"sni=[{DOMAIN}]"
        before = len(_log_lines(kamailio_tls, marker))
        result = await _options(
            uri=f"sips:ping@127.0.0.1:{kamailio_tls.tls_port}",
            tls={
                "ca_file": str(test_ca.ca_cert),
                "server_name": DOMAIN,
                "cert_file": str(test_ca.client_cert),
                "key_file": str(test_ca.client_key),
            },
        )
        assert result.outcome is Outcome.UP, result
        for _ in range(100):  # Kamailio's worker may write its log line a moment later
            if len(_log_lines(kamailio_tls, marker)) > before:
                break
            await asyncio.sleep(0.02)
        lines = _log_lines(kamailio_tls, marker)[before:]
        assert lines, kamailio_tls.log_path.read_text()[-2000:]
        assert "client-cn=[slawatch-probe]" in lines[-1]

    async def test_register_over_tls(self, kamailio_tls: KamailioPeer, test_ca: CaFiles) -> None:
        """REGISTER with digest over TLS registers and unregisters."""
        ctx = ProbeContext.starting_now("sip-tls-register", 4.0)
        options = SipRegisterOptions(
            uri=f"sips:127.0.0.1:{kamailio_tls.tls_port}",
            tls={"ca_file": str(test_ca.ca_cert), "server_name": DOMAIN},  # type: ignore[arg-type]
            auth={"username": "alice", "password": {"env": "SLAWATCH_TEST_SIP_PASSWORD"}},  # type: ignore[arg-type]
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLAWATCH_TEST_SIP_PASSWORD", sip_peers.KAMAILIO_PASSWORD)
            result = await asyncio.wait_for(register_probe(options, ctx), 5)
        assert result.outcome is Outcome.UP, result
        assert result.details["tls_version"] == "TLS1.3"


class TestSipsDomainUri:
    async def test_sips_domain_via_srv(
        self, kamailio_tls: KamailioPeer, test_ca: CaFiles, loopback_dns: LoopbackDns
    ) -> None:
        """sips:ping@voice.example.test: NAPTR SIPS+D2T -> _sips._tcp SRV -> A; the
        certificate is checked against the URI's domain (RFC 5922), not the SRV target."""
        loopback_dns.set(DOMAIN, "NAPTR", f'10 10 "s" "SIPS+D2T" "" _sips._tcp.{DOMAIN}.')
        loopback_dns.set(
            f"_sips._tcp.{DOMAIN}", "SRV", f"10 0 {kamailio_tls.tls_port} edge1.{DOMAIN}."
        )
        loopback_dns.set(f"edge1.{DOMAIN}", "A", "127.0.0.1")
        result = await _options(
            uri=f"sips:ping@{DOMAIN}",
            resolver=(loopback_dns.nameserver,),
            tls={"ca_file": str(test_ca.ca_cert)},
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["server"] == f"tls:127.0.0.1:{kamailio_tls.tls_port} (edge1.{DOMAIN})"
        assert result.details["tls_version"] == "TLS1.3"

    async def test_tls_failover_from_a_hung_handshake(
        self, kamailio_tls: KamailioPeer, test_ca: CaFiles, loopback_dns: LoopbackDns
    ) -> None:
        """The first SRV target accepts TCP but never speaks TLS: after its server_timeout the
        probe moves to Kamailio; both are named."""
        hung = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        hung_port = hung.sockets[0].getsockname()[1]
        loopback_dns.set(
            f"_sips._tcp.{DOMAIN}",
            "SRV",
            f"10 0 {hung_port} edge0.{DOMAIN}.",
            f"20 0 {kamailio_tls.tls_port} edge1.{DOMAIN}.",
        )
        loopback_dns.set(f"edge0.{DOMAIN}", "A", "127.0.0.1")
        loopback_dns.set(f"edge1.{DOMAIN}", "A", "127.0.0.1")
        async with hung:
            result = await _options(
                uri=f"sips:ping@{DOMAIN}",
                resolver=(loopback_dns.nameserver,),
                server_timeout="700ms",
                tls={"ca_file": str(test_ca.ca_cert)},
            )
        assert result.outcome is Outcome.UP, result
        assert result.details["server"] == f"tls:127.0.0.1:{kamailio_tls.tls_port} (edge1.{DOMAIN})"
        assert result.details["servers_failed"] == (
            f"tls:127.0.0.1:{hung_port} (edge0.{DOMAIN}) timeout"
        )
