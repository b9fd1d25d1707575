"""deploy/alertmanager/alertmanager.yml: amtool checks, and routing and inhibition in a real
Alertmanager on loopback fed through its API (as Prometheus would feed it)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers import require_binary
from tests.test_deploy_contract import (
    ALERTMANAGER,
    Notification,
    WebhookSink,
    alertmanager_for_tests,
    load_yaml,
    post_alerts,
    running_alertmanager,
)


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    """amtool against the shipped file, with a timeout."""
    binary = require_binary("amtool", "prometheus-alertmanager")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30, check=False)


def route_of(*labels: str) -> str:
    """The receiver the shipped routing tree picks for an alert with ``labels``."""
    proc = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


class TestAmtool:
    def test_check_config(self) -> None:
        """`amtool check-config` accepts the file, with its inhibit rules and receivers."""
        proc = amtool("check-config", str(ALERTMANAGER))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "SUCCESS" in proc.stdout
        assert "3 inhibit rules" in proc.stdout

    def test_check_config_rejects_a_broken_file(self, tmp_path: Path) -> None:
        """The check is live: a route to an undefined receiver fails it."""
        broken = tmp_path / "am.yml"
        broken.write_text(ALERTMANAGER.read_text().replace("receiver: oncall", "receiver: nobody"))
        proc = amtool("check-config", str(broken))
        assert proc.returncode != 0

    @pytest.mark.parametrize(
        ("labels", "receiver"),
        [
            (("severity=page", "service=voice"), "oncall"),
            (("severity=ticket", "service=voice"), "tickets"),
            (("severity=info", "service=slawatch"), "tickets"),
            (("alertname=Other",), "tickets"),
            # A fault alert opens a support fault in slawatch and still reaches its queue.
            (
                ("sla_fault_severity=business_critical", "severity=ticket", "service=voice"),
                "slawatch-faults,tickets",
            ),
        ],
    )
    def test_routing(self, labels: tuple[str, ...], receiver: str) -> None:
        """Pages go to on-call; tickets, info and anything unlabelled to the ticket queue."""
        assert route_of(*labels) == receiver

    def test_faults_receiver_posts_to_the_daemon(self) -> None:
        """The slawatch-faults receiver posts to the daemon's webhook with its bearer token and
        sends resolutions (they record the symptom clearing)."""
        receivers = {r["name"]: r for r in load_yaml(ALERTMANAGER)["receivers"]}
        [hook] = receivers["slawatch-faults"]["webhook_configs"]
        assert hook["url"] == "http://127.0.0.1:9180/api/v1/alertmanager"
        assert hook["send_resolved"] is True
        assert hook["http_config"]["authorization"]["type"] == "Bearer"

    def test_grouped_by_service(self) -> None:
        """Notifications are grouped per service."""
        assert load_yaml(ALERTMANAGER)["route"]["group_by"] == ["service"]


def _alert(name: str, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"alertname": name, **labels},
        "annotations": {"summary": name},
        "generatorURL": "http://127.0.0.1/graph",
    }


def _unavailable(instance: str, service: str) -> dict[str, Any]:
    return _alert(
        "SlawatchServiceUnavailable",
        severity="page",
        scope="vendor",
        instance=instance,
        service=service,
        sla=f"{service}-sla",
        job="slawatch",
    )


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, WebhookSink]]:
    """One real Alertmanager for the module (it starts in well under a second)."""
    with WebhookSink() as sink:
        config = alertmanager_for_tests(sink)
        with running_alertmanager(tmp_path_factory.mktemp("am"), config) as (_, base):
            yield base, sink


def _for_service(service: str, path: str) -> Any:
    def match(n: Notification) -> bool:
        return n.path == path and n.body["groupLabels"].get("service") == service

    return match


class TestAlertmanagerLive:
    def test_fault_alert_reaches_the_fault_webhook(
        self, alertmanager: tuple[str, WebhookSink]
    ) -> None:
        """An alert carrying sla_fault_severity is delivered to the daemon's webhook path, even
        while the same service pages (the page mutes the service's other vendor tickets, which
        would hold the fault back for the whole outage)."""
        base, sink = alertmanager
        service = f"svc-{uuid.uuid4().hex[:8]}"
        post_alerts(base, [_unavailable("v1:9180", service)])
        sink.wait_for(_for_service(service, "/alerts/oncall"), 10, "page")
        fault = _alert(
            "SlawatchVendorFault",
            severity="ticket",
            scope="vendor",
            service=service,
            sla_fault_severity="business_critical",
        )
        post_alerts(base, [fault])
        got = sink.wait_for(_for_service(service, "/api/v1/alertmanager"), 15, "fault webhook")
        [alert] = got.alerts("firing")
        assert alert["labels"]["sla_fault_severity"] == "business_critical"

    def test_page_reaches_oncall(self, alertmanager: tuple[str, WebhookSink]) -> None:
        """A page is delivered to the on-call webhook, grouped by its service."""
        base, sink = alertmanager
        service = f"svc-{uuid.uuid4().hex[:8]}"
        post_alerts(base, [_unavailable("v1:9180", service)])
        got = sink.wait_for(_for_service(service, "/alerts/oncall"), 10, "page")
        [alert] = got.alerts("firing")
        assert alert["labels"]["alertname"] == "SlawatchServiceUnavailable"
        assert alert["labels"]["severity"] == "page"

    def test_vendor_alert_inhibited_while_network_down(
        self, alertmanager: tuple[str, WebhookSink]
    ) -> None:
        """While the monitor's canaries fail, its vendor alerts are held; another
        monitor's are not."""
        base, sink = alertmanager
        service = f"svc-{uuid.uuid4().hex[:8]}"
        network_down = _alert(
            "SlawatchMonitorNetworkDown",
            severity="ticket",
            scope="monitor",
            service="slawatch",
            instance="inhibited:9180",
            job="slawatch",
        )
        post_alerts(base, [network_down])
        sink.wait_for(
            lambda n: any(
                a["labels"]["alertname"] == "SlawatchMonitorNetworkDown"
                and a["labels"]["instance"] == "inhibited:9180"
                for a in n.alerts("firing")
            ),
            10,
            "network-down ticket",
        )
        started = time.time()
        post_alerts(base, [_unavailable("inhibited:9180", service)])
        # Pushed later, so a notification for it proves the held one had its chance too.
        post_alerts(base, [_unavailable("free:9180", service)])
        got = sink.wait_for(_for_service(service, "/alerts/oncall"), 10, "uninhibited page")
        assert got.at >= started
        instances = {a["labels"]["instance"] for a in got.alerts("firing")}
        assert instances == {"free:9180"}
        time.sleep(0.5)
        late = [n for n in sink.received if n.body["groupLabels"].get("service") == service]
        held = [a for n in late for a in n.alerts() if a["labels"]["instance"] == "inhibited:9180"]
        assert held == []

    def test_contract_alert_not_inhibited(self, alertmanager: tuple[str, WebhookSink]) -> None:
        """A breached SLA is still reported while the network is down: it is computed after
        exclusions, so our outage does not make it wrong."""
        base, sink = alertmanager
        service = f"svc-{uuid.uuid4().hex[:8]}"
        post_alerts(
            base,
            [
                _alert(
                    "SlawatchMonitorNetworkDown",
                    severity="ticket",
                    scope="monitor",
                    service="slawatch",
                    instance="contract:9180",
                ),
                _alert(
                    "SlawatchSlaBreached",
                    severity="ticket",
                    scope="contract",
                    service=service,
                    instance="contract:9180",
                ),
            ],
        )
        got = sink.wait_for(_for_service(service, "/alerts/tickets"), 10, "breach ticket")
        assert [a["labels"]["alertname"] for a in got.alerts("firing")] == ["SlawatchSlaBreached"]
