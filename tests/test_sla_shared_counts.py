"""em30 (issue 20): what a start from an empty store shares between SLAs of the same terms.

Every SLA's previous month is then the same packed codes (one object, ``_pack_shared``), and
``_split_counts`` answers a second month of the same object and ``elapsed`` with the counts of
the first; the first month lines of ``/metrics`` are the last written SLA's with this SLA's
labels when the figures are equal (``tests/test_metrics_sla_text.py``). Properties: the
remembered counts are the counts, for any sequence of codes asked (the same object, equal
objects, arrays); two SLAs whose complete months share the packed codes and the counts
diverge correctly when one of them gets a failure, each equal to ``compute_month``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import compute_month
from monitor.sla.policy import ServiceDef, SlaPolicy, Tally
from monitor.sla.running import _CODE, RunningMonth, _count_split, _split_counts
from tests.strategies import STANDARD_CREDIT

MONTH = Month(2026, 11)
GRID = month_grid(MONTH, "UTC", 3600)
_CODES = sorted(_CODE.values())


class TestSharedCounts:
    @settings(max_examples=100, deadline=None)
    @given(
        pool=st.lists(
            st.lists(st.sampled_from(_CODES), max_size=40).map(bytes), min_size=1, max_size=3
        ),
        asks=st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 40), st.sampled_from(["same", "copy"])),
            min_size=1,
            max_size=12,
        ),
    )
    def test_remembered_counts_are_the_counts(
        self, pool: list[bytes], asks: list[tuple[int, int, str]]
    ) -> None:
        """Any sequence of codes asked (the same bytes object again, an equal copy, a
        bytearray) and any ``elapsed``: the counts equal the counting's."""
        for which, elapsed, how in asks:
            codes = pool[which % len(pool)]
            elapsed = min(elapsed, len(codes))
            asked: bytes | bytearray = codes if how == "same" else bytearray(codes)
            assert _split_counts(asked, elapsed) == _count_split(codes, elapsed)


def _month_of(name: str) -> tuple[SlaPolicy, ServiceDef, RunningMonth]:
    service = ServiceDef(f"s-{name}", ("https://a.example/",))
    policy = SlaPolicy(name, service.name, Decimal("99.9"), STANDARD_CREDIT, bucket_seconds=3600)
    return policy, service, RunningMonth(policy, service, MONTH, ())


def _same(a: Any, b: Any) -> None:
    assert a.to_json() == b.to_json()
    assert tuple(a.states) == tuple(b.states)


class TestSharedEmptyMonths:
    @settings(max_examples=40, deadline=None)
    @given(
        failing=st.lists(st.integers(0, GRID.count - 1), min_size=1, max_size=5, unique=True),
        first=st.booleans(),
    )
    def test_two_slas_sharing_a_month_diverge_on_a_failure(
        self, failing: list[int], first: bool
    ) -> None:
        """Two SLAs of the same terms whose complete months hold no tally share the packed
        codes and their counts; late failures in one of them change its figures only, each
        equal to ``compute_month`` over its own tallies, before and after."""
        months = [_month_of("one"), _month_of("two")]
        tallies: list[dict[str, dict[int, Tally]]] = [{}, {}]
        for (policy, service, running), own in zip(months, tallies, strict=True):
            running.advance(own, None)
            _same(running.result(None), compute_month(policy, service, MONTH, own, ()))
        assert months[0][2]._packed is months[1][2]._packed  # shared, as at a start
        hit = 0 if first else 1
        policy, service, running = months[hit]
        for index in failing:
            epoch = GRID.bucket_start(index)
            tallies[hit].setdefault("https://a.example/", {})[epoch] = Tally(
                ok=0, failed=2, reasons={"http_503": 2}
            )
            running.mark(epoch)
        for (policy, service, running), own in zip(months, tallies, strict=True):
            running.advance(own, None)
            _same(running.result(None), compute_month(policy, service, MONTH, own, ()))
        results = [running.result(None) for _, _, running in months]
        assert results[hit].buckets_unavailable == len(failing)
        assert results[1 - hit].buckets_unavailable == 0
