"""Alertmanager webhook (payload version 4) to fault operations, strictly and idempotently.

An alert carrying the configured severity label (``sla_fault_severity`` by default) is a
support request. Its key is fingerprint + startsAt: Alertmanager keeps startsAt for as long as
an alert keeps firing, so redeliveries of the same firing (or resolved) notification map to
the same key, while a later recurrence (new startsAt) is a new fault. The service applies the
operations: a firing alert opens a fault at startsAt unless one is open for the fingerprint; a
resolved alert records its ``endsAt`` on the fault, creating it first (opened and resolved,
exactly once) when the firing notification never arrived or arrives later.

A resolved alert is recorded as the symptom clearing (a ``cleared`` event at ``endsAt``). It
counts as a response level only where ``resolved_records`` says so: Level 2 (restoration) by
default, Level 3 when configured, none with ``none``. Never Level 3 by default: the symptom
being gone is not evidence of a permanent correction (the Solution the credits turn on), and
recording a Solution from a metric would stop the credit clock on the vendor's behalf. A
level recorded from an alert is an observation: it never implies the lower levels (an
acknowledgement nobody gave); see ``Fault.met_at``.

Unknown keys are ignored (Alertmanager adds fields over time); missing or mistyped ones are
errors naming the JSON path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from monitor.instant_bounds import InstantOutOfRange, check_recorded, is_go_zero_time
from monitor.instants import InstantError, parse_instant
from monitor.support.faults import Level, Severity

_GO_ZERO_TIME_YEAR = 1
"""Alertmanager sends ``0001-01-01T00:00:00Z`` for "no end" (Go's zero time)."""


class PayloadError(ValueError):
    """Raised by ``parse_webhook`` when the body is not an Alertmanager v4 payload; the
    message names the JSON path and the value."""


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Alert:
    """One alert of a notification. ``ends_at`` is ``None`` for Go's zero time."""

    status: AlertStatus
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime | None
    fingerprint: str
    generator_url: str = ""

    @property
    def key(self) -> str:
        """fingerprint + startsAt (normalised to UTC): one fault per alert occurrence."""
        return f"{self.fingerprint}@{self.starts_at.astimezone(UTC).isoformat()}"


@dataclass(frozen=True)
class WebhookPayload:
    """A parsed notification."""

    status: AlertStatus
    receiver: str
    group_key: str
    alerts: tuple[Alert, ...]
    truncated_alerts: int = 0


def parse_time(text: object, where: str) -> datetime:
    """An RFC 3339 time as Go writes it (nanoseconds are truncated to microseconds); the
    grammar is :func:`monitor.instants.parse_instant`'s, refused as a payload error."""
    try:
        return parse_instant(text, where)
    except InstantError as exc:
        raise PayloadError(str(exc)) from None


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _string(container: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    if key not in container:
        if required:
            raise PayloadError(f"{where}.{key}: missing")
        return ""
    value = container[key]
    if not isinstance(value, str):
        raise PayloadError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _labels(container: Mapping[str, Any], key: str, where: str) -> Mapping[str, str]:
    value = _object(container.get(key, {}), f"{where}.{key}")
    for name, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(f"{where}.{key}.{name}: expected a string, got {item!r}")
    return MappingProxyType(dict(value))


def _status(container: Mapping[str, Any], where: str) -> AlertStatus:
    text = _string(container, "status", where)
    try:
        return AlertStatus(text)
    except ValueError:
        raise PayloadError(f"{where}.status: expected firing or resolved, got {text!r}") from None


def _alert(raw: object, where: str) -> Alert:
    body = _object(raw, where)
    status = _status(body, where)
    starts_at = parse_time(_string(body, "startsAt", where), f"{where}.startsAt")
    ends_at: datetime | None = parse_time(_string(body, "endsAt", where), f"{where}.endsAt")
    if ends_at is not None and ends_at.year == _GO_ZERO_TIME_YEAR:
        ends_at = None
    if status is AlertStatus.RESOLVED:
        if ends_at is None:
            raise PayloadError(f"{where}.endsAt: a resolved alert needs its end time, got none")
        if ends_at < starts_at:
            raise PayloadError(
                f"{where}.endsAt: expected at or after startsAt {starts_at.isoformat()}, "
                f"got {ends_at.isoformat()}"
            )
    fingerprint = _string(body, "fingerprint", where)
    if not fingerprint:
        raise PayloadError(f"{where}.fingerprint: expected a non-empty string, got ''")
    return Alert(
        status=status,
        labels=_labels(body, "labels", where),
        annotations=_labels(body, "annotations", where),
        starts_at=starts_at,
        ends_at=ends_at,
        fingerprint=fingerprint,
        generator_url=_string(body, "generatorURL", where, required=False),
    )


def parse_webhook(body: object) -> WebhookPayload:
    """A decoded JSON body as a v4 payload, or ``PayloadError`` naming the first problem."""
    root = _object(body, "payload")
    version = root.get("version")
    if version != "4":
        raise PayloadError(f'payload.version: expected "4", got {version!r}')
    alerts = root.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError(f"payload.alerts: expected a list, got {alerts!r}")
    truncated = root.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise PayloadError(
            f"payload.truncatedAlerts: expected a non-negative integer, got {truncated!r}"
        )
    return WebhookPayload(
        status=_status(root, "payload"),
        receiver=_string(root, "receiver", "payload"),
        group_key=_string(root, "groupKey", "payload"),
        alerts=tuple(_alert(raw, f"payload.alerts[{i}]") for i, raw in enumerate(alerts)),
        truncated_alerts=truncated,
    )


@dataclass(frozen=True)
class AlertRouting:
    """How alerts become faults. ``contract_label`` names the contract on the alert; when it
    is absent, ``default_contract`` is used (``None``: such alerts are refused)."""

    severity_label: str = "sla_fault_severity"
    contract_label: str = "sla_contract"
    default_contract: str | None = None
    resolved_level: Level | None = Level.RESTORE
    """The level a resolution counts as; ``None``: only the symptom clearing is recorded."""
    title_annotation: str = "summary"

    def __post_init__(self) -> None:
        if self.resolved_level is Level.ACKNOWLEDGE:
            raise ValueError("resolved_level: an alert resolving is no acknowledgement; use 2 or 3")


@dataclass(frozen=True)
class AlertFaultOp:
    """What one alert asks of the fault store."""

    alert_key: str
    fingerprint: str
    fault_id: str
    contract: str
    severity: Severity
    title: str
    received_at: datetime
    resolved_at: datetime | None
    resolved_level: Level | None


@dataclass(frozen=True)
class SkippedAlert:
    """An alert not turned into a fault, and why (reported back to the sender and logged)."""

    index: int
    fingerprint: str
    reason: str


def fault_id_for(alert_key: str) -> str:
    """A stable fault id for an alert occurrence, so concurrent deliveries agree on it."""
    return "am-" + hashlib.sha256(alert_key.encode()).hexdigest()[:16]


def _time_problem(alert: Alert, where: str, now: datetime | None) -> str | None:
    """Why the alert's times cannot be recorded as a fault's, or None."""
    if is_go_zero_time(alert.starts_at):
        return f"{where}.startsAt: absent (Go's zero time): a fault needs the time it began"
    if now is None:
        return None
    try:
        check_recorded(alert.starts_at, f"{where}.startsAt", now)
        # A firing alert's endsAt is when Alertmanager will consider it stale: a future time.
        if alert.status is AlertStatus.RESOLVED and alert.ends_at is not None:
            check_recorded(alert.ends_at, f"{where}.endsAt", now)
    except InstantOutOfRange as exc:
        return str(exc)
    return None


def plan(
    payload: WebhookPayload,
    routing: AlertRouting,
    contracts: frozenset[str],
    now: datetime | None = None,
) -> tuple[tuple[AlertFaultOp, ...], tuple[SkippedAlert, ...]]:
    """The fault operations of a notification; alerts without the severity label are not
    faults and are skipped silently (they are in ``skipped`` with that reason). With ``now``,
    an alert whose startsAt (or a resolved alert's endsAt) lies more than 5 minutes ahead or
    before 2000 is skipped with the reason (``monitor.instant_bounds``); a zero startsAt
    (absent) always is."""
    ops: list[AlertFaultOp] = []
    skipped: list[SkippedAlert] = []
    for index, alert in enumerate(payload.alerts):
        where = f"alerts[{index}]"
        raw_severity = alert.labels.get(routing.severity_label)
        if raw_severity is None:
            skipped.append(SkippedAlert(index, alert.fingerprint, "no severity label"))
            continue
        try:
            severity = Severity(raw_severity)
        except ValueError:
            choices = ", ".join(s.value for s in Severity)
            skipped.append(
                SkippedAlert(
                    index,
                    alert.fingerprint,
                    f"{where}.labels.{routing.severity_label}: expected one of {choices}, "
                    f"got {raw_severity!r}",
                )
            )
            continue
        time_problem = _time_problem(alert, where, now)
        if time_problem is not None:
            skipped.append(SkippedAlert(index, alert.fingerprint, time_problem))
            continue
        contract = alert.labels.get(routing.contract_label, routing.default_contract)
        if contract is None or contract not in contracts:
            known = ", ".join(sorted(contracts)) or "none configured"
            skipped.append(
                SkippedAlert(
                    index,
                    alert.fingerprint,
                    f"{where}.labels.{routing.contract_label}: expected a configured support "
                    f"contract ({known}), got {contract!r}",
                )
            )
            continue
        title = (
            alert.annotations.get(routing.title_annotation)
            or alert.labels.get("alertname")
            or alert.fingerprint
        )
        resolved = alert.ends_at if alert.status is AlertStatus.RESOLVED else None
        ops.append(
            AlertFaultOp(
                alert_key=alert.key,
                fingerprint=alert.fingerprint,
                fault_id=fault_id_for(alert.key),
                contract=contract,
                severity=severity,
                title=title,
                received_at=alert.starts_at,
                resolved_at=resolved,
                resolved_level=routing.resolved_level,
            )
        )
    return tuple(ops), tuple(skipped)
