"""G.711 coding and energy measurement (probes/sip/audio.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given

from probes.sip.audio import (
    ALAW_DECODE,
    SILENCE_FLOOR_DBOV,
    ULAW_DECODE,
    Codec,
    decode,
    encode,
    encode_alaw_sample,
    encode_ulaw_sample,
    is_silence,
    payload_dbov,
    rms_dbov,
    tone,
)
from tests.strategies import pcm_samples


class TestDecodeTables:
    def test_reference_code_words(self) -> None:
        """Known G.711 code words decode to the reference values (g711.c)."""
        assert ULAW_DECODE[0xFF] == 0
        assert ULAW_DECODE[0x7F] == 0
        assert ULAW_DECODE[0x00] == -32124
        assert ULAW_DECODE[0x80] == 32124
        assert ALAW_DECODE[0xD5] == 8
        assert ALAW_DECODE[0x55] == -8
        assert ALAW_DECODE[0xAA] == 32256
        assert ALAW_DECODE[0x2A] == -32256

    def test_tables_are_odd_symmetric(self) -> None:
        """Flipping the sign bit negates the decoded value for every code word."""
        for code in range(128):
            assert ULAW_DECODE[code] == -ULAW_DECODE[code | 0x80]
            assert ALAW_DECODE[code] == -ALAW_DECODE[code | 0x80]


class TestEncode:
    def test_zero_is_the_silence_word(self) -> None:
        """A zero sample encodes to 0xFF (mu-law) and 0xD5 (A-law)."""
        assert encode_ulaw_sample(0) == 0xFF == Codec.PCMU.silence_byte
        assert encode_alaw_sample(0) == 0xD5 == Codec.PCMA.silence_byte

    def test_extremes_saturate(self) -> None:
        """Full-scale samples encode to the largest magnitude code words."""
        assert ULAW_DECODE[encode_ulaw_sample(32767)] == 32124
        assert ULAW_DECODE[encode_ulaw_sample(-32768)] == -32124
        assert ALAW_DECODE[encode_alaw_sample(32767)] == 32256
        assert ALAW_DECODE[encode_alaw_sample(-32768)] == -32256

    def test_out_of_range_sample_is_rejected(self) -> None:
        """A value outside 16 bits raises an error naming the value and the range."""
        with pytest.raises(ValueError, match=r"-32768\.\.32767, got 40000"):
            encode([40000], Codec.PCMU)

    @pytest.mark.parametrize("codec", list(Codec))
    def test_every_code_word_round_trips(self, codec: Codec) -> None:
        """decode then encode gives back every one of the 256 code words (except -0)."""
        words = bytes(range(256))
        back = encode(decode(words, codec), codec)
        for word, again in zip(words, back, strict=True):
            if codec is Codec.PCMU and word == 0x7F:
                assert again == 0xFF  # mu-law's negative zero re-encodes as positive zero
            else:
                assert again == word

    @given(sample=pcm_samples)
    def test_round_trip_error_is_bounded(self, sample: int) -> None:
        """Encode/decode error stays within half a quantisation step of the sample's segment."""
        for codec, table in ((Codec.PCMU, ULAW_DECODE), (Codec.PCMA, ALAW_DECODE)):
            back = table[encode([sample], codec)[0]]
            # The largest G.711 step is 1024 (mu-law) / 1024 (A-law) in the top segment.
            step = 1024 if abs(sample) >= 16384 else max(32, abs(sample) // 8)
            assert abs(back - sample) <= step, (codec, sample, back)

    @given(sample=pcm_samples)
    def test_encode_is_idempotent_after_decode(self, sample: int) -> None:
        """Re-coding a decoded value is stable: what an echo peer returns is bit-exact."""
        for codec in Codec:
            word = encode([sample], codec)
            assert encode(decode(word, codec), codec) == word


class TestLevels:
    def test_full_scale_sine_is_about_minus_three_dbov(self) -> None:
        """A full-scale sine measures -3 dBov; half amplitude -9 dBov."""
        assert rms_dbov(tone(1000, 32767, 8000)) == pytest.approx(-3.01, abs=0.05)
        assert rms_dbov(tone(1000, 16384, 8000)) == pytest.approx(-9.03, abs=0.05)

    def test_digital_silence_is_the_floor(self) -> None:
        """All-zero audio and an empty frame report the floor, not minus infinity."""
        assert rms_dbov([0] * 160) == SILENCE_FLOOR_DBOV
        assert rms_dbov([]) == SILENCE_FLOOR_DBOV
        assert payload_dbov(b"", Codec.PCMU) == SILENCE_FLOOR_DBOV

    @pytest.mark.parametrize("codec", list(Codec))
    def test_payload_level_matches_decoded_level(self, codec: Codec) -> None:
        """The table-based payload level equals the level of the decoded samples."""
        payload = encode(tone(440, 8000, 160), codec)
        assert payload_dbov(payload, codec) == pytest.approx(rms_dbov(decode(payload, codec)))

    def test_silence_payloads_are_silence(self) -> None:
        """G.711 silence frames (0xFF / 0xD5) fall below the silence threshold; a tone does not."""
        assert is_silence(payload_dbov(b"\xff" * 160, Codec.PCMU))
        assert is_silence(payload_dbov(b"\xd5" * 160, Codec.PCMA))
        assert not is_silence(payload_dbov(encode(tone(440, 8000, 160), Codec.PCMU), Codec.PCMU))


class TestTone:
    def test_frames_are_phase_continuous(self) -> None:
        """Two consecutive 20 ms frames equal one 40 ms tone."""
        assert tone(440, 1000, 160) + tone(440, 1000, 160, start=160) == tone(440, 1000, 320)

    def test_peak_is_the_amplitude(self) -> None:
        """A 1 kHz tone at 8 kHz hits its amplitude every 8 samples."""
        samples = tone(1000, 12000, 80)
        assert max(samples) == 12000
        assert math.isclose(min(samples), -12000)

    def test_bad_amplitude_is_rejected(self) -> None:
        """An amplitude beyond 16 bits raises an error naming it."""
        with pytest.raises(ValueError, match=r"amplitude must be in 0\.\.32767, got 40000"):
            tone(440, 40000, 10)
