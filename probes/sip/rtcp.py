"""RTCP sender/receiver reports (RFC 3550 §6.4): build ours, read the peer's, round-trip time.

The peer's report about our stream carries LSR (the middle 32 bits of the NTP time of our
last SR) and DLSR (how long it held that SR, in 1/65536 s). When that report arrives at
NTP time A, the network round trip is ``A - LSR - DLSR`` (§6.4.1) -- measured, where the
E-model would otherwise have to guess the delay. The peer's report also tells what the far
end lost of *our* stream, the direction a one-ended probe cannot see.

Everything here is pure: times are passed in. Public API:
  ntp_from_unix(t) -> 64-bit NTP; ntp_middle(ntp) -> 32 bits
  ReportBlock, SenderInfo, Report; RtcpError
  build_report(ssrc, sender, blocks, cname) -> bytes (SR or RR + SDES CNAME, compound)
  parse_compound(data) -> tuple[Report, ...]
  round_trip(arrival_middle, block) -> seconds | None
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

NTP_UNIX_OFFSET = 2_208_988_800
"""Seconds from 1900-01-01 (NTP era 0) to 1970-01-01."""
SR, RR, SDES, BYE = 200, 201, 202, 203
MAX_REPORT_BLOCKS = 31


class RtcpError(ValueError):
    """Raised by ``parse_compound`` for a packet that is not valid RTCP."""


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report block (RFC 3550 §6.4.1) about source ``ssrc``."""

    ssrc: int
    fraction_lost: int  # of 256
    cumulative_lost: int
    highest_sequence: int
    jitter: int  # RTP timestamp units
    lsr: int
    dlsr: int  # 1/65536 s


@dataclass(frozen=True, slots=True)
class SenderInfo:
    """The sender-info part of an SR."""

    ntp: int
    rtp_timestamp: int
    packets: int
    octets: int


@dataclass(frozen=True, slots=True)
class Report:
    """One SR (with ``sender``) or RR from the compound packet."""

    ssrc: int
    sender: SenderInfo | None
    blocks: tuple[ReportBlock, ...]


def ntp_from_unix(unix_seconds: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point) for a Unix time."""
    seconds = int(unix_seconds) + NTP_UNIX_OFFSET
    fraction = int((unix_seconds - int(unix_seconds)) * (1 << 32)) & 0xFFFFFFFF
    return ((seconds & 0xFFFFFFFF) << 32) | fraction


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits (16.16 fixed point) used by LSR and arrival times."""
    return (ntp >> 16) & 0xFFFFFFFF


def build_report(
    ssrc: int, sender: SenderInfo | None, blocks: tuple[ReportBlock, ...], cname: str
) -> bytes:
    """A compound RTCP packet: SR (when ``sender``) or RR, then SDES with our CNAME."""
    if len(blocks) > MAX_REPORT_BLOCKS:
        raise ValueError(f"at most {MAX_REPORT_BLOCKS} report blocks, got {len(blocks)}")
    body = struct.pack("!I", ssrc)
    if sender is not None:
        body += struct.pack(
            "!QIII",
            sender.ntp,
            sender.rtp_timestamp & 0xFFFFFFFF,
            sender.packets & 0xFFFFFFFF,
            sender.octets & 0xFFFFFFFF,
        )
    for block in blocks:
        lost = max(-(1 << 23), min((1 << 23) - 1, block.cumulative_lost)) & 0xFFFFFF
        body += struct.pack(
            "!IIIIII",
            block.ssrc,
            (max(0, min(255, block.fraction_lost)) << 24) | lost,
            block.highest_sequence & 0xFFFFFFFF,
            max(0, block.jitter) & 0xFFFFFFFF,
            block.lsr & 0xFFFFFFFF,
            block.dlsr & 0xFFFFFFFF,
        )
    packet_type = SR if sender is not None else RR
    first = struct.pack("!BBH", 0x80 | len(blocks), packet_type, len(body) // 4) + body
    name = cname.encode("utf-8")[:255]
    chunk = struct.pack("!IBB", ssrc, 1, len(name)) + name + b"\x00"
    chunk += b"\x00" * (-len(chunk) % 4)
    sdes = struct.pack("!BBH", 0x81, SDES, len(chunk) // 4) + chunk
    return first + sdes


def parse_compound(data: bytes) -> tuple[Report, ...]:
    """The SRs and RRs of a compound packet (SDES, BYE, APP and others are skipped)."""
    reports: list[Report] = []
    pos = 0
    if len(data) < 8:
        raise RtcpError(f"RTCP packet of {len(data)} bytes is shorter than a header")
    while pos < len(data):
        if len(data) - pos < 4:
            raise RtcpError(f"{len(data) - pos} trailing bytes after the last RTCP packet")
        first, packet_type, words = struct.unpack_from("!BBH", data, pos)
        if first >> 6 != 2:
            raise RtcpError(f"RTCP version {first >> 6}, expected 2")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtcpError(f"RTCP packet claims {4 * words + 4} bytes, {len(data) - pos} left")
        count = first & 0x1F
        if packet_type in (SR, RR):
            reports.append(_report(data[pos + 4 : end], packet_type, count))
        pos = end
    return tuple(reports)


def _report(body: bytes, packet_type: int, count: int) -> Report:
    need = 4 + (20 if packet_type == SR else 0) + 24 * count
    if len(body) < need:
        raise RtcpError(f"RTCP {'SR' if packet_type == SR else 'RR'} too short for {count} blocks")
    (ssrc,) = struct.unpack_from("!I", body, 0)
    pos = 4
    sender: SenderInfo | None = None
    if packet_type == SR:
        ntp, rtp_ts, packets, octets = struct.unpack_from("!QIII", body, pos)
        sender = SenderInfo(ntp, rtp_ts, packets, octets)
        pos += 20
    blocks = []
    for _ in range(count):
        source, lost_word, highest, jitter, lsr, dlsr = struct.unpack_from("!IIIIII", body, pos)
        cumulative = lost_word & 0xFFFFFF
        if cumulative & 0x800000:  # signed 24-bit: duplicates can make it negative
            cumulative -= 1 << 24
        blocks.append(ReportBlock(source, lost_word >> 24, cumulative, highest, jitter, lsr, dlsr))
        pos += 24
    return Report(ssrc, sender, tuple(blocks))


def round_trip(arrival_middle: int, block: ReportBlock) -> float | None:
    """RTT in seconds from a report block that arrived at ``arrival_middle`` (16.16 NTP);
    None when the peer has not yet seen an SR of ours (LSR 0) or the figure is impossible."""
    if block.lsr == 0:
        return None
    units = (arrival_middle - block.lsr - block.dlsr) & 0xFFFFFFFF
    if units >= 0x80000000:  # negative: clocks or a forged report, not a round trip
        return None
    return units / 65536.0
