"""G.711 mu-law / A-law coding and audio energy, for telling a spoken prompt from silence.

Python 3.11's ``audioop`` is deprecated (removed in 3.13), so G.711 is done here with tables
built once at import. Energy is measured on decoded linear samples as RMS relative to full
scale (dBov, where a full-scale square wave is 0 dBov and a full-scale sine about -3 dBov).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from enum import StrEnum

SILENCE_FLOOR_DBOV = -100.0
"""Level reported for digital silence (all-zero samples), instead of minus infinity."""

DEFAULT_SILENCE_THRESHOLD_DBOV = -50.0
"""Below this a frame counts as silence: quiet line noise sits around -60..-70 dBov, speech
and IVR prompts well above -40 dBov."""

_FULL_SCALE = 32768.0


class Codec(StrEnum):
    """The G.711 variants the call probe offers, with their static RTP payload types."""

    PCMU = "PCMU"
    PCMA = "PCMA"

    @property
    def payload_type(self) -> int:
        return 0 if self is Codec.PCMU else 8

    @property
    def silence_byte(self) -> int:
        """The code word for a zero sample (what a silent 20 ms frame is filled with)."""
        return encode_ulaw_sample(0) if self is Codec.PCMU else encode_alaw_sample(0)


def _ulaw_decode_sample(code: int) -> int:
    # ITU-T G.711 mu-law: bits are stored inverted; 3-bit segment, 4-bit mantissa, bias 0x84.
    code = ~code & 0xFF
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = ((mantissa << 3) + 0x84) << exponent
    magnitude -= 0x84
    return -magnitude if sign else magnitude


def _alaw_decode_sample(code: int) -> int:
    # ITU-T G.711 A-law: even bits are inverted (XOR 0x55); segment 0 has no implicit leading 1.
    code ^= 0x55
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    shift = max(0, exponent - 1)
    magnitude = ((mantissa << 4) + (8 if exponent == 0 else 0x108)) << shift
    return magnitude if sign else -magnitude


def encode_ulaw_sample(sample: int) -> int:
    """One 16-bit signed linear sample to a mu-law code word (as the reference g711.c does it)."""
    _check_sample(sample)
    # The reference coder works on 14 bits with an arithmetic shift, so negative values round
    # towards minus infinity; doing the same keeps code words identical to other encoders.
    value = sample >> 2
    if value < 0:
        value, mask = -value, 0x7F
    else:
        mask = 0xFF
    value = min(value, 8159) + 0x21
    exponent = max(0, value.bit_length() - 6)
    if exponent > 7:
        return 0x7F ^ mask
    return ((exponent << 4) | ((value >> (exponent + 1)) & 0x0F)) ^ mask


def encode_alaw_sample(sample: int) -> int:
    """One 16-bit signed linear sample to an A-law code word."""
    _check_sample(sample)
    if sample >= 0:
        sign = 0x80
        magnitude = sample
    else:
        sign = 0
        magnitude = -sample - 1
    magnitude = min(magnitude, 32767)
    if magnitude < 256:
        exponent = 0
        mantissa = (magnitude >> 4) & 0x0F
    else:
        exponent = magnitude.bit_length() - 8
        mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (sign | (exponent << 4) | mantissa) ^ 0x55


def _check_sample(sample: int) -> None:
    if not -32768 <= sample <= 32767:
        raise ValueError(f"a 16-bit linear sample must be in -32768..32767, got {sample}")


ULAW_DECODE: tuple[int, ...] = tuple(_ulaw_decode_sample(c) for c in range(256))
ALAW_DECODE: tuple[int, ...] = tuple(_alaw_decode_sample(c) for c in range(256))
# Squared decoded values per code word: energy of a payload without decoding it to a list.
_ULAW_SQUARES: tuple[int, ...] = tuple(v * v for v in ULAW_DECODE)
_ALAW_SQUARES: tuple[int, ...] = tuple(v * v for v in ALAW_DECODE)


def decode(payload: bytes, codec: Codec) -> list[int]:
    """G.711 code words to 16-bit linear samples."""
    table = ULAW_DECODE if codec is Codec.PCMU else ALAW_DECODE
    return [table[b] for b in payload]


def encode(samples: Iterable[int], codec: Codec) -> bytes:
    """16-bit linear samples to G.711 code words; a sample out of range raises ``ValueError``."""
    one = encode_ulaw_sample if codec is Codec.PCMU else encode_alaw_sample
    return bytes(one(s) for s in samples)


def rms_dbov(samples: Sequence[int]) -> float:
    """RMS level of linear samples in dBov; ``SILENCE_FLOOR_DBOV`` for none or all zeros."""
    if not samples:
        return SILENCE_FLOOR_DBOV
    mean_square = sum(s * s for s in samples) / len(samples)
    return _dbov(mean_square)


def payload_dbov(payload: bytes, codec: Codec) -> float:
    """RMS level of a G.711 payload in dBov, computed straight from the code words."""
    if not payload:
        return SILENCE_FLOOR_DBOV
    squares = _ULAW_SQUARES if codec is Codec.PCMU else _ALAW_SQUARES
    return _dbov(sum(squares[b] for b in payload) / len(payload))


def _dbov(mean_square: float) -> float:
    if mean_square <= 0:
        return SILENCE_FLOOR_DBOV
    level = 10.0 * math.log10(mean_square / (_FULL_SCALE * _FULL_SCALE))
    return max(SILENCE_FLOOR_DBOV, level)


def is_silence(level_dbov: float, threshold_dbov: float = DEFAULT_SILENCE_THRESHOLD_DBOV) -> bool:
    """Whether a frame's level counts as silence."""
    return level_dbov < threshold_dbov


def tone(frequency_hz: float, amplitude: int, samples: int, *, start: int = 0) -> list[int]:
    """A sine of ``samples`` 8 kHz samples starting at sample index ``start`` (phase-continuous
    across consecutive frames), for the probe's outgoing audio."""
    if not 0 <= amplitude <= 32767:
        raise ValueError(f"tone amplitude must be in 0..32767, got {amplitude}")
    step = 2.0 * math.pi * frequency_hz / 8000.0
    return [round(amplitude * math.sin(step * (start + i))) for i in range(samples)]
