"""Fault lifecycle and alert operations over a real SqliteStore on a temp file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.store.sqlite import SqliteStore
from monitor.support.alertmanager import AlertRouting, parse_webhook, plan
from monitor.support.contract import SupportContract
from monitor.support.faults import EventKind, FaultError, Level, Severity
from monitor.support.service import AlertAction, FaultNotFoundError, FaultService, load_summaries
from tests.test_support_alertmanager import am_alert, am_payload

pytestmark = pytest.mark.timeout(30)

RECEIVED = datetime(2026, 11, 23, 10, tzinfo=UTC)
CONTRACTS = {"uma": SupportContract("uma", Decimal("120000"), "GBP")}


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[FaultService]:
    """A service over a fresh SQLite file."""
    store = SqliteStore(tmp_path / "slawatch.db", "test")
    await store.open()
    try:
        yield FaultService(store, CONTRACTS, clock=lambda: RECEIVED + timedelta(days=10))
    finally:
        await store.close()


async def deliver(service: FaultService, *alerts: dict[str, object]) -> list[AlertAction]:
    """Run one webhook body through parse, plan and the service."""
    ops, _ = plan(parse_webhook(am_payload(*alerts)), AlertRouting(), frozenset(CONTRACTS))
    return [(await service.apply_alert(op)).action for op in ops]


class TestFaultLifecycle:
    """Open, ack, restore, solve, reassess and list through the store."""

    async def test_full_lifecycle_survives_reload(self, service: FaultService) -> None:
        """Every event is stored and the fault rebuilds identically."""
        _, created = await service.open(
            "uma", "IVR down", Severity.BUSINESS_CRITICAL, RECEIVED, fault_id="F-1", source="cli"
        )
        assert created
        await service.record_level("F-1", Level.ACKNOWLEDGE, RECEIVED + timedelta(hours=1))
        await service.record_level("F-1", Level.RESTORE, RECEIVED + timedelta(hours=5))
        await service.reassess(
            "F-1", Severity.DEFECT_WITH_WORKAROUND, RECEIVED + timedelta(hours=5), note="wa"
        )
        solved = await service.record_level("F-1", Level.SOLVE, RECEIVED + timedelta(days=2))
        reloaded = await service.get("F-1")
        assert reloaded == solved
        assert [e.kind for e in reloaded.events] == [
            EventKind.OPENED,
            EventKind.ACKNOWLEDGED,
            EventKind.RESTORED,
            EventKind.REASSESSED,
            EventKind.SOLVED,
        ]
        assert not reloaded.is_open
        assert await service.list(open_only=True) == []
        assert [f.id for f in await service.list()] == ["F-1"]

    async def test_repeats_are_idempotent(self, service: FaultService) -> None:
        """Opening or acknowledging twice with the same data stores nothing new."""
        await service.open("uma", "IVR down", Severity.MINOR, RECEIVED, fault_id="F-1")
        _, created = await service.open("uma", "IVR down", Severity.MINOR, RECEIVED, fault_id="F-1")
        assert not created
        at = RECEIVED + timedelta(hours=1)
        await service.record_level("F-1", Level.ACKNOWLEDGE, at)
        await service.record_level("F-1", Level.ACKNOWLEDGE, at)
        assert len((await service.get("F-1")).events) == 2

    async def test_conflicts_and_unknowns(self, service: FaultService) -> None:
        """Different details for an existing id, unknown ids and contracts are errors."""
        await service.open("uma", "IVR down", Severity.MINOR, RECEIVED, fault_id="F-1")
        with pytest.raises(FaultError, match="F-1: already exists"):
            await service.open("uma", "Other", Severity.MINOR, RECEIVED, fault_id="F-1")
        with pytest.raises(FaultNotFoundError, match="'F-9' does not exist"):
            await service.record_level("F-9", Level.SOLVE, RECEIVED)
        with pytest.raises(ValueError, match="contract: expected one of uma, got 'acme'"):
            await service.open("acme", "x", Severity.MINOR, RECEIVED)

    async def test_generated_ids(self, service: FaultService) -> None:
        """Without an id the service names the fault after its receipt time."""
        fault, _ = await service.open("uma", "IVR down", Severity.MINOR, RECEIVED)
        assert fault.id.startswith("F-20261123-1000-")


class TestAlertOperations:
    """``apply_alert``: duplicates and out-of-order deliveries never duplicate or lose."""

    async def test_firing_then_resolved(self, service: FaultService) -> None:
        """Firing opens at startsAt; resolved records Level 2 at endsAt."""
        assert await deliver(service, am_alert()) == [AlertAction.CREATED]
        assert await deliver(service, am_alert()) == [AlertAction.UNCHANGED]
        resolved = am_alert("resolved", ends="2026-11-23T12:30:00Z")
        assert await deliver(service, resolved) == [AlertAction.RESOLVED]
        assert await deliver(service, resolved) == [AlertAction.UNCHANGED]
        (fault,) = await service.list()
        assert fault.received_at == datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)
        assert fault.recorded(Level.RESTORE) == datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
        assert fault.is_open  # a restoration is not the Solution

    async def test_resolved_before_firing(self, service: FaultService) -> None:
        """A resolved notification first creates the fault once; the late firing changes
        nothing."""
        resolved = am_alert("resolved", ends="2026-11-23T12:30:00Z")
        assert await deliver(service, resolved) == [AlertAction.CREATED_RESOLVED]
        assert await deliver(service, am_alert()) == [AlertAction.UNCHANGED]
        assert await deliver(service, resolved) == [AlertAction.UNCHANGED]
        (fault,) = await service.list()
        assert [e.kind for e in fault.events] == [
            EventKind.OPENED,
            EventKind.CLEARED,
            EventKind.RESTORED,
        ]

    async def test_concurrent_duplicate_deliveries(self, service: FaultService) -> None:
        """Ten simultaneous deliveries of both notifications yield one fault, one restore."""
        resolved = am_alert("resolved", ends="2026-11-23T12:30:00Z")
        await asyncio.gather(*(deliver(service, a) for a in [am_alert(), resolved] * 5))
        (fault,) = await service.list()
        assert [e.kind for e in fault.events] == [
            EventKind.OPENED,
            EventKind.CLEARED,
            EventKind.RESTORED,
        ]

    async def test_open_fingerprint_absorbs_a_new_occurrence(self, service: FaultService) -> None:
        """A new startsAt while the fingerprint's fault is still open opens nothing; its
        resolution resolves the open fault. A later recurrence is a new fault."""
        await deliver(service, am_alert())
        second = "2026-11-23T11:00:00Z"
        assert await deliver(service, am_alert(starts=second)) == [AlertAction.ALREADY_OPEN]
        resolved = am_alert("resolved", starts=second, ends="2026-11-23T11:30:00Z")
        assert await deliver(service, resolved) == [AlertAction.RESOLVED]
        assert len(await service.list()) == 1
        third = am_alert(starts="2026-11-24T10:00:00Z")
        assert await deliver(service, third) == [AlertAction.CREATED]
        assert len(await service.list()) == 2

    async def test_absorbed_occurrence_stays_with_its_fault(self, service: FaultService) -> None:
        """Occurrence 2 arrives while 1's fault is open (1's resolution lost); 2 resolves it,
        and a late firing of 2 opens nothing new."""
        await deliver(service, am_alert())
        second = "2026-11-23T11:00:00Z"
        resolved = am_alert("resolved", starts=second, ends="2026-11-23T11:30:00Z")
        assert await deliver(service, resolved) == [AlertAction.RESOLVED]
        assert await deliver(service, am_alert(starts=second)) == [AlertAction.UNCHANGED]
        assert await deliver(service, resolved) == [AlertAction.UNCHANGED]
        assert len(await service.list()) == 1

    async def test_operator_record_wins(self, service: FaultService) -> None:
        """A restoration the operator recorded is not overwritten by the alert's endsAt."""
        await deliver(service, am_alert())
        (fault,) = await service.list()
        operator_time = datetime(2026, 11, 23, 12, tzinfo=UTC)
        await service.record_level(fault.id, Level.RESTORE, operator_time)
        resolved = am_alert("resolved", ends="2026-11-23T12:30:00Z")
        # The symptom clearing is recorded; the operator's restoration time stands.
        assert await deliver(service, resolved) == [AlertAction.RESOLVED]
        assert await deliver(service, resolved) == [AlertAction.UNCHANGED]
        after = await service.get(fault.id)
        assert after.recorded(Level.RESTORE) == operator_time
        assert after.cleared_at == datetime(2026, 11, 23, 12, 30, tzinfo=UTC)


class TestLoadSummaries:
    """``load_summaries``: the report's and metrics' view of the store."""

    async def test_from_store(self, service: FaultService, tmp_path: Path) -> None:
        """Faults stored through the service come back summarized per contract."""
        await service.open("uma", "IVR down", Severity.BUSINESS_CRITICAL, RECEIVED, fault_id="F-1")
        store = SqliteStore(tmp_path / "slawatch.db", "test", read_only=True)
        await store.open()
        try:
            (summary,) = await load_summaries(store, CONTRACTS, RECEIVED + timedelta(days=7))
        finally:
            await store.close()
        assert [f.fault.id for f in summary.faults] == ["F-1"]
        assert summary.month.days == 4  # Thu 26, Fri 27, Sat 28, Sun 29 Nov from 10:00
