"""Issue 20: a SIGHUP reload whose file keeps the running content hash rebuilds nothing, and the
secrets of a reloaded file are checked with the file, off the event loop.

The daemon runs on a fixed clock in November 2026 over the sample configuration
(``config/samples/report.yaml``); its store is opened but holds nothing.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.clock import FixedClock
from monitor.config import ConfigError, load_config, parse_config_text
from monitor.runtime.daemon import FREEZE_FROM, Daemon, freeze_heap
from monitor.sla.calendar import Month
from tests.test_one_path import SAMPLES

pytestmark = pytest.mark.timeout(120)

MONTH = Month(2026, 11)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def write_sample(tmp_path: Path, *, reorder: bool = False, **ivr: Any) -> Path:
    """The sample configuration; ``reorder`` writes its keys in reverse order with a comment
    (the same content), ``ivr`` changes the ``ujet-ivr`` SLA."""
    data = yaml.safe_load((SAMPLES / "report.yaml").read_text(encoding="utf-8"))
    data["monitor"]["state_dir"] = str(tmp_path)
    (sla,) = [s for s in data["slas"] if s["name"] == "ujet-ivr"]
    sla.update(ivr)
    if reorder:
        data = {key: data[key] for key in reversed(list(data))}
    text = yaml.safe_dump(data, sort_keys=False)
    path = tmp_path / "report.yaml"
    path.write_text(("# rewritten\n" if reorder else "") + text, encoding="utf-8")
    return path


@asynccontextmanager
async def started(path: Path) -> AsyncIterator[Daemon]:
    """A daemon over ``path`` on the fixed clock, its store open and its months read back as
    at start; the store is closed on the way out."""
    daemon = Daemon(load_config(path), path, clock=FixedClock(NOW.timestamp()))
    await daemon.store.open()
    try:
        await daemon._load_history(daemon.clock())
        yield daemon
    finally:
        await daemon.store.close()


class TestReloadKeepingTheContent:
    def test_same_content_rebuilds_nothing(self, tmp_path: Path) -> None:
        """A reload of a file with the running content (comments and key order aside), read
        as SIGHUP reads it, keeps the running configuration, accounting inputs, months and
        schedule as the very same objects, and reports a successful reload."""
        path = write_sample(tmp_path)

        async def run() -> None:
            async with started(path) as daemon:
                daemon.scheduler.apply(daemon._schedule(), now=daemon.clock())
                policies = daemon.accounting.inputs.policies
                results = [daemon.accounting.month_result(p, NOW, MONTH) for p in policies]
                config, inputs = daemon.config, daemon.accounting.inputs
                scheduled = daemon._bucket_lengths
                write_sample(tmp_path, reorder=True)
                loaded = await asyncio.to_thread(daemon.read_config, path)
                assert loaded is not config
                assert loaded.content_hash == config.content_hash
                daemon.health.reload_successful = False
                assert daemon.reload(loaded)
                assert daemon.config is config
                assert daemon.accounting.inputs is inputs
                assert daemon._bucket_lengths is scheduled
                assert daemon._background == []  # no month read back from the store
                for policy, result in zip(policies, results, strict=True):
                    assert daemon.accounting.month_result(policy, NOW, MONTH) is result
                assert daemon.health.reload_successful

        asyncio.run(run())

    def test_changed_content_is_applied(self, tmp_path: Path) -> None:
        """A file that changes an SLA is applied (the check above is on the content, not on
        the act of reloading)."""
        path = write_sample(tmp_path)

        async def run() -> None:
            async with started(path) as daemon:
                before = daemon.accounting.policy("ujet-ivr")
                write_sample(tmp_path, min_probes=2)
                loaded = await asyncio.to_thread(daemon.read_config, path)
                assert daemon.reload(loaded)
                await asyncio.gather(*daemon._background)
                assert daemon.config is loaded
                after = daemon.accounting.policy("ujet-ivr")
                assert after != before
                assert after.bucket_rule.min_probes == 2

        asyncio.run(run())

    def test_a_missing_secret_is_refused_with_the_file(self, tmp_path: Path) -> None:
        """The secrets of a reloaded file are checked where the file is read (the worker
        thread): a file naming a missing secret is refused there with its line, and the
        reload it is handed to keeps the running configuration."""
        path = write_sample(tmp_path)

        async def run() -> None:
            clock = FixedClock(NOW.timestamp())
            daemon = Daemon(load_config(path), path, clock=clock)
            config = daemon.config
            text = path.read_text(encoding="utf-8")
            missing = tmp_path / "no-such-token"
            path.write_text(
                text.replace("monitor:\n", f"monitor:\n  api_token: {{file: {missing}}}\n", 1),
                encoding="utf-8",
            )
            with pytest.raises(ConfigError) as raised:
                await asyncio.to_thread(daemon.read_config, path)
            assert any(".api_token" in line for line in raised.value.lines())
            assert daemon.reload(raised.value) is False
            assert daemon.config is config
            assert daemon.health.reload_successful is False

        asyncio.run(run())


class TestFreezeHeap:
    def test_a_large_configuration_freezes_the_heap_a_small_one_does_not(
        self, tmp_path: Path
    ) -> None:
        """From ``FREEZE_FROM`` targets and SLAs the heap is frozen (full collections no longer
        walk the configuration); a small configuration leaves the collector as it was."""
        gc.unfreeze()
        small = load_config(write_sample(tmp_path))
        freeze_heap(small)
        assert gc.get_freeze_count() == 0
        targets = "".join(
            f"  - {{name: t{i}, kind: tcp, tcp: {{host: 127.0.0.1, port: 9}}}}\n"
            for i in range(FREEZE_FROM)
        )
        big = parse_config_text("targets:\n" + targets)
        try:
            freeze_heap(big)
            assert gc.get_freeze_count() > 0
        finally:
            gc.unfreeze()
