"""The RTP side of a test call: send 20 ms frames and DTMF, receive and measure.

This is the I/O edge around the pure modules (``rtp``, ``dtmf``, ``audio``). One
``MediaSession`` per call owns one UDP socket from the port allocator. It sends a frame every
packet interval on a drift-free schedule (a peer's ``rtp_timeout`` hangs up on a caller that
goes quiet, and a real phone never does), replacing audio frames with RFC 4733 events while a
key is pressed. It receives only from the address and port of the SDP answer; anything else
is counted as stray and dropped, so a second stream cannot inflate the figures.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import random
import socket
import time
from dataclasses import dataclass, replace
from typing import cast

from probes.sip import audio, dtmf, rtcp, rtp
from probes.sip.audio import Codec
from probes.sip.rtp import ReceiveStats, RtpError, RtpPacket
from probes.sip.srtp import SrtpContext, SrtpError

MIN_VOICED_FRAMES = 5
"""Frames above the silence threshold that make "audio heard" (100 ms at 20 ms): a click or
one comfort-noise burst is not a prompt."""


@dataclass(frozen=True, slots=True)
class MediaPlan:
    """What the SDP answer settled plus what we send."""

    remote: tuple[str, int]
    codec: Codec
    payload_type: int
    telephone_event_pt: int | None
    packet_seconds: float = 0.02
    tone_hz: float | None = None
    tone_amplitude: int = 8000
    silence_threshold_dbov: float = audio.DEFAULT_SILENCE_THRESHOLD_DBOV
    srtp: SrtpContext | None = None
    """With SRTP (RFC 4568 keys from the SDP) every packet is protected and checked."""
    rtcp_port: int | None = None
    """The peer's RTCP port from ``a=rtcp`` (RFC 3605); None: its RTP port + 1."""
    rtcp_interval: float = 2.0
    """Seconds between our reports. RFC 3550's 5 s minimum suits long sessions; a probe's
    call lasts seconds and needs a report early to get the peer's LSR/DLSR back in time."""

    @property
    def samples_per_packet(self) -> int:
        return round(8000 * self.packet_seconds)


@dataclass(frozen=True, slots=True)
class MediaReport:
    """What one call's media looked like, as evidence."""

    packets_sent: int
    summary: rtp.StreamSummary
    stray_packets: int
    malformed_packets: int
    voiced_frames: int
    first_packet_seconds: float | None
    digits_sent: str
    digits_received: str
    srtp_failures: int = 0
    """Packets from the peer's address that failed SRTP authentication (wrong keys)."""
    rtcp: RtcpFigures | None = None
    """What RTCP showed (None when no RTCP port could be bound)."""


@dataclass(frozen=True, slots=True)
class RtcpFigures:
    """Our RTCP exchange: reports each way, round-trip times, the peer's view of our stream."""

    sent: int
    received: int
    malformed: int
    rtt_seconds: tuple[float, ...]
    remote_fraction_lost: float | None
    remote_cumulative_lost: int | None
    remote_jitter_seconds: float | None

    @property
    def rtt_mean(self) -> float | None:
        return sum(self.rtt_seconds) / len(self.rtt_seconds) if self.rtt_seconds else None


class _RtcpProtocol(asyncio.DatagramProtocol):
    def __init__(self, session: MediaSession) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.session._rtcp_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        return None  # the peer's RTCP port is closed: no reports, which the figures show


@functools.lru_cache(maxsize=16)
def _tone_second(hz: float, amplitude: int, codec: Codec, step: int) -> bytes:
    # One second of encoded tone plus one frame of wrap-around: an integer-Hz tone repeats
    # every second, so each frame is a slice and no sample is computed per packet.
    return audio.encode(audio.tone(hz, amplitude, 8000 + step), codec)


