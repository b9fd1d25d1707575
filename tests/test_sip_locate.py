"""RFC 3263 server location (probes/sip/locate.py) and failover (probes/sip_servers.py).

Pure parts (NAPTR choice, SRV ordering) are tested as properties; the whole path runs against
a dnspython DNS server on loopback (tests/sip_peers.py LoopbackDns) publishing NAPTR/SRV for
``voice.example.test`` over two real Kamailio instances.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from probes.result import Outcome, ProbeContext, ProbeResult
from probes.sip.locate import LocateError, locate, naptr_choices, order_srv, parse_nameserver
from probes.sip_call import SipCallOptions
from probes.sip_call import probe as call_probe
from probes.sip_options import SipOptionsOptions
from probes.sip_options import probe as options_probe
from probes.sip_register import SipRegisterOptions
from probes.sip_register import probe as register_probe
from probes.sip_servers import should_fail_over
from tests import sip_peers
from tests.peers import require_binary
from tests.sip_peers import KamailioPeer, LoopbackDns, start_kamailio, stop_process

pytestmark = pytest.mark.timeout(60)
loopback_dns = sip_peers.loopback_dns
baresip_sine = sip_peers.baresip_sine
DOMAIN = "voice.example.test"


@dataclass(frozen=True)
class Naptr:
    order: int
    preference: int
    flags: bytes
    service: bytes
    replacement: str


@dataclass(frozen=True)
class Srv:
    priority: int
    weight: int
    port: int
    target: str


class TestNaptrChoices:
    def test_order_then_preference_and_only_known_services(self) -> None:
        """Records sort by order, then preference; unknown services and non-s flags drop."""
        records = [
            Naptr(20, 10, b"s", b"SIP+D2U", "_sip._udp.x."),
            Naptr(10, 20, b"S", b"SIP+D2T", "_sip._tcp.x."),
            Naptr(10, 10, b"s", b"SIPS+D2T", "_sips._tcp.x."),
            Naptr(5, 5, b"s", b"SIP+D2S", "_sip._sctp.x."),
            Naptr(1, 1, b"u", b"E2U+sip", "!^.*$!sip:a@b!"),
        ]
        assert naptr_choices(records, secure=False) == [
            ("tls", "_sips._tcp.x"),
            ("tcp", "_sip._tcp.x"),
            ("udp", "_sip._udp.x"),
        ]

    def test_sips_keeps_only_tls(self) -> None:
        """A sips: URI may only use SIPS+D2T records (RFC 3263 §4.1)."""
        records = [Naptr(1, 1, b"s", b"SIP+D2U", "u."), Naptr(2, 1, b"s", b"SIPS+D2T", "t.")]
        assert naptr_choices(records, secure=True) == [("tls", "t")]


srv_records = st.lists(
    st.builds(
        Srv,
        priority=st.integers(0, 3),
        weight=st.integers(0, 100),
        port=st.integers(1, 65535),
        target=st.sampled_from(["a.x.", "b.x.", "c.x.", "d.x."]),
    ),
    max_size=8,
)


class TestOrderSrv:
    @given(srv_records, st.integers(0, 2**32))
    def test_a_permutation_in_priority_order(self, records: list[Srv], seed: int) -> None:
        """Every record comes out once, lower priority values first."""
        ordered = order_srv(records, random.Random(seed))
        if len(records) == 1 and records[0].target == ".":
            assert ordered == []
            return
        assert sorted(map(id, ordered)) == sorted(map(id, records))
        priorities = [r.priority for r in ordered]
        assert priorities == sorted(priorities)

    def test_weights_decide_the_share_of_first_picks(self) -> None:
        """Weight 90 vs 10 in one priority: the heavy one comes first about 90% of the time."""
        records = [Srv(10, 90, 5060, "heavy."), Srv(10, 10, 5060, "light.")]
        rng = random.Random(7)
        firsts = [order_srv(records, rng)[0].target for _ in range(2000)]
        share = firsts.count("heavy.") / len(firsts)
        assert 0.85 < share < 0.95

    def test_dot_target_means_no_service(self) -> None:
        """A lone SRV record with target '.' says the service is not offered."""
        assert order_srv([Srv(0, 0, 0, ".")], random.Random(1)) == []


class TestNameserverOption:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("192.0.2.53", ("192.0.2.53", 53)),
            ("127.0.0.1:5353", ("127.0.0.1", 5353)),
            ("2001:db8::53", ("2001:db8::53", 53)),
            ("[::1]:5353", ("::1", 5353)),
        ],
    )
    def test_forms(self, text: str, expected: tuple[str, int]) -> None:
        """Plain IPs, IPv4 with port, bare IPv6 and bracketed IPv6 with port."""
        assert parse_nameserver(text) == expected

    def test_a_name_is_rejected_in_config(self) -> None:
        """resolver entries are IPs: a host name is a config error naming what was expected."""
        with pytest.raises(ValidationError, match="expected a nameserver IP"):
            SipOptionsOptions(uri=f"sip:ping@{DOMAIN}", resolver=("dns.example.test",))


def _publish(dns_server: LoopbackDns, servers: list[tuple[int, int, int]]) -> None:
    """NAPTR -> _sip._udp SRV (priority, weight, port) -> A 127.0.0.1 for DOMAIN."""
    dns_server.set(DOMAIN, "NAPTR", f'10 10 "s" "SIP+D2U" "" _sip._udp.{DOMAIN}.')
    dns_server.set(
        f"_sip._udp.{DOMAIN}",
        "SRV",
        *(f"{p} {w} {port} sip{i}.{DOMAIN}." for i, (p, w, port) in enumerate(servers)),
    )
    for i in range(len(servers)):
        dns_server.set(f"sip{i}.{DOMAIN}", "A", "127.0.0.1")


class TestLocate:
    async def test_naptr_srv_a(self, loopback_dns: LoopbackDns) -> None:
        """NAPTR picks UDP, SRV lists two servers by priority, A gives their address."""
        _publish(loopback_dns, [(10, 0, 5071), (20, 0, 5072)])
        location = await locate(
            DOMAIN, secure=False, transport=None, port=None, nameservers=(loopback_dns.nameserver,)
        )
        assert [s.label for s in location.servers] == [
            f"udp:127.0.0.1:5071 (sip0.{DOMAIN})",
            f"udp:127.0.0.1:5072 (sip1.{DOMAIN})",
        ]
        assert "NAPTR" in location.path
        assert "SRV" in location.path

    async def test_without_naptr_srv_names_are_tried(self, loopback_dns: LoopbackDns) -> None:
        """No NAPTR: _sips._tcp, _sip._tcp, _sip._udp are asked; the first with records wins."""
        loopback_dns.set(DOMAIN, "A", "127.0.0.9")
        loopback_dns.set(f"_sip._tcp.{DOMAIN}", "SRV", f"0 0 5080 edge.{DOMAIN}.")
        loopback_dns.set(f"edge.{DOMAIN}", "A", "127.0.0.2")
        location = await locate(
            DOMAIN, secure=False, transport=None, port=None, nameservers=(loopback_dns.nameserver,)
        )
        assert [s.label for s in location.servers] == [f"tcp:127.0.0.2:5080 (edge.{DOMAIN})"]

    async def test_explicit_port_skips_srv(self, loopback_dns: LoopbackDns) -> None:
        """A URI with a port uses the domain's A records on that port (RFC 3263 §4.2)."""
        loopback_dns.set(DOMAIN, "A", "127.0.0.3")
        location = await locate(
            DOMAIN, secure=True, transport=None, port=5999, nameservers=(loopback_dns.nameserver,)
        )
        assert [s.label for s in location.servers] == [f"tls:127.0.0.3:5999 ({DOMAIN})"]
        assert ("_sips._tcp." + DOMAIN, "SRV") not in loopback_dns.queries

    async def test_no_records_is_resolve_failed(self, loopback_dns: LoopbackDns) -> None:
        """A domain the DNS does not know: resolve_failed (vendor-side evidence)."""
        with pytest.raises(LocateError) as caught:
            await locate(
                "nowhere.example.test",
                secure=False,
                transport=None,
                port=None,
                nameservers=(loopback_dns.nameserver,),
            )
        assert caught.value.reason == "resolve_failed"

    async def test_silent_resolver_is_our_problem(self, loopback_dns: LoopbackDns) -> None:
        """Our resolver not answering within the lifetime: resolver_timeout, not the vendor."""
        loopback_dns.silent = True
        with pytest.raises(LocateError) as caught:
            await locate(
                DOMAIN,
                secure=False,
                transport=None,
                port=None,
                nameservers=(loopback_dns.nameserver,),
                lifetime=0.3,
            )
        assert caught.value.reason == "resolver_timeout"


