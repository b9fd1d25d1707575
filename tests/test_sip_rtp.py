"""RTP packets and receive statistics per RFC 3550 (probes/sip/rtp.py)."""

from __future__ import annotations

import struct
from functools import reduce

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.sip.rtp import (
    ReceiveStats,
    RtpError,
    RtpPacket,
    build_rtp,
    first_packet,
    parse_rtp,
    summarize,
    update_jitter,
    update_sequence,
)
from tests.strategies import rtp_arrivals, rtp_sequence_starts


def _receive(sequences: list[int]) -> ReceiveStats:
    stats = first_packet(sequences[0])
    for seq in sequences[1:]:
        stats = update_sequence(stats, seq)
    return stats


class TestBuildAndParse:
    def test_round_trip(self) -> None:
        """A built packet parses back to the same fields."""
        packet = RtpPacket(
            payload_type=0,
            sequence=65535,
            timestamp=2**32 - 1,
            ssrc=0xDEADBEEF,
            payload=b"\xff" * 160,
            marker=True,
            csrcs=(1, 2),
        )
        assert parse_rtp(build_rtp(packet)) == packet

    def test_header_layout(self) -> None:
        """The first bytes are V=2, marker+PT, sequence, timestamp, SSRC in network order."""
        data = build_rtp(RtpPacket(101, 7, 160, 0x01020304, b"\x01\x0a\x00\xa0", marker=True))
        assert data[:12] == bytes([0x80, 0x80 | 101, 0, 7, 0, 0, 0, 160, 1, 2, 3, 4])

    def test_padding_and_extension_are_stripped(self) -> None:
        """Payload excludes a header extension and trailing padding."""
        header = struct.pack("!BBHII", 0x80 | 0x20 | 0x10, 0, 1, 2, 3)
        extension = struct.pack("!HH", 0xBEDE, 1) + b"\x00" * 4
        data = header + extension + b"abc" + b"\x00\x00\x03"
        assert parse_rtp(data).payload == b"abc"

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            (b"\x80\x00", "too short: 2 bytes, expected at least 12"),
            (struct.pack("!BBHII", 0x40, 0, 1, 2, 3), "version must be 2, got 1"),
            (struct.pack("!BBHII", 0x82, 0, 1, 2, 3), "too short for its 2 CSRCs"),
            (struct.pack("!BBHII", 0x90, 0, 1, 2, 3), "extension flag set but no extension"),
            (struct.pack("!BBHII", 0x90, 0, 1, 2, 3) + b"\x00\x00\x00\x05", "runs past"),
            (struct.pack("!BBHII", 0xA0, 0, 1, 2, 3) + b"\x00", "padding count 0 is invalid"),
            (struct.pack("!BBHII", 0xA0, 0, 1, 2, 3) + b"\x09", "padding count 9 is invalid"),
        ],
    )
    def test_malformed_packets_say_why(self, data: bytes, message: str) -> None:
        """Each malformed datagram raises RtpError with the specific problem."""
        with pytest.raises(RtpError, match=message):
            parse_rtp(data)

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("payload_type", 128, "payload_type must be in 0..127, got 128"),
            ("sequence", 65536, "sequence must be in 0..65535, got 65536"),
            ("timestamp", -1, "timestamp must be in 0..2\\*\\*32-1, got -1"),
            ("ssrc", 2**32, "ssrc must be in"),
        ],
    )
    def test_out_of_range_fields_are_rejected(self, field: str, value: int, message: str) -> None:
        """Building a packet with a field out of range names the field and value."""
        fields: dict[str, int] = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0}
        fields[field] = value
        with pytest.raises(ValueError, match=message):
            build_rtp(RtpPacket(payload=b"", **fields))