class MediaSession(asyncio.DatagramProtocol):
    """Sends and receives one call's RTP over a socket the caller bound (and releases)."""

    def __init__(self, plan: MediaPlan) -> None:
        self.plan = plan
        self._transport: asyncio.DatagramTransport | None = None
        self._sources: dict[int, ReceiveStats] = {}
        self._origin = time.monotonic()
        self._stray = 0
        self._malformed = 0
        self._srtp_failures = 0
        self._voiced = 0
        self._voiced_at: collections.deque[float] = collections.deque(maxlen=MIN_VOICED_FRAMES)
        self._voice_event = asyncio.Event()
        self._first_packet: float | None = None
        self.first_voice_at: float | None = None
        """When (monotonic) the first voiced frame arrived: the post-dial delay to audio."""
        self._digits_in = dtmf.ReceivedDigits()
        self._digits_out = ""
        self._seq = random.getrandbits(16)
        self._timestamp = random.getrandbits(32)
        self._ssrc = random.getrandbits(32)
        self._sent = 0
        self._pending: collections.deque[tuple[list[dtmf.EventPacket], asyncio.Future[None]]] = (
            collections.deque()
        )
        self._sender: asyncio.Task[None] | None = None
        self._octets = 0
        self._rtcp_transport: asyncio.DatagramTransport | None = None
        self._rtcp_task: asyncio.Task[None] | None = None
        self._rtcp_sent = 0
        self._rtcp_in = 0
        self._rtcp_malformed = 0
        self._rtt: list[float] = []
        self._peer_sr: dict[int, tuple[int, float]] = {}  # ssrc -> (LSR, monotonic arrival)
        self._prior: dict[int, tuple[int, int]] = {}  # ssrc -> (expected, received) last report
        self._remote_block: rtcp.ReportBlock | None = None

    @classmethod
    async def start(
        cls, sock: socket.socket, plan: MediaPlan, rtcp_sock: socket.socket | None = None
    ) -> MediaSession:
        """Attach to the bound socket(s) and start sending RTP (and RTCP on ``rtcp_sock``)."""
        loop = asyncio.get_running_loop()
        session = cls(plan)
        await loop.create_datagram_endpoint(lambda: session, sock=sock)
        session._sender = asyncio.create_task(session._send_loop(), name="rtp-sender")
        if rtcp_sock is not None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _RtcpProtocol(session), sock=rtcp_sock
            )
            session._rtcp_transport = transport
            session._rtcp_task = asyncio.create_task(session._rtcp_loop(), name="rtcp-sender")
        return session

    # -- RTCP --------------------------------------------------------------------------------

    @property
    def rtcp_remote(self) -> tuple[str, int]:
        """The peer's RTCP address: ``a=rtcp``'s port, else its RTP port + 1 (RFC 3550 §11;
        no a=rtcp-mux is offered)."""
        host, port = self.plan.remote
        return host, self.plan.rtcp_port or port + 1

    def _rtcp_datagram(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if addr[0] != self.plan.remote[0]:
            return
        try:
            if self.plan.srtp is not None:
                data = self.plan.srtp.unprotect_rtcp(data)
            reports = rtcp.parse_compound(data)
        except (SrtpError, rtcp.RtcpError):
            self._rtcp_malformed += 1
            return
        self._rtcp_in += 1
        arrival = rtcp.ntp_middle(rtcp.ntp_from_unix(time.time()))
        for report in reports:
            if report.sender is not None:
                self._peer_sr[report.ssrc] = (rtcp.ntp_middle(report.sender.ntp), time.monotonic())
            for block in report.blocks:
                if block.ssrc != self._ssrc:
                    continue
                self._remote_block = block
                rtt = rtcp.round_trip(arrival, block)
                if rtt is not None and rtt < 60.0:
                    self._rtt.append(rtt)

    def _report_now(self) -> bytes:
        blocks = []
        main = max(self._sources.items(), key=lambda item: item[1].received, default=None)
        if main is not None:
            source, stats = main
            expected_prior, received_prior = self._prior.get(source, (0, 0))
            expected_interval = stats.expected - expected_prior
            lost_interval = expected_interval - (stats.received - received_prior)
            fraction = (
                0 if expected_interval <= 0 or lost_interval <= 0
                else (lost_interval << 8) // expected_interval
            )  # fmt: skip
            self._prior[source] = (stats.expected, stats.received)
            lsr, held_since = self._peer_sr.get(source, (0, 0.0))
            dlsr = int((time.monotonic() - held_since) * 65536) if lsr else 0
            blocks.append(
                rtcp.ReportBlock(
                    source, fraction, stats.lost, stats.extended_max, int(stats.jitter), lsr, dlsr
                )
            )
        step = self.plan.samples_per_packet
        sender = rtcp.SenderInfo(
            ntp=rtcp.ntp_from_unix(time.time()),
            rtp_timestamp=(self._timestamp + self._sent * step) % rtp.TS_MOD,
            packets=self._sent,
            octets=self._octets,
        )
        packet = rtcp.build_report(self._ssrc, sender, tuple(blocks), "slawatch@probe")
        return self.plan.srtp.protect_rtcp(packet) if self.plan.srtp is not None else packet

    def _send_report(self) -> None:
        transport = self._rtcp_transport
        if transport is None or transport.is_closing():
            return
        transport.sendto(self._report_now(), self.rtcp_remote)
        self._rtcp_sent += 1

    async def _rtcp_loop(self) -> None:
        # The first report early (after a few packets went out) so that the peer's next
        # report can carry our LSR; then at the plan's interval.
        await asyncio.sleep(min(0.5, self.plan.rtcp_interval))
        while True:
            self._send_report()
            await asyncio.sleep(self.plan.rtcp_interval * random.uniform(0.5, 1.5))

    def rtcp_figures(self) -> RtcpFigures | None:
        if self._rtcp_transport is None:
            return None
        block = self._remote_block
        return RtcpFigures(
            sent=self._rtcp_sent,
            received=self._rtcp_in,
            malformed=self._rtcp_malformed,
            rtt_seconds=tuple(self._rtt),
            remote_fraction_lost=None if block is None else block.fraction_lost / 256.0,
            remote_cumulative_lost=None if block is None else block.cumulative_lost,
            remote_jitter_seconds=None if block is None else block.jitter / 8000.0,
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)

    # -- receiving ---------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if (addr[0], addr[1]) != self.plan.remote:
            self._stray += 1
            return
        if self.plan.srtp is not None:
            try:
                data = self.plan.srtp.unprotect(data)
            except SrtpError:
                self._srtp_failures += 1
                return
        try:
            packet = rtp.parse_rtp(data)
        except RtpError:
            self._malformed += 1
            return
        now = time.monotonic()
        if self._first_packet is None:
            self._first_packet = now - self._origin
        stats = self._sources.get(packet.ssrc)
        stats = (
            rtp.first_packet(packet.sequence)
            if stats is None
            else (rtp.update_sequence(stats, packet.sequence))
        )
        plan = self.plan
        if packet.payload_type == plan.payload_type:
            # Jitter only over audio: events reuse their start timestamp for ~100 ms.
            stats = rtp.update_jitter(stats, packet.timestamp, (now - self._origin) * 8000)
            level = audio.payload_dbov(packet.payload, plan.codec)
            if not audio.is_silence(level, plan.silence_threshold_dbov):
                if self.first_voice_at is None:
                    self.first_voice_at = now
                self._voiced += 1
                self._voiced_at.append(now)
                if len(self._voiced_at) == MIN_VOICED_FRAMES:
                    self._voice_event.set()
        elif packet.payload_type == plan.telephone_event_pt:
            try:
                self._digits_in = dtmf.note_event(self._digits_in, packet.timestamp, packet.payload)
            except ValueError:
                self._malformed += 1
        self._sources[packet.ssrc] = stats

    @property
    def voiced_frames(self) -> int:
        """Voiced frames received so far (early media counts them before the answer)."""
        return self._voiced

    def retarget(
        self,
        remote: tuple[str, int],
        codec: Codec,
        payload_type: int,
        telephone_event_pt: int | None,
        srtp: SrtpContext | None = None,
        rtcp_port: int | None = None,
    ) -> None:
        """Follow a new SDP answer (the 200 after early media, a re-INVITE): send to and accept
        from ``remote`` with the payload types it settled; the counters carry on."""
        self.plan = replace(
            self.plan,
            remote=remote,
            codec=codec,
            payload_type=payload_type,
            telephone_event_pt=telephone_event_pt,
            srtp=srtp if srtp is not None else self.plan.srtp,
            rtcp_port=rtcp_port,
        )

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable for our RTP: the peer's media port is closed. The missing
        # packets already show up as loss; nothing else to do.
        return None

    async def wait_for_voice(self, since: float, within: float) -> bool:
        """Whether ``MIN_VOICED_FRAMES`` voiced frames arrive after ``since`` (monotonic)
        within ``within`` seconds from now."""
        deadline = time.monotonic() + within
        while True:
            if len(self._voiced_at) == MIN_VOICED_FRAMES and self._voiced_at[0] >= since:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._voice_event.clear()
            try:
                await asyncio.wait_for(self._voice_event.wait(), remaining)
            except TimeoutError:
                return len(self._voiced_at) == MIN_VOICED_FRAMES and self._voiced_at[0] >= since

    # -- sending -----------------------------------------------------------------------------

    async def press(
        self, digits: str, *, tone_seconds: float = 0.1, gap_seconds: float = 0.1
    ) -> None:
        """Send each digit as an RFC 4733 event in place of audio, with a gap between keys."""
        if self.plan.telephone_event_pt is None:
            raise ValueError("the callee did not accept telephone-event; DTMF cannot be sent")
        loop = asyncio.get_running_loop()
        for index, digit in enumerate(digits):
            packets = list(
                dtmf.key_press(
                    digit, tone_seconds=tone_seconds, packet_seconds=self.plan.packet_seconds
                )
            )
            done: asyncio.Future[None] = loop.create_future()
            self._pending.append((packets, done))
            await done
            self._digits_out += digit
            if index + 1 < len(digits):
                await asyncio.sleep(gap_seconds)

    async def _send_loop(self) -> None:
        plan = self.plan
        step = plan.samples_per_packet
        silence = bytes([plan.codec.silence_byte]) * step
        tone = (
            None
            if plan.tone_hz is None
            else _tone_second(plan.tone_hz, plan.tone_amplitude, plan.codec, step)
        )
        start = time.monotonic()
        tick = 0
        event_ts: int | None = None
        while True:
            packets: list[RtpPacket] = []
            timestamp = (self._timestamp + tick * step) % rtp.TS_MOD
            if self._pending:
                queue, done = self._pending[0]
                if event_ts is None:
                    event_ts = timestamp
                group = [queue.pop(0)]
                # The end packets go out together: they repeat the same information.
                while group[0].payload[1] & 0x80 and queue:
                    group.append(queue.pop(0))
                assert plan.telephone_event_pt is not None
                for event in group:
                    packets.append(
                        RtpPacket(
                            plan.telephone_event_pt,
                            0,
                            event_ts,
                            self._ssrc,
                            event.payload,
                            event.marker,
                        )
                    )
                if not queue:
                    self._pending.popleft()
                    event_ts = None
                    if not done.done():
                        done.set_result(None)
            else:
                if tone is None:
                    payload = silence
                else:
                    offset = (tick * step) % 8000
                    payload = tone[offset : offset + step]
                packets.append(RtpPacket(plan.payload_type, 0, timestamp, self._ssrc, payload))
            for packet in packets:
                self._send(packet)
            tick += 1
            delay = start + tick * plan.packet_seconds - time.monotonic()
            await asyncio.sleep(max(0.0, delay))

    def _send(self, packet: RtpPacket) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        wire = rtp.build_rtp(
            RtpPacket(
                packet.payload_type,
                self._seq,
                packet.timestamp,
                packet.ssrc,
                packet.payload,
                packet.marker,
            )
        )
        self._seq = (self._seq + 1) % rtp.SEQ_MOD
        if self.plan.srtp is not None:
            wire = self.plan.srtp.protect(wire)
        transport.sendto(wire, self.plan.remote)
        self._sent += 1
        self._octets += len(packet.payload)

    # -- end ---------------------------------------------------------------------------------

    def report(self) -> MediaReport:
        return MediaReport(
            packets_sent=self._sent,
            summary=rtp.summarize(self._sources, 8000),
            stray_packets=self._stray,
            malformed_packets=self._malformed,
            voiced_frames=self._voiced,
            first_packet_seconds=self._first_packet,
            digits_sent=self._digits_out,
            digits_received=self._digits_in.digits,
            srtp_failures=self._srtp_failures,
            rtcp=self.rtcp_figures(),
        )

    async def stop(self) -> MediaReport:
        """Stop sending and receiving; the socket is closed with the transport."""
        if self._sender is not None:
            self._sender.cancel()
            # wait() rather than await: the sender's CancelledError must not be mistaken
            # for a cancellation of the caller.
            await asyncio.wait({self._sender})
        for _, done in self._pending:
            if not done.done():
                done.cancel()
        if self._rtcp_task is not None:
            self._rtcp_task.cancel()
            await asyncio.wait({self._rtcp_task})
            self._send_report()  # a last report, so the peer's figures are complete too
        if self._transport is not None:
            self._transport.close()
        report = self.report()
        if self._rtcp_transport is not None:
            self._rtcp_transport.close()
        return report
