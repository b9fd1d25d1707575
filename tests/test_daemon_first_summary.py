"""tl31 (issue 20): after a start, the flush loop's first iteration (the first summary, which
``/readyz`` waits for: every SLA's ``/metrics`` lines written) runs at once, not after the
flush interval."""

from __future__ import annotations

from pathlib import Path

import pytest

import monitor.runtime.daemon as daemon_module
from monitor.clock import FixedClock
from monitor.config import load_config
from monitor.http.server import serve
from monitor.runtime.daemon import Daemon
from tests.test_daemon_resilience import T0, core_config, readyz, until

pytestmark = pytest.mark.timeout(90)


async def test_ready_does_not_wait_for_the_flush_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an hour's flush interval, the daemon is still ready within seconds of its start
    (before: an hour)."""
    monkeypatch.setattr(daemon_module, "FLUSH_INTERVAL", 3600.0)
    path = core_config(tmp_path)
    daemon = Daemon(load_config(path), path, clock=FixedClock(T0))
    await daemon.start()
    try:
        daemon.serving(await serve(daemon))
        assert daemon.listen_address is not None
        port = daemon.listen_address[1]

        async def ready() -> bool:
            return (await readyz(port))[0] == 200

        await until(ready, "ready with an hour's flush interval", within=30)
    finally:
        await daemon.stop()
