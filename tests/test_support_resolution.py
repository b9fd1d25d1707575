"""An alert's resolution (issue 12, problem 8): recorded as the symptom clearing, a level only
where ``resolved_records`` says so, never an acknowledgement nobody gave."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import parse_config_text
from monitor.store.sqlite import SqliteStore
from monitor.support.alertmanager import AlertRouting, parse_webhook, plan
from monitor.support.calendar import SupportHours
from monitor.support.faults import (
    CONTRACT_DEADLINES,
    EventKind,
    FaultEvent,
    Level,
    Severity,
    level_statuses,
    open_fault,
    record,
)
from monitor.support.service import FaultService
from tests.test_support_alertmanager import am_alert, am_payload
from tests.test_support_service import CONTRACTS

pytestmark = pytest.mark.timeout(30)

RECEIVED = datetime(2026, 11, 23, 10, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A fresh SQLite store."""
    opened = SqliteStore(tmp_path / "s.db", "test")
    await opened.open()
    yield opened
    await opened.close()


async def resolve(store: SqliteStore, routing: AlertRouting) -> FaultService:
    """Deliver a firing and then a resolved alert (endsAt 12:30) under ``routing``."""
    service = FaultService(store, CONTRACTS, clock=lambda: RECEIVED + timedelta(days=10))
    for status in ("firing", "resolved"):
        alert = am_alert(status, ends="2026-11-23T12:30:00Z")
        ops, _ = plan(parse_webhook(am_payload(alert)), routing, frozenset(CONTRACTS))
        for op in ops:
            await service.apply_alert(op)
    return service


class TestResolutionSemantics:
    """What a resolved alert records, per ``resolved_records``."""

    async def test_restore_is_no_acknowledgement(self, store: SqliteStore) -> None:
        """The default records the clearing and Level 2, and Level 1 stays unmet (the bug:
        the alert's restoration marked Level 1 acknowledged although nobody acknowledged)."""
        service = await resolve(store, AlertRouting())
        (fault,) = await service.list()
        cleared = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)
        assert fault.cleared_at == cleared
        assert fault.met_at(Level.RESTORE) == cleared
        assert fault.met_at(Level.ACKNOWLEDGE) is None
        statuses = level_statuses(
            fault, CONTRACT_DEADLINES, SupportHours(), RECEIVED + timedelta(days=2)
        )
        assert statuses[0].level is Level.ACKNOWLEDGE
        assert statuses[0].breached

    async def test_none_records_only_the_clearing(self, store: SqliteStore) -> None:
        """``resolved_records: none``: the symptom clearing, and no level at all."""
        service = await resolve(store, AlertRouting(resolved_level=None))
        (fault,) = await service.list()
        assert [e.kind for e in fault.events] == [EventKind.OPENED, EventKind.CLEARED]
        assert all(fault.met_at(level) is None for level in Level)

    async def test_solve_counts_only_as_solve(self, store: SqliteStore) -> None:
        """``resolved_records: solve``: Level 3, which implies neither Level 2 nor Level 1."""
        service = await resolve(store, AlertRouting(resolved_level=Level.SOLVE))
        (fault,) = await service.list()
        assert fault.met_at(Level.SOLVE) is not None
        assert fault.met_at(Level.RESTORE) is None
        assert fault.met_at(Level.ACKNOWLEDGE) is None


class TestDeliveredLevelsImplyLower:
    """A level the vendor delivered still implies the lower ones."""

    def test_operator_solve_implies_lower_levels(self) -> None:
        """A Solution recorded by the operator also restores and acknowledges."""
        fault = open_fault("F-1", "uma", "x", Severity.BUSINESS_CRITICAL, RECEIVED)
        at = RECEIVED + timedelta(hours=3)
        fault = record(fault, FaultEvent(EventKind.SOLVED, at, source="cli"))
        assert fault.met_at(Level.ACKNOWLEDGE) == at
        assert fault.met_at(Level.RESTORE) == at

    def test_clearing_is_recorded_once_per_time(self) -> None:
        """The same clearing twice changes nothing; a later one is added."""
        fault = open_fault("F-1", "uma", "x", Severity.MINOR, RECEIVED)
        cleared = FaultEvent(EventKind.CLEARED, RECEIVED + timedelta(hours=1))
        once = record(fault, cleared)
        assert record(once, cleared) is once
        later = FaultEvent(EventKind.CLEARED, RECEIVED + timedelta(hours=2))
        assert record(once, later).cleared_at == later.at


class TestResolvedRecordsConfig:
    """``support.alertmanager.resolved_records`` accepts none."""

    def test_none(self) -> None:
        """``none`` maps to no level."""
        config = parse_config_text(
            "targets: [{name: t, kind: tcp, tcp: {host: 127.0.0.1, port: 9}}]\n"
            "support:\n"
            "  contracts: [{name: uma, annual_fee: 1000, currency: GBP}]\n"
            "  alertmanager: {resolved_records: none}\n"
        )
        assert config.support is not None
        assert config.support.routing().resolved_level is None
