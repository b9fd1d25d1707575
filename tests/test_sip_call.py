"""The sip_call probe: port allocation, options, judging, and real calls to baresip/Kamailio."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from typing import Any, cast

import pytest
from pydantic import ValidationError

from probes.registry import PROBE_KINDS
from probes.result import Outcome, ProbeContext, ProbeResult
from probes.sip.audio import Codec
from probes.sip.call import CallRecord, pending_teardowns
from probes.sip.media import MediaPlan, MediaReport, MediaSession
from probes.sip.ports import PortAllocator, PortRange, PortsExhausted, candidates
from probes.sip.rtp import StreamSummary
from probes.sip_call import SipCallOptions, judge, port_range_of, probe
from tests import sip_peers
from tests.sip_peers import SIPP_PASSWORD, SIPP_USER, BaresipPeer, KamailioPeer, SippPeer

# The peers are session fixtures defined in tests/sip_peers.py; bound here so pytest finds them.
baresip_echo = sip_peers.baresip_echo
baresip_sine = sip_peers.baresip_sine
baresip_silent = sip_peers.baresip_silent
baresip_manual = sip_peers.baresip_manual
baresip_strict = sip_peers.baresip_strict
kamailio = sip_peers.kamailio
sipp_digest_busy = sip_peers.sipp_digest_busy
sipp_redirect = sip_peers.sipp_redirect
sipp_no_media = sip_peers.sipp_no_media
sipp_bad_sdp = sip_peers.sipp_bad_sdp
sipp_hangup = sip_peers.sipp_hangup

pytestmark = pytest.mark.timeout(30)


def _free_even_port() -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port % 2 == 0 and port < 65535:
            return port
    raise RuntimeError("no even UDP port found")


async def _call(peer_uri: str, budget: float = 6.0, **options: Any) -> ProbeResult:
    opts = SipCallOptions.model_validate(
        {"uri": peer_uri, "bind": "127.0.0.1", "duration": "1s", "answer_timeout": "2s", **options}
    )
    return await probe(opts, ProbeContext.starting_now("call", budget))


def _events(peer: BaresipPeer, call_id: object, kind: str) -> list[dict[str, Any]]:
    return [e for e in peer.events.of_type(kind) if e.get("id") == call_id]


async def _wait_events(peer: BaresipPeer, call_id: object, kind: str) -> list[dict[str, Any]]:
    # The events arrive on baresip's ctrl_tcp thread: poll briefly rather than wire an Event.
    for _ in range(150):
        if found := _events(peer, call_id, kind):
            return found
        await asyncio.sleep(0.02)
    return []


async def _hung_up_in_log(peer: BaresipPeer, from_uri: str) -> bool:
    # The echo module replaces the call's event handler, so no CALL_CLOSED event: its log
    # line names the caller, which each test makes unique.
    for _ in range(150):
        if f"{from_uri}: session closed" in peer.log_text():
            return True
        await asyncio.sleep(0.02)
    return False


def _unique_from() -> str:
    return f"sip:t{time.monotonic_ns()}@127.0.0.1"


class TestPortAllocator:
    def test_range_validation(self) -> None:
        """Ranges outside 1024..65535, reversed, or without an even RTP/RTCP pair are refused."""
        with pytest.raises(ValueError, match="1024 <= low <= high <= 65535, got 100-200"):
            PortRange(100, 200)
        with pytest.raises(ValueError, match="got 30001-30000"):
            PortRange(30001, 30000)
        with pytest.raises(ValueError, match="holds no even port"):
            PortRange(30000, 30000)
        assert list(PortRange(30001, 30006).even_ports()) == [30002, 30004]

    def test_range_text(self) -> None:
        """The option text '20000-20999' parses; anything else names what was expected."""
        assert port_range_of("20000-20999") == PortRange(20000, 20999)
        with pytest.raises(ValueError, match="such as 20000-20999, got '20000'"):
            port_range_of("20000")

    def test_round_robin_order(self) -> None:
        """Candidates start after the last port handed out and skip ports in use."""
        assert candidates(PortRange(30000, 30009), 30004, {30008}) == [30006, 30000, 30002, 30004]
        assert candidates(PortRange(30000, 30009), None, set()) == [
            30000,
            30002,
            30004,
            30006,
            30008,
        ]

    def test_concurrent_binds_never_collide(self) -> None:
        """Sockets held at once get distinct even ports; release makes a port reusable."""
        low = _free_even_port()
        port_range = PortRange(low, min(65535, low + 41))
        allocator = PortAllocator()
        socks = [allocator.bind("127.0.0.1", port_range) for _ in range(5)]
        try:
            ports = [s.getsockname()[1] for s in socks]
            assert len(set(ports)) == 5
            assert all(p % 2 == 0 for p in ports)
            assert allocator.in_use() == frozenset(ports)
        finally:
            for sock in socks:
                allocator.release(sock)
        assert allocator.in_use() == frozenset()

    def test_port_held_elsewhere_is_skipped_and_exhaustion_is_reported(self) -> None:
        """A port bound by another socket is skipped; with none left the error names the range."""
        low = _free_even_port()
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", low))
        allocator = PortAllocator()
        try:
            sock = allocator.bind("127.0.0.1", PortRange(low, low + 3))
            assert sock.getsockname()[1] == low + 2
            with pytest.raises(PortsExhausted, match=f"no free RTP port in {low}-{low + 3}"):
                allocator.bind("127.0.0.1", PortRange(low, low + 3))
            allocator.release(sock)
        finally:
            other.close()


class _LossyRelay(asyncio.DatagramProtocol):
    """A loopback relay between two sessions that drops every ``drop_every``-th packet a->b."""

    def __init__(self, a: tuple[str, int], b: tuple[str, int], drop_every: int) -> None:
        self.a, self.b, self.drop_every = a, b, drop_every
        self.seen = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self.transport is not None
        if addr[:2] == self.a:
            self.seen += 1
            if self.seen % self.drop_every:
                self.transport.sendto(data, self.b)
        else:
            self.transport.sendto(data, self.a)


class TestMediaSession:
    async def test_loss_dtmf_and_voice_through_a_lossy_relay(self) -> None:
        """Session A -> relay dropping 1 in 10 -> session B: B measures ~10 % loss, sees the
        digits and the tone; the relay's packets count as media, not stray."""
        low = _free_even_port()
        allocator = PortAllocator()
        port_range = PortRange(low, low + 9)
        sock_a = allocator.bind("127.0.0.1", port_range)
        sock_b = allocator.bind("127.0.0.1", port_range)
        loop = asyncio.get_running_loop()
        addr_a, addr_b = sock_a.getsockname(), sock_b.getsockname()
        relay_transport, relay = await loop.create_datagram_endpoint(
            lambda: _LossyRelay(addr_a, addr_b, 10), local_addr=("127.0.0.1", 0)
        )
        relay_addr = relay_transport.get_extra_info("sockname")
        plan = MediaPlan(
            remote=relay_addr, codec=Codec.PCMA, payload_type=8, telephone_event_pt=101
        )
        a = await MediaSession.start(sock_a, dataclasses.replace(plan, tone_hz=440))
        b = await MediaSession.start(sock_b, plan)
        try:
            await asyncio.sleep(0.3)
            await a.press("5#", tone_seconds=0.06, gap_seconds=0.06)
            assert await b.wait_for_voice(time.monotonic(), 1.0)
            await asyncio.sleep(0.4)
        finally:
            report_a, report_b = await a.stop(), await b.stop()
            relay_transport.close()
            allocator.release(sock_a)
            allocator.release(sock_b)
        summary = report_b.summary
        assert summary.expected >= 40
        assert 0.06 <= summary.loss_ratio <= 0.14, summary
        assert report_b.digits_received == "5#"
        assert report_b.voiced_frames > 10
        assert report_b.stray_packets == 0
        assert report_a.digits_sent == "5#"
        assert report_a.voiced_frames == 0  # B sends silence
        assert relay.seen >= report_a.packets_sent - 2

    async def test_press_without_telephone_event(self) -> None:
        """Pressing keys when the answer declined telephone-event is refused with why."""
        allocator = PortAllocator()
        low = _free_even_port()
        sock = allocator.bind("127.0.0.1", PortRange(low, low + 3))
        session = await MediaSession.start(
            sock, MediaPlan(("127.0.0.1", 9), Codec.PCMU, 0, telephone_event_pt=None)
        )
        try:
            with pytest.raises(ValueError, match="did not accept telephone-event"):
                await session.press("1")
        finally:
            await session.stop()
            allocator.release(sock)


