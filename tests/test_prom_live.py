"""Live, for real: blackbox_exporter and slawatch probe the same local HTTP target.

Prometheus scrapes blackbox_exporter every second; the slawatch daemon (a real `slawatch run`
process) probes the target itself every second with an `http` target AND reads the exporter's
`probe_success` through a `prometheus` target, filled by the live filler after each 10 s
bucket closes. The test switches the target down and up at known times; afterwards the two
targets' bucket verdicts must be equal.

Tolerance at bucket edges: none for the buckets compared. Every switch happens at least 3 s
from a bucket edge, because the two probers sample on their own 1 s grids (offset from each
other by up to a second, plus the 0.8 s timeout), so a switch within a second of an edge could
land in different buckets for them, and both would still be right. The buckets compared are
the whole ones after both started and before the daemon stopped.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from monitor.sla.buckets import target_verdict
from monitor.sla.policy import BucketRule, BucketState, Tally
from tests.daemon_harness import free_port, running_daemon, wait_until
from tests.peers import require_binary
from tests.test_deploy_contract import running, wait_http_ok
from tests.web_target import web_target

pytestmark = pytest.mark.timeout(240)

BUCKET = 10


def _blackbox_config(path: Path) -> Path:
    path.write_text(
        "modules:\n"
        "  http_2xx:\n"
        "    prober: http\n"
        "    timeout: 800ms\n"
        "    http:\n"
        "      preferred_ip_protocol: ip4\n"
        "      fail_if_body_not_matches_regexp: ['service OK']\n"
    )
    return path


def _prometheus_config(path: Path, exporter: str, target_url: str) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [
            {
                "job_name": "blackbox",
                "metrics_path": "/probe",
                "params": {"module": ["http_2xx"]},
                "static_configs": [{"targets": [target_url]}],
                "relabel_configs": [
                    {"source_labels": ["__address__"], "target_label": "__param_target"},
                    {"source_labels": ["__param_target"], "target_label": "instance"},
                    {"target_label": "__address__", "replacement": exporter},
                ],
            }
        ],
    }
    path.write_text(json.dumps(config))
    return path


def _daemon_config(directory: Path, port: int, target_url: str, prometheus: str) -> Path:
    config: dict[str, Any] = {
        "monitor": {
            "name": "live",
            "state_dir": str(directory / "state"),
            "listen": f"127.0.0.1:{port}",
            "allow_short_buckets": True,
        },
        "targets": [
            {
                "name": "native",
                "kind": "http",
                "interval": "1s",
                "timeout": "800ms",
                "http": {"url": target_url, "fail_if_body_not_matches_regexp": ["service OK"]},
            },
            {
                "name": "from-prometheus",
                "kind": "prometheus",
                # The scrape interval: the config checks that enough probes fit a bucket.
                "interval": "1s",
                "timeout": "900ms",
                "prometheus": {
                    "url": prometheus,
                    "selector": f'probe_success{{job="blackbox",instance="{target_url}"}}',
                    "up": f'up{{job="blackbox",instance="{target_url}"}}',
                    "scrape_interval": "1s",
                    "lag": "2s",
                    "retries": 3,
                    "retry_every": "1s",
                },
            },
        ],
        "services": [
            {"name": "web", "targets": ["native"]},
            {"name": "web-prom", "targets": ["from-prometheus"]},
        ],
        "slas": [
            {
                "name": name,
                "service": service,
                "objective": 99.9,
                "bucket": f"{BUCKET}s",
                "timezone": "UTC",
                "monthly_fee": "100.00",
                "currency": "EUR",
            }
            for name, service in (("web-sla", "web"), ("web-prom-sla", "web-prom"))
        ],
    }
    path = directory / "slawatch.yaml"
    path.write_text(json.dumps(config, indent=2))
    return path


def _tallies(database: Path, target: str) -> dict[int, Tally]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute(
            "SELECT bucket_start, ok, failed FROM tallies WHERE target = ? AND bucket_seconds = ?",
            (target, BUCKET),
        ).fetchall()
    return {start: Tally(ok=ok, failed=failed) for start, ok, failed in rows}


def _sleep_until(epoch: float) -> None:
    time.sleep(max(0.0, epoch - time.time()))


def _query(base: str, expr: str) -> list[Any]:
    import urllib.parse
    import urllib.request

    url = f"{base}/api/v1/query?query={urllib.parse.quote(expr)}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        result: list[Any] = json.loads(reply.read())["data"]["result"]
    return result


class TestLiveFromRealPrometheus:
    def test_prometheus_target_buckets_equal_native_probing(self, tmp_path: Path) -> None:
        """Two outages (one across a bucket edge, one of 3 s inside a bucket): the buckets
        read from blackbox_exporter via Prometheus equal slawatch's own probes'."""
        prometheus = require_binary("prometheus")
        exporter = require_binary("prometheus-blackbox-exporter")
        with web_target() as target:
            target.set("health", "up")
            url = target.url("health")
            bb_port, prom_port, daemon_port = free_port(), free_port(), free_port()
            bb_args = [
                exporter,
                f"--config.file={_blackbox_config(tmp_path / 'blackbox.yml')}",
                f"--web.listen-address=127.0.0.1:{bb_port}",
            ]
            prom = f"http://127.0.0.1:{prom_port}"
            prom_config = _prometheus_config(
                tmp_path / "prometheus.yml", f"127.0.0.1:{bb_port}", url
            )
            prom_args = [
                prometheus,
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ]
            with (
                running(bb_args, tmp_path / "blackbox.log") as bb,
                running(prom_args, tmp_path / "prometheus.log") as proc,
            ):
                wait_http_ok(f"http://127.0.0.1:{bb_port}/metrics", 20, bb)
                wait_http_ok(prom + "/-/ready", 30, proc)
                wait_until(lambda: _query(prom, "probe_success == 1"), 30, "first probe_success")
                config = _daemon_config(tmp_path, daemon_port, url, prom)
                with running_daemon(config, daemon_port):
                    # Compare whole buckets from the second one after the daemon started.
                    first = (int(time.time()) // BUCKET + 2) * BUCKET
                    # Outage 1: from 5 s into bucket first+1 to 5 s into first+2 (two buckets).
                    _sleep_until(first + BUCKET + 5)
                    target.set("health", "status")
                    _sleep_until(first + 2 * BUCKET + 5)
                    target.set("health", "up")
                    # Outage 2: 3 s in the middle of bucket first+4.
                    _sleep_until(first + 4 * BUCKET + 3.5)
                    target.set("health", "status")
                    _sleep_until(first + 4 * BUCKET + 6.5)
                    target.set("health", "up")
                    last = first + 6 * BUCKET  # exclusive
                    # The filler asks 2 s after a bucket closes; the flush follows within 1 s.
                    _sleep_until(last + 5)
                database = tmp_path / "state" / "slawatch.db"
                native = _tallies(database, "native")
                read = _tallies(database, "from-prometheus")
        rule = BucketRule()
        buckets = range(first, last, BUCKET)
        native_states = [target_verdict(native.get(b), rule) for b in buckets]
        read_states = [target_verdict(read.get(b), rule) for b in buckets]
        down = BucketState.UNAVAILABLE
        up = BucketState.AVAILABLE
        assert native_states == [up, down, down, up, down, up], native
        assert read_states == native_states, (read, native)
        for bucket in buckets:
            # Blackbox scraped every second: 9 to 11 samples per 10 s bucket, each once.
            assert 9 <= read[bucket].probes <= 11, read
