"""The ``dns`` probe against a tiny authoritative server written here with dnspython, on
127.0.0.1 UDP and TCP (port 0)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pydantic
import pytest

from probes.dns import DnsOptions, parse_resolver, probe
from probes.registry import PROBE_KINDS
from probes.result import Outcome, ProbeContext, ProbeResult

ZONE: dict[tuple[str, str], list[str]] = {
    ("up.example.", "A"): ["192.0.2.1", "192.0.2.2"],
    ("up.example.", "AAAA"): ["2001:db8::1"],
    ("up.example.", "MX"): ["10 mx1.up.example."],
    ("up.example.", "TXT"): ['"v=spf1 -all"'],
    ("alias.example.", "CNAME"): ["up.example."],
    ("big.example.", "TXT"): [f'"{"x" * 200} {i}"' for i in range(10)],
}


@dataclass
class AuthServer:
    """Answers from ZONE; a few names misbehave on purpose."""

    port: int = 0
    host: str = "127.0.0.1"
    queries: list[str] = field(default_factory=list)

    def answer(self, wire: bytes, max_size: int | None) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name, rdtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
        self.queries.append(f"{name} {rdtype}")
        if name == "silent.example.":
            return None
        if name == "garbage.example.":
            return wire[:2] + b"\x81\x80\xff\xff"
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name == "nx.example.":
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif name == "fail.example.":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rdtype) in ZONE:
            response.answer.append(
                dns.rrset.from_text_list(name, 300, "IN", rdtype, ZONE[(name, rdtype)])
            )
        wire_out = response.to_wire()
        if max_size is not None and len(wire_out) > max_size:
            response.answer.clear()
            response.flags |= dns.flags.TC
            wire_out = response.to_wire()
        return wire_out


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: AuthServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector transport is a DatagramTransport in behaviour, not by inheritance.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.server.answer(data, 512)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


@pytest.fixture(params=["127.0.0.1"])
async def auth(request: pytest.FixtureRequest) -> AsyncIterator[AuthServer]:
    """The server on one port number, UDP and TCP both, on the address given as param."""
    host: str = request.param
    server = AuthServer(host=host)
    loop = asyncio.get_running_loop()

    async def tcp_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            reply = server.answer(await reader.readexactly(length), None)
            if reply is not None:
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
            else:
                await asyncio.sleep(10)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()

    tcp = await asyncio.start_server(tcp_client, host, 0)
    server.port = tcp.sockets[0].getsockname()[1]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    udp_transport, _ = await loop.create_datagram_endpoint(
        lambda: _Udp(server), local_addr=(host, server.port), family=family
    )
    yield server
    udp_transport.close()
    tcp.close()


async def run(auth: AuthServer, timeout: float = 2.0, **options: Any) -> ProbeResult:  # noqa: ASYNC109
    """One probe against ``auth``, bounded by a test-side timeout."""
    shown = f"[{auth.host}]" if ":" in auth.host else auth.host
    parsed = DnsOptions.model_validate({"resolver": f"{shown}:{auth.port}", **options})
    async with asyncio.timeout(timeout + 3):
        return await probe(parsed, ProbeContext.starting_now("dns", timeout))


class TestDnsOptions:
    def test_registered(self) -> None:
        """``dns`` is in the registry with this module's model and function."""
        assert PROBE_KINDS["dns"].options is DnsOptions
        assert PROBE_KINDS["dns"].run is probe

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("192.0.2.53", ("192.0.2.53", 53)),
            ("192.0.2.53:5353", ("192.0.2.53", 5353)),
            ("2001:db8::53", ("2001:db8::53", 53)),
            ("[2001:db8::53]:5353", ("2001:db8::53", 5353)),
        ],
    )
    def test_resolver_forms(self, text: str, expected: tuple[str, int]) -> None:
        """A resolver is an IP with an optional port; 53 by default."""
        assert parse_resolver(text) == expected

    @pytest.mark.parametrize(
        ("data", "field", "message"),
        [
            ({"resolver": "dns.example:53"}, "resolver", "expected a resolver IP address"),
            ({"resolver": "192.0.2.1:99999"}, "resolver", "expected a resolver IP address"),
            ({"query_type": "HINFO"}, "query_type", "'A', 'AAAA'"),
            ({"valid_rcodes": ["NOPE"]}, "valid_rcodes", "expected an rcode name"),
            ({"transport": "quic"}, "transport", "'udp' or 'tcp'"),
            ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
        ],
    )
    def test_rejects(self, data: dict[str, Any], field: str, message: str) -> None:
        """Bad values are refused naming the field and what was expected."""
        with pytest.raises(pydantic.ValidationError) as info:
            DnsOptions.model_validate({"query_name": "a.example", "resolver": "192.0.2.1", **data})
        assert field in str(info.value)
        assert message in str(info.value)

    def test_resolver_is_required(self) -> None:
        """There is no implicit resolver: the vendor's server must be named."""
        with pytest.raises(pydantic.ValidationError, match="resolver"):
            DnsOptions.model_validate({"query_name": "a.example"})