class TestSequence:
    def test_in_order_run_has_no_loss(self) -> None:
        """Ten packets in order: ten received, ten expected."""
        stats = _receive(list(range(100, 110)))
        assert (stats.received, stats.expected, stats.lost) == (10, 10, 0)

    def test_gap_counts_as_loss(self) -> None:
        """Missing sequence numbers count as lost."""
        stats = _receive([1, 2, 5, 6])
        assert (stats.received, stats.expected, stats.lost) == (4, 6, 2)

    def test_wrap_around_extends_the_sequence(self) -> None:
        """65534, 65535, 0, 1 is one run of four with one cycle counted."""
        stats = _receive([65534, 65535, 0, 1])
        assert stats.cycles == 65536
        assert (stats.expected, stats.lost) == (4, 0)

    def test_loss_across_the_wrap(self) -> None:
        """A gap spanning the wrap is counted as loss, not as 65 000 packets."""
        stats = _receive([65533, 2])
        assert (stats.expected, stats.lost) == (6, 4)

    def test_late_packet_is_received_but_not_the_maximum(self) -> None:
        """A reordered packet counts as received and does not move the highest sequence."""
        stats = _receive([10, 12, 11])
        assert (stats.max_seq, stats.received, stats.lost) == (12, 3, 0)

    def test_duplicate_makes_loss_negative(self) -> None:
        """A duplicate raises received above expected (A.3 allows negative loss)."""
        stats = _receive([10, 11, 11])
        assert stats.lost == -1
        assert summarize({1: stats}, 8000).lost == 0

    def test_big_jump_is_ignored_once(self) -> None:
        """A single packet far ahead is dropped (not counted) unless the next one follows it."""
        stats = _receive([10, 11, 20000])
        assert (stats.max_seq, stats.received) == (11, 2)

    def test_restarted_source_resyncs(self) -> None:
        """Two consecutive packets after a jump restart the count from there (A.1 bad_seq)."""
        stats = _receive([10, 11, 20000, 20001, 20002])
        assert (stats.base_seq, stats.max_seq, stats.received) == (20001, 20002, 2)

    @given(arrivals=rtp_arrivals())
    def test_loss_equals_gaps_whatever_the_start(self, arrivals: tuple[int, list[int]]) -> None:
        """For any start (so across the 16-bit wrap) and any losses, lost = expected - kept."""
        start, offsets = arrivals
        stats = _receive([(start + o) % 65536 for o in offsets])
        assert stats.received == len(offsets)
        assert stats.expected == offsets[-1] + 1
        assert stats.lost == offsets[-1] + 1 - len(offsets)

    @given(
        start=rtp_sequence_starts,
        stride=st.integers(min_value=1, max_value=2999),
        steps=st.integers(min_value=1, max_value=200),
    )
    def test_long_runs_count_every_cycle(self, start: int, stride: int, steps: int) -> None:
        """Advancing by strides below MAX_DROPOUT over several wraps counts every cycle."""
        seqs = ((start + stride * i) % 65536 for i in range(1, steps + 1))
        stats = reduce(update_sequence, seqs, first_packet(start))
        assert stats.expected == stride * steps + 1
        assert stats.cycles // 65536 == (start + stride * steps) // 65536
        assert stats.received == steps + 1


class TestJitter:
    def test_constant_spacing_has_zero_jitter(self) -> None:
        """Packets arriving exactly at their timestamp spacing give zero jitter."""
        stats = first_packet(0)
        for i in range(50):
            stats = update_jitter(stats, 160 * i, 1_000_000.0 + 160 * i)
        assert stats.jitter == 0.0

    def test_one_late_packet_gives_one_sixteenth(self) -> None:
        """One packet 80 units late: J = 80/16 after it (A.8's gain of 1/16)."""
        stats = update_jitter(first_packet(0), 0, 0.0)
        stats = update_jitter(stats, 160, 240.0)
        assert stats.jitter == pytest.approx(5.0)

    def test_timestamp_wrap_is_not_jitter(self) -> None:
        """A 32-bit timestamp wrap between packets does not register as a huge delay."""
        stats = update_jitter(first_packet(0), 2**32 - 80, 0.0)
        stats = update_jitter(stats, 80, 160.0)
        assert stats.jitter == 0.0

    @given(
        offset=st.floats(min_value=-1e6, max_value=1e6),
        delays=st.lists(st.floats(min_value=0, max_value=400), min_size=2, max_size=60),
    )
    def test_jitter_is_bounded_and_origin_free(self, offset: float, delays: list[float]) -> None:
        """Jitter never exceeds the largest delay difference and ignores the clock origin."""
        stats_a = stats_b = first_packet(0)
        for i, delay in enumerate(delays):
            stats_a = update_jitter(stats_a, 160 * i, 160 * i + delay)
            stats_b = update_jitter(stats_b, 160 * i, 160 * i + delay + offset)
        assert 0.0 <= stats_a.jitter <= max(delays) - min(delays) + 1e-9
        assert stats_a.jitter == pytest.approx(stats_b.jitter, abs=1e-6)


class TestSummarize:
    def test_sums_sources_and_takes_worst_jitter(self) -> None:
        """Two SSRCs: counts add up, jitter is the larger one, in seconds."""
        a = ReceiveStats(base_seq=0, max_seq=9, received=10, jitter=80.0)
        b = ReceiveStats(base_seq=0, max_seq=9, received=8, jitter=8.0)
        summary = summarize({1: a, 2: b}, 8000)
        assert (summary.received, summary.expected, summary.lost) == (18, 20, 2)
        assert summary.loss_ratio == pytest.approx(0.1)
        assert summary.jitter_seconds == pytest.approx(0.01)

    def test_nothing_received(self) -> None:
        """No sources: zero everything and a loss ratio of 0 rather than a division error."""
        summary = summarize({}, 8000)
        assert (summary.received, summary.expected, summary.loss_ratio) == (0, 0, 0.0)

    def test_bad_clock_rate(self) -> None:
        """A non-positive clock rate is rejected with its value."""
        with pytest.raises(ValueError, match="clock_rate must be positive, got 0"):
            summarize({}, 0)
