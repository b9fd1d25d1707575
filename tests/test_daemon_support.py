"""The support SLA in the real daemon: Alertmanager webhooks, faults, claims and notice rules.

Payloads are in Alertmanager's webhook format (version 4) exactly as it sends them; the daemon
runs as `slawatch run` and is reached only over HTTP with a real aiohttp client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.daemon_harness import DaemonProcess, free_port, running_daemon, wait_until
from tests.test_daemon import TOKEN, http_target, sla, write_config
from tests.web_target import WebTarget, web_target

pytestmark = [pytest.mark.timeout(120), pytest.mark.calendar]

SUPPORT = {
    "contracts": [
        {
            "name": "uma",
            "annual_fee": "24000.00",
            "currency": "GBP",
            "support_hours": {
                "timezone": "Europe/London",
                "holidays": {"country": "GB", "subdivision": "NIR"},
            },
        }
    ],
    "alertmanager": {"severity_label": "sla_fault_severity", "default_contract": "uma"},
}


def alert(
    status: str, fingerprint: str, starts: str, ends: str = "0001-01-01T00:00:00Z"
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "SlawatchServiceUnavailable",
            "service": "web",
            "severity": "page",
            "sla_fault_severity": "business_critical",
        },
        "annotations": {"summary": "web unavailable"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://127.0.0.1:19090/graph?g0.expr=slawatch_service_up+%3D%3D+0",
        "fingerprint": fingerprint,
    }


def payload(status: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "receiver": "slawatch-faults",
        "status": status,
        "alerts": alerts,
        "groupLabels": {"service": "web"},
        "commonLabels": alerts[0]["labels"],
        "commonAnnotations": alerts[0]["annotations"],
        "externalURL": "http://127.0.0.1:19093",
        "version": "4",
        "groupKey": '{}:{service="web"}',
        "truncatedAlerts": 0,
    }


def support_config(tmp_path: Path, port: int, target: WebTarget, **sla_extra: Any) -> Path:
    path = write_config(
        tmp_path,
        port,
        [http_target("api", target.url("svc"))],
        [{"name": "web", "targets": ["api"]}],
        [{**sla("web-sla", "web"), **sla_extra}],
    )
    data = json.loads(path.read_text())
    data["support"] = SUPPORT
    path.write_text(json.dumps(data, indent=2))
    return path


async def post(session: aiohttp.ClientSession, daemon: DaemonProcess, body: Any) -> int:
    async with session.post(
        daemon.base + "/api/v1/alertmanager",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as reply:
        await reply.read()
        return reply.status


async def faults(session: aiohttp.ClientSession, daemon: DaemonProcess) -> list[dict[str, Any]]:
    async with session.get(daemon.base + "/api/v1/faults") as reply:
        assert reply.status == 200
        data = await reply.json()
        return list(data["faults"])


class TestAlertmanagerWebhook:
    async def test_duplicates_races_and_resolved_before_firing_never_duplicate_or_lose(
        self, tmp_path: Path
    ) -> None:
        """Firing, its duplicate and five concurrent copies make one fault; the resolution
        records Level 2; a resolution arriving before its firing makes one fault, opened and
        restored, and the late firing adds nothing."""
        with web_target() as target:
            port = free_port()
            config = support_config(tmp_path, port, target)
            with running_daemon(config, port) as daemon:
                async with aiohttp.ClientSession() as session:
                    firing = payload("firing", [alert("firing", "a1b2c3", "2026-11-23T10:00:00Z")])
                    assert await post(session, daemon, firing) == 200
                    assert await post(session, daemon, firing) == 200
                    statuses = await asyncio.gather(
                        *(post(session, daemon, firing) for _ in range(5))
                    )
                    assert set(statuses) == {200}
                    listed = await faults(session, daemon)
                    assert len(listed) == 1
                    assert listed[0]["severity"] == "business_critical"
                    resolved = payload(
                        "resolved",
                        [
                            alert(
                                "resolved", "a1b2c3", "2026-11-23T10:00:00Z", "2026-11-23T10:20:00Z"
                            )
                        ],
                    )
                    assert await post(session, daemon, resolved) == 200
                    assert await post(session, daemon, resolved) == 200
                    listed = await faults(session, daemon)
                    assert len(listed) == 1
                    assert "2026-11-23T10:20:00" in json.dumps(listed[0])

                    early = payload(
                        "resolved",
                        [
                            alert(
                                "resolved", "d4e5f6", "2026-11-23T11:00:00Z", "2026-11-23T11:05:00Z"
                            )
                        ],
                    )
                    late = payload("firing", [alert("firing", "d4e5f6", "2026-11-23T11:00:00Z")])
                    assert await post(session, daemon, early) == 200
                    assert await post(session, daemon, late) == 200
                    listed = await faults(session, daemon)
                    assert len(listed) == 2
                    second = [f for f in listed if "2026-11-23T11:00:00" in json.dumps(f)]
                    assert len(second) == 1
                    assert "2026-11-23T11:05:00" in json.dumps(second[0])

    async def test_a_malformed_payload_is_refused_with_the_field_named(
        self, tmp_path: Path
    ) -> None:
        """A payload that is not Alertmanager's format is a 400 naming what is wrong, and
        nothing is recorded; without the token the webhook is refused."""
        with web_target() as target:
            port = free_port()
            config = support_config(tmp_path, port, target)
            with running_daemon(config, port) as daemon:
                async with aiohttp.ClientSession() as session:
                    bad = payload("firing", [alert("firing", "x", "not a time")])
                    async with session.post(
                        daemon.base + "/api/v1/alertmanager",
                        json=bad,
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    ) as reply:
                        assert reply.status == 400
                        assert "startsAt" in (await reply.json())["error"]
                    async with session.post(
                        daemon.base + "/api/v1/alertmanager", json=bad
                    ) as reply:
                        assert reply.status == 401
                    assert await faults(session, daemon) == []


LONDON = ZoneInfo("Europe/London")
DAY = 86_400


def london_month(epoch: float) -> str:
    """The contract's calendar month (Support Hours zone) holding ``epoch``, as YYYY-MM."""
    return datetime.fromtimestamp(epoch, LONDON).strftime("%Y-%m")