class TestDnsProbe:
    async def test_answer(self, auth: AuthServer) -> None:
        """An A query with answers is up; rcode, count and the records are evidence."""
        result = await run(auth, query_name="up.example")
        assert result.outcome is Outcome.UP, result
        assert result.details["rcode"] == "NOERROR"
        assert result.details["answer_count"] == 2
        assert "192.0.2.1" in str(result.details["answer"])
        assert set(result.phases) == {"resolve"}
        assert auth.queries == ["up.example. A"]

    @pytest.mark.parametrize("auth", ["::1"], indirect=True)
    @pytest.mark.parametrize("transport", ["udp", "tcp"])
    async def test_ipv6_resolver(self, auth: AuthServer, transport: str) -> None:
        """A resolver on [::1] is asked over UDP and TCP."""
        result = await run(auth, query_name="up.example", transport=transport)
        assert result.outcome is Outcome.UP, result
        assert result.details["transport"] == transport

    @pytest.mark.parametrize("qtype", ["AAAA", "MX", "TXT", "CNAME"])
    async def test_types(self, auth: AuthServer, qtype: str) -> None:
        """Other record types are asked for as configured."""
        name = "alias.example" if qtype == "CNAME" else "up.example"
        result = await run(auth, query_name=name, query_type=qtype.lower())
        assert result.outcome is Outcome.UP, result

    async def test_tcp(self, auth: AuthServer) -> None:
        """transport: tcp queries over TCP."""
        result = await run(auth, query_name="up.example", transport="tcp")
        assert result.outcome is Outcome.UP, result
        assert result.details["transport"] == "tcp"

    async def test_truncated_udp_retried_over_tcp(self, auth: AuthServer) -> None:
        """A truncated UDP answer is fetched again over TCP and judged complete."""
        result = await run(auth, query_name="big.example", query_type="TXT")
        assert result.outcome is Outcome.UP, result
        assert (result.details["transport"], result.details["answer_count"]) == ("tcp", 10)

    async def test_nxdomain(self, auth: AuthServer) -> None:
        """NXDOMAIN outside valid_rcodes: dns_nxdomain."""
        result = await run(auth, query_name="nx.example")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "dns_nxdomain")

    async def test_nxdomain_accepted(self, auth: AuthServer) -> None:
        """A name expected not to exist: NXDOMAIN listed as valid, no answer allowed."""
        result = await run(
            auth, query_name="nx.example", valid_rcodes=["nxdomain"], fail_if_no_answer=False
        )
        assert result.outcome is Outcome.UP, result

    async def test_servfail(self, auth: AuthServer) -> None:
        """SERVFAIL: dns_servfail."""
        result = await run(auth, query_name="fail.example")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "dns_servfail")

    async def test_no_answer(self, auth: AuthServer) -> None:
        """NOERROR with an empty answer: dns_no_answer unless allowed."""
        strict = await run(auth, query_name="up.example", query_type="SRV")
        lenient = await run(
            auth, query_name="up.example", query_type="SRV", fail_if_no_answer=False
        )
        assert (strict.outcome, strict.reason) == (Outcome.DOWN, "dns_no_answer")
        assert lenient.outcome is Outcome.UP

    async def test_wrong_value(self, auth: AuthServer) -> None:
        """Every record must match the expected value: a stray address fails."""
        result = await run(
            auth,
            query_name="up.example",
            validate_answer_rrs={"fail_if_not_matches_regexp": [r"\tA\t192\.0\.2\.1$"]},
        )
        assert (result.outcome, result.reason) == (Outcome.DOWN, "dns_answer_unexpected")

    async def test_forbidden_value(self, auth: AuthServer) -> None:
        """A record matching fail_if_matches_regexp fails."""
        result = await run(
            auth,
            query_name="up.example",
            validate_answer_rrs={"fail_if_matches_regexp": [r"192\.0\.2\.2"]},
        )
        assert (result.outcome, result.reason) == (Outcome.DOWN, "dns_answer_forbidden")

    async def test_all_and_none(self, auth: AuthServer) -> None:
        """fail_if_all_match / fail_if_none_matches judge the record set as a whole."""
        every = await run(
            auth,
            query_name="up.example",
            validate_answer_rrs={"fail_if_all_match_regexp": [r"192\.0\.2\."]},
        )
        none = await run(
            auth,
            query_name="up.example",
            validate_answer_rrs={"fail_if_none_matches_regexp": [r"198\.51\.100\."]},
        )
        fine = await run(
            auth,
            query_name="up.example",
            validate_answer_rrs={
                "fail_if_all_match_regexp": [r"192\.0\.2\.1$"],
                "fail_if_none_matches_regexp": [r"192\.0\.2\.2$"],
                "fail_if_not_matches_regexp": [r"^up\.example\.\t300\tIN\tA\t"],
            },
        )
        assert every.reason == "dns_answer_all_forbidden"
        assert none.reason == "dns_answer_missing"
        assert fine.outcome is Outcome.UP, fine

    @pytest.mark.parametrize("transport", ["udp", "tcp"])
    async def test_silence_times_out(self, auth: AuthServer, transport: str) -> None:
        """A server that never answers: timeout_resolve, before the deadline."""
        result = await run(auth, timeout=0.4, query_name="silent.example", transport=transport)
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout_resolve")
        assert result.duration_seconds < 0.4

    async def test_garbage_reply(self, auth: AuthServer) -> None:
        """A reply that does not parse as DNS fails the probe with a reason."""
        result = await run(auth, query_name="garbage.example")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "dns_malformed_response")

    async def test_tcp_refused(self) -> None:
        """Nothing listening over TCP: connection_refused."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        result = await run(AuthServer(port=port), query_name="up.example", transport="tcp")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "connection_refused")
