"""Probing is isolated from serving (issue 16, problem 2): a burst of reads leaves every probe on
time, and runs that did not start on time or never started are counted.

The bounded-time version of bench/http_load_bench.py: the real daemon probes loopback targets
every second on 10 s buckets while 200 concurrent reads hit every expensive endpoint. It asserts
on counts the daemon exports (late and skipped runs, timeout results), never on wall-clock time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from monitor.runtime.scheduler import LATE_AFTER, ProbeScheduler, ScheduledTarget, slice_of
from probes.registry import PROBE_KINDS
from tests.daemon_harness import ROOT, running_daemon, wait_until
from tests.test_alerting_e2e import daemon_config
from tests.test_deploy_contract import free_port
from tests.web_target import web_target

pytestmark = pytest.mark.timeout(120)

TARGETS = 20
READS = 200
ENDPOINTS = ("/api/v1/buckets", "/api/v1/status", "/api/v1/report", "/metrics", "/")


class TestSkippedRuns:
    """The scheduler counts runs a stall made it skip."""

    async def test_stall_longer_than_an_interval(self) -> None:
        """Planning after a 10.5 s stall counts every grid time of every target missed in it
        (all but those of the last slice; each target then runs at its next grid time)."""
        now = [1_000_000.0]
        scheduler = ProbeScheduler(lambda target, result: None, clock=lambda: now[0])
        kind = PROBE_KINDS["tcp"]
        targets = [
            ScheduledTarget(f"t{i}", kind, None, interval=1.0, timeout=0.5) for i in range(5)
        ]
        scheduler.apply(targets, now=now[0])
        scheduler._plan(scheduler._groups[1.0], now[0])
        assert scheduler.runs_skipped == 0
        planned = scheduler._groups[1.0].planned_until
        now[0] += 10.5
        scheduler._plan(scheduler._groups[1.0], now[0])
        # The window (planned, now - 1 slice] lost each target's grid times: overdue runs
        # wait for their next grid time (spread over one interval) instead of all at once.
        missed_window = now[0] - slice_of(1.0) - planned
        assert scheduler.runs_skipped == pytest.approx(5 * missed_window, abs=5)
        assert scheduler.runs_skipped >= 5 * 9 - 5
        for timer in scheduler._timers.values():
            timer.cancel()

    def test_late_threshold(self) -> None:
        """A run counts as late after a second: well above normal timer jitter."""
        assert LATE_AFTER == 1.0


def read_burst(base: str, count: int) -> Counter[int]:
    """``count`` concurrent GETs spread over the expensive endpoints, sent by
    bench/http_load_bench.py in its own process (not sharing a GIL with the target server);
    status -> how many."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "http_load_bench.py"), "burst", base,
         "--reads", str(count), "--paths", *ENDPOINTS],
        capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    return Counter({int(k): v for k, v in json.loads(done.stdout)["statuses"].items()})


class TestReadBurst:
    """200 concurrent reads against a daemon probing loopback targets every second."""

    def test_no_false_timeout_no_late_run(self, tmp_path: Path) -> None:
        """Every read gets 200 or 503 (never 500), the bucket list is valid JSON, and the
        daemon counts no timeout result, no late run and no skipped run."""
        with web_target() as target:
            target.set("home", "up")
            port = free_port()
            path = daemon_config(tmp_path, port, target.url("home"))
            config = json.loads(path.read_text())
            [probe] = config["targets"]
            config["targets"] = [
                {**probe, "name": f"web-{i}", "timeout": "500ms"} for i in range(TARGETS)
            ]
            config["services"][0]["targets"] = [f"web-{i}" for i in range(TARGETS)]
            path.write_text(json.dumps(config))
            with running_daemon(path, port) as daemon:
                wait_until(
                    lambda: all(
                        daemon.metric("slawatch_probe_success", target=f"web-{i}") == 1.0
                        for i in range(TARGETS)
                    ),
                    15,
                    "every target probed once",
                )
                statuses: Counter[int] = Counter()
                for _ in range(3):
                    statuses += read_burst(daemon.base, READS)
                assert set(statuses) <= {200, 503}, statuses  # 0 would be a connection error
                assert statuses[200] >= 3 * len(ENDPOINTS), statuses
                status, body = daemon.get("/api/v1/buckets")
                assert status == 200
                assert json.loads(body)["buckets"][0]["bucket_seconds"] == 10
                time.sleep(2)  # the runs due during the last burst have reported
                timeouts = sum(
                    daemon.metric("slawatch_probes_total", target=f"web-{i}", outcome="timeout")
                    or 0
                    for i in range(TARGETS)
                )
                counts = (
                    timeouts,
                    daemon.metric("slawatch_probe_runs_skipped_total"),
                    daemon.metric("slawatch_probe_runs_late_total"),
                )
                assert counts == (0, 0, 0), (counts, statuses)
