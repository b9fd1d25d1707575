"""hd34 (issue 20): the hourly snapshot save encodes a month only when it writes it.

A month unchanged since its last save (the same running month, version, buckets judged and
verdicts vouched for) is known so before it is encoded: every save encoded every held month
again and dropped the unchanged ones after (4.4 s of CPU at 10,000 one-target SLAs, nothing
written). The sample configuration and results, as ``tests/test_daemon_snapshots.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from monitor.clock import FixedClock
from monitor.runtime import snapshots as snapshots_module
from monitor.sla.running import JudgedState
from tests.test_daemon_eviction import sample_config
from tests.test_daemon_snapshots import NOW, _start
from tests.test_one_path import store_results

pytestmark = pytest.mark.timeout(120)


class TestSaveEncodesOnlyWhatItWrites:
    def test_unchanged_months_are_not_encoded_again(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """First save: every month encoded and written; again at the same instant: none
        encoded, none written; two hours later (buckets left memory): every month whose
        buckets judged moved is encoded and written, and only those."""
        config = sample_config(tmp_path)
        asyncio.run(store_results(config))
        encoded: list[int] = []
        real = snapshots_module.encode

        def counting(state: JudgedState) -> bytes:
            encoded.append(state.judged)
            return real(state)

        monkeypatch.setattr(snapshots_module, "encode", counting)

        async def run() -> None:
            daemon = await _start(config)
            try:
                saved = daemon.snapshots
                written: list[int] = []
                original = saved.save

                async def save(*args: Any, **kwargs: Any) -> int:
                    written.append(await original(*args, **kwargs))
                    return written[-1]

                saved.save = save  # type: ignore[method-assign]
                await daemon._save_snapshots(NOW.timestamp())
                assert written[-1] > 0
                assert len(encoded) == written[-1]
                encoded.clear()
                await daemon._save_snapshots(NOW.timestamp())
                assert (written[-1], encoded) == (0, [])
                clock = daemon.clock
                assert isinstance(clock, FixedClock)
                edge = daemon.state.evicted_before(300)
                clock.advance(2 * 3600)
                await daemon._summarise_and_flush()
                assert daemon.state.evicted_before(300) > edge
                await daemon._save_snapshots(clock())
                assert written[-1] > 0
                assert len(encoded) == written[-1]
            finally:
                await daemon.store.close()

        asyncio.run(run())
