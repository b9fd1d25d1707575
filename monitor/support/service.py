"""Fault lifecycle over the ``Store``: open, ack, restore, solve, reassess, list, and the
Alertmanager operations. Shared by the CLI, the HTTP API and the webhook.

Storage layout: the fault's document holds everything fixed at opening (id, contract, title,
received_at, initial severity, alert key, fingerprint), so creating a fault is one atomic
``insert_fault_if_absent``; every later change is an appended event. A fault is rebuilt by
replaying its events in order; a level recorded twice (two racing deliveries) keeps the first,
so a duplicate can never change a deadline or a credit.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog

from monitor.instant_bounds import check_recorded
from monitor.instants import parse_instant
from monitor.sla.calendar import Month
from monitor.store.base import FaultRecord, Store
from monitor.support.alertmanager import AlertFaultOp
from monitor.support.contract import ContractSummary, SupportContract, summarize_all
from monitor.support.faults import (
    LEVEL_EVENTS,
    EventKind,
    Fault,
    FaultError,
    FaultEvent,
    Level,
    Severity,
    open_fault,
    record,
)
from monitor.support.notice import Violation

log = structlog.get_logger(__name__)

DOC_VERSION = 1
ABSORBED_KEY = "support.alert_absorbed:"
"""kv prefix: alert key -> id of the already-open fault that took over that occurrence."""


class FaultNotFoundError(LookupError):
    """Raised by ``FaultService`` operations on a fault id that is not stored."""


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _time(value: object, where: str) -> datetime:
    return parse_instant(value, where)


def fault_doc(fault: Fault) -> dict[str, Any]:
    """The stored document: what is fixed when the fault is opened."""
    opened = fault.events[0]
    return {
        "version": DOC_VERSION,
        "id": fault.id,
        "contract": fault.contract,
        "title": fault.title,
        "received_at": _iso(opened.at),
        "severity": fault.initial_severity.value,
        "source": opened.source,
        "note": opened.note,
        "alert_key": fault.alert_key,
        "fingerprint": fault.fingerprint,
    }


def event_doc(event: FaultEvent, recorded_at: datetime) -> dict[str, Any]:
    """One appended history entry; ``recorded_at`` is when slawatch learnt of it."""
    return {
        "kind": event.kind.value,
        "at": _iso(event.at),
        "severity": None if event.severity is None else event.severity.value,
        "note": event.note,
        "source": event.source,
        "recorded_at": _iso(recorded_at),
    }


def fault_from_record(rec: FaultRecord) -> Fault:
    """Rebuild a fault from its stored document and events (ValueError names the field)."""
    doc = rec.doc
    where = f"fault {rec.fault_id}"
    fault = open_fault(
        str(doc["id"]),
        str(doc["contract"]),
        str(doc["title"]),
        Severity(doc["severity"]),
        _time(doc["received_at"], f"{where}: received_at"),
        source=str(doc.get("source", "")),
        note=str(doc.get("note", "")),
        alert_key=doc.get("alert_key"),
        fingerprint=doc.get("fingerprint"),
    )
    events = [fault.events[0]]
    for seq, raw in enumerate(rec.events, start=1):
        severity = raw.get("severity")
        events.append(
            FaultEvent(
                EventKind(raw["kind"]),
                _time(raw["at"], f"{where}: event {seq}: at"),
                None if severity is None else Severity(severity),
                note=str(raw.get("note", "")),
                source=str(raw.get("source", "")),
            )
        )
    return Fault(
        fault.id, fault.contract, fault.title, tuple(events), fault.alert_key, fault.fingerprint
    )


class AlertAction(StrEnum):
    """What the service did with one alert."""

    CREATED = "created"
    CREATED_RESOLVED = "created_resolved"
    RESOLVED = "resolved"
    UNCHANGED = "unchanged"
    ALREADY_OPEN = "already_open"


@dataclass(frozen=True)
class AlertOutcome:
    alert_key: str
    fault_id: str
    action: AlertAction


def default_fault_id(received_at: datetime) -> str:
    """``F-20261123-1000-3fa2``: readable, sortable, unique enough for hand-opened faults."""
    return f"F-{received_at.astimezone(UTC):%Y%m%d-%H%M}-{secrets.token_hex(2)}"


class FaultService:
    """Fault operations for the configured contracts over one store.

    Operations in this process are serialised by a lock so a read-modify-append never
    interleaves; writers in other processes (the CLI next to the daemon) are made safe by the
    store's unique alert key and by replay keeping the first record of each level.
    """

    def __init__(
        self,
        store: Store,
        contracts: Mapping[str, SupportContract],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[datetime], str] = default_fault_id,
    ) -> None:
        self._store = store
        self._contracts = dict(contracts)
        self._clock = clock
        self._new_id = new_id
        self._lock = asyncio.Lock()

    @property
    def contracts(self) -> Mapping[str, SupportContract]:
        return self._contracts

    def update_contracts(self, contracts: Mapping[str, SupportContract]) -> None:
        """Swap in the contracts of a reloaded configuration (stored faults are untouched)."""
        self._contracts = dict(contracts)

    def _contract(self, name: str) -> SupportContract:
        if name not in self._contracts:
            known = ", ".join(sorted(self._contracts)) or "none configured"
            raise ValueError(f"contract: expected one of {known}, got {name!r}")
        return self._contracts[name]

    async def get(self, fault_id: str) -> Fault:
        rec = await self._store.load_fault(fault_id)
        if rec is None:
            raise FaultNotFoundError(f"fault {fault_id!r} does not exist")
        return fault_from_record(rec)

    async def list(self, contract: str | None = None, open_only: bool = False) -> list[Fault]:
        records = await self._store.load_faults(contract=contract, open_only=open_only)
        return sorted((fault_from_record(r) for r in records), key=lambda f: (f.received_at, f.id))

    async def open(
        self,
        contract: str,
        title: str,
        severity: Severity,
        received_at: datetime,
        *,
        fault_id: str | None = None,
        source: str = "",
        note: str = "",
    ) -> tuple[Fault, bool]:
        """Open a fault; returns it and whether it was created. Opening an existing id with
        the same contents is a no-op; with different contents it raises ``FaultError``."""
        self._contract(contract)
        check_recorded(received_at, "received_at", self._clock())
        if not title.strip():
            raise ValueError("title: expected a non-empty text, got ''")
        fault = open_fault(
            fault_id or self._new_id(received_at),
            contract,
            title,
            severity,
            received_at,
            source=source,
            note=note,
        )
        async with self._lock:
            stored_id, created = await self._store.insert_fault_if_absent(
                contract, fault.id, fault_doc(fault), None, is_open=True
            )
            if created:
                log.info(
                    "fault_opened",
                    fault=fault.id,
                    contract=contract,
                    severity=severity.value,
                    received_at=_iso(received_at),
                    source=source,
                )
                return fault, True
            existing = await self.get(stored_id)
            same = (existing.contract, existing.title, existing.initial_severity) == (
                contract,
                title,
                severity,
            ) and existing.received_at == received_at
            if not same or existing.alert_key is not None:
                raise FaultError(
                    f"fault {fault.id}: already exists (received "
                    f"{_iso(existing.received_at)}, {existing.initial_severity.value}, "
                    f"{existing.title!r})"
                )
            return existing, False

    async def _append(self, fault: Fault, event: FaultEvent) -> Fault:
        updated = record(fault, event)
        if updated is fault:
            return fault
        await self._store.append_fault_event(fault.id, event_doc(event, self._clock()))
        if updated.is_open != fault.is_open:
            await self._store.save_fault(
                fault.contract,
                fault.id,
                fault_doc(fault),
                fault.alert_key,
                is_open=updated.is_open,
            )
        log.info(
            "fault_event_recorded",
            fault=fault.id,
            kind=event.kind.value,
            at=_iso(event.at),
            source=event.source,
            severity=None if event.severity is None else event.severity.value,
        )
        return updated

    async def record_level(
        self, fault_id: str, level: Level, at: datetime, *, source: str = "", note: str = ""
    ) -> Fault:
        """Record acknowledgement (1), restoration (2) or permanent solution (3) at ``at``."""
        check_recorded(at, "at", self._clock())
        async with self._lock:
            fault = await self.get(fault_id)
            return await self._append(
                fault, FaultEvent(LEVEL_EVENTS[level], at, note=note, source=source)
            )

    async def reassess(
        self, fault_id: str, severity: Severity, at: datetime, *, source: str = "", note: str = ""
    ) -> Fault:
        """Change the severity from ``at`` on (history kept)."""
        check_recorded(at, "at", self._clock())
        async with self._lock:
            fault = await self.get(fault_id)
            return await self._append(
                fault, FaultEvent(EventKind.REASSESSED, at, severity, note=note, source=source)
            )

    async def _alert_open(self, op: AlertFaultOp) -> Fault | None:
        for rec in await self._store.load_faults(contract=op.contract, open_only=True):
            if rec.doc.get("fingerprint") != op.fingerprint:
                continue
            fault = fault_from_record(rec)
            level = op.resolved_level
            if fault.cleared_at is None and (level is None or fault.met_at(level) is None):
                return fault
        return None

    async def apply_alert(self, op: AlertFaultOp) -> AlertOutcome:
        """Apply one alert operation idempotently (see ``monitor.support.alertmanager``)."""
        async with self._lock:
            fault_id = await self._store.fault_id_for_alert(op.alert_key)
            if fault_id is None:
                absorbed = await self._store.kv_get(ABSORBED_KEY + op.alert_key)
                fault_id = absorbed if isinstance(absorbed, str) else None
            created = False
            if fault_id is None:
                open_same = await self._alert_open(op)
                if open_same is not None:
                    # A new occurrence of an alert whose fault is still open: it belongs to
                    # that fault from now on, so its later deliveries (in any order) map there
                    # instead of opening a second fault.
                    await self._store.kv_set(ABSORBED_KEY + op.alert_key, open_same.id)
                    if op.resolved_at is None:
                        return AlertOutcome(op.alert_key, open_same.id, AlertAction.ALREADY_OPEN)
                    fault_id = open_same.id
                else:
                    fault = open_fault(
                        op.fault_id,
                        op.contract,
                        op.title,
                        op.severity,
                        op.received_at,
                        source="alertmanager",
                        alert_key=op.alert_key,
                        fingerprint=op.fingerprint,
                    )
                    fault_id, created = await self._store.insert_fault_if_absent(
                        op.contract, fault.id, fault_doc(fault), op.alert_key, is_open=True
                    )
                    if created:
                        log.info(
                            "fault_opened",
                            fault=fault_id,
                            contract=op.contract,
                            severity=op.severity.value,
                            received_at=_iso(op.received_at),
                            source="alertmanager",
                            alert_key=op.alert_key,
                        )
            if op.resolved_at is None:
                action = AlertAction.CREATED if created else AlertAction.UNCHANGED
                return AlertOutcome(op.alert_key, fault_id, action)
            fault = await self.get(fault_id)
            note = f"alert {op.alert_key} resolved"
            updated = await self._append(
                fault,
                FaultEvent(EventKind.CLEARED, op.resolved_at, source="alertmanager", note=note),
            )
            if op.resolved_level is not None:
                level_event = FaultEvent(
                    LEVEL_EVENTS[op.resolved_level],
                    op.resolved_at,
                    source="alertmanager",
                    note=note,
                )
                try:
                    updated = await self._append(updated, level_event)
                except FaultError as exc:
                    # Someone (usually an operator) recorded this level already: theirs stands.
                    log.info("alert_resolution_ignored", fault=fault_id, reason=str(exc))
            if created:
                action = AlertAction.CREATED_RESOLVED
            elif updated is fault:
                action = AlertAction.UNCHANGED
            else:
                action = AlertAction.RESOLVED
            return AlertOutcome(op.alert_key, fault_id, action)


def log_notice_violations(sla: str, violations: Sequence[Violation]) -> None:
    """One warning per broken maintenance notice rule (the daemon calls this on each reload)."""
    for violation in violations:
        log.warning(
            "maintenance_notice_violation",
            sla=sla,
            window=violation.window_id,
            rule=violation.kind.value,
            rejected=violation.rejected,
            detail=violation.message,
        )


async def load_summaries(
    store: Store,
    contracts: Mapping[str, SupportContract],
    now: datetime,
    *,
    month: Month | None = None,
) -> list[ContractSummary]:
    """Every contract's summary from the faults in ``store`` (for the report and metrics)."""
    faults = [fault_from_record(rec) for rec in await store.load_faults()]
    return summarize_all(contracts, faults, now, month=month)
