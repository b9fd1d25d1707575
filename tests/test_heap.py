"""The collector policy for large configurations (monitor.runtime.heap, issue 20)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from monitor.runtime import heap


@pytest.fixture
def restored() -> Iterator[None]:
    """Leave the process's collector as it was."""
    thresholds = gc.get_threshold()
    yield
    heap.manage(False)
    gc.set_threshold(*thresholds)
    gc.unfreeze()


class TestHeap:
    def test_off_for_small_configurations(self, restored: None) -> None:
        """Unmanaged (a small configuration): the thresholds are left alone, nothing frozen."""
        thresholds = gc.get_threshold()
        heap.manage(False)
        assert not heap.managed()
        assert heap.long_lived(10 * heap.FREEZE_AFTER) is False
        assert gc.get_threshold() == thresholds

    def test_freezes_when_a_bucket_close_worth_moved_at_once(self, restored: None) -> None:
        """Managed: full passes are rarer, the young thresholds CPython's; the heap is frozen
        when ``FREEZE_AFTER`` months or more were built or moved at once, never for fewer
        (a second's few SLAs, however many such seconds)."""
        heap.manage(True)
        assert gc.get_threshold() == (heap.YOUNG, heap.MIDDLE_AFTER, heap.FULL_AFTER)
        for _ in range(5):
            assert heap.long_lived(heap.FREEZE_AFTER - 1) is False
        before = gc.get_freeze_count()
        kept = [[n] for n in range(1000)]  # alive now: frozen with the rest
        assert heap.long_lived(heap.FREEZE_AFTER) is True
        assert gc.get_freeze_count() >= before + len(kept)
        assert heap.long_lived(0) is False
