"""Recorded instants are bounded: 5 minutes of clock skew ahead, nothing before 2000 (issue 11,
defect 3).

``slawatch fault solve ID --at`` three weeks ahead closed at once a fault whose deadlines had
passed, and Alertmanager's zero time opened a fault in year 1. Each recording site is tried
here the way it is reached: the pure bound, the fault service over a real SQLite store, the
CLI, the webhook over a real aiohttp server, and the daemon's exclusion and claim endpoints.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.instant_bounds import (
    EARLIEST,
    FUTURE_TOLERANCE,
    SCHEDULE_HORIZON,
    InstantOutOfRange,
    check_exclusion,
    check_recorded,
    check_scheduled,
)
from monitor.store.sqlite import SqliteStore
from monitor.support.alertmanager import AlertRouting, parse_webhook, plan
from monitor.support.faults import Level, Severity
from monitor.support.service import FaultService
from tests.daemon_harness import free_port, request, running_daemon
from tests.test_daemon import TOKEN, http_target, sla, write_config
from tests.test_support_alertmanager import am_alert, am_payload
from tests.test_support_command import NOW as CLI_NOW
from tests.test_support_command import config, fault
from tests.test_support_http import SUPPORT, Api, api
from tests.web_target import web_target

__all__ = ["api", "config"]  # fixtures imported for use here

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


class TestBounds:
    @given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2026, 11, 30, 12, 5)))
    def test_past_and_skew_accepted(self, naive: datetime) -> None:
        """Anything from 2000-01-01 to now + 5 minutes is recorded as given."""
        instant = naive.replace(tzinfo=UTC)
        assert check_recorded(instant, "at", NOW) == instant

    @given(
        st.one_of(
            st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(1999, 12, 31, 23, 59)),
            st.datetimes(min_value=datetime(2026, 11, 30, 12, 5, 0, 1)),
        )
    )
    def test_outside_refused_with_one_line(self, naive: datetime) -> None:
        """Before 2000 or past the tolerance: refused, one line naming the field."""
        with pytest.raises(InstantOutOfRange) as caught:
            check_recorded(naive.replace(tzinfo=UTC), "at", NOW)
        message = str(caught.value)
        assert message.startswith("at: must not lie ")
        assert "\n" not in message

    def test_edges(self) -> None:
        """The stated edges: exactly +5 minutes and exactly 2000-01-01 are accepted."""
        assert check_recorded(NOW + FUTURE_TOLERANCE, "at", NOW) == NOW + FUTURE_TOLERANCE
        assert check_recorded(EARLIEST, "at", NOW) == EARLIEST
        with pytest.raises(InstantOutOfRange):
            check_recorded(NOW + FUTURE_TOLERANCE + timedelta(microseconds=1), "at", NOW)

    def test_contract_start_is_a_floor(self) -> None:
        """With a contract start, an instant before it is refused and the message says so."""
        start = datetime(2026, 1, 1, tzinfo=UTC)
        with pytest.raises(InstantOutOfRange, match="before the contract start 2026-01-01"):
            check_recorded(datetime(2025, 12, 31, tzinfo=UTC), "at", NOW, not_before=start)

    def test_go_zero_time_is_named(self) -> None:
        """Go's zero time is refused as a recorded instant and the message says what it is."""
        with pytest.raises(InstantOutOfRange, match="Go's zero time"):
            check_recorded(datetime(1, 1, 1, tzinfo=UTC), "startsAt", NOW)

    def test_schedule_reaches_a_year_ahead(self) -> None:
        """An exclusion may be planned up to 366 days ahead, not further, never before 2000."""
        assert check_scheduled(NOW + SCHEDULE_HORIZON, "end", NOW)
        with pytest.raises(InstantOutOfRange, match=r"^end: must not lie more than 366 days"):
            check_scheduled(NOW + SCHEDULE_HORIZON + timedelta(seconds=1), "end", NOW)
        with pytest.raises(InstantOutOfRange, match=r"^announced_at: "):
            check_exclusion(NOW, NOW + timedelta(hours=1), NOW + timedelta(days=1), NOW)

    def test_naive_refused(self) -> None:
        """A naive instant is refused (it would take the host's zone)."""
        with pytest.raises(InstantOutOfRange, match="UTC offset"):
            check_recorded(datetime(2026, 11, 30), "at", NOW)


