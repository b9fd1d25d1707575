"""RTCP (probes/sip/rtcp.py): reports built and parsed, RTT from LSR/DLSR (RFC 3550 §6.4.1),
and a real call against baresip (which sends RTCP on RTP port + 1) measuring the round trip
that then feeds the E-model instead of an estimate."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.result import Outcome, ProbeContext, ProbeResult
from probes.sip.audio import Codec
from probes.sip.mos import estimate_mos
from probes.sip.rtcp import (
    ReportBlock,
    RtcpError,
    SenderInfo,
    build_report,
    ntp_from_unix,
    ntp_middle,
    parse_compound,
    round_trip,
)
from probes.sip.sdp import SdpError, negotiate, parse_sdp
from probes.sip_call import SipCallOptions, probe
from tests import sip_peers
from tests.sip_peers import BaresipPeer

pytestmark = pytest.mark.timeout(40)
baresip_sine = sip_peers.baresip_sine
sipp_reinvite = sip_peers.sipp_reinvite


class TestReports:
    def test_sr_round_trip(self) -> None:
        """An SR with one block and our CNAME parses back to the same figures."""
        block = ReportBlock(0xDEADBEEF, 12, 34, 70000, 160, 0x12345678, 0x00010000)
        sender = SenderInfo(ntp_from_unix(1_800_000_000.25), 160_000, 250, 40_000)
        data = build_report(0x01020304, sender, (block,), "slawatch@probe")
        (report,) = parse_compound(data)
        assert report.ssrc == 0x01020304
        assert report.sender == sender
        assert report.blocks == (block,)

    def test_rr_negative_cumulative_loss(self) -> None:
        """An RR (no sender info) keeps a negative cumulative loss (duplicates) signed."""
        block = ReportBlock(7, 0, -3, 10, 0, 0, 0)
        (report,) = parse_compound(build_report(9, None, (block,), "x"))
        assert report.sender is None
        assert report.blocks[0].cumulative_lost == -3

    def test_rfc3550_rtt_example(self) -> None:
        """RFC 3550 §6.4.1's example: A=0xb710:8000, LSR=0xb705:2000, DLSR=0x0005:4000 gives
        0x0006:2000 = 6.125 s."""
        block = ReportBlock(1, 0, 0, 0, 0, 0xB7052000, 0x00054000)
        assert round_trip(0xB7108000, block) == 6.125

    def test_no_rtt_without_our_sr(self) -> None:
        """LSR 0 (the peer saw no SR of ours yet) and impossible figures give no RTT."""
        assert round_trip(0xB7108000, ReportBlock(1, 0, 0, 0, 0, 0, 0)) is None
        assert round_trip(0x10, ReportBlock(1, 0, 0, 0, 0, 0x20, 0)) is None

    def test_ntp_middle(self) -> None:
        """The middle 32 bits: low 16 of the seconds, high 16 of the fraction."""
        ntp = ntp_from_unix(1.5)
        assert ntp >> 32 == 2_208_988_801
        assert ntp_middle(ntp) == ((2_208_988_801 & 0xFFFF) << 16) | 0x8000

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"\x80\xc8\x00",
            b"\x40\xc8\x00\x01\x00\x00\x00\x01",  # version 1
            b"\x81\xc9\x00\x01\x00\x00\x00\x01",  # RR claiming one block, none present
            b"\x80\xc9\x00\x09\x00\x00\x00\x01",  # length past the end
        ],
    )
    def test_malformed(self, data: bytes) -> None:
        """Short, wrong-version, lying-length packets are RtcpError."""
        with pytest.raises(RtcpError):
            parse_compound(data)

    @given(st.binary(max_size=300))
    def test_fuzz_never_crashes(self, data: bytes) -> None:
        """Any bytes parse or raise RtcpError, nothing else."""
        with contextlib.suppress(RtcpError):
            parse_compound(data)

    @given(
        st.integers(0, 2**32 - 1),
        st.lists(
            st.tuples(
                st.integers(0, 2**32 - 1),
                st.integers(0, 255),
                st.integers(-(2**23), 2**23 - 1),
                st.integers(0, 2**32 - 1),
            ),
            max_size=5,
        ),
    )
    def test_blocks_round_trip(self, ssrc: int, raw: list[tuple[int, int, int, int]]) -> None:
        """Any report blocks survive build/parse unchanged."""
        blocks = tuple(ReportBlock(s, f, c, h, 0, 0, 0) for s, f, c, h in raw)
        (report,) = parse_compound(build_report(ssrc, None, blocks, "c"))
        assert report.blocks == blocks
        assert struct.unpack_from("!H", build_report(ssrc, None, blocks, "c"), 2)[0] > 0


class TestMos:
    def test_rtt_lowers_mos_only_when_long(self) -> None:
        """A 2 ms round trip leaves the score; a 600 ms one (300 ms one way) lowers it."""
        base = estimate_mos(0.0, "PCMU")
        assert estimate_mos(0.0, "PCMU", round_trip_seconds=0.002) == pytest.approx(base, abs=0.01)
        assert estimate_mos(0.0, "PCMU", round_trip_seconds=0.6) < base - 0.3


async def _call(uri: str, budget: float, **options: Any) -> ProbeResult:
    opts = SipCallOptions.model_validate(
        {"uri": uri, "bind": "127.0.0.1", "answer_timeout": "2s", **options}
    )
    return await probe(opts, ProbeContext.starting_now("rtcp-call", budget))


class TestAgainstBaresip:
    async def test_rtt_measured_and_used_in_mos(self, baresip_sine: BaresipPeer) -> None:
        """A 12 s call: baresip's reports about our stream carry our LSR; the RTT (loopback,
        well under 50 ms) is reported and the MOS uses it; the far end lost nothing. (12 s,
        not 8: baresip reports about every 5 s, and under a full run's load its only report
        in 8 s once went out before our first SR reached it, so it carried no LSR.)"""
        result = await _call(baresip_sine.uri, 18.0, duration="12s")
        assert result.outcome is Outcome.UP, result
        details = result.details
        assert int(details["rtcp_reports_sent"]) >= 3  # type: ignore[arg-type]
        assert int(details["rtcp_reports_received"]) >= 1  # type: ignore[arg-type]
        rtt = float(details["rtt_seconds"])  # type: ignore[arg-type]
        assert 0.0 <= rtt < 0.05
        assert details["mos_delay"] == "rtcp_rtt"
        assert details["remote_cumulative_lost"] == 0

    async def test_without_peer_rtcp_the_estimate_stays(self, sipp_reinvite: Any) -> None:
        """SIPp echoes RTP but sends no RTCP: our reports go out, none come back, no RTT, and
        the MOS delay is the local estimate."""
        result = await _call(sipp_reinvite.uri(), 6.0, duration="1.5s")
        assert result.outcome is Outcome.UP, result
        assert "rtt_seconds" not in result.details
        assert result.details["rtcp_reports_received"] == 0
        assert int(result.details["rtcp_reports_sent"]) >= 1  # type: ignore[arg-type]
        assert result.details["mos_delay"] == "local_estimate"


class TestRtcpAttribute:
    SDP = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\n{line}"
    )

    @pytest.mark.parametrize(
        ("line", "port"),
        [("", None), ("a=rtcp:4005\r\n", 4005), ("a=rtcp:53020 IN IP4 127.0.0.1\r\n", 53020)],
    )
    def test_port_read(self, line: str, port: int | None) -> None:
        """a=rtcp (RFC 3605) names the callee's RTCP port; without it RTP port + 1 is used."""
        answer = negotiate(parse_sdp(self.SDP.format(line=line)), (Codec.PCMU,))
        assert answer.rtcp_port == port

    def test_bad_port(self) -> None:
        """A non-numeric a=rtcp port is an SdpError naming the line."""
        with pytest.raises(SdpError, match="rtcp port"):
            parse_sdp(self.SDP.format(line="a=rtcp:soon\r\n"))
