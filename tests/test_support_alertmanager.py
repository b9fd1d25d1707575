"""Alertmanager webhook v4 parsing and alert-to-fault planning (monitor.support.alertmanager)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.support.alertmanager import (
    AlertRouting,
    AlertStatus,
    PayloadError,
    fault_id_for,
    parse_time,
    parse_webhook,
    plan,
)
from monitor.support.faults import Level, Severity

CONTRACTS = frozenset({"uma"})


def am_alert(
    status: str = "firing",
    starts: str = "2026-11-23T10:00:00.123456789Z",
    ends: str = "0001-01-01T00:00:00Z",
    fingerprint: str = "c6a3b1f5e0d2a4b7",
    severity: str | None = "business_critical",
) -> dict[str, Any]:
    """One alert exactly as Alertmanager 0.27 serialises it in a webhook body."""
    labels = {"alertname": "IvrDown", "instance": "ivr-1", "sla_contract": "uma"}
    if severity is not None:
        labels["sla_fault_severity"] = severity
    return {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "IVR not answering"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up%3D%3D0&g0.tab=1",
        "fingerprint": fingerprint,
    }


def am_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    """A webhook body (version 4) around ``alerts``; status firing if any alert fires."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "receiver": "slawatch",
        "status": "firing" if firing else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": "IvrDown"},
        "commonLabels": {"alertname": "IvrDown"},
        "commonAnnotations": {"summary": "IVR not answering"},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}/{sla_fault_severity=~".+"}:{alertname="IvrDown"}',
        "truncatedAlerts": 0,
    }


class TestParseTime:
    """``parse_time``: Go's RFC 3339 output."""

    def test_nanoseconds_and_offsets(self) -> None:
        """Nanoseconds are truncated to microseconds; offsets are kept."""
        assert parse_time("2026-11-23T10:00:00.123456789Z", "t") == datetime(
            2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC
        )
        assert parse_time("2026-11-23T11:00:00+01:00", "t") == datetime(
            2026, 11, 23, 10, tzinfo=UTC
        )

    def test_rejects_naive_and_garbage(self) -> None:
        """Times without an offset are refused, naming the path."""
        with pytest.raises(PayloadError, match=r"x\.startsAt: expected a UTC offset"):
            parse_time("2026-11-23T10:00:00", "x.startsAt")
        with pytest.raises(PayloadError, match="got 'yesterday'"):
            parse_time("yesterday", "x")


class TestParseWebhook:
    """``parse_webhook``: strict on what it needs, tolerant of extra fields."""

    def test_firing_payload(self) -> None:
        """A real-format firing payload parses; the zero endsAt becomes None."""
        payload = parse_webhook(am_payload(am_alert()))
        (alert,) = payload.alerts
        assert payload.status is AlertStatus.FIRING
        assert alert.ends_at is None
        assert alert.key == "c6a3b1f5e0d2a4b7@2026-11-23T10:00:00.123456+00:00"

    def test_extra_fields_are_ignored(self) -> None:
        """Fields Alertmanager may add later do not break the receiver."""
        body = am_payload(am_alert())
        body["newField"] = {"x": 1}
        body["alerts"][0]["silencedBy"] = []
        assert len(parse_webhook(body).alerts) == 1

    @pytest.mark.parametrize(
        ("mutate", "message"),
        [
            (lambda b: b.update(version="3"), "payload.version: expected \"4\", got '3'"),
            (lambda b: b.pop("alerts"), "payload.alerts: expected a list, got None"),
            (lambda b: b.pop("receiver"), "payload.receiver: missing"),
            (
                lambda b: b["alerts"][0].update(status="pending"),
                "payload.alerts[0].status: expected firing or resolved, got 'pending'",
            ),
            (
                lambda b: b["alerts"][0]["labels"].update(x=1),
                "payload.alerts[0].labels.x: expected a string, got 1",
            ),
            (
                lambda b: b["alerts"][0].pop("fingerprint"),
                "payload.alerts[0].fingerprint: missing",
            ),
            (
                lambda b: b["alerts"][0].update(status="resolved"),
                "payload.alerts[0].endsAt: a resolved alert needs its end time",
            ),
            (
                lambda b: b["alerts"][0].update(status="resolved", endsAt="2026-11-23T09:00:00Z"),
                "payload.alerts[0].endsAt: expected at or after startsAt",
            ),
            (
                lambda b: b.update(truncatedAlerts=-1),
                "payload.truncatedAlerts: expected a non-negative integer, got -1",
            ),
        ],
    )
    def test_errors_name_the_path(self, mutate: Any, message: str) -> None:
        """Each malformed payload is refused with the JSON path and the value."""
        body = copy.deepcopy(am_payload(am_alert()))
        mutate(body)
        with pytest.raises(PayloadError) as info:
            parse_webhook(body)
        assert str(info.value).startswith(message)

    def test_not_an_object(self) -> None:
        """A JSON list is not a payload."""
        with pytest.raises(PayloadError, match="payload: expected an object, got list"):
            parse_webhook([])


class TestPlan:
    """``plan``: which alerts become fault operations."""

    def test_firing_and_resolved(self) -> None:
        """Firing alerts open; resolved ones carry their end and the configured level."""
        body = am_payload(
            am_alert(),
            am_alert("resolved", ends="2026-11-23T12:00:00Z", fingerprint="ff00"),
        )
        ops, skipped = plan(parse_webhook(body), AlertRouting(), CONTRACTS)
        assert skipped == ()
        assert [op.resolved_at for op in ops] == [None, datetime(2026, 11, 23, 12, tzinfo=UTC)]
        assert ops[0].severity is Severity.BUSINESS_CRITICAL
        assert ops[0].title == "IVR not answering"
        assert ops[1].resolved_level is Level.RESTORE
        assert ops[0].fault_id == fault_id_for(ops[0].alert_key)

    def test_skips_with_reasons(self) -> None:
        """No label: not a fault. Bad severity or unknown contract: named in the reason."""
        bad_contract = am_alert(fingerprint="03")
        bad_contract["labels"]["sla_contract"] = "acme"
        body = am_payload(
            am_alert(severity=None, fingerprint="01"),
            am_alert(severity="urgent", fingerprint="02"),
            bad_contract,
        )
        ops, skipped = plan(parse_webhook(body), AlertRouting(), CONTRACTS)
        assert ops == ()
        assert [s.reason for s in skipped] == [
            "no severity label",
            "alerts[1].labels.sla_fault_severity: expected one of business_critical, "
            "defect_with_workaround, minor, got 'urgent'",
            "alerts[2].labels.sla_contract: expected a configured support contract (uma), "
            "got 'acme'",
        ]

    def test_default_contract(self) -> None:
        """Without the contract label the default contract is used."""
        alert = am_alert()
        del alert["labels"]["sla_contract"]
        ops, _ = plan(
            parse_webhook(am_payload(alert)), AlertRouting(default_contract="uma"), CONTRACTS
        )
        assert ops[0].contract == "uma"

    def test_resolved_level_cannot_be_acknowledge(self) -> None:
        """An alert clearing is not an acknowledgement."""
        with pytest.raises(ValueError, match="resolved_level"):
            AlertRouting(resolved_level=Level.ACKNOWLEDGE)