class TestOptions:
    def test_defaults(self) -> None:
        """A bare URI gets 200 expected, PCMU then PCMA, 20 s answer timeout, port 5060."""
        opts = SipCallOptions.model_validate({"uri": "sip:ivr@192.0.2.1"})
        assert opts.expected_codes == (200,)
        assert [c.value for c in opts.codecs] == ["PCMU", "PCMA"]
        assert (opts.answer_timeout, opts.destination()) == (20.0, ("192.0.2.1", 5060))

    def test_durations_and_steps(self) -> None:
        """Durations take 2s/500ms; DTMF steps validate their keys."""
        opts = SipCallOptions.model_validate(
            {
                "uri": "sip:ivr@[::1]:5070",
                "dtmf": [{"digits": "1#", "pause": "500ms", "expect_audio_within": "3s"}],
            }
        )
        assert opts.dtmf[0].pause == 0.5
        assert opts.dtmf[0].expect_audio_within == 3.0
        assert opts.destination() == ("::1", 5070)

    @pytest.mark.parametrize(
        ("patch", "message"),
        [
            ({"uri": "tel:+4420"}, "expected a SIP URI such as"),
            ({"expected_codes": [180]}, "final status code 200..699 or a class like 2xx, got 180"),
            ({"expected_codes": []}, "at least one final status code"),
            ({"codecs": ["PCMU", "PCMU"]}, "each once"),
            ({"codecs": ["G729"]}, "PCMU"),
            ({"dtmf": [{"digits": "1x"}]}, "character 2 'x' of '1x' is not a DTMF key"),
            ({"rtp_ports": "20000:20999"}, "such as 20000-20999"),
            ({"rtp_ports": "80-90"}, "1024 <= low"),
            ({"media": {"max_loss_ratio": 2}}, "less than or equal to 1"),
            ({"answer_timeout": "soon"}, "expected a duration"),
            ({"colour": "blue"}, "Extra inputs are not permitted"),
        ],
    )
    def test_bad_options_name_the_field(self, patch: dict[str, Any], message: str) -> None:
        """Each invalid option fails validation with the value and what was expected."""
        with pytest.raises(ValidationError, match=message):
            SipCallOptions.model_validate({"uri": "sip:ivr@192.0.2.1", **patch})

    def test_longest_call(self) -> None:
        """The worst case adds answer timeout, the longer of duration and steps, and 1 s."""
        opts = SipCallOptions.model_validate(
            {
                "uri": "sip:ivr@192.0.2.1",
                "answer_timeout": "20s",
                "duration": "5s",
                "dtmf": [{"digits": "12", "pause": "3s", "expect_audio_within": "4s"}],
            }
        )
        assert opts.longest_call_seconds() == pytest.approx(20 + (3 + 2 * 0.2 + 4) + 1)

    def test_registered(self) -> None:
        """The kind is in the registry with this options model and function."""
        kind = PROBE_KINDS["sip_call"]
        assert (kind.options, kind.run) == (SipCallOptions, probe)


