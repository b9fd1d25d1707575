"""The simplified G.107 E-model (probes/sip/mos.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from probes.sip.mos import (
    G711_WITH_PLC,
    G711_WITHOUT_PLC,
    delay_impairment,
    effective_equipment_impairment,
    estimate_mos,
    mos_from_r,
    r_factor,
)


class TestMosFromR:
    def test_default_r_is_a_good_call(self) -> None:
        """R = 93.2 maps to MOS 4.41 (the G.107 reference point)."""
        assert mos_from_r(93.2) == pytest.approx(4.409, abs=0.001)

    @pytest.mark.parametrize(("r", "mos"), [(-5.0, 1.0), (0.0, 1.0), (100.0, 4.5), (120.0, 4.5)])
    def test_clamped_outside_zero_to_hundred(self, r: float, mos: float) -> None:
        """R below 0 gives 1.0 and above 100 gives 4.5."""
        assert mos_from_r(r) == mos

    def test_known_points(self) -> None:
        """R = 50 and R = 70 give the textbook MOS values (2.58, 3.60)."""
        assert mos_from_r(50.0) == pytest.approx(2.575, abs=0.001)
        assert mos_from_r(70.0) == pytest.approx(3.5961, abs=0.001)

    @given(a=st.floats(min_value=-10, max_value=110), b=st.floats(min_value=-10, max_value=110))
    def test_monotonic(self, a: float, b: float) -> None:
        """A higher R never gives a lower MOS, and MOS stays within 1..4.5."""
        low, high = sorted((a, b))
        assert 1.0 <= mos_from_r(low) <= mos_from_r(high) <= 4.5


class TestImpairments:
    def test_no_loss_no_impairment(self) -> None:
        """G.711 without loss has Ie_eff = 0."""
        assert effective_equipment_impairment(0.0, G711_WITH_PLC) == 0.0

    def test_one_percent_loss(self) -> None:
        """1% random loss: Ie_eff = 95 * 1 / (1 + 25.1) with PLC, 95 / 5.3 without."""
        assert effective_equipment_impairment(0.01, G711_WITH_PLC) == pytest.approx(3.64, abs=0.01)
        assert effective_equipment_impairment(0.01, G711_WITHOUT_PLC) == pytest.approx(
            17.92, abs=0.01
        )

    def test_burstiness_hurts(self) -> None:
        """The same loss in bursts (BurstR 2) impairs more than random loss."""
        random_loss = effective_equipment_impairment(0.05, G711_WITH_PLC)
        assert effective_equipment_impairment(0.05, G711_WITH_PLC, 2.0) > random_loss

    def test_delay_below_knee_is_small(self) -> None:
        """Id is 0.024 per ms below 177.3 ms and grows faster beyond."""
        assert delay_impairment(100.0) == pytest.approx(2.4)
        assert delay_impairment(300.0) == pytest.approx(7.2 + 0.11 * 122.7)

    @pytest.mark.parametrize(
        ("call", "message"),
        [
            (
                lambda: effective_equipment_impairment(1.5, G711_WITH_PLC),
                "loss_ratio must be in 0..1, got 1.5",
            ),
            (
                lambda: effective_equipment_impairment(0.1, G711_WITH_PLC, 0.5),
                "burst_ratio must be at least 1",
            ),
            (lambda: delay_impairment(-1.0), "cannot be negative, got -1.0"),
            (lambda: estimate_mos(0.0, "G729"), "no E-model values for codec 'G729'"),
            (lambda: estimate_mos(0.0, jitter_seconds=-0.1), "cannot be negative"),
        ],
    )
    def test_bad_inputs(self, call: object, message: str) -> None:
        """Out-of-range inputs are refused with the value named."""
        assert callable(call)
        with pytest.raises(ValueError, match=message):
            call()


class TestEstimateMos:
    def test_clean_call(self) -> None:
        """No loss, no jitter: about 4.4 (R = 93.2 minus 20 ms of packetisation delay)."""
        assert estimate_mos(0.0) == pytest.approx(mos_from_r(93.2 - 0.48), abs=1e-9)
        assert estimate_mos(0.0) > 4.35

    def test_heavy_loss_is_poor(self) -> None:
        """20% loss lands below 3 (users complain), 50% below 2."""
        assert estimate_mos(0.2) < 3.0
        assert estimate_mos(0.5) < 2.0

    @given(
        a=st.floats(min_value=0, max_value=1),
        b=st.floats(min_value=0, max_value=1),
        jitter=st.floats(min_value=0, max_value=0.5),
    )
    def test_more_loss_never_raises_mos(self, a: float, b: float, jitter: float) -> None:
        """MOS is non-increasing in loss at any jitter, and stays in 1..4.5."""
        low, high = sorted((a, b))
        worse = estimate_mos(high, "PCMA", jitter_seconds=jitter)
        assert 1.0 <= worse <= estimate_mos(low, "PCMA", jitter_seconds=jitter) <= 4.5

    def test_r_factor_combines_delay_and_loss(self) -> None:
        """R subtracts both impairments from 93.2."""
        expected = (
            93.2 - delay_impairment(200.0) - effective_equipment_impairment(0.02, G711_WITH_PLC)
        )
        assert r_factor(0.02, one_way_delay_ms=200.0) == pytest.approx(expected)
