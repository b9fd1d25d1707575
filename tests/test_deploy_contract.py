"""The deploy/ tests' shared ground: paths, the metric-name contract, PromQL name extraction.

The other test_deploy_* modules import from here; the tests below check the helpers themselves.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.procs import running_peer

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
RULES = PROMETHEUS_DIR / "slawatch.rules.yml"
RULE_TESTS = (
    PROMETHEUS_DIR / "slawatch.rules.test.yml",
    PROMETHEUS_DIR / "slawatch.burnrate.test.yml",
)
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
DASHBOARD = DEPLOY / "grafana" / "slawatch.json"
DEPLOY_DOC = ROOT / "docs" / "deployment.md"
RUNBOOK_DOC = ROOT / "docs" / "runbooks.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Suffixes the exposition format adds to a family's name.
_SUFFIXES = ("_bucket", "_count", "_sum", "_created", "_total", "_info")
_NAME = re.compile(r"\b(slawatch_[a-z0-9_]+)")


def contract_metric_names() -> frozenset[str]:
    """Every metric name in the Metrics section of docs/architecture.md (the team contract)."""
    text = ARCHITECTURE.read_text()
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return frozenset(re.findall(r"`(slawatch_[a-z0-9_]+)", section))


def family_of(name: str, known: frozenset[str]) -> str | None:
    """The known family ``name`` belongs to (``x_bucket`` -> ``x``), or None."""
    if name in known:
        return name
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if base in known or f"{base}_total" in known:
                return base
    return None


def metric_names_in(expr: str) -> set[str]:
    """The slawatch_* metric names a PromQL expression reads (recorded series excluded)."""
    # Recorded series are spelled slawatch:...; label values never start with slawatch_ here.
    return set(_NAME.findall(expr))


def load_yaml(path: Path) -> Any:
    """Parse a YAML file with the safe loader."""
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    """Every rule (recording and alerting) of the shipped rules file."""
    return [rule for group in load_yaml(RULES)["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    """The alerting rules of the shipped rules file."""
    return [rule for rule in rules() if "alert" in rule]


class TestMetricNameHelpers:
    def test_name_check_is_live(self) -> None:
        """A misspelt metric is not mistaken for a known family."""
        known = contract_metric_names()
        assert "slawatch_service_up" in known
        assert family_of("slawatch_scheduler_lag_seconds_bucket", known) == (
            "slawatch_scheduler_lag_seconds"
        )
        assert family_of("slawatch_servce_up", known) is None
        assert metric_names_in('a{x="1"} + slawatch:sli_error:ratio_rate5m + slawatch_mos') == {
            "slawatch_mos"
        }

    def test_contract_lists_every_family(self) -> None:
        """The Metrics section parse finds target, SLA, monitor and support families alike."""
        known = contract_metric_names()
        for name in (
            "slawatch_probe_mos",
            "slawatch_credit_projected_amount",
            "slawatch_build_info",
            "slawatch_fault_deadline_breached",
        ):
            assert name in known


# -- real peer processes on loopback (Alertmanager, Prometheus) and a webhook sink ------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Notification:
    """One POST Alertmanager made to the sink."""

    at: float
    path: str
    body: dict[str, Any]

    def alerts(self, status: str | None = None) -> list[dict[str, Any]]:
        return [a for a in self.body["alerts"] if status is None or a["status"] == status]


class WebhookSink:
    """An Alertmanager webhook receiver on 127.0.0.1:0, recording every notification."""

    def __init__(self) -> None:
        self.received: list[Notification] = []
        self._changed = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with sink._changed:
                    sink.received.append(Notification(time.time(), self.path, body))
                    sink._changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_for(
        self, match: Callable[[Notification], bool], timeout: float, what: str
    ) -> Notification:
        """The first notification (already received or still to come) that ``match`` accepts."""
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                for notification in self.received:
                    if match(notification):
                        return notification
                left = end - time.monotonic()
                if left <= 0:
                    seen = [
                        (n.path, n.body.get("status"), n.body.get("groupLabels"))
                        for n in self.received
                    ]
                    raise AssertionError(f"no {what} within {timeout}s; received {seen}")
                self._changed.wait(left)


def wait_http_ok(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` has exited."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} not ready after {timeout}s")


@contextmanager
def running(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a peer in its own process group with its output in ``log``; the group gets SIGTERM
    (SIGKILL after 5 s) on the way out, however the block ends (tests.procs)."""
    with running_peer(args, log) as proc:
        yield proc


def alertmanager_for_tests(sink: WebhookSink, group_interval: str = "100ms") -> dict[str, Any]:
    """The shipped Alertmanager config with its webhooks on ``sink`` and its waits shortened.

    Routing, grouping and inhibition stay exactly as shipped.
    """
    config: dict[str, Any] = load_yaml(ALERTMANAGER)
    routes = [config["route"], *config["route"].get("routes", [])]
    for route in routes:
        if "group_wait" in route or route is config["route"]:
            route["group_wait"] = "0s"
        if "group_interval" in route or route is config["route"]:
            route["group_interval"] = group_interval
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = sink.url(urllib.parse.urlsplit(hook["url"]).path)
            auth = hook.get("http_config", {}).get("authorization")
            if auth is not None and "credentials_file" in auth:
                # The shipped token file lives under /etc; tests pass the token inline.
                del auth["credentials_file"]
                auth["credentials"] = TEST_API_TOKEN
    return config


TEST_API_TOKEN = "test-token-for-the-slawatch-faults-receiver"
"""The bearer token ``alertmanager_for_tests`` gives the ``slawatch-faults`` receiver."""


@contextmanager
def running_alertmanager(
    workdir: Path, config: dict[str, Any]
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A real Alertmanager on 127.0.0.1 (no clustering), ready; yields (process, base URL)."""
    from tests.peers import require_binary

    binary = require_binary("prometheus-alertmanager")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        binary,
        f"--config.file={path}",
        f"--storage.path={workdir / 'am-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url={base}/",
        "--cluster.listen-address=",
    ]
    with running(args, workdir / "alertmanager.log") as proc:
        wait_http_ok(base + "/-/ready", 15, proc)
        yield proc, base


def post_alerts(base: str, alerts: list[dict[str, Any]]) -> None:
    """Push alerts to Alertmanager's v2 API as Prometheus would."""
    request = urllib.request.Request(
        base + "/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.status == 200
