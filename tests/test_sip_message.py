"""Tests for probes/sip/message.py: parsing, framing, builders."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.sip.message import (
    MAX_MESSAGE_BYTES,
    Headers,
    ParseError,
    SipRequest,
    SipResponse,
    StreamFramer,
    build_2xx_ack,
    build_cancel,
    build_non2xx_ack,
    make_response,
    new_branch,
    parse_cseq,
    parse_message,
    parse_name_addr,
    parse_via,
    split_list,
)
from tests.strategies import sip_messages

KAMAILIO_200 = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKabc;rport=40000;received=127.0.0.1\r\n"
    b"From: <sip:probe@127.0.0.1>;tag=f1\r\n"
    b"To: <sip:ping@127.0.0.1:5070>;tag=a6a1c5f60faecf035a1ae5b6e96e979a-1d3e\r\n"
    b"Call-ID: c1@127.0.0.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Server: peer-kamailio\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def _response(extra: bytes = b"", body: bytes = b"") -> bytes:
    head = (
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nCSeq: 7 INVITE\r\n" + extra
    )
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


class TestParseMessage:
    def test_kamailio_response(self) -> None:
        """A real Kamailio 200 parses into status, reason, Via params and tags."""
        message = parse_message(KAMAILIO_200)
        assert isinstance(message, SipResponse)
        assert (message.status, message.reason) == (200, "OK")
        via = message.top_via
        assert (via.transport, via.host, via.port, via.branch) == (
            "UDP",
            "127.0.0.1",
            40000,
            "z9hG4bKabc",
        )
        assert via.rport == 40000
        assert via.received == "127.0.0.1"
        assert parse_name_addr(message.headers.get("To") or "").tag.startswith("a6a1")  # type: ignore[union-attr]
        assert message.cseq == (1, "OPTIONS")
        assert message.headers.get("server") == "peer-kamailio"

    def test_compact_forms_and_case(self) -> None:
        """Compact names (v, f, t, i, l, m, c, k, s, e) and odd case map to canonical names."""
        raw = (
            b"SIP/2.0 200 OK\r\nv: SIP/2.0/TCP a;branch=z9hG4bK1\r\nf: <sip:a@b>;tag=1\r\n"
            b"t: <sip:c@d>\r\ni: cid\r\nm: <sip:x@y>\r\nc: application/sdp\r\nk: timer\r\n"
            b"s: hi\r\ne: gzip\r\ncSeQ: 2 REGISTER\r\nCALL-id: other\r\nl: 2\r\n\r\nhi"
        )
        message = parse_message(raw)
        names = [name for name, _ in message.headers]
        assert names[:10] == [
            "Via", "From", "To", "Call-ID", "Contact", "Content-Type", "Supported",
            "Subject", "Content-Encoding", "CSeq",
        ]  # fmt: skip
        assert message.headers.get_all("call-id") == ["cid", "other"]
        assert message.body == b"hi"
        assert message.cseq == (2, "REGISTER")

    def test_folded_header(self) -> None:
        """A header continued on lines starting with blanks is one value."""
        message = parse_message(_response(b"Subject: first\r\n  second\r\n\tthird\r\n"))
        assert message.headers.get("Subject") == "first second third"

    def test_multiple_via_in_one_header_and_across_headers(self) -> None:
        """Comma-separated Via values and repeated Via headers come out in order."""
        raw = (
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP a:1;branch=z9hG4bK1, "
            b"SIP/2.0/TCP b:2;branch=z9hG4bK2\r\n"
            b"Via: SIP/2.0/TLS [::1]:3;branch=z9hG4bK3\r\nCSeq: 1 OPTIONS\r\n\r\n"
        )
        vias = [parse_via(v) for v in parse_message(raw).headers.get_all("Via")]
        assert [(v.transport, v.host, v.port) for v in vias] == [
            ("UDP", "a", 1), ("TCP", "b", 2), ("TLS", "[::1]", 3),
        ]  # fmt: skip

    def test_lf_only_line_ends(self) -> None:
        """Bare LF line ends are accepted."""
        message = parse_message(KAMAILIO_200.replace(b"\r\n", b"\n"))
        assert isinstance(message, SipResponse)
        assert message.status == 200

    def test_request_line(self) -> None:
        """A request gets its method (upper-cased) and URI."""
        raw = (
            b"bye sip:probe@127.0.0.1:5 SIP/2.0\r\n"
            b"Via: SIP/2.0/UDP h;branch=z9hG4bKq\r\nCSeq: 3 BYE\r\n\r\n"
        )
        message = parse_message(raw)
        assert isinstance(message, SipRequest)
        assert (message.method, message.uri) == ("BYE", "sip:probe@127.0.0.1:5")

    def test_body_cut_to_content_length(self) -> None:
        """Bytes after Content-Length (UDP padding) are not part of the body."""
        assert parse_message(_response(body=b"abc") + b"junk").body == b"abc"

    def test_missing_content_length_on_datagram_takes_the_rest(self) -> None:
        """Without Content-Length a datagram's body is everything after the blank line."""
        raw = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nCSeq: 1 OPTIONS\r\n\r\nbody"
        assert parse_message(raw).body == b"body"

    @pytest.mark.parametrize(
        ("raw", "fragment"),
        [
            (b"", "no empty line"),
            (b"HTTP/1.1 200 OK\r\nCSeq: 1 OPTIONS\r\n\r\n", "neither a status line"),
            (b"SIP/2.0 099 Low\r\nCSeq: 1 OPTIONS\r\n\r\n", "outside 100..699"),
            (b"SIP/2.0 700 High\r\nCSeq: 1 OPTIONS\r\n\r\n", "outside 100..699"),
            (b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n", "CSeq header missing"),
            (b"SIP/2.0 200 OK\r\nCSeq: one OPTIONS\r\n\r\n", "CSeq: expected"),
            (b"SIP/2.0 200 OK\r\nCSeq: 1 OPTIONS\r\nbroken line\r\n\r\n", "line 3"),
            (b"SIP/2.0 200 OK\r\n folded first\r\nCSeq: 1 A\r\n\r\n", "continuation line"),
            (b"SIP/2.0 200 OK\r\nCSeq: 1 A\r\nContent-Length: 10\r\n\r\nshort", "body truncated"),
            (b"SIP/2.0 200 OK\r\nCSeq: 1 A\r\nContent-Length: -1\r\n\r\n", "non-negative integer"),
        ],
    )
    def test_malformed_is_rejected_with_reason(self, raw: bytes, fragment: str) -> None:
        """Each kind of malformed message raises ParseError naming the problem."""
        with pytest.raises(ParseError, match=fragment) as info:
            parse_message(raw)
        assert info.value.reason == "malformed"

    def test_oversized_message(self) -> None:
        """More than 64 KiB fails with reason too_large."""
        with pytest.raises(ParseError, match="exceeds") as info:
            parse_message(_response(body=b"x" * MAX_MESSAGE_BYTES))
        assert info.value.reason == "too_large"

    @given(st.binary(max_size=600))
    def test_arbitrary_bytes_raise_only_parse_error(self, data: bytes) -> None:
        """Garbage never raises anything but ParseError."""
        with contextlib.suppress(ParseError):
            parse_message(data)

    @given(sip_messages(), st.binary(max_size=60))
    def test_mutated_messages_raise_only_parse_error(
        self, message: SipRequest | SipResponse, noise: bytes
    ) -> None:
        """A valid message with bytes spliced into it either parses or raises ParseError."""
        raw = message.encode()
        cut = len(noise) % (len(raw) + 1)
        with contextlib.suppress(ParseError):
            parse_message(raw[:cut] + noise + raw[cut:])

    @given(sip_messages())
    def test_round_trip(self, message: SipRequest | SipResponse) -> None:
        """encode -> parse gives the same message (plus the Content-Length header)."""
        parsed = parse_message(message.encode())
        assert type(parsed) is type(message)
        assert parsed.headers.without("Content-Length") == message.headers
        assert parsed.body == message.body
        assert parsed.headers.get("Content-Length") == str(len(message.body))
        if isinstance(message, SipResponse):
            assert isinstance(parsed, SipResponse)
            assert (parsed.status, parsed.reason) == (message.status, message.reason)
        else:
            assert isinstance(parsed, SipRequest)
            assert (parsed.method, parsed.uri) == (message.method, message.uri)


class TestStreamFramer:
    def test_splits_back_to_back_messages_across_chunks(self) -> None:
        """Messages split anywhere across reads come out whole and in order."""
        stream = _response(body=b"one") + b"\r\n" + _response(body=b"second")
        for cut in range(1, len(stream)):
            framer = StreamFramer()
            out = framer.feed(stream[:cut]) + framer.feed(stream[cut:])
            assert [parse_message(m).body for m in out] == [b"one", b"second"]

    @given(st.lists(sip_messages(), min_size=1, max_size=4), st.lists(st.integers(0, 3000)))
    def test_any_split_of_a_stream_gives_the_same_messages(
        self, messages: list[SipRequest | SipResponse], cuts: list[int]
    ) -> None:
        """However a stream of messages is cut into reads, the framer returns them whole."""
        stream = b"".join(m.encode() for m in messages)
        points = sorted({c % (len(stream) + 1) for c in cuts})
        framer = StreamFramer()
        out: list[bytes] = []
        for start, end in zip([0, *points], [*points, len(stream)], strict=True):
            out += framer.feed(stream[start:end])
        assert out == [m.encode() for m in messages]

    def test_header_section_without_end_beyond_limit(self) -> None:
        """An endless header section fails instead of buffering forever."""
        framer = StreamFramer(limit=1000)
        with pytest.raises(ParseError) as info:
            framer.feed(b"SIP/2.0 200 OK\r\nX: " + b"a" * 1200)
        assert info.value.reason == "too_large"

    def test_declared_body_beyond_limit(self) -> None:
        """A Content-Length beyond the limit fails at once, before the body arrives."""
        with pytest.raises(ParseError, match="exceeds") as info:
            StreamFramer().feed(b"SIP/2.0 200 OK\r\nl: 70000\r\n\r\n")
        assert info.value.reason == "too_large"

    def test_bad_content_length(self) -> None:
        """A non-numeric Content-Length on a stream is malformed."""
        with pytest.raises(ParseError, match="Content-Length"):
            StreamFramer().feed(b"SIP/2.0 200 OK\r\nContent-Length: ten\r\n\r\n")


class TestHeaderHelpers:
    def test_split_list_respects_quotes_and_angles(self) -> None:
        """Commas inside quotes or <...> do not split."""
        value = '"Doe, J" <sip:a@b;x=1,2>;q=1, <sip:c@d>'
        assert split_list(value) == ['"Doe, J" <sip:a@b;x=1,2>;q=1', "<sip:c@d>"]

    def test_challenge_header_is_not_split(self) -> None:
        """A WWW-Authenticate value stays whole although it holds commas."""
        headers = Headers.of([("WWW-Authenticate", 'Digest realm="r", nonce="n"')])
        assert headers.get_all("www-authenticate") == ['Digest realm="r", nonce="n"']

    def test_name_addr_forms(self) -> None:
        """Display names, angle brackets and bare URIs with header params."""
        quoted = parse_name_addr('"Alice" <sip:alice@example.org;transport=tcp>;tag=88')
        assert (quoted.display, quoted.uri, quoted.tag) == (
            "Alice",
            "sip:alice@example.org;transport=tcp",
            "88",
        )
        bare = parse_name_addr("sip:bob@example.org;tag=99")
        assert (bare.uri, bare.tag) == ("sip:bob@example.org", "99")
        with pytest.raises(ParseError, match="'<' without '>'"):
            parse_name_addr("<sip:broken")

    def test_via_errors_name_the_value(self) -> None:
        """A broken Via says what was expected."""
        with pytest.raises(ParseError, match=r"SIP/2\.0/<transport>"):
            parse_via("HTTP/1.1 host")
        with pytest.raises(ParseError, match="port 70000"):
            parse_via("SIP/2.0/UDP host:70000")

    def test_cseq_bounds(self) -> None:
        """CSeq numbers must stay below 2**31 (RFC 3261 §8.1.1.5)."""
        assert parse_cseq("5 invite") == (5, "INVITE")
        with pytest.raises(ParseError, match="2\\*\\*31"):
            parse_cseq(f"{2**31} INVITE")

    def test_branch_has_magic_cookie_and_is_unique(self) -> None:
        """Branches start with z9hG4bK and do not repeat."""
        branches = {new_branch() for _ in range(200)}
        assert len(branches) == 200
        assert all(b.startswith("z9hG4bK") for b in branches)


def _invite() -> SipRequest:
    headers = Headers.of(
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bKinv;rport"),
            ("Route", "<sip:proxy;lr>"),
            ("From", "<sip:probe@127.0.0.1>;tag=ft"),
            ("To", "<sip:ivr@example.org>"),
            ("Call-ID", "cid-1"),
            ("CSeq", "4 INVITE"),
        ]
    )
    return SipRequest(headers=headers, method="INVITE", uri="sip:ivr@example.org")


