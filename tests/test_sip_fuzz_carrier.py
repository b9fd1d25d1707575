"""Fuzzing what a hostile network hands the carrier-grade SIP code: NAPTR/SRV answers (as
records and as raw DNS replies from a loopback server), Session-Expires values, SIP messages
carrying them, and SDP with a=crypto lines. Every case must end in the module's own error
type (or a valid result) within its time bound: no crash, no hang."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes.sip.headers import ParseError, parse_session_expires
from probes.sip.locate import LocateError, locate, naptr_choices, order_srv
from probes.sip.message import parse_message
from probes.sip.sdp import SdpError, parse_sdp
from probes.sip.srtp import SrtpError, parse_crypto
from tests.sip_peers import LoopbackDns
from tests.strategies import (
    naptr_rdata_texts,
    session_expires_values,
    sip_header_values,
    srv_rdata_texts,
)

pytestmark = pytest.mark.timeout(120)
DOMAIN = "example.test"


def _rdata(rdtype: str, text: str) -> dns.rdata.Rdata:
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), text)


class TestRecords:
    @given(st.lists(naptr_rdata_texts, max_size=8), st.booleans())
    def test_naptr_choices_any_records(self, texts: list[str], secure: bool) -> None:
        """Any NAPTR set gives choices of known transports only (TLS only for sips:)."""
        choices = naptr_choices([_rdata("NAPTR", t) for t in texts], secure)  # type: ignore[misc]
        allowed = {"tls"} if secure else {"udp", "tcp", "tls"}
        assert {transport for transport, _ in choices} <= allowed
        assert all(name for _, name in choices)

    @given(st.lists(srv_rdata_texts, max_size=8), st.integers(0, 2**32))
    def test_order_srv_any_records(self, texts: list[str], seed: int) -> None:
        """Any SRV set orders without error, never returns the '.' target."""
        ordered = order_srv([_rdata("SRV", t) for t in texts], random.Random(seed))  # type: ignore[misc]
        assert all(str(r.target) != "." for r in ordered)  # type: ignore[attr-defined]
        assert len(ordered) <= len(texts)


class TestDnsReplies:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(naptr_rdata_texts, max_size=4), st.lists(srv_rdata_texts, max_size=4))
    def test_hostile_naptr_srv_zone(self, naptr: list[str], srv: list[str]) -> None:
        """A DNS server publishing arbitrary NAPTR/SRV sets: locate returns servers or a
        LocateError, within its lifetime."""
        server = LoopbackDns()
        try:
            if naptr:
                server.set(DOMAIN, "NAPTR", *naptr)
            for prefix in ("_sip._udp", "_sip._tcp", "_sips._tcp"):
                if srv:
                    server.set(f"{prefix}.{DOMAIN}", "SRV", *srv)
            server.set(f"a.{DOMAIN}", "A", "127.0.0.1")
            started = time.monotonic()
            with contextlib.suppress(LocateError):
                location = asyncio.run(
                    locate(DOMAIN, secure=False, transport=None, port=None,
                           nameservers=(server.nameserver,), lifetime=1.0)
                )  # fmt: skip
                assert location.servers
            assert time.monotonic() - started < 5.0
        finally:
            server.close()

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.binary(min_size=0, max_size=200))
    def test_garbage_replies(self, garbage: bytes) -> None:
        """A server answering every query with garbage (its id kept): LocateError, no hang."""
        server = LoopbackDns()
        server.raw_reply = garbage
        try:
            started = time.monotonic()
            with pytest.raises(LocateError):
                asyncio.run(
                    locate(DOMAIN, secure=False, transport=None, port=None,
                           nameservers=(server.nameserver,), lifetime=0.5)
                )  # fmt: skip
            assert time.monotonic() - started < 3.0
        finally:
            server.close()


class TestHeadersAndBodies:
    @given(session_expires_values)
    def test_session_expires(self, value: str) -> None:
        """Any Session-Expires value parses (non-negative seconds) or raises ParseError."""
        try:
            parsed = parse_session_expires(value)
        except ParseError:
            return
        assert parsed.seconds >= 0
        assert parsed.refresher in (None, "uac", "uas")

    @given(session_expires_values.filter(lambda v: "\r" not in v and "\n" not in v),
           sip_header_values)  # fmt: skip
    def test_messages_with_timer_headers(self, expires: str, other: str) -> None:
        """Re-INVITEs carrying hostile Session-Expires/Require/Supported/RSeq parse or raise
        ParseError only."""
        raw = (
            "INVITE sip:a@127.0.0.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx\r\n"
            "From: <sip:b@127.0.0.1>;tag=1\r\nTo: <sip:a@127.0.0.1>;tag=2\r\n"
            "Call-ID: c\r\nCSeq: 2 INVITE\r\n"
            f"Session-Expires: {expires}\r\nx: {expires}\r\nRequire: {other}\r\n"
            f"Supported: {other}\r\nRSeq: {other}\r\nContent-Length: 0\r\n\r\n"
        ).encode("utf-8", "surrogatepass")
        with contextlib.suppress(ParseError):
            message = parse_message(raw)
            value = message.headers.get("Session-Expires")
            if value is not None:
                with contextlib.suppress(ParseError):
                    parse_session_expires(value)

    @given(st.lists(st.text(max_size=80).filter(lambda v: "\n" not in v and "\r" not in v),
                    max_size=4))  # fmt: skip
    def test_sdp_with_crypto_lines(self, crypto: list[str]) -> None:
        """SDP with arbitrary a=crypto lines parses; each line is accepted or SrtpError."""
        body = (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            "m=audio 4000 RTP/SAVP 0\r\n" + "".join(f"a=crypto:{c}\r\n" for c in crypto)
        )
        try:
            media = parse_sdp(body).media[0]
        except SdpError:
            return
        for value in media.crypto:
            with contextlib.suppress(SrtpError):
                parse_crypto(value)