@pytest.fixture
def kamailio_pair(tmp_path: Path) -> Iterator[list[tuple[object, KamailioPeer]]]:
    """Two fresh Kamailio instances (a test may stop either)."""
    binary = require_binary("kamailio")
    started = []
    try:
        for name in ("a", "b"):
            work = tmp_path / name
            work.mkdir()
            started.append(start_kamailio(binary, work))
        yield started  # type: ignore[misc]
    finally:
        for proc, _ in started:
            stop_process(proc)


async def _run_options(budget: float = 4.0, **options: object) -> ProbeResult:
    ctx = ProbeContext.starting_now("sip-locate-test", budget)
    return await asyncio.wait_for(
        options_probe(SipOptionsOptions(**options), ctx),  # type: ignore[arg-type]
        budget + 1,
    )


class TestFailoverAgainstKamailio:
    async def test_first_server_answers(
        self, loopback_dns: LoopbackDns, kamailio_pair: list[tuple[object, KamailioPeer]]
    ) -> None:
        """Both up: the priority-10 server answers; nothing failed; the walk is recorded."""
        (_, a), (_, b) = kamailio_pair
        _publish(loopback_dns, [(10, 0, a.port), (20, 0, b.port)])
        result = await _run_options(uri=f"sip:ping@{DOMAIN}", resolver=(loopback_dns.nameserver,))
        assert result.outcome is Outcome.UP, result
        assert result.details["server"] == f"udp:127.0.0.1:{a.port} (sip0.{DOMAIN})"
        assert "servers_failed" not in result.details
        assert result.details["servers_tried"] == 1
        assert "resolve" in result.phases

    async def test_first_down_second_answers(
        self, loopback_dns: LoopbackDns, kamailio_pair: list[tuple[object, KamailioPeer]]
    ) -> None:
        """The first server stopped: UDP and TCP probes get through the second; both named."""
        (proc_a, a), (_, b) = kamailio_pair
        stop_process(proc_a)  # type: ignore[arg-type]
        _publish(loopback_dns, [(10, 0, a.port), (20, 0, b.port)])
        tcp_srv = (f"10 0 {a.port} sip0.{DOMAIN}.", f"20 0 {b.port} sip1.{DOMAIN}.")
        loopback_dns.set(f"_sip._tcp.{DOMAIN}", "SRV", *tcp_srv)
        for transport in ("udp", "tcp"):
            result = await _run_options(
                uri=f"sip:ping@{DOMAIN};transport={transport}",
                resolver=(loopback_dns.nameserver,),
            )
            assert result.outcome is Outcome.UP, result
            assert result.details["server"] == f"{transport}:127.0.0.1:{b.port} (sip1.{DOMAIN})"
            assert result.details["servers_failed"] == (
                f"{transport}:127.0.0.1:{a.port} (sip0.{DOMAIN}) connection_refused"
            )
            assert result.details["servers_tried"] == 2

    async def test_register_fails_over_too(
        self, loopback_dns: LoopbackDns, kamailio_pair: list[tuple[object, KamailioPeer]]
    ) -> None:
        """sip_register walks the same servers: registered through the second."""
        (proc_a, a), (_, b) = kamailio_pair
        stop_process(proc_a)  # type: ignore[arg-type]
        _publish(loopback_dns, [(10, 0, a.port), (20, 0, b.port)])
        ctx = ProbeContext.starting_now("sip-locate-register", 4.0)
        options = SipRegisterOptions(
            uri=f"sip:{DOMAIN}",
            resolver=(loopback_dns.nameserver,),
            auth={"username": "alice", "password": {"env": "SLAWATCH_TEST_SIP_PASSWORD"}},  # type: ignore[arg-type]
        )
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLAWATCH_TEST_SIP_PASSWORD", sip_peers.KAMAILIO_PASSWORD)
            result = await asyncio.wait_for(register_probe(options, ctx), 5)
        assert result.outcome is Outcome.UP, result
        assert result.details["server"] == f"udp:127.0.0.1:{b.port} (sip1.{DOMAIN})"

    async def test_both_down_says_so(
        self, loopback_dns: LoopbackDns, kamailio_pair: list[tuple[object, KamailioPeer]]
    ) -> None:
        """Both stopped: down with all_servers_failed, every server and its reason named."""
        for proc, _ in kamailio_pair:
            stop_process(proc)  # type: ignore[arg-type]
        (_, a), (_, b) = kamailio_pair
        _publish(loopback_dns, [(10, 0, a.port), (20, 0, b.port)])
        result = await _run_options(uri=f"sip:ping@{DOMAIN}", resolver=(loopback_dns.nameserver,))
        assert (result.outcome, result.reason) == (Outcome.DOWN, "all_servers_failed")
        failed = str(result.details["servers_failed"])
        assert f"127.0.0.1:{a.port} (sip0.{DOMAIN}) connection_refused" in failed
        assert f"127.0.0.1:{b.port} (sip1.{DOMAIN}) connection_refused" in failed
        assert "every server failed" in str(result.details["error"])

    async def test_silent_server_times_out_then_next(
        self, loopback_dns: LoopbackDns, kamailio_pair: list[tuple[object, KamailioPeer]]
    ) -> None:
        """A server that swallows requests gets server_timeout, then the next one answers."""
        (_, a), _ = kamailio_pair
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
            silent.bind(("127.0.0.1", 0))
            silent_port = silent.getsockname()[1]
            _publish(loopback_dns, [(10, 0, silent_port), (20, 0, a.port)])
            result = await _run_options(
                uri=f"sip:ping@{DOMAIN}",
                resolver=(loopback_dns.nameserver,),
                server_timeout="500ms",
                t1="100ms",
            )
        assert result.outcome is Outcome.UP, result
        assert result.details["servers_failed"] == (
            f"udp:127.0.0.1:{silent_port} (sip0.{DOMAIN}) timeout"
        )
        assert result.duration_seconds < 2.0

    async def test_out_of_time_leaves_servers_untried(self, loopback_dns: LoopbackDns) -> None:
        """A silent first server allowed the whole budget: the second is not_tried and the
        verdict is a timeout (we ran out of time), not down."""
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as one,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as two,
        ):
            one.bind(("127.0.0.1", 0))
            two.bind(("127.0.0.1", 0))
            ports = [one.getsockname()[1], two.getsockname()[1]]
            _publish(loopback_dns, [(10, 0, ports[0]), (20, 0, ports[1])])
            result = await _run_options(
                budget=1.0,
                uri=f"sip:ping@{DOMAIN}",
                resolver=(loopback_dns.nameserver,),
                server_timeout="5s",
                t1="100ms",
            )
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "all_servers_failed")
        assert result.details["servers_failed"] == (
            f"udp:127.0.0.1:{ports[0]} (sip0.{DOMAIN}) timeout; "
            f"udp:127.0.0.1:{ports[1]} (sip1.{DOMAIN}) not_tried"
        )

    async def test_503_fails_over(
        self, loopback_dns: LoopbackDns, kamailio_pair: list[tuple[object, KamailioPeer]]
    ) -> None:
        """A 503 from the first server (Kamailio's 'down' user) moves on; every server 503s
        here, so the verdict is all_servers_failed with both 503s named."""
        (_, a), (_, b) = kamailio_pair
        _publish(loopback_dns, [(10, 0, a.port), (20, 0, b.port)])
        result = await _run_options(uri=f"sip:down@{DOMAIN}", resolver=(loopback_dns.nameserver,))
        assert (result.outcome, result.reason) == (Outcome.DOWN, "all_servers_failed")
        assert str(result.details["servers_failed"]).count("status_code_503") == 2

    async def test_resolver_silent_is_error_not_down(self, loopback_dns: LoopbackDns) -> None:
        """Our own resolver failing is the monitor's trouble: error, never vendor downtime."""
        loopback_dns.silent = True
        result = await _run_options(
            budget=1.0, uri=f"sip:ping@{DOMAIN}", resolver=(loopback_dns.nameserver,)
        )
        assert (result.outcome, result.reason) == (Outcome.ERROR, "resolver_timeout")