def _record(**fields: Any) -> CallRecord:
    base: dict[str, Any] = {
        "call_id": "c1",
        "status": 200,
        "status_reason": "OK",
        "answer_seconds": 0.01,
        "post_dial_delay": 0.005,
        "codec": "PCMU",
        "bye_sent": True,
        "bye_status": 200,
    }
    base.update(fields)
    return CallRecord(**base)


def _media(
    received: int = 50, expected: int = 50, jitter: float = 0.001, voiced: int = 50, **fields: Any
) -> MediaReport:
    values: dict[str, Any] = {
        "packets_sent": 50,
        "summary": StreamSummary(received, expected, jitter),
        "stray_packets": 0,
        "malformed_packets": 0,
        "voiced_frames": voiced,
        "first_packet_seconds": 0.01,
        "digits_sent": "",
        "digits_received": "",
    }
    values.update(fields)
    return MediaReport(**values)


class TestJudge:
    OPTS = SipCallOptions.model_validate({"uri": "sip:ivr@192.0.2.1", "require_audio": True})

    def test_good_call_is_up_with_evidence(self) -> None:
        """A clean answered call is up and carries the metric details and phases."""
        outcome, reason, phases, details = judge(_record(media=_media()), self.OPTS)
        assert (outcome, reason) == (Outcome.UP, "")
        assert phases == {"post_dial_delay": 0.005, "answer": 0.01}
        assert details["sip_status"] == 200
        assert details["rtp_packets_received"] == details["rtp_packets_expected"] == 50
        assert details["rtp_loss_ratio"] == 0.0
        assert isinstance(details["mos"], float)
        assert details["mos"] > 4.3

    @pytest.mark.parametrize(
        ("record", "reason"),
        [
            (_record(media=_media(received=0, expected=0, voiced=0)), "no_rtp"),
            (_record(media=_media(received=5, expected=5)), "no_rtp"),
            (_record(media=_media(received=45, expected=50)), "rtp_loss"),
            (_record(media=_media(voiced=2)), "silence"),
            (_record(media=_media(), step_voice=(True, False)), "silence_after_dtmf"),
            (_record(media=None), "no_rtp"),
        ],
    )
    def test_media_failures(self, record: CallRecord, reason: str) -> None:
        """Each media shortfall gives its own reason and a down outcome."""
        assert judge(record, self.OPTS)[:2] == (Outcome.DOWN, reason)

    def test_jitter_and_mos_thresholds(self) -> None:
        """max_jitter and min_mos fail the call only when set and exceeded."""
        jittery = _record(media=_media(jitter=0.05))
        assert judge(jittery, self.OPTS)[1] == ""
        strict = self.OPTS.model_copy(
            update={"media": self.OPTS.media.model_copy(update={"max_jitter": 0.02})}
        )
        assert judge(jittery, strict)[1] == "rtp_jitter"
        picky = self.OPTS.model_copy(
            update={
                "media": self.OPTS.media.model_copy(update={"min_mos": 4.45, "max_loss_ratio": 1.0})
            }
        )
        assert judge(_record(media=_media(received=49, expected=50)), picky)[1] == "low_mos"

    @pytest.mark.parametrize(
        ("status", "reason"),
        [
            (486, "rejected_486"),
            (603, "rejected_603"),
            (503, "status_code_503"),
            (302, "redirect_302"),
            (404, "rejected_404"),
        ],
    )
    def test_unexpected_final_codes(self, status: int, reason: str) -> None:
        """A final code not in expected_codes is down with a reason naming it."""
        record = _record(status=status, status_reason="x", media=None, bye_sent=False)
        assert judge(record, self.OPTS)[:2] == (Outcome.DOWN, reason)

    def test_expected_busy_is_up(self) -> None:
        """A line that should be busy (expected_codes [486]) is up when it is, without media."""
        opts = self.OPTS.model_copy(update={"expected_codes": (486,)})
        assert judge(_record(status=486, media=None), opts)[:2] == (Outcome.UP, "")
        assert judge(_record(media=_media()), opts)[:2] == (Outcome.DOWN, "status_code_200")

    def test_setup_failures(self) -> None:
        """Setup failures keep their token; a timeout is TIMEOUT, port exhaustion is ERROR."""
        no_answer = _record(status=None, failure="no_answer", cancel_sent=True)
        outcome, reason, _, details = judge(no_answer, self.OPTS)
        assert (outcome, reason, details["cancel_sent"]) == (Outcome.DOWN, "no_answer", True)
        timeout = _record(status=None, failure="timeout", timed_out=True)
        assert judge(timeout, self.OPTS)[:2] == (Outcome.TIMEOUT, "timeout")
        ports = _record(status=None, failure="rtp_ports_exhausted")
        assert judge(ports, self.OPTS)[:2] == (Outcome.ERROR, "rtp_ports_exhausted")

    def test_redirect_contact_is_evidence(self) -> None:
        """A 3xx keeps the Contact it pointed to in the details."""
        record = _record(status=302, redirect_contact="sip:other@192.0.2.9", media=None)
        assert judge(record, self.OPTS)[3]["redirect_contact"] == "sip:other@192.0.2.9"


