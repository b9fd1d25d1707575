"""An estimated MOS from measured loss, after the ITU-T G.107 E-model (simplified).

Only the impairments a one-way receive measurement can see are modelled:
``R = 93.2 - Id - Ie_eff`` with the default values for everything else (G.107 table 3), so
R = 93.2 is a perfect G.711 call. ``Ie_eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)``
(G.107 7-29) with codec values from G.113 Appendix I, and ``Id`` from one-way delay using the
common Cole-Rosenbluth approximation of G.107's delay curve. The score is an estimate (MOS-CQE
in P.800.1 terms), good for comparing a vendor's calls over time, not a listening test.
"""

from __future__ import annotations

from dataclasses import dataclass

R_DEFAULT = 93.2
MOS_MIN = 1.0
MOS_MAX = 4.5


@dataclass(frozen=True, slots=True)
class CodecImpairment:
    """A codec's equipment impairment ``Ie`` and packet-loss robustness ``Bpl`` (G.113 App. I)."""

    ie: float
    bpl: float


G711_WITH_PLC = CodecImpairment(ie=0.0, bpl=25.1)
"""G.711 with packet loss concealment (G.711 Appendix I), what current endpoints run."""
G711_WITHOUT_PLC = CodecImpairment(ie=0.0, bpl=4.3)

CODEC_IMPAIRMENTS: dict[str, CodecImpairment] = {"PCMU": G711_WITH_PLC, "PCMA": G711_WITH_PLC}


def effective_equipment_impairment(
    loss_ratio: float, codec: CodecImpairment, burst_ratio: float = 1.0
) -> float:
    """``Ie_eff`` for a packet loss ratio in 0..1 (``burst_ratio`` 1 = random loss)."""
    if not 0.0 <= loss_ratio <= 1.0:
        raise ValueError(f"loss_ratio must be in 0..1, got {loss_ratio}")
    if burst_ratio < 1.0:
        raise ValueError(f"burst_ratio must be at least 1, got {burst_ratio}")
    ppl = loss_ratio * 100.0
    return codec.ie + (95.0 - codec.ie) * ppl / (ppl / burst_ratio + codec.bpl)


def delay_impairment(one_way_delay_ms: float) -> float:
    """``Id`` from one-way mouth-to-ear delay; negligible below ~177 ms."""
    if one_way_delay_ms < 0:
        raise ValueError(f"one_way_delay_ms cannot be negative, got {one_way_delay_ms}")
    excess = max(0.0, one_way_delay_ms - 177.3)
    return 0.024 * one_way_delay_ms + 0.11 * excess


def r_factor(
    loss_ratio: float,
    codec: CodecImpairment = G711_WITH_PLC,
    *,
    one_way_delay_ms: float = 0.0,
    burst_ratio: float = 1.0,
) -> float:
    """The transmission rating R (not clamped; can fall below 0 for very bad calls)."""
    ie_eff = effective_equipment_impairment(loss_ratio, codec, burst_ratio)
    return R_DEFAULT - delay_impairment(one_way_delay_ms) - ie_eff


def mos_from_r(r: float) -> float:
    """G.107 annex B: ``MOS = 1 + 0.035R + 7e-6 R(R-60)(100-R)``, clamped to 1..4.5."""
    if r <= 0.0:
        return MOS_MIN
    if r >= 100.0:
        return MOS_MAX
    mos = 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    return min(MOS_MAX, max(MOS_MIN, mos))


def estimate_mos(
    loss_ratio: float,
    codec: str = "PCMU",
    *,
    jitter_seconds: float = 0.0,
    packet_seconds: float = 0.02,
    round_trip_seconds: float | None = None,
) -> float:
    """The call's estimated MOS from its measured loss, jitter and (with RTCP) round trip.

    The one-way delay is what a receiver adds itself (one packet of packetisation plus a
    jitter buffer of twice the jitter) plus the network's share: half the RTCP round-trip
    time when it was measured (RFC 3550 LSR/DLSR), nothing otherwise (a one-ended
    measurement cannot see it). On a healthy network Id stays near zero; heavy jitter or a
    long round trip lowers the score.
    """
    impairment = CODEC_IMPAIRMENTS.get(codec)
    if impairment is None:
        raise ValueError(
            f"no E-model values for codec {codec!r}; known: {sorted(CODEC_IMPAIRMENTS)}"
        )
    if jitter_seconds < 0 or packet_seconds < 0:
        raise ValueError(
            f"jitter_seconds and packet_seconds cannot be negative, got {jitter_seconds}, "
            f"{packet_seconds}"
        )
    if round_trip_seconds is not None and round_trip_seconds < 0:
        raise ValueError(f"round_trip_seconds cannot be negative, got {round_trip_seconds}")
    network = (round_trip_seconds or 0.0) / 2.0
    delay_ms = 1000.0 * (packet_seconds + 2.0 * jitter_seconds + network)
    return mos_from_r(r_factor(loss_ratio, impairment, one_way_delay_ms=delay_ms))
