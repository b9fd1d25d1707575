"""`slawatch demo` (what ./scripts/run.sh starts): the shipped demo configuration runs, its
loopback targets answer, and metrics, buckets and the report are there within seconds.

The demo's ports are fixed by config/demo.yaml (9180 for the daemon, 18080 and 15060 for its
targets), as a newcomer gets them.
"""

from __future__ import annotations

import shutil
import signal
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.daemon_harness import ROOT, DaemonProcess, wait_until

pytestmark = [pytest.mark.timeout(90), pytest.mark.calendar]


def _port_free(port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        # As the demo binds: a port held only by TIME_WAIT connections is free to it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def month_buckets(at: float, bucket: int = 10) -> tuple[int, int]:
    """The demo SLA's (10-second buckets, UTC) bucket count in the month holding ``at``, and
    how many of them have not ended by ``at`` (the bucket in progress is still pending)."""
    moment = datetime.fromtimestamp(at, UTC)
    start = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    end = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=UTC)
    count = int((end - start).total_seconds()) // bucket
    return count, count - int(at - start.timestamp()) // bucket


class TestDemo:
    def test_demo_probes_its_targets_and_serves_metrics_and_a_claim(self, tmp_path: Path) -> None:
        """Every demo target but the flaky one is up (SIP OPTIONS included), the month's
        buckets are exported, the claim draft renders, and SIGTERM exits cleanly."""
        busy = [p for p in (9180, 18080) if not _port_free(p)]
        busy += [15060] if not _port_free(15060, socket.SOCK_DGRAM) else []
        assert not busy, f"the demo's fixed ports are taken: {busy} (stop the running demo)"
        config = tmp_path / "demo.yaml"
        shutil.copy(ROOT / "config" / "demo.yaml", config)
        daemon = DaemonProcess(config, 9180, tmp_path / "demo.log", command="demo")
        try:
            daemon.wait_ready()
            for target in ("agent-login", "api-health", "voice-edge-options", "loopback-canary"):
                wait_until(
                    lambda t=target: daemon.metric("slawatch_probe_success", target=t) == 1.0,
                    15,
                    f"{target} up",
                )
            # The month's buckets, derived from when they were read (never "there are pending
            # buckets", which a month's last bucket would make a coin toss): every 10-second
            # bucket of the UTC month is counted once, and those not yet ended are pending.
            before = time.time()
            buckets = {
                dict(labels)["state"]: value
                for (name, labels), value in daemon.metrics().items()
                if name == "slawatch_month_buckets" and dict(labels)["sla"] == "web-availability"
            }
            after = time.time()
            assert set(buckets) == {"available", "unavailable", "excluded", "unknown", "pending"}
            pending = {month_buckets(at)[1] for at in (before, after)}
            totals = {month_buckets(at)[0] for at in (before, after)}
            assert sum(buckets.values()) in totals
            assert min(pending) <= buckets["pending"] <= max(pending)
            status, claim = daemon.get("/api/v1/report?format=claim")
            assert status == 200
            assert "10-second" in claim or "No service credit is due" in claim
            assert (tmp_path / "var" / "demo" / "slawatch.db").exists()
            assert (tmp_path / "var" / "demo" / "api-token").stat().st_mode & 0o077 == 0
            daemon.proc.send_signal(signal.SIGTERM)
            assert daemon.proc.wait(10) == 0
        finally:
            daemon.stop()
