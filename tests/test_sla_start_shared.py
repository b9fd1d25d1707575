"""Issue 20 (start-up at 10,000 SLAs): the shortcuts taken when building empty months, held
equal to the long way round.

- A running month built without windows skips ``_exclude`` and sets at once what it would
  leave; its figures equal ``compute_month``'s, before and after windows come later.
- Equal code arrays packed one after another share one packed object (``_pack_shared``):
  every SLA's previous month at a month's start. Each still unpacks to its own codes, and a
  month written after (a late tally) leaves the others sharing the old object unchanged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.sla.month import compute_month
from monitor.sla.packed import unpack
from monitor.sla.policy import BucketState, ExclusionKind, ExclusionWindow, Tally
from monitor.sla.running import RunningMonth, _pack_shared
from tests.strategies import engine_scenarios

_SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]


class TestMonthWithoutWindows:
    """The no-window constructor leaves what ``_exclude`` would, and its figures are exact."""

    @settings(max_examples=60, deadline=None, suppress_health_check=_SLOW)
    @given(
        scenario=engine_scenarios(),
        hours=st.lists(st.integers(0, 800), min_size=1, max_size=4),
        window=st.tuples(st.integers(-5, 760), st.integers(1, 40)),
    )
    def test_equals_exclude_and_compute_month(
        self, scenario: dict[str, Any], hours: list[int], window: tuple[int, int]
    ) -> None:
        """Built without windows, a month's state equals one pushed through ``_exclude``;
        advanced to any instants its result equals ``compute_month``'s, and after a window
        is added later too."""
        policy, service, grid = scenario["policy"], scenario["service"], scenario["grid"]
        tallies, canaries = scenario["tallies"], scenario["canaries"]
        month = RunningMonth(policy, service, scenario["month"], (), canaries=canaries)
        forced = RunningMonth(policy, service, scenario["month"], (), canaries=canaries)
        forced._exclude(_windows_only=True)
        for name in ("_excluded", "_applied", "_hidden", "_final", "_outages", "_packed"):
            assert getattr(month, name) == getattr(forced, name), name
        for hour in sorted(hours):
            at = grid.start + timedelta(hours=hour)
            now = None if at >= grid.end else at
            month.advance(tallies, now)
            reference = compute_month(
                policy, service, scenario["month"], tallies, (), canaries=canaries, now=now
            )
            assert tuple(month.result(now).states) == reference.states
        begin = grid.start + timedelta(hours=window[0])
        windows = [
            ExclusionWindow(
                id="w",
                start=begin,
                end=begin + timedelta(hours=window[1]),
                kind=ExclusionKind.SCHEDULED_MAINTENANCE,
            )
        ]
        month.replace_windows(windows)
        month.advance(tallies, None)
        reference = compute_month(
            policy, service, scenario["month"], tallies, windows, canaries=canaries, now=None
        )
        result = month.result(None)
        assert tuple(result.states) == reference.states
        assert result.exclusions_applied == reference.exclusions_applied


_POOL = [bytes([1]) * 40, bytes([1]) * 39 + bytes([2]), bytes([3, 1, 1]) * 13, b""]


class TestSharedPacking:
    """Equal arrays packed in a row share one packed object, which unpacks to each's codes."""

    @settings(max_examples=300, deadline=None)
    @given(picks=st.lists(st.integers(0, len(_POOL) - 1), min_size=1, max_size=20))
    def test_each_unpacks_to_its_codes(self, picks: list[int]) -> None:
        """Any sequence of arrays (repeats included): each packed object unpacks to the codes
        it was given, and an array equal to the one before gets the same object."""
        before: tuple[bytes, bytes] | None = None
        for pick in picks:
            codes = bytearray(_POOL[pick])
            packed = _pack_shared(codes)
            codes[:] = b"\x07" * len(codes)  # the caller's array is written after: no effect
            assert unpack(packed) == _POOL[pick]
            if before is not None and before[0] == _POOL[pick]:
                assert packed is before[1]
            before = (_POOL[pick], packed)

    @settings(max_examples=40, deadline=None, suppress_health_check=_SLOW)
    @given(scenario=engine_scenarios(), hour=st.integers(0, 700))
    def test_empty_previous_months_share_and_stay_exact(
        self, scenario: dict[str, Any], hour: int
    ) -> None:
        """Three complete months without tallies share one packed array; a late tally into
        one of them re-judges that month alone, and each equals ``compute_month``."""
        policy, service, grid = scenario["policy"], scenario["service"], scenario["grid"]
        empty: dict[str, dict[int, Tally]] = {}
        months = [RunningMonth(policy, service, scenario["month"], ()) for _ in range(3)]
        for month in months:
            month.advance(empty, None)
        packed = {id(month._packed) for month in months}
        assert len(packed) == 1
        assert months[0]._packed is not None
        hour %= grid.count
        start = grid.start_epoch + hour * 3600
        late = {
            name: {start: Tally(ok=0, failed=3, reasons={"late": 3})}
            for name in service.all_targets
        }
        months[1].mark(start)
        months[1].advance(late, None)
        assert months[1].result(None).states[hour] is not BucketState.UNKNOWN
        for month, tallies in ((months[0], empty), (months[1], late), (months[2], empty)):
            reference = compute_month(policy, service, scenario["month"], tallies, (), now=None)
            assert tuple(month.result(None).states) == reference.states
