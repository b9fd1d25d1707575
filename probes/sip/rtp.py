"""RTP packets (RFC 3550 section 5.1) and receive statistics (appendix A.1, A.3, A.8).

The statistics are what the call probe reports as evidence: packets received, packets expected
from the extended highest sequence number, loss (with 16-bit wrap-around), and the
interarrival jitter estimate. They are plain functions over a frozen state so they can be
tested packet by packet without a socket.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

RTP_VERSION = 2
SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
MAX_DROPOUT = 3000
"""A jump ahead by fewer sequence numbers than this is loss, not a restarted source (A.1)."""
MAX_MISORDER = 100
"""A step back by fewer than this is a late or duplicate packet (A.1)."""

_HEADER = struct.Struct("!BBHII")


class RtpError(ValueError):
    """Raised by ``parse_rtp`` for a datagram that is not a valid RTP packet; says why."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet; ``payload`` excludes header extension and padding."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()


def build_rtp(packet: RtpPacket) -> bytes:
    """The packet's wire form (no padding, no header extension)."""
    if not 0 <= packet.payload_type <= 127:
        raise ValueError(f"RTP payload_type must be in 0..127, got {packet.payload_type}")
    if not 0 <= packet.sequence < SEQ_MOD:
        raise ValueError(f"RTP sequence must be in 0..65535, got {packet.sequence}")
    if not 0 <= packet.timestamp < TS_MOD:
        raise ValueError(f"RTP timestamp must be in 0..2**32-1, got {packet.timestamp}")
    if not 0 <= packet.ssrc < TS_MOD:
        raise ValueError(f"RTP ssrc must be in 0..2**32-1, got {packet.ssrc}")
    if len(packet.csrcs) > 15:
        raise ValueError(f"RTP carries at most 15 CSRCs, got {len(packet.csrcs)}")
    first = (RTP_VERSION << 6) | len(packet.csrcs)
    second = (0x80 if packet.marker else 0) | packet.payload_type
    header = _HEADER.pack(first, second, packet.sequence, packet.timestamp, packet.ssrc)
    csrcs = b"".join(struct.pack("!I", c) for c in packet.csrcs)
    return header + csrcs + packet.payload


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse one datagram; ``RtpError`` names what is wrong (length, version, padding...)."""
    if len(data) < _HEADER.size:
        raise RtpError(f"RTP packet too short: {len(data)} bytes, expected at least 12")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    version = first >> 6
    if version != RTP_VERSION:
        raise RtpError(f"RTP version must be 2, got {version}")
    csrc_count = first & 0x0F
    offset = _HEADER.size + 4 * csrc_count
    if len(data) < offset:
        raise RtpError(
            f"RTP packet of {len(data)} bytes too short for its {csrc_count} CSRCs (needs {offset})"
        )
    csrcs = struct.unpack_from(f"!{csrc_count}I", data, _HEADER.size)
    if first & 0x10:
        if len(data) < offset + 4:
            raise RtpError("RTP header extension flag set but no extension header follows")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
        if len(data) < offset:
            raise RtpError(
                f"RTP header extension of {words} words runs past the packet's {len(data)} bytes"
            )
    end = len(data)
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or end - padding < offset:
            raise RtpError(f"RTP padding count {padding} is invalid for a {len(data)}-byte packet")
        end -= padding
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrcs=tuple(csrcs),
    )


@dataclass(frozen=True, slots=True)
class ReceiveStats:
    """Receive state of one source (one SSRC), RFC 3550 A.1 without the probation phase.

    Probation exists to reject stray streams; the call probe already drops packets from any
    address other than the SDP answer's, so the first packet starts the count.
    ``transit``/``jitter`` are in RTP timestamp units.
    """

    base_seq: int
    max_seq: int
    cycles: int = 0
    bad_seq: int = SEQ_MOD + 1
    received: int = 0
    transit: float | None = None
    jitter: float = 0.0

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected from the sequence numbers seen (A.3)."""
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Cumulative packets lost (A.3); negative when duplicates outnumber losses."""
        return self.expected - self.received


def first_packet(sequence: int) -> ReceiveStats:
    """The state after the first packet of a source (its sequence starts the count)."""
    return ReceiveStats(base_seq=sequence, max_seq=sequence, received=1)


def update_sequence(stats: ReceiveStats, sequence: int) -> ReceiveStats:
    """Account one more packet's sequence number (A.1 ``update_seq``).

    A forward jump of ``MAX_DROPOUT`` or more, or a backward one of more than
    ``MAX_MISORDER``, is ignored unless the next packet follows it, in which case the source
    is taken to have restarted and the count starts again from there.
    """
    udelta = (sequence - stats.max_seq) % SEQ_MOD
    if udelta < MAX_DROPOUT:
        cycles = stats.cycles + SEQ_MOD if sequence < stats.max_seq else stats.cycles
        return replace(stats, max_seq=sequence, cycles=cycles, received=stats.received + 1)
    if udelta <= SEQ_MOD - MAX_MISORDER:
        if sequence == stats.bad_seq:
            return replace(first_packet(sequence), transit=None, jitter=stats.jitter)
        return replace(stats, bad_seq=(sequence + 1) % SEQ_MOD)
    # A duplicate or a reordered packet: counted as received, the highest sequence stays.
    return replace(stats, received=stats.received + 1)


def update_jitter(stats: ReceiveStats, rtp_timestamp: int, arrival_units: float) -> ReceiveStats:
    """Fold one packet into the interarrival jitter (A.8).

    ``arrival_units`` is the local arrival time in RTP clock units (seconds * clock rate).
    Only the relative transit time matters, so both clocks may have any origin; the RTP
    timestamp is unwrapped relative to the previous packet.
    """
    transit = arrival_units - rtp_timestamp
    if stats.transit is None:
        return replace(stats, transit=transit)
    # Re-base the wrapped 32-bit timestamp so a wrap between two packets is not a huge jump.
    delta = transit - stats.transit
    delta = (delta + TS_MOD / 2) % TS_MOD - TS_MOD / 2
    jitter = stats.jitter + (abs(delta) - stats.jitter) / 16.0
    return replace(stats, transit=stats.transit + delta, jitter=jitter)


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """Figures for a whole call: summed over sources, jitter is the worst source's."""

    received: int
    expected: int
    jitter_seconds: float

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.received)

    @property
    def loss_ratio(self) -> float:
        """Lost / expected, 0.0 when nothing was expected."""
        return self.lost / self.expected if self.expected > 0 else 0.0


def summarize(sources: dict[int, ReceiveStats], clock_rate: int) -> StreamSummary:
    """Sum the per-SSRC states of one call into call-level figures."""
    if clock_rate <= 0:
        raise ValueError(f"clock_rate must be positive, got {clock_rate}")
    received = sum(s.received for s in sources.values())
    expected = sum(max(s.expected, 0) for s in sources.values())
    jitter = max((s.jitter for s in sources.values()), default=0.0)
    return StreamSummary(received=received, expected=expected, jitter_seconds=jitter / clock_rate)