@pytest.mark.peers
class TestCallsToBaresip:
    async def test_echo_call_measures_media_exactly(self, baresip_echo: BaresipPeer) -> None:
        """Echo peer: up, no loss, DTMF delivered to and relayed back by the peer, BYE 200."""
        caller = _unique_from()
        result = await _call(
            baresip_echo.uri,
            from_uri=caller,
            send_tone_hz=1000,
            dtmf=[{"digits": "12", "pause": "200ms"}],
        )
        assert (result.outcome, result.reason) == (Outcome.UP, ""), result.details
        details = result.details
        assert details["sip_status"] == 200
        assert details["bye_status"] == 200
        received = details["rtp_packets_received"]
        assert isinstance(received, int)
        assert received >= 40
        assert details["rtp_loss_ratio"] == 0.0
        assert details["rtp_packets_expected"] == received
        assert (details["dtmf_sent"], details["dtmf_received"]) == ("12", "12")
        assert isinstance(details["mos"], float)
        assert details["mos"] > 4.3
        assert 0 < result.phases["answer"] < 1.0
        # The echo module takes the call's DTMF itself (no CALL_DTMF_START); "12" came back.
        assert await _hung_up_in_log(baresip_echo, caller)

    async def test_sine_callee_has_audio_before_and_after_dtmf(
        self, baresip_sine: BaresipPeer
    ) -> None:
        """A callee playing a tone passes require_audio and the after-DTMF prompt check."""
        result = await _call(
            baresip_sine.uri,
            require_audio=True,
            dtmf=[{"digits": "5", "pause": "100ms", "expect_audio_within": "1s"}],
        )
        assert (result.outcome, result.reason) == (Outcome.UP, ""), result.details
        assert result.details["audio_steps"] == "ok"
        seen = await _wait_events(baresip_sine, result.details["call_id"], "CALL_DTMF_START")
        assert [e["param"] for e in seen] == ["5"]
        assert "post_dial_delay" in result.phases  # baresip rings (180) before answering

    async def test_silent_callee_fails_require_audio(self, baresip_silent: BaresipPeer) -> None:
        """Answered with digital silence: down with reason silence, media itself fine."""
        result = await _call(baresip_silent.uri, require_audio=True)
        assert (result.outcome, result.reason) == (Outcome.DOWN, "silence"), result.details
        assert result.details["rtp_voiced_frames"] == 0
        assert result.details["rtp_loss_ratio"] == 0.0

    async def test_silent_callee_fails_the_prompt_after_dtmf(
        self, baresip_silent: BaresipPeer
    ) -> None:
        """No prompt within expect_audio_within after a key press: silence_after_dtmf."""
        result = await _call(
            baresip_silent.uri,
            dtmf=[{"digits": "1", "pause": "0s", "expect_audio_within": "300ms"}],
        )
        assert (result.outcome, result.reason) == (Outcome.DOWN, "silence_after_dtmf")
        assert result.details["audio_steps"] == "silent"

    async def test_unanswered_call_is_cancelled(self, baresip_manual: BaresipPeer) -> None:
        """A callee that rings forever: no_answer after answer_timeout, CANCEL seen by the peer."""
        result = await _call(baresip_manual.uri, answer_timeout="500ms")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "no_answer"), result.details
        assert result.details["cancel_sent"] is True
        assert result.details["sip_status"] == 487  # the INVITE's answer to our CANCEL
        assert 0.4 < result.duration_seconds < 2.0
        call_id = result.details["call_id"]
        assert await _wait_events(baresip_manual, call_id, "CALL_INCOMING")
        assert await _wait_events(baresip_manual, call_id, "CALL_CLOSED")

    async def test_cancelled_probe_still_hangs_up(self, baresip_echo: BaresipPeer) -> None:
        """The runner cancelling the probe mid-call still sends BYE (shielded teardown)."""
        caller = _unique_from()
        opts = SipCallOptions.model_validate(
            {"uri": baresip_echo.uri, "bind": "127.0.0.1", "duration": "10s", "from_uri": caller}
        )
        since = len(baresip_echo.events.snapshot())
        task = asyncio.create_task(probe(opts, ProbeContext.starting_now("call", 15)))
        for _ in range(100):
            if baresip_echo.events.of_type("CALL_RTPESTAB", since):
                break
            await asyncio.sleep(0.02)
        assert baresip_echo.events.of_type("CALL_RTPESTAB", since)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        if teardowns := pending_teardowns():
            await asyncio.wait(teardowns, timeout=5)
        assert await _hung_up_in_log(baresip_echo, caller), baresip_echo.log_text()[-1500:]

    async def test_our_rtp_keeps_the_call_up(self, baresip_strict: BaresipPeer) -> None:
        """A callee that hangs up after 1 s without RTP stays in a 2.5 s call: we send."""
        result = await _call(baresip_strict.uri, duration="2500ms")
        assert (result.outcome, result.reason) == (Outcome.UP, ""), result.details
        sent = result.details["rtp_packets_sent"]
        assert isinstance(sent, int)
        assert sent >= 120  # 2.5 s of 20 ms frames
        assert result.details["bye_status"] == 200

    async def test_call_over_tcp(self, baresip_echo: BaresipPeer) -> None:
        """The same call with SIP over TCP: up, BYE answered."""
        result = await _call(baresip_echo.uri, transport="tcp")
        assert (result.outcome, result.reason) == (Outcome.UP, ""), result.details
        assert result.details["bye_status"] == 200

    async def test_concurrent_calls_share_the_process_port_range(
        self, baresip_echo: BaresipPeer
    ) -> None:
        """Three calls at once on a range with two RTP ports: two run, one is a local error."""
        low = _free_even_port()
        results = await asyncio.gather(
            *(_call(baresip_echo.uri, rtp_ports=f"{low}-{low + 3}") for _ in range(3))
        )
        outcomes = sorted((r.outcome.value, r.reason) for r in results)
        assert outcomes == [("error", "rtp_ports_exhausted"), ("up", ""), ("up", "")], outcomes

    async def test_stray_rtp_is_ignored_and_counted(self, baresip_echo: BaresipPeer) -> None:
        """RTP from another source to our port is counted as stray, not as received media."""
        low = _free_even_port()
        intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        intruder.bind(("127.0.0.1", 0))
        junk = bytes([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9]) + b"\x00" * 160

        async def spray() -> None:
            for _ in range(40):
                intruder.sendto(junk, ("127.0.0.1", low))
                await asyncio.sleep(0.02)

        try:
            sprayer = asyncio.create_task(spray())
            result = await _call(baresip_echo.uri, rtp_ports=f"{low}-{low + 1}")
            await sprayer
        finally:
            intruder.close()
        assert result.outcome is Outcome.UP, result.details
        stray = result.details["rtp_stray_packets"]
        assert isinstance(stray, int)
        assert stray > 0
        assert result.details["rtp_loss_ratio"] == 0.0


