"""RFC 4733 telephone-event packets (probes/sip/dtmf.py)."""

from __future__ import annotations

import pytest
from hypothesis import given

from probes.sip.dtmf import (
    END_REPEATS,
    EVENT_CODES,
    EventPayload,
    ReceivedDigits,
    decode_event,
    encode_event,
    key_press,
    note_event,
    press_timestamp_span,
    validate_digits,
)
from tests.strategies import dtmf_keys, dtmf_tone_packets


class TestEventPayload:
    def test_wire_layout(self) -> None:
        """Event '#'=11, E bit, volume 10, duration 800 encode as RFC 4733 section 2.3 shows."""
        assert encode_event(EventPayload(11, True, 10, 800)) == bytes([11, 0x80 | 10, 0x03, 0x20])

    def test_round_trip(self) -> None:
        """Decoding an encoded payload gives the same fields."""
        payload = EventPayload(event=5, end=False, volume=63, duration=65535)
        assert decode_event(encode_event(payload)) == payload

    def test_reserved_bit_is_ignored(self) -> None:
        """The R bit set by a sender does not leak into the volume."""
        assert decode_event(bytes([1, 0x40 | 7, 0, 160])).volume == 7

    @pytest.mark.parametrize(
        ("payload", "message"),
        [
            (EventPayload(256, False, 10, 0), "code must be in 0..255, got 256"),
            (EventPayload(1, False, 64, 0), "volume must be in 0..63, got 64"),
            (EventPayload(1, False, 10, 70000), "duration must be in 0..65535, got 70000"),
        ],
    )
    def test_out_of_range_fields(self, payload: EventPayload, message: str) -> None:
        """Each out-of-range field is named with its value."""
        with pytest.raises(ValueError, match=message):
            encode_event(payload)

    def test_short_payload(self) -> None:
        """A payload that is not 4 bytes is rejected with its length."""
        with pytest.raises(ValueError, match=r"must be 4 bytes .* got 3"):
            decode_event(b"\x01\x02\x03")


class TestValidateDigits:
    def test_accepts_all_sixteen_keys(self) -> None:
        """0-9, *, #, A-D (any case) are keys; letters come back upper-case."""
        assert validate_digits("0123456789*#abcd") == "0123456789*#ABCD"

    def test_names_the_bad_character(self) -> None:
        """A non-key names its position, itself and the field."""
        with pytest.raises(ValueError, match=r"dtmf\[0\].digits: character 3 'x' of '12x'"):
            validate_digits("12x", field="dtmf[0].digits")

    def test_empty_is_rejected(self) -> None:
        """An empty digit string is an error, not a no-op step."""
        with pytest.raises(ValueError, match="got an empty string"):
            validate_digits("")


class TestKeyPress:
    def test_marker_updates_and_three_ends(self) -> None:
        """100 ms press: 5 updates (first marked, durations 160..800), then 3 end packets."""
        packets = key_press("5")
        events = [decode_event(p.payload) for p in packets]
        assert [p.marker for p in packets] == [True] + [False] * 7
        assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800, 800]
        assert [e.end for e in events] == [False] * 5 + [True] * END_REPEATS
        assert {e.event for e in events} == {5}
        assert [p.offset_seconds for p in packets][:5] == pytest.approx([0, 0.02, 0.04, 0.06, 0.08])
        assert press_timestamp_span(packets) == 800

    def test_star_and_hash_codes(self) -> None:
        """'*' is event 10 and '#' event 11."""
        assert decode_event(key_press("*")[0].payload).event == 10
        assert decode_event(key_press("#")[0].payload).event == 11

    def test_not_a_key(self) -> None:
        """A non-key digit or several characters are refused."""
        with pytest.raises(ValueError, match="not a DTMF key: 'x'"):
            key_press("x")
        with pytest.raises(ValueError, match="not a DTMF key: '12'"):
            key_press("12")

    def test_too_short_tone(self) -> None:
        """A tone shorter than one packet cannot be sent."""
        with pytest.raises(ValueError, match=r"tone_seconds .* must be at least packet_seconds"):
            key_press("1", tone_seconds=0.01)

    def test_duration_overflow(self) -> None:
        """A tone longer than the 16-bit duration field can hold is refused."""
        with pytest.raises(ValueError, match="exceeds the 16-bit duration field"):
            key_press("1", tone_seconds=9.0)

    @given(key=dtmf_keys, intervals=dtmf_tone_packets)
    def test_press_shape_for_any_key_and_length(self, key: str, intervals: int) -> None:
        """Any key, any length: one marker first, durations rising by one interval, three
        identical end packets carrying the total, the key's code throughout."""
        packets = key_press(key, tone_seconds=intervals * 0.02)
        events = [decode_event(p.payload) for p in packets]
        assert len(packets) == intervals + END_REPEATS
        assert [p.marker for p in packets].count(True) == 1
        assert packets[0].marker
        assert [e.duration for e in events[:intervals]] == [160 * (i + 1) for i in range(intervals)]
        assert {e.duration for e in events[intervals:]} == {160 * intervals}
        assert all(e.end for e in events[intervals:])
        assert not any(e.end for e in events[:intervals])
        assert {e.event for e in events} == {EVENT_CODES[key]}


class TestReceivedDigits:
    def test_repeats_of_one_press_count_once(self) -> None:
        """All packets of a press share a timestamp, so '1' then '2' are two digits."""
        state = ReceivedDigits()
        for timestamp, digit in ((1000, "1"), (2000, "2")):
            for packet in key_press(digit):
                state = note_event(state, timestamp, packet.payload)
        assert state.digits == "12"

    def test_unknown_event_code(self) -> None:
        """A non-DTMF event (e.g. 32, a fax tone) is recorded as '?'."""
        assert note_event(ReceivedDigits(), 5, bytes([32, 0, 0, 160])).digits == "?"
