"""The collector policy for large configurations (monitor.runtime.heap, issue 20)."""

from __future__ import annotations

import gc
import platform
import threading
from collections.abc import Iterator

import pytest

from monitor.runtime import heap
from tests.peers import missing_peer


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


class TestTrim:
    """rss27: the C heap's free pages given back after a large pass, off the event loop."""

    def test_nothing_when_unmanaged(self, restored: None) -> None:
        heap.manage(False)
        assert heap.trim() is None

    def test_nothing_without_malloc_trim(
        self, restored: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A C library without ``malloc_trim`` (musl, macOS): nothing is started, and a
        freeze still happens."""
        monkeypatch.setattr(heap, "_malloc_trim", None)
        heap.manage(True)
        assert heap.trim() is None
        assert heap.long_lived(heap.FREEZE_AFTER) is True

    def test_trims_in_a_thread_one_at_a_time(
        self, restored: None, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Managed: ``malloc_trim(0)`` runs in a thread of its own; a trim asked for while one
        runs is not started (a second thread would only wait for the heap's lock)."""
        calls: list[int] = []
        running, finish = threading.Event(), threading.Event()

        def fake(pad: int) -> int:
            calls.append(pad)
            running.set()
            finish.wait(10)
            return 1

        monkeypatch.setattr(heap, "_malloc_trim", fake)
        heap.manage(True)
        first = heap.trim()
        assert first is not None
        assert first is not threading.current_thread()
        assert running.wait(10)
        assert heap.trim() is None  # the first still runs
        finish.set()
        first.join(10)
        second = heap.trim()  # the first is done: the next may run
        assert second is not None
        second.join(10)
        assert calls == [0, 0]

    def test_a_freeze_trims(self, restored: None, monkeypatch: pytest.MonkeyPatch) -> None:
        calls: list[int] = []
        monkeypatch.setattr(heap, "_malloc_trim", calls.append)
        heap.manage(True)
        assert heap.long_lived(heap.FREEZE_AFTER - 1) is False
        assert calls == []
        assert heap.long_lived(heap.FREEZE_AFTER) is True
        for thread in [t for t in threading.enumerate() if t.name == "malloc-trim"]:
            thread.join(10)
        assert calls == [0]

    def test_glibc_found_where_there_is_glibc(self) -> None:
        """On glibc (the machines the daemon ships to) the real function is found and runs."""
        if platform.libc_ver()[0] != "glibc":
            missing_peer("not a glibc system: trim is a no-op there (test above)")
        assert heap._malloc_trim is not None
        assert heap._malloc_trim(0) in (0, 1)
