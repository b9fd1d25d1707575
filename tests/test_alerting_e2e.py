"""End to end, for real: the daemon probes a local HTTP target, Prometheus scrapes it and
evaluates the shipped rules, Alertmanager routes with the shipped config to a webhook sink.

Everything runs on 127.0.0.1 and is started once for the module (Prometheus needs about 5 s
to discover its targets, see /work/shared/peers.md 2.3). Time is compressed: buckets are 10 s
instead of 300 s, and every duration in the shipped rules (`for:` and range selectors) is
scaled by the same factor, 10/300, with a floor of 1 s; Prometheus scrapes and evaluates every
second. Nothing else in the rules or the Alertmanager routing is changed.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.metrics.collector import METRIC_NAMES
from tests.daemon_harness import DaemonProcess, running_daemon
from tests.peers import require_binary
from tests.test_deploy_contract import (
    PROMETHEUS_DIR,
    RULES,
    TEST_API_TOKEN,
    Notification,
    WebhookSink,
    alertmanager_for_tests,
    family_of,
    free_port,
    load_yaml,
    metric_names_in,
    running,
    running_alertmanager,
    wait_http_ok,
)
from tests.test_deploy_grafana import SUPPORT_FAMILIES, dashboard, queries
from tests.web_target import WebTarget, web_target

pytestmark = [pytest.mark.peers, pytest.mark.slow, pytest.mark.timeout(150)]

BUCKET_SECONDS = 10
SCALE = BUCKET_SECONDS / 300
SERVICE = "web"
SLA = "web-sla"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def scaled(duration: str) -> str:
    """A Prometheus duration multiplied by SCALE, in whole seconds, at least 1 s."""
    match = re.fullmatch(r"(\d+)([smhd])", duration)
    assert match, duration
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    return f"{max(1, round(seconds * SCALE))}s"


def compressed_rules(text: str) -> str:
    """The shipped rules with every `for:` and every range selector scaled."""
    text = re.sub(r"(?m)^(\s+for: )(\S+)$", lambda m: m.group(1) + scaled(m.group(2)), text)
    return re.sub(r"\[(\d+[smhd])\]", lambda m: f"[{scaled(m.group(1))}]", text)


SUPPORT_CONTRACT = "web-support"


def daemon_config(directory: Path, port: int, url: str) -> Path:
    """One HTTP target probed every second, one service, one 99.999 % SLA on 10 s buckets,
    and a support contract that the shipped fault alert opens faults under."""
    token = directory / "api-token"
    token.write_text(TEST_API_TOKEN + "\n")
    config = {
        "monitor": {
            "name": "e2e",
            "state_dir": str(directory / "state"),
            "listen": f"127.0.0.1:{port}",
            "allow_short_buckets": True,
            "api_token": {"file": str(token)},
        },
        "support": {
            "contracts": [{"name": SUPPORT_CONTRACT, "annual_fee": "12000.00", "currency": "EUR"}],
            "alertmanager": {"default_contract": SUPPORT_CONTRACT},
        },
        "targets": [
            {
                "name": "web-home",
                "kind": "http",
                "interval": "1s",
                "timeout": "800ms",
                "http": {"url": url, "fail_if_body_not_matches_regexp": ["service OK"]},
            }
        ],
        "services": [{"name": SERVICE, "targets": ["web-home"]}],
        "slas": [
            {
                "name": SLA,
                "service": SERVICE,
                "objective": 99.999,
                "bucket": f"{BUCKET_SECONDS}s",
                "timezone": "UTC",
                "monthly_fee": "1000.00",
                "currency": "EUR",
                "credit_tiers": [{"below": 99.999, "credit_percent": 10}],
            }
        ],
    }
    path = directory / "slawatch.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def prometheus_config(directory: Path, daemon_port: int, alertmanager: str) -> Path:
    """The shipped example scrape config, pointed at the test's daemon and Alertmanager."""
    config: dict[str, Any] = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    [job] = config["scrape_configs"]
    assert job["job_name"] == "slawatch"
    job["scrape_timeout"] = "1s"
    job["static_configs"][0]["targets"] = [f"127.0.0.1:{daemon_port}"]
    rules = directory / RULES.name
    rules.write_text(compressed_rules(RULES.read_text()))
    config["rule_files"] = [str(rules)]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Stack:
    sink: WebhookSink
    target: WebTarget
    daemon: DaemonProcess
    prometheus: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Sink, Alertmanager, target, daemon and Prometheus, started in that order and stopped
    in reverse, each as its own process group (tests.procs)."""
    prometheus = require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    work = tmp_path_factory.mktemp("e2e")
    daemon_port = free_port()
    with WebhookSink() as sink:
        am_config = alertmanager_for_tests(sink, group_interval="200ms")
        # The shipped slawatch-faults receiver posts to this daemon, as in production.
        for receiver in am_config["receivers"]:
            if receiver["name"] == "slawatch-faults":
                receiver["webhook_configs"][0]["url"] = (
                    f"http://127.0.0.1:{daemon_port}/api/v1/alertmanager"
                )
        with running_alertmanager(work / "am", am_config) as (_, am_base), web_target() as target:
            target.set("home", "up")
            config = daemon_config(work, daemon_port, target.url("home"))
            with running_daemon(config, daemon_port) as daemon:
                prom_port = free_port()
                base = f"http://127.0.0.1:{prom_port}"
                am_address = am_base.removeprefix("http://")
                args = [
                    prometheus,
                    f"--config.file={prometheus_config(work, daemon_port, am_address)}",
                    f"--storage.tsdb.path={work / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    f"--web.external-url={base}/",
                    # Without it an alert raised before Alertmanager is discovered waits 1 min.
                    "--rules.alert.resend-delay=1s",
                ]
                with running(args, work / "prometheus.log") as proc:
                    wait_http_ok(base + "/-/ready", 20, proc)
                    yield Stack(sink, target, daemon, base)


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?query={urllib.parse.quote(expr)}"
    with urllib.request.urlopen(url, timeout=5) as reply:
        body: dict[str, Any] = json.loads(reply.read())
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _page(status: str) -> Any:
    def match(n: Notification) -> bool:
        return (
            n.path == "/alerts/oncall"
            and any(
                a["labels"]["alertname"] == "SlawatchServiceUnavailable" for a in n.alerts(status)
            )
            and (status == "firing" or n.body["status"] == "resolved")
        )

    return match


def _ticket(alertname: str) -> Any:
    def match(n: Notification) -> bool:
        return n.path == "/alerts/tickets" and any(
            a["labels"]["alertname"] == alertname for a in n.alerts("firing")
        )

    return match


class TestCompression:
    def test_scaled_durations(self) -> None:
        """Durations shrink by the bucket ratio, with a floor of one second."""
        assert scaled("2m") == "4s"
        assert scaled("5m") == "10s"
        assert scaled("3d") == "8640s"
        assert scaled("1s") == "1s"

    def test_only_durations_change(self) -> None:
        """for: lines and range selectors are rewritten; expressions stay otherwise identical."""
        text = '      for: 2m\n        expr: rate(x[5m]) > 0.5 and y{a="[5m]"}\n'
        assert compressed_rules(text) == (
            '      for: 4s\n        expr: rate(x[10s]) > 0.5 and y{a="[10s]"}\n'
        )


class TestAlertingEndToEnd:
    def test_scrape_exports_only_contract_names(self, stack: Stack) -> None:
        """Every family in a real /metrics scrape is in METRIC_NAMES, and every dashboard metric
        this configuration can produce is there."""
        wanted = {
            family_of(n, METRIC_NAMES) or n
            for expr in queries(dashboard())
            for n in metric_names_in(expr)
        }
        # Families that need what this HTTP-only, canary-less, support-less set-up lacks.
        conditional = SUPPORT_FAMILIES | {
            n
            for n in wanted
            if n.startswith(("slawatch_probe_sip_", "slawatch_probe_rtp_"))
            or n
            in {
                "slawatch_probe_mos",
                "slawatch_probe_certificate_expiry_timestamp_seconds",
                "slawatch_monitor_network_up",
            }
        }
        families: set[str | None] = set()
        # Some families appear only once the first probe ran or the first bucket closed.
        end = time.monotonic() + 3 * BUCKET_SECONDS
        while time.monotonic() < end:
            families = {family_of(name, METRIC_NAMES) for name, _ in stack.daemon.metrics()}
            if wanted - conditional <= families:
                break
            time.sleep(0.5)
        assert None not in families
        assert sorted(wanted - conditional - families) == []

    def test_outage_pages_and_recovery_resolves(self, stack: Stack) -> None:
        """Taking the target down delivers SlawatchServiceUnavailable to the on-call webhook
        with its labels (and the probe alert to the ticket queue); bringing the target back
        delivers the resolution."""
        # Healthy first: the stack is up and Prometheus sees the service as up.
        wait_for_query(stack.prometheus, 'slawatch_service_up{sla="web-sla"} == 1', 20)
        assert not any(_page("firing")(n) for n in stack.sink.received)

        down_at = time.time()
        stack.target.set("home", "status")
        fired = stack.sink.wait_for(_page("firing"), 40, "SlawatchServiceUnavailable page")
        [alert] = [
            a
            for a in fired.alerts("firing")
            if a["labels"]["alertname"] == "SlawatchServiceUnavailable"
        ]
        labels = alert["labels"]
        assert labels["severity"] == "page"
        assert labels["scope"] == "vendor"
        assert labels["service"] == SERVICE
        assert labels["sla"] == SLA
        assert labels["job"] == "slawatch"
        assert labels["instance"] == f"127.0.0.1:{stack.daemon.port}"
        assert alert["annotations"]["runbook_url"].endswith("#runbook-slawatchserviceunavailable")
        assert fired.body["groupLabels"] == {"service": SERVICE}
        # The same outage reaches the ticket queue as a probe alert named after the target.
        ticket = stack.sink.wait_for(_ticket("SlawatchProbeFailing"), 20, "probe ticket")
        [probe] = [a for a in ticket.alerts() if a["labels"]["alertname"] == "SlawatchProbeFailing"]
        assert probe["labels"]["service"] == "web-home"
        assert probe["labels"]["severity"] == "ticket"

        up_at = time.time()
        stack.target.set("home", "up")
        resolved = stack.sink.wait_for(_page("resolved"), 40, "resolution of the page")
        assert resolved.at > fired.at
        # Shown with -s: the figures docs/deployment.md quotes.
        print(f"page {fired.at - down_at:.2f} s, resolved {resolved.at - up_at:.2f} s")
        [done] = resolved.alerts("resolved")
        assert done["labels"] == labels

    def test_fault_alert_opens_a_fault_and_resolution_clears_it(self, stack: Stack) -> None:
        """The shipped SlawatchVendorFault (sla_fault_severity) goes through the shipped
        slawatch-faults receiver to the daemon, which opens a business-critical fault at the
        alert's start; the recovery's resolution records the symptom clearing and a
        restoration (resolved_records: restore), and Level 1 stays unacknowledged."""
        wait_for_query(stack.prometheus, 'slawatch_service_up{sla="web-sla"} == 1', 40)
        stack.target.set("home", "status")
        fault = wait_for_fault(stack.daemon, lambda f: True, 60, "fault opened")
        assert fault["contract"] == SUPPORT_CONTRACT
        assert fault["severity"] == "business_critical"
        assert fault["title"] == f"{SERVICE} down for 10 minutes: support fault opened (SLA {SLA})"
        assert [e["kind"] for e in fault["events"]] == ["opened"]
        stack.target.set("home", "up")
        cleared = wait_for_fault(
            stack.daemon,
            lambda f: any(e["kind"] == "cleared" for e in f["events"]),
            60,
            "resolution recorded",
        )
        kinds = [(e["kind"], e["source"]) for e in cleared["events"]]
        assert kinds == [
            ("opened", "alertmanager"),
            ("cleared", "alertmanager"),
            ("restored", "alertmanager"),
        ]
        levels = {lv["level"]: lv for lv in cleared["levels"]}
        assert levels[1]["met_at"] is None
        assert levels[2]["met_at"] == cleared["events"][1]["at"]
        assert levels[3]["met_at"] is None


def wait_for_fault(daemon: DaemonProcess, match: Any, timeout: float, what: str) -> dict[str, Any]:
    """Poll the daemon's fault list until one fault matches."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with urllib.request.urlopen(daemon.base + "/api/v1/faults", timeout=5) as reply:
            faults: list[dict[str, Any]] = json.loads(reply.read())["faults"]
        found = [f for f in faults if match(f)]
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"{what}: no matching fault within {timeout}s")


def wait_for_query(base: str, expr: str, timeout: float) -> list[dict[str, Any]]:
    """Poll Prometheus until ``expr`` returns something."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = _query(base, expr)
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{expr} returned nothing within {timeout}s")
