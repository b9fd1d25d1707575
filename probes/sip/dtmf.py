"""DTMF as RFC 4733 telephone-events: the packets that press a key in an IVR menu.

One key press is a sequence of packets sharing one RTP timestamp (the event's start): the
first has the marker bit, each following one carries the duration so far, and the end is
sent three times with the E bit so a single lost datagram does not leave the key held down
(RFC 4733 section 2.5.1.4 suggests three).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EVENT_CODES: dict[str, int] = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}
"""RFC 4733 section 3.2 event codes for the sixteen DTMF keys."""

DIGITS_BY_CODE: dict[int, str] = {code: digit for digit, code in EVENT_CODES.items()}

END_REPEATS = 3
DEFAULT_VOLUME = 10
"""Power level as -dBm0 (0 loudest .. 63); 10 is what common phones send."""

_PAYLOAD = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class EventPayload:
    """The 4-byte telephone-event payload."""

    event: int
    end: bool
    volume: int
    duration: int


@dataclass(frozen=True, slots=True)
class EventPacket:
    """One packet of a key press: when to send it (offset from the press's start, seconds),
    its marker bit, and its payload. All packets of a press share the start timestamp."""

    offset_seconds: float
    marker: bool
    payload: bytes


def validate_digits(digits: str, *, field: str = "digits") -> str:
    """``digits`` upper-cased; ``ValueError`` naming the first character that is no DTMF key."""
    if not digits:
        raise ValueError(f"{field}: expected one or more of 0-9 * # A-D, got an empty string")
    for index, char in enumerate(digits):
        if char.upper() not in EVENT_CODES:
            raise ValueError(
                f"{field}: character {index + 1} {char!r} of {digits!r} is not a DTMF key "
                "(expected 0-9, *, #, A-D)"
            )
    return digits.upper()


def encode_event(payload: EventPayload) -> bytes:
    """The payload's wire form."""
    if not 0 <= payload.event <= 255:
        raise ValueError(f"telephone-event code must be in 0..255, got {payload.event}")
    if not 0 <= payload.volume <= 63:
        raise ValueError(f"telephone-event volume must be in 0..63, got {payload.volume}")
    if not 0 <= payload.duration <= 0xFFFF:
        raise ValueError(f"telephone-event duration must be in 0..65535, got {payload.duration}")
    flags = (0x80 if payload.end else 0) | payload.volume
    return _PAYLOAD.pack(payload.event, flags, payload.duration)


def decode_event(data: bytes) -> EventPayload:
    """Parse a telephone-event payload; ``ValueError`` if it is not 4 bytes (or a multiple)."""
    if len(data) < 4 or len(data) % 4:
        raise ValueError(
            f"telephone-event payload must be 4 bytes (or a multiple), got {len(data)}"
        )
    event, flags, duration = _PAYLOAD.unpack_from(data)
    return EventPayload(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)


def key_press(
    digit: str,
    *,
    tone_seconds: float = 0.1,
    packet_seconds: float = 0.02,
    clock_rate: int = 8000,
    volume: int = DEFAULT_VOLUME,
) -> tuple[EventPacket, ...]:
    """The packets of one key press held for ``tone_seconds``.

    One update per packet interval, the first with the marker bit and a duration of one
    interval; then ``END_REPEATS`` end packets carrying the total duration, sent back to back.
    """
    event = EVENT_CODES.get(digit.upper())
    if event is None or len(digit) != 1:
        raise ValueError(f"not a DTMF key: {digit!r} (expected one of 0-9, *, #, A-D)")
    if packet_seconds <= 0 or tone_seconds < packet_seconds:
        raise ValueError(
            f"tone_seconds ({tone_seconds}) must be at least packet_seconds ({packet_seconds}) "
            "and both positive"
        )
    step = round(packet_seconds * clock_rate)
    updates = max(1, round(tone_seconds / packet_seconds))
    total = step * updates
    if total > 0xFFFF:
        raise ValueError(
            f"tone of {tone_seconds}s at {clock_rate} Hz exceeds the 16-bit duration field"
        )
    packets = [
        EventPacket(
            offset_seconds=i * packet_seconds,
            marker=i == 0,
            payload=encode_event(EventPayload(event, False, volume, step * (i + 1))),
        )
        for i in range(updates)
    ]
    end = encode_event(EventPayload(event, True, volume, total))
    packets += [EventPacket(updates * packet_seconds, False, end) for _ in range(END_REPEATS)]
    return tuple(packets)


def press_timestamp_span(packets: tuple[EventPacket, ...]) -> int:
    """RTP timestamp units a press occupies (its final duration), so the audio stream's
    timestamp can be advanced past it."""
    return decode_event(packets[-1].payload).duration


@dataclass(frozen=True, slots=True)
class ReceivedDigits:
    """Digits seen in received telephone-events, each counted once however often its
    packets repeat (a press is keyed by its RTP timestamp)."""

    digits: str = ""
    last_timestamp: int | None = None


def note_event(state: ReceivedDigits, rtp_timestamp: int, payload: bytes) -> ReceivedDigits:
    """Fold one received telephone-event packet into the digits seen so far."""
    event = decode_event(payload)
    if state.last_timestamp == rtp_timestamp:
        return state
    digit = DIGITS_BY_CODE.get(event.event, "?")
    return ReceivedDigits(digits=state.digits + digit, last_timestamp=rtp_timestamp)