class TestBuilders:
    def test_response_copies_dialog_headers_and_tags_to(self) -> None:
        """make_response copies Via/From/Call-ID/CSeq and adds a To tag."""
        response = make_response(_invite(), 486, "Busy Here", to_tag="tt")
        assert response.headers.get_all("Via") == _invite().headers.get_all("Via")
        assert parse_name_addr(response.headers.get("To") or "").tag == "tt"
        assert response.cseq == (4, "INVITE")

    def test_non2xx_ack_keeps_branch_and_takes_response_to(self) -> None:
        """The transaction's ACK reuses the INVITE branch and the response's To tag."""
        response = make_response(_invite(), 486, "Busy Here", to_tag="tt")
        ack = build_non2xx_ack(_invite(), response)
        assert ack.method == "ACK"
        assert ack.uri == "sip:ivr@example.org"
        assert ack.top_via.branch == "z9hG4bKinv"
        assert ack.cseq == (4, "ACK")
        assert parse_name_addr(ack.headers.get("To") or "").tag == "tt"
        assert ack.headers.get_all("Route") == ["<sip:proxy;lr>"]

    def test_2xx_ack_goes_to_contact_along_record_route(self) -> None:
        """The 2xx ACK targets the Contact, routes by reversed Record-Route, has no Via yet."""
        response = make_response(
            _invite(), 200, "OK", to_tag="tt",
            extra=[
                ("Record-Route", "<sip:p1;lr>, <sip:p2;lr>"),
                ("Contact", "<sip:ivr@10.0.0.9:5062>"),
            ],
        )  # fmt: skip
        ack = build_2xx_ack(_invite(), response)
        assert ack.uri == "sip:ivr@10.0.0.9:5062"
        assert ack.headers.get_all("Route") == ["<sip:p2;lr>", "<sip:p1;lr>"]
        assert ack.headers.get("Via") is None

    def test_cancel_matches_the_invite(self) -> None:
        """CANCEL keeps the INVITE's branch, URI, Call-ID and CSeq number."""
        cancel = build_cancel(_invite())
        assert cancel.top_via.branch == "z9hG4bKinv"
        assert (cancel.uri, cancel.call_id, cancel.cseq) == (
            "sip:ivr@example.org",
            "cid-1",
            (4, "CANCEL"),
        )

    def test_encode_always_writes_a_true_content_length(self) -> None:
        """A stale Content-Length is replaced by the body's length."""
        request = _invite().with_headers(_invite().headers.with_added("Content-Length", "999"))
        encoded = SipRequest(
            headers=request.headers, body=b"abc", method="INVITE", uri="sip:x"
        ).encode()
        assert b"Content-Length: 3\r\n\r\nabc" in encoded
        assert b"999" not in encoded