def utc_text(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class TestSupportMetrics:
    async def test_open_fault_deadlines_and_credits_are_exported(self, tmp_path: Path) -> None:
        """An open business-critical fault shows slawatch_fault_open and a deadline per level;
        its 20 late days (5% of the annual fee each, from the Solution deadline) are exported
        for the month and the year each begins in, and each such month's report carries them."""
        # Received 40 days ago: the Solution (3 Business Days) was due within 10 days, and all
        # 20 credited late days have begun since, so the credits no longer grow while the test
        # runs. Which month and year they fall in is computed here from the deadline, never
        # assumed from today's date.
        received = int(time.time() // 3600 * 3600) - 40 * DAY
        with web_target() as target:
            port = free_port()
            config = support_config(tmp_path, port, target)
            with running_daemon(config, port) as daemon:
                async with aiohttp.ClientSession() as session:
                    firing = payload("firing", [alert("firing", "f00d", utc_text(received))])
                    assert await post(session, daemon, firing) == 200
                wait_until(
                    lambda: daemon.metric("slawatch_fault_open", contract="uma") == 1.0,
                    15,
                    "slawatch_fault_open",
                )
                levels = {
                    dict(labels)["level"]
                    for (name, labels) in daemon.metrics()
                    if name == "slawatch_fault_deadline_timestamp_seconds"
                }
                assert levels == {"1", "2", "3"}
                due = daemon.metric(
                    "slawatch_fault_deadline_timestamp_seconds", contract="uma", level="3"
                )
                assert due is not None
                # 3 Business Days of Support Hours: after it was received, within 10 days even
                # across Christmas and a weekend.
                assert received < due <= received + 10 * DAY
                # No Solution is recorded: breached, and every 24 hours since the deadline
                # earned 5% of the annual fee, up to 20 periods.
                breached = daemon.metric(
                    "slawatch_fault_deadline_breached", contract="uma", level="3"
                )
                assert breached == 1.0
                late_days = [due + k * DAY for k in range(20)]
                assert late_days[-1] < time.time()
                by_month = Counter(london_month(start) for start in late_days)

                def scrape() -> tuple[str, dict[Any, float]] | None:
                    # The metrics are for the month the daemon is in: read them within one.
                    before = london_month(time.time())
                    samples = daemon.metrics()
                    return (before, samples) if london_month(time.time()) == before else None

                month, samples = wait_until(scrape, 10, "a scrape within one calendar month")
                ratios = {
                    dict(labels)["period"]: value
                    for (name, labels), value in samples.items()
                    if name == "slawatch_support_credit_ratio" and dict(labels)["contract"] == "uma"
                }
                in_year = sum(n for m, n in by_month.items() if m[:4] == month[:4])
                assert ratios == {
                    "month": pytest.approx(0.05 * by_month[month]),
                    "year": pytest.approx(0.05 * in_year),
                }
                # Each month the late days began in: its report carries them (20 in all).
                for late_month, days in by_month.items():
                    report = daemon.json(f"/api/v1/report?format=json&month={late_month}")
                    (contract,) = report["support"]["contracts"]
                    assert len(contract["faults"]) == 1
                    assert Decimal(contract["credit_month_percent"]) == 5 * days
                # The claim of a month the late days began in lists the late fault with its
                # times (each late day is claimed in its own month, never twice).
                late_month = max(by_month)
                status, claim = daemon.get(f"/api/v1/report?format=claim&month={late_month}")
                assert status == 200
                assert "SLA web-sla" not in claim  # the web target never failed
                assert "Service Credit claim (Schedule 1, clause 5.1)" in claim
                assert '"web unavailable" (business_critical)' in claim
                status, text = daemon.get("/api/v1/report?format=text")
                assert status == 200
                assert "uma" in text


class TestClaimsAndNotice:
    def test_a_recorded_claim_sets_claim_filed(self, tmp_path: Path) -> None:
        """POST /api/v1/claims for last month's SLA sets slawatch_claim_filed; bad input is a
        400 naming the field."""
        from tests.daemon_harness import request

        with web_target() as target:
            port = free_port()
            config = support_config(tmp_path, port, target)
            with running_daemon(config, port) as daemon:
                assert daemon.metric("slawatch_claim_filed", sla="web-sla") == 0.0
                # The month before the one the SLA is in, in the SLA's zone (a midday zone, so
                # the daemon cannot be in another month by the time it reads the claim).
                zone = ZoneInfo(json.loads(config.read_text())["slas"][0]["timezone"])
                today = datetime.now(zone)
                year = today.year - (today.month == 1)
                previous = f"{year:04d}-{(today.month - 2) % 12 + 1:02d}"
                url = daemon.base + "/api/v1/claims"
                status, body = request("POST", url, {"sla": "nope", "month": previous}, token=TOKEN)
                assert status == 400
                assert "sla: expected one of web-sla" in body
                status, body = request(
                    "POST",
                    url,
                    {"sla": "web-sla", "month": previous, "reference": "TICKET-4711"},
                    token=TOKEN,
                )
                assert status == 201, body
                assert daemon.metric("slawatch_claim_filed", sla="web-sla") == 1.0
                assert daemon.json("/api/v1/claims")["claims"][0]["reference"] == "TICKET-4711"

    def test_short_notice_maintenance_is_flagged_and_with_reject_not_honoured(
        self, tmp_path: Path
    ) -> None:
        """A maintenance window announced 10 minutes ahead breaks a 1 h notice rule: the metric
        counts it, the log names it, and under policy reject its buckets are not excluded.

        The window holds now, and the SLA's midday zone keeps the month's ends 11 hours away,
        so the window lies in the month whose violations are counted."""
        with web_target() as target:
            port = free_port()
            start = time.time() - 60
            window = {
                "id": "mw-short-notice",
                "kind": "scheduled_maintenance",
                "start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                "end": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 600)),
                "announced_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start - 600)),
                "reason": "switch upgrade",
            }
            config = support_config(
                tmp_path, port, target, maintenance_notice={"min_notice": "1h", "policy": "reject"}
            )
            data = json.loads(config.read_text())
            data["exclusions"] = [window]
            config.write_text(json.dumps(data))
            with running_daemon(config, port) as daemon:
                wait_until(
                    lambda: (
                        daemon.metric("slawatch_maintenance_notice_violations", sla="web-sla")
                        == 1.0
                    ),
                    15,
                    "the notice violation metric",
                )
                assert "maintenance_notice_violation" in daemon.log()
                status = daemon.json("/api/v1/status")["slas"][0]
                assert status["current_bucket_state"] != "excluded"