@pytest.mark.peers
class TestCallsToKamailio:
    async def test_busy_is_rejected_486(self, kamailio: KamailioPeer) -> None:
        """Kamailio answers INVITE to 'busy' with 486: down, rejected_486, no CANCEL or BYE."""
        result = await _call(kamailio.uri("busy"))
        assert (result.outcome, result.reason) == (Outcome.DOWN, "rejected_486")
        assert (result.details["sip_status"], result.details["sip_reason"]) == (486, "Busy Here")
        assert "answer_seconds" not in result.details
        assert isinstance(result.details["final_response_seconds"], float)
        assert result.details["cancel_sent"] is False
        assert result.details["bye_sent"] is False

    async def test_server_error_reason(self, kamailio: KamailioPeer) -> None:
        """A 5xx final (Kamailio's 501 for other INVITEs) is status_code_501."""
        result = await _call(kamailio.uri("nobody"))
        assert (result.outcome, result.reason) == (Outcome.DOWN, "status_code_501")

    async def test_nothing_listening(self) -> None:
        """A closed UDP port: the ICMP error ends the call at once as connection_refused."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        result = await _call(f"sip:ivr@127.0.0.1:{port}")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "connection_refused")
        assert result.duration_seconds < 2.0


@pytest.mark.peers
class TestCallsToSipp:
    async def test_digest_challenge_is_answered(
        self, sipp_digest_busy: SippPeer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """401 on INVITE: the retry carries valid digest credentials (SIPp verifies them)."""
        monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", SIPP_PASSWORD)
        auth = {"username": SIPP_USER, "password": {"env": "SLAWATCH_TEST_SIP_PASSWORD"}}
        result = await _call(sipp_digest_busy.uri(), auth=auth, expected_codes=[486])
        assert (result.outcome, result.reason) == (Outcome.UP, ""), result.details
        assert (result.details["sip_status"], result.details["auth_rounds"]) == (486, 1)

    async def test_wrong_password_is_refused(
        self, sipp_digest_busy: SippPeer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A wrong password gets the peer's 403: rejected_403."""
        monkeypatch.setenv("SLAWATCH_TEST_SIP_PASSWORD", "wrong")
        auth = {"username": SIPP_USER, "password": {"env": "SLAWATCH_TEST_SIP_PASSWORD"}}
        result = await _call(sipp_digest_busy.uri(), auth=auth, expected_codes=[486])
        assert (result.outcome, result.reason) == (Outcome.DOWN, "rejected_403")

    async def test_challenge_without_credentials(self, sipp_digest_busy: SippPeer) -> None:
        """A challenge with no auth configured is auth_required."""
        result = await _call(sipp_digest_busy.uri())
        assert (result.outcome, result.reason) == (Outcome.DOWN, "auth_required")
        assert result.details["sip_status"] == 401
        assert result.details["cancel_sent"] is False

    async def test_missing_secret_is_a_local_error(self, sipp_digest_busy: SippPeer) -> None:
        """An unset password variable is the monitor's problem: error, secret_unavailable."""
        auth = {"username": SIPP_USER, "password": {"env": "SLAWATCH_TEST_UNSET_VARIABLE"}}
        result = await _call(sipp_digest_busy.uri(), auth=auth)
        assert (result.outcome, result.reason) == (Outcome.ERROR, "secret_unavailable")

    async def test_redirect_names_the_contact(self, sipp_redirect: SippPeer) -> None:
        """302: down with redirect_302 and the Contact it pointed to kept as evidence."""
        result = await _call(sipp_redirect.uri())
        assert (result.outcome, result.reason) == (Outcome.DOWN, "redirect_302")
        assert "answer_seconds" not in result.details
        assert isinstance(result.details["final_response_seconds"], float)
        assert result.details["redirect_contact"] == "sip:elsewhere@127.0.0.1:5999"

    async def test_answered_without_media(self, sipp_no_media: SippPeer) -> None:
        """200 with a valid SDP answer but no RTP (dead air): no_rtp, and the call is ended."""
        result = await _call(sipp_no_media.uri())
        assert (result.outcome, result.reason) == (Outcome.DOWN, "no_rtp"), result.details
        assert (result.details["rtp_packets_received"], result.details["bye_status"]) == (0, 200)
        assert "mos" not in result.details

    async def test_rejected_stream_is_bad_sdp(self, sipp_bad_sdp: SippPeer) -> None:
        """200 whose SDP has m=audio port 0: bad_sdp, ACK and BYE still sent."""
        result = await _call(sipp_bad_sdp.uri())
        assert (result.outcome, result.reason) == (Outcome.DOWN, "bad_sdp"), result.details
        assert "port 0" in str(result.details["error"])
        assert result.details["bye_status"] == 200

    async def test_callee_hangs_up(self, sipp_hangup: SippPeer) -> None:
        """The callee sends BYE mid-call: remote_hangup, answered 200, no BYE of ours."""
        result = await _call(sipp_hangup.uri(), duration="3s")
        assert (result.outcome, result.reason) == (Outcome.DOWN, "remote_hangup"), result.details
        assert result.details["bye_sent"] is False
        assert result.duration_seconds < 2.0


class TestCallsToNobody:
    async def test_black_hole_times_out(self) -> None:
        """A peer that never answers: timeout within answer_timeout, no CANCEL possible."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hole:
            hole.bind(("127.0.0.1", 0))
            port = hole.getsockname()[1]
            result = await _call(f"sip:ivr@127.0.0.1:{port}", answer_timeout="600ms")
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout")
        assert result.details["cancel_sent"] is False
        assert 0.5 < result.duration_seconds < 2.5

    async def test_probe_deadline_bounds_the_call(self, baresip_echo: BaresipPeer) -> None:
        """A call longer than the target's timeout ends at the probe's own deadline with BYE."""
        result = await _call(baresip_echo.uri, budget=2.0, duration="10s")
        assert (result.outcome, result.reason) == (Outcome.TIMEOUT, "timeout")
        assert result.details["bye_status"] == 200
        assert result.duration_seconds < 2.0
