"""Fault API and Alertmanager webhook: real aiohttp server on 127.0.0.1:0, real client, real
SqliteStore on a temp file. Every request has a 10 s timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from monitor.config.support import SupportConfig
from monitor.http.faults import fault_routes
from monitor.store.sqlite import SqliteStore
from tests.test_support_alertmanager import am_alert, am_payload

pytestmark = pytest.mark.timeout(30)

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
SUPPORT = SupportConfig.model_validate(
    {
        "contracts": [{"name": "uma", "annual_fee": "120000.00", "currency": "GBP"}],
        "alertmanager": {"default_contract": "uma"},
    }
)


def check_token(request: web.Request) -> web.Response | None:
    """The daemon's rule in miniature: exact bearer token or 401."""
    if request.headers.get("Authorization") == f"Bearer {TOKEN}":
        return None
    return web.json_response({"error": "missing or wrong bearer token"}, status=401)


@dataclass
class Api:
    """A running server and a client bound to it."""

    base: str
    http: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, body: Any = None, *, auth: bool = True
    ) -> tuple[int, Any]:
        """Send JSON, return (status, decoded JSON)."""
        headers = AUTH if auth else {}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The fault routes mounted on a fresh app over a fresh database."""
    store = SqliteStore(tmp_path / "slawatch.db", "test")
    await store.open()
    app = web.Application()
    app.add_routes(fault_routes(store, lambda: SUPPORT, check_token, clock=lambda: NOW))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        yield Api(f"http://127.0.0.1:{port}", http)
    await runner.cleanup()
    await store.close()


class TestFaultEndpoints:
    """``/api/v1/faults``: open, levels, reassess, list."""

    async def test_lifecycle(self, api: Api) -> None:
        """Open, acknowledge, restore, reassess and solve; the listing shows deadlines."""
        status, body = await api.call(
            "POST",
            "/api/v1/faults",
            {
                "id": "F-1",
                "title": "IVR down",
                "severity": "business_critical",
                "received_at": "2026-11-23T10:00:00Z",
            },
        )
        assert status == 201
        assert [lv["deadline"] for lv in body["levels"]] == [
            "2026-11-23T14:00:00+00:00",
            "2026-11-24T14:00:00+00:00",
            "2026-11-26T10:00:00+00:00",
        ]
        for action, at in (("ack", "2026-11-23T11:00:00Z"), ("restore", "2026-11-25T11:00:00Z")):
            status, _ = await api.call("POST", f"/api/v1/faults/F-1/{action}", {"at": at})
            assert status == 200
        status, body = await api.call(
            "POST",
            "/api/v1/faults/F-1/reassess",
            {"severity": "defect_with_workaround", "at": "2026-11-27T12:00:00Z"},
        )
        assert (status, body["severity"]) == (200, "defect_with_workaround")
        status, body = await api.call("POST", "/api/v1/faults/F-1/solve", {"at": "now"})
        assert status == 200
        assert body["open"] is False
        # Late from Thu 26 10:00: 5, 5 (reassessed Fri 12:00), then 1% Sat, Sun, Mon.
        assert body["credit_percent"] == "13"
        status, listing = await api.call("GET", "/api/v1/faults?open=true", auth=False)
        assert (status, listing) == (200, {"faults": []})

    async def test_errors(self, api: Api) -> None:
        """Bad fields, unknown faults, contradictions and missing tokens get clear errors."""
        status, body = await api.call(
            "POST", "/api/v1/faults", {"title": "x", "severity": "urgent"}
        )
        assert status == 400
        assert body["error"].startswith("severity: expected one of business_critical")
        status, body = await api.call("POST", "/api/v1/faults/F-9/ack", {"at": "now"})
        assert (status, body["error"]) == (404, "fault 'F-9' does not exist")
        status, _ = await api.call(
            "POST", "/api/v1/faults", {"title": "x", "severity": "minor"}, auth=False
        )
        assert status == 401
        await api.call("POST", "/api/v1/faults", {"id": "F-1", "title": "x", "severity": "minor"})
        status, body = await api.call("POST", "/api/v1/faults/F-1/ack", {"at": "yesterday"})
        assert status == 400
        assert (
            (body["error"])
            == "at: expected an RFC 3339 timestamp with offset such as 2026-11-10T02:00:00Z "
            "or 'now', got 'yesterday'"
        )
        await api.call("POST", "/api/v1/faults/F-1/ack", {"at": "2026-11-30T12:00:00Z"})
        status, body = await api.call(
            "POST", "/api/v1/faults/F-1/ack", {"at": "2026-11-30T12:05:00Z"}
        )
        assert status == 409
        assert "already recorded" in body["error"]


class TestAlertmanagerWebhook:
    """``POST /api/v1/alertmanager`` with bodies in Alertmanager's exact format."""

    async def test_firing_duplicate_resolved(self, api: Api) -> None:
        """Firing creates, a duplicate changes nothing, resolved records Level 2."""
        fire = am_payload(am_alert())
        status, body = await api.call("POST", "/api/v1/alertmanager", fire)
        assert status == 200
        assert [f["action"] for f in body["faults"]] == ["created"]
        _, body = await api.call("POST", "/api/v1/alertmanager", fire)
        assert [f["action"] for f in body["faults"]] == ["unchanged"]
        resolve = am_payload(am_alert("resolved", ends="2026-11-23T12:30:00Z"))
        _, body = await api.call("POST", "/api/v1/alertmanager", resolve)
        assert [f["action"] for f in body["faults"]] == ["resolved"]
        _, listing = await api.call("GET", "/api/v1/faults", auth=False)
        (fault,) = listing["faults"]
        assert fault["levels"][1]["met_at"] == "2026-11-23T12:30:00+00:00"
        assert fault["open"] is True

    async def test_resolved_before_firing_and_concurrent_repeats(self, api: Api) -> None:
        """Resolved first, then firing, each delivered five times at once: one fault."""
        resolve = am_payload(am_alert("resolved", ends="2026-11-23T12:30:00Z"))
        fire = am_payload(am_alert())
        await api.call("POST", "/api/v1/alertmanager", resolve)
        await asyncio.gather(
            *(api.call("POST", "/api/v1/alertmanager", b) for b in [fire, resolve] * 5)
        )
        _, listing = await api.call("GET", "/api/v1/faults", auth=False)
        (fault,) = listing["faults"]
        assert [e["kind"] for e in fault["events"]] == ["opened", "cleared", "restored"]

    async def test_refusals(self, api: Api) -> None:
        """Wrong version is 400 naming the field; no token is 401; unlabelled alerts skip."""
        bad = am_payload(am_alert())
        bad["version"] = "3"
        status, body = await api.call("POST", "/api/v1/alertmanager", bad)
        assert (status, body["error"]) == (400, "payload.version: expected \"4\", got '3'")
        status, _ = await api.call(
            "POST", "/api/v1/alertmanager", am_payload(am_alert()), auth=False
        )
        assert status == 401
        status, body = await api.call(
            "POST", "/api/v1/alertmanager", am_payload(am_alert(severity=None))
        )
        assert (status, body["faults"], body["skipped"][0]["reason"]) == (
            200,
            [],
            "no severity label",
        )