class TestShouldFailOver:
    def test_rules(self) -> None:
        """Transport failures, timeouts and 503 move on; other answers and answered calls do not."""
        ctx = ProbeContext.starting_now("t", 1.0)
        assert should_fail_over(ctx.result(Outcome.DOWN, "connection_refused"))
        assert should_fail_over(ctx.result(Outcome.TIMEOUT, "timeout"))
        assert should_fail_over(
            ctx.result(Outcome.DOWN, "status_code_503", details={"sip_status": 503})
        )
        assert not should_fail_over(
            ctx.result(Outcome.DOWN, "status_code_404", details={"sip_status": 404})
        )
        assert not should_fail_over(
            ctx.result(Outcome.TIMEOUT, "timeout", details={"answer_seconds": 0.1})
        )
        assert not should_fail_over(ctx.result(Outcome.UP))


class TestCallFailover:
    async def test_call_goes_through_the_second_server(
        self, loopback_dns: LoopbackDns, baresip_sine: sip_peers.BaresipPeer
    ) -> None:
        """sip_call: the first SRV target refuses (nothing listens), the call is placed
        through baresip, the second; the result names both."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe_port:
            probe_port.bind(("127.0.0.1", 0))
            dead_port = probe_port.getsockname()[1]
        _publish(loopback_dns, [(10, 0, dead_port), (20, 0, baresip_sine.sip_port)])
        options = SipCallOptions.model_validate(
            {
                "uri": f"sip:callee@{DOMAIN}",
                "resolver": [loopback_dns.nameserver],
                "bind": "127.0.0.1",
                "duration": "1s",
                "answer_timeout": "2s",
            }
        )
        result = await asyncio.wait_for(
            call_probe(options, ProbeContext.starting_now("call-failover", 6.0)), 8
        )
        assert result.outcome is Outcome.UP, result
        assert result.details["server"] == f"udp:127.0.0.1:{baresip_sine.sip_port} (sip1.{DOMAIN})"
        assert result.details["servers_failed"] == (
            f"udp:127.0.0.1:{dead_port} (sip0.{DOMAIN}) connection_refused"
        )
