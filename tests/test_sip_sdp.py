"""SDP offer building, answer parsing and negotiation (probes/sip/sdp.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.sip.audio import Codec
from probes.sip.sdp import SdpError, build_offer, negotiate, parse_sdp

# What baresip 1.0.0 answers to our offer (captured on loopback), CRLF line ends.
BARESIP_ANSWER = (
    "v=0\r\n"
    "o=- 1402419580 1234170390 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 20046 RTP/AVP 0 101\r\n"
    "b=AS:64\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=sendrecv\r\n"
    "a=label:1\r\n"
    "a=ssrc:3302159010 cname:sip:callee@127.0.0.1\r\n"
    "a=rtcp-rsize\r\n"
    "a=ptime:20\r\n"
)


class TestBuildOffer:
    def test_offer_lists_codecs_in_order_and_telephone_event(self) -> None:
        """PCMA first then PCMU, then telephone-event 101 with fmtp 0-15, 20 ms, sendrecv."""
        offer = build_offer(
            address="127.0.0.1", port=20000, codecs=[Codec.PCMA, Codec.PCMU], session_id=42
        )
        lines = offer.split("\r\n")
        assert lines[0] == "v=0"
        assert "o=slawatch 42 42 IN IP4 127.0.0.1" in lines
        assert "c=IN IP4 127.0.0.1" in lines
        assert "m=audio 20000 RTP/AVP 8 0 101" in lines
        assert lines.index("a=rtpmap:8 PCMA/8000") < lines.index("a=rtpmap:0 PCMU/8000")
        assert {"a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20"} <= set(lines)
        assert offer.endswith("a=sendrecv\r\n")

    def test_offer_parses_back(self) -> None:
        """Our own offer survives our parser with every field."""
        offer = build_offer(address="::1", port=20002, codecs=[Codec.PCMU], session_id=1)
        media = parse_sdp(offer).media[0]
        assert (media.address, media.port, media.formats) == ("::1", 20002, ("0", "101"))
        assert media.fmtps == {101: "0-15"}
        assert media.ptime_ms == 20

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"codecs": []}, "expected at least one of PCMU, PCMA"),
            ({"codecs": [Codec.PCMU, Codec.PCMU]}, "each codec once"),
            ({"port": 0}, "port must be in 1..65535, got 0"),
            ({"telephone_event_pt": 8}, r"must be dynamic \(96..127\), got 8"),
            ({"address": "callee.example"}, "does not appear to be an IPv4 or IPv6 address"),
        ],
    )
    def test_bad_arguments(self, kwargs: dict[str, object], message: str) -> None:
        """Each bad argument raises an error naming the value."""
        args: dict[str, object] = {
            "address": "127.0.0.1",
            "port": 20000,
            "codecs": [Codec.PCMU],
            "session_id": 1,
        }
        args.update(kwargs)
        with pytest.raises(ValueError, match=message):
            build_offer(**args)  # type: ignore[arg-type]


class TestParse:
    def test_baresip_answer(self) -> None:
        """A real baresip answer: port, formats, rtpmaps, fmtp, direction, ptime."""
        media = parse_sdp(BARESIP_ANSWER).media[0]
        assert (media.media, media.port, media.proto) == ("audio", 20046, "RTP/AVP")
        assert media.formats == ("0", "101")
        assert media.rtpmaps[101].encoding == "telephone-event"
        assert media.fmtps[101] == "0-15"
        assert (media.direction, media.ptime_ms, media.address) == ("sendrecv", 20, "127.0.0.1")

    def test_media_level_connection_overrides_session(self) -> None:
        """c= inside the m= section wins over the session-level c=."""
        text = BARESIP_ANSWER.replace("b=AS:64\r\n", "c=IN IP4 127.0.0.2\r\n")
        assert parse_sdp(text).media[0].address == "127.0.0.2"
        assert parse_sdp(text).address == "127.0.0.1"

    def test_connection_only_at_media_level(self) -> None:
        """No session c=, one at media level: the stream still has an address."""
        text = BARESIP_ANSWER.replace("c=IN IP4 127.0.0.1\r\n", "").replace(
            "b=AS:64\r\n", "c=IN IP4 10.0.0.7/127\r\n"
        )
        assert parse_sdp(text).media[0].address == "10.0.0.7"

    def test_lf_only_and_session_direction(self) -> None:
        """LF line ends parse; a session-level a=recvonly applies to streams without their own."""
        text = "v=0\nc=IN IP4 127.0.0.1\na=recvonly\nm=audio 4000 RTP/AVP 8\n"
        media = parse_sdp(text).media[0]
        assert (media.direction, media.formats, media.rtpmaps) == ("recvonly", ("8",), {})

    def test_rtpmap_with_channels(self) -> None:
        """rtpmap's optional channel count is read."""
        text = "v=0\nm=audio 4000 RTP/AVP 96\na=rtpmap:96 opus/48000/2\n"
        rtpmap = parse_sdp(text).media[0].rtpmaps[96]
        assert (rtpmap.encoding, rtpmap.clock_rate, rtpmap.channels) == ("opus", 48000, 2)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("", "SDP body is empty, expected 'v=0' on line 1"),
            ("v=1\n", "SDP line 1: expected 'v=0', got 'v=1'"),
            ("v=0\nhello\n", "SDP line 2: expected '<letter>=<value>', got 'hello'"),
            ("v=0\nc=IN IP4\n", "SDP line 2: c= must be 'IN IP4|IP6 <address>'"),
            ("v=0\nm=audio 5000 RTP/AVP\n", "SDP line 2: m= must be '<media> <port> <proto>"),
            ("v=0\nm=audio five RTP/AVP 0\n", "SDP line 2: m= port must be an integer, got 'five'"),
            (
                "v=0\nm=audio 70000 RTP/AVP 0\n",
                r"SDP line 2: m= port must be in 0..65535, got 70000",
            ),
            ("v=0\nm=audio 5 RTP/AVP 0\na=rtpmap:0 PCMU\n", "SDP line 3: rtpmap must be"),
            (
                "v=0\nm=audio 5 RTP/AVP 0\na=rtpmap:x PCMU/8000\n",
                "rtpmap payload type must be an integer",
            ),
            (
                "v=0\nm=audio 5 RTP/AVP 0\na=rtpmap:0 PCMU/fast\n",
                "rtpmap clock rate must be an integer",
            ),
            (
                "v=0\nm=audio 5 RTP/AVP 0\na=ptime:0\n",
                r"SDP line 3: ptime must be in 1..1000, got 0",
            ),
            ("v=0\nm=audio 5 RTP/AVP 0\na=fmtp:abc 0-15\n", "fmtp payload type must be an integer"),
        ],
    )
    def test_malformed_sdp_names_the_line(self, text: str, message: str) -> None:
        """Malformed SDP raises SdpError naming the line and what was expected."""
        with pytest.raises(SdpError, match=message):
            parse_sdp(text)