async def _service(tmp_path: Path) -> tuple[FaultService, SqliteStore]:
    store = SqliteStore(tmp_path / "slawatch.db", "test")
    await store.open()
    return FaultService(store, SUPPORT.support_contracts(), clock=lambda: NOW), store


class TestFaultService:
    async def test_every_recording_operation_is_bounded(self, tmp_path: Path) -> None:
        """open, ack/restore/solve and reassess refuse a time three weeks ahead or in year 1;
        the fault stays open and unchanged."""
        service, store = await _service(tmp_path)
        try:
            ahead = NOW + timedelta(weeks=3)
            with pytest.raises(InstantOutOfRange, match=r"^received_at: "):
                await service.open("uma", "IVR down", Severity.BUSINESS_CRITICAL, ahead)
            with pytest.raises(InstantOutOfRange, match=r"^received_at: .*year 2000"):
                await service.open("uma", "IVR down", Severity.MINOR, datetime(1, 1, 1, tzinfo=UTC))
            opened, _ = await service.open(
                "uma", "IVR down", Severity.BUSINESS_CRITICAL, NOW - timedelta(days=1)
            )
            for level in Level:
                with pytest.raises(InstantOutOfRange, match=r"^at: must not lie more than 5"):
                    await service.record_level(opened.id, level, ahead)
            with pytest.raises(InstantOutOfRange, match=r"^at: "):
                await service.reassess(opened.id, Severity.MINOR, ahead)
            again = await service.get(opened.id)
            assert again.events == opened.events
            skewed = await service.record_level(
                opened.id, Level.ACKNOWLEDGE, NOW + timedelta(minutes=4)
            )
            assert len(skewed.events) == 2
        finally:
            await store.close()


class TestCli:
    def test_solve_three_weeks_ahead_is_refused(self, config: Path) -> None:
        """``slawatch fault solve ID --at`` three weeks ahead: exit 2, one line, fault still
        open (it closed the fault at once)."""
        opened = fault(
            config,
            "open",
            "--id",
            "F-1",
            "--title",
            "IVR down",
            "--severity",
            "business_critical",
            "--received-at",
            "2026-11-23T10:00:00Z",
        )
        assert opened[0] == 0
        ahead = _iso(CLI_NOW + timedelta(weeks=3))
        status, out, err = fault(config, "solve", "F-1", "--at", ahead)
        assert (status, out) == (2, "")
        assert err.startswith("slawatch fault solve: at: must not lie more than 5 minutes")
        assert err.count("\n") == 1
        status, out, _ = fault(config, "list", "--open", "--format", "json")
        assert status == 0
        (summary,) = json.loads(out)["contracts"]
        assert [f["id"] for f in summary["faults"]] == ["F-1"]


class TestFaultApi:
    async def test_levels_and_opening_bounded_over_http(self, api: Api) -> None:
        """POST /api/v1/faults and /solve with times three weeks ahead are 400 naming the
        field; the fault stays open."""
        ahead = _iso(NOW + timedelta(weeks=3))
        fault_body = {"id": "F-1", "title": "IVR down", "severity": "business_critical"}
        status, body = await api.call(
            "POST", "/api/v1/faults", {**fault_body, "received_at": ahead}
        )
        assert status == 400
        assert body["error"].startswith("received_at: must not lie more than 5 minutes")
        status, _ = await api.call(
            "POST", "/api/v1/faults", {**fault_body, "received_at": "2026-11-23T10:00:00Z"}
        )
        assert status == 201
        status, body = await api.call("POST", "/api/v1/faults/F-1/solve", {"at": ahead})
        assert status == 400
        assert body["error"].startswith("at: must not lie more than 5 minutes")
        _, listing = await api.call("GET", "/api/v1/faults?open=true", auth=False)
        assert [f["id"] for f in listing["faults"]] == ["F-1"]


