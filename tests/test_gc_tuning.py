"""The collector's schedule for a large daemon (issue 20: the scheduling lag's tail)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from monitor.runtime.gc_tuning import LARGE_FROM, YOUNG_THRESHOLD, tune_collector


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    """CPython's thresholds as this test process has them, restored afterwards."""
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield saved
    finally:
        gc.set_threshold(*saved)


class TestTuneCollector:
    def test_small_daemon_keeps_the_defaults(self, thresholds: tuple[int, int, int]) -> None:
        """Below LARGE_FROM targets nothing changes (a test process running one daemon)."""
        assert tune_collector(LARGE_FROM - 1) is False
        assert gc.get_threshold() == (700, 10, 10)

    def test_large_daemon_raises_only_the_young_threshold(
        self, thresholds: tuple[int, int, int]
    ) -> None:
        """From LARGE_FROM targets the young threshold is raised; the older two are kept."""
        assert tune_collector(LARGE_FROM) is True
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
        assert tune_collector(10_000) is False  # a second start or reload changes nothing
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)

    def test_never_lowers_or_enables(self, thresholds: tuple[int, int, int]) -> None:
        """A higher threshold set elsewhere, or collection switched off (0), is left alone."""
        gc.set_threshold(YOUNG_THRESHOLD * 2, 5, 5)
        assert tune_collector(10_000) is False
        assert gc.get_threshold() == (YOUNG_THRESHOLD * 2, 5, 5)
        gc.set_threshold(0, 10, 10)
        assert tune_collector(10_000) is False
        assert gc.get_threshold() == (0, 10, 10)

    def test_young_collections_still_free_probe_cycles(
        self, thresholds: tuple[int, int, int]
    ) -> None:
        """Raised, the young generation still collects cycles (what a socket transport
        leaves): after YOUNG_THRESHOLD allocations a collection has run and freed them."""
        tune_collector(LARGE_FROM)

        class Node:
            def __init__(self) -> None:
                self.me = self  # a cycle, as asyncio's transport and its bound method

        gc.collect()
        refs = [weakref.ref(Node()) for _ in range(100)]
        assert any(ref() is not None for ref in refs)  # cycles wait for the collector
        keep = [[i] for i in range(YOUNG_THRESHOLD * 2)]  # allocations drive a collection
        assert all(ref() is None for ref in refs)
        del keep