class TestNegotiate:
    def test_baresip_answer(self) -> None:
        """PCMU with telephone-event 101, to the answer's address and port."""
        audio = negotiate(parse_sdp(BARESIP_ANSWER), [Codec.PCMA, Codec.PCMU])
        assert (audio.address, audio.port, audio.codec, audio.payload_type) == (
            "127.0.0.1",
            20046,
            Codec.PCMU,
            0,
        )
        assert (audio.telephone_event_pt, audio.ptime_ms) == (101, 20)

    def test_answerer_order_wins(self) -> None:
        """The first offered codec in the answer's m= line is used, whatever our order."""
        text = "v=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP 8 0\n"
        assert negotiate(parse_sdp(text), [Codec.PCMU, Codec.PCMA]).codec is Codec.PCMA

    def test_dynamic_payload_type_by_rtpmap(self) -> None:
        """A codec mapped to another number via rtpmap is found by name; TE may be renumbered."""
        text = (
            "v=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP 96 100\n"
            "a=rtpmap:96 pcma/8000\na=rtpmap:100 telephone-event/8000\n"
        )
        audio = negotiate(parse_sdp(text), [Codec.PCMA])
        assert (audio.codec, audio.payload_type, audio.telephone_event_pt) == (Codec.PCMA, 96, 100)

    def test_no_telephone_event(self) -> None:
        """An answer without telephone-event still negotiates, with no DTMF payload type."""
        text = "v=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP 0\n"
        assert negotiate(parse_sdp(text), [Codec.PCMU]).telephone_event_pt is None

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("v=0\nm=video 4000 RTP/AVP 96\n", "has no m=audio stream"),
            (
                "v=0\nc=IN IP4 127.0.0.1\nm=audio 0 RTP/AVP 0\n",
                r"rejected the audio stream \(m=audio port 0\)",
            ),
            ("v=0\nm=audio 4000 RTP/AVP 0\n", "no c= connection address"),
            (
                "v=0\nc=IN IP4 media.example\nm=audio 4000 RTP/AVP 0\n",
                "c= must carry an IP address for RTP, got 'media.example'",
            ),
            (
                "v=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP 18\n",
                r"accepted none of the offered codecs \['PCMU'\]: formats 18",
            ),
            (
                "v=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP 0\na=rtpmap:0 PCMU/16000\n",
                "accepted none",
            ),
            (
                "v=0\nc=IN IP4 127.0.0.1\nm=audio 4000 RTP/AVP webrtc\n",
                "format must be a payload number, got 'webrtc'",
            ),
        ],
    )
    def test_unusable_answers(self, text: str, message: str) -> None:
        """Answers the call cannot use raise SdpError saying why."""
        with pytest.raises(SdpError, match=message):
            negotiate(parse_sdp(text), [Codec.PCMU])


class TestOfferProperties:
    @given(
        codecs=st.permutations(list(Codec)).flatmap(
            lambda order: st.integers(1, len(order)).map(lambda n: order[:n])
        ),
        port=st.integers(min_value=1, max_value=65535),
        te_pt=st.integers(min_value=96, max_value=127),
    )
    def test_offer_accepted_verbatim_negotiates_our_first_codec(
        self, codecs: list[Codec], port: int, te_pt: int
    ) -> None:
        """An answer echoing our offer settles on our first codec, our port and our TE type."""
        offer = build_offer(
            address="127.0.0.1", port=port, codecs=codecs, session_id=7, telephone_event_pt=te_pt
        )
        audio = negotiate(parse_sdp(offer), codecs)
        assert (audio.codec, audio.port, audio.telephone_event_pt) == (codecs[0], port, te_pt)
        assert audio.payload_type == codecs[0].payload_type