class TestAlertmanager:
    def _plan(self, *alerts: dict[str, object]) -> tuple[list[str], list[str]]:
        payload = parse_webhook(am_payload(*alerts))
        ops, skipped = plan(payload, AlertRouting(default_contract="uma"), frozenset({"uma"}), NOW)
        return [op.fault_id for op in ops], [s.reason for s in skipped]

    def test_zero_start_is_absent(self) -> None:
        """startsAt = Go's zero time is absent: the alert is skipped, no fault in year 1."""
        ops, reasons = self._plan(am_alert(starts="0001-01-01T00:00:00Z"))
        assert ops == []
        assert reasons == [
            "alerts[0].startsAt: absent (Go's zero time): a fault needs the time it began"
        ]

    def test_year_9999_refused(self) -> None:
        """startsAt in year 9999 is skipped with the bound in the reason."""
        ops, reasons = self._plan(am_alert(starts="9999-12-31T23:59:59Z"))
        assert ops == []
        assert reasons[0].startswith("alerts[0].startsAt: must not lie more than 5 minutes")

    def test_resolved_end_ahead_refused_firing_end_ahead_fine(self) -> None:
        """A resolved alert ending next week is skipped; a firing alert's future endsAt (its
        expiry, as Alertmanager sends it) is normal; the good alert of a group still counts."""
        ahead = _iso(NOW + timedelta(weeks=1))
        ops, reasons = self._plan(
            am_alert("resolved", ends=ahead, fingerprint="aaaa"),
            am_alert("firing", ends=ahead, fingerprint="bbbb"),
        )
        assert len(ops) == 1
        assert len(reasons) == 1
        assert reasons[0].startswith("alerts[0].endsAt: must not lie more than 5 minutes")

    async def test_webhook_opens_no_fault(self, api: Api) -> None:
        """Over HTTP: year 9999 and zero time are skipped (200, reasons listed), no fault."""
        body = am_payload(
            am_alert(starts="9999-12-31T23:59:59Z", fingerprint="aaaa"),
            am_alert(starts="0001-01-01T00:00:00Z", fingerprint="bbbb"),
        )
        status, answer = await api.call("POST", "/api/v1/alertmanager", body)
        assert status == 200
        assert answer["faults"] == []
        assert len(answer["skipped"]) == 2
        _, listing = await api.call("GET", "/api/v1/faults", auth=False)
        assert listing["faults"] == []


class TestDaemonApi:
    def test_exclusions_and_claims_are_bounded(self, tmp_path: Path) -> None:
        """POST /api/v1/exclusions refuses a window two years ahead, one in 1970 and a notice
        given tomorrow; POST /api/v1/claims refuses a claim filed next month (400 each)."""
        port = free_port()
        now = time.time()

        def at(offset_days: float) -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + offset_days * 86400))

        with web_target() as target:
            target.set("a", "up")
            config = write_config(
                tmp_path,
                port,
                [http_target("a", target.url("a"))],
                [{"name": "web", "targets": ["a"]}],
                [sla("web-sla", "web")],
            )
            with running_daemon(config, port) as daemon:
                url = daemon.base + "/api/v1/exclusions"
                window = {
                    "kind": "scheduled_maintenance",
                    "start": at(2),
                    "end": at(2.1),
                    "reason": "carrier work, ticket 4711",
                    "services": ["web"],
                }
                refused = [
                    ({**window, "start": at(730), "end": at(731)}, "start: must not lie"),
                    (
                        {**window, "start": "1970-01-01T00:00:00Z", "end": at(1)},
                        "start: must not lie before the year 2000",
                    ),
                    ({**window, "announced_at": at(1)}, "announced_at: must not lie more"),
                ]
                for body, expected in refused:
                    status, text = request("POST", url, body, token=TOKEN)
                    assert status == 400, text
                    assert expected in json.loads(text)["error"]
                status, text = request("POST", url, window, token=TOKEN)
                assert status == 201, text
                month = time.strftime("%Y-%m", time.gmtime(now - 40 * 86400))
                claim = {"sla": "web-sla", "month": month, "filed_at": at(30)}
                status, text = request("POST", daemon.base + "/api/v1/claims", claim, token=TOKEN)
                assert status == 400, text
                assert json.loads(text)["error"].startswith("filed_at: must not lie more")
