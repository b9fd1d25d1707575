"""The real daemon: a secret file moved away mid-run is the monitor's fault, not the vendor's
(issue 11, defect 1: it used to give failed probes and unavailable buckets)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_harness import free_port, running_daemon, wait_until
from tests.test_daemon import BUCKET, http_target, sla, states_between, write_config
from tests.web_target import WebTarget, web_target

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def target() -> Iterator[WebTarget]:
    with web_target() as t:
        yield t


class TestMovedSecret:
    def test_unreadable_password_file_is_unknown_never_unavailable(
        self, tmp_path: Path, target: WebTarget
    ) -> None:
        """The bearer token file disappears for two buckets while the endpoint is healthy:
        every probe fails with secret_unavailable (outcome error), the buckets are unknown,
        none is unavailable, and the month metrics keep it apart."""
        secret = tmp_path / "bearer"
        secret.write_text("s3cret\n", encoding="utf-8")
        port = free_port()
        config = write_config(
            tmp_path,
            port,
            [http_target("api", target.url("svc"), auth={"bearer": {"file": str(secret)}})],
            [{"name": "web", "targets": ["api"]}],
            [sla("web-sla", "web")],
        )
        with running_daemon(config, port) as daemon:
            wait_until(
                lambda: daemon.metric("slawatch_probe_success", target="api") == 1.0, 10, "api up"
            )
            time.sleep(BUCKET - time.time() % BUCKET + 0.05)
            t0 = time.time()
            moved = secret.rename(tmp_path / "bearer.moved")
            time.sleep(2 * BUCKET)
            moved.rename(secret)
            t1 = time.time() - 0.5
            wait_until(
                lambda: "pending" not in states_between(daemon, "web-sla", t0, t1),
                3 * BUCKET,
                "buckets closed",
            )
            assert states_between(daemon, "web-sla", t0, t1) == ["unknown", "unknown"]
            assert (daemon.metric("slawatch_probes_total", target="api", outcome="error") or 0) >= 5
            assert daemon.metric("slawatch_month_buckets", sla="web-sla", state="unavailable") == 0
            assert (daemon.metric("slawatch_month_monitor_error_buckets", sla="web-sla") or 0) >= 2
            report = daemon.json("/api/v1/report?service=web&format=json")
            month = report[0] if isinstance(report, list) else report["reports"][0]
            assert month["outages"] == []
            assert month["monitor_errors"]["secret_unavailable"] >= 5
