"""HTTP endpoints for faults and the Alertmanager webhook receiver (aiohttp route tables).

``fault_routes`` returns route definitions for the daemon's app. Reads are open like the other
read endpoints; every write, the webhook included, needs the bearer token (Alertmanager sends
it with ``http_config.authorization``). Errors are ``{"error": message}``: 400 bad input (the
message names the field), 401/403 token, 404 unknown fault, 409 contradicts history, 413 body
too large.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from monitor.config.support import SupportConfig
from monitor.http.common import MAX_WEBHOOK_BODY, BodyError, json_body, json_error, only_fields
from monitor.instants import parse_instant
from monitor.store.base import Store
from monitor.support.alertmanager import PayloadError, parse_webhook, plan
from monitor.support.contract import summarize_fault
from monitor.support.faults import Fault, FaultError, Level, Severity
from monitor.support.report import fault_json
from monitor.support.service import FaultNotFoundError, FaultService

log = structlog.get_logger(__name__)

TokenCheck = Callable[[web.Request], web.Response | None]
Handler = Callable[[web.Request], Awaitable[web.Response]]

_LEVEL_ACTIONS = {"ack": Level.ACKNOWLEDGE, "restore": Level.RESTORE, "solve": Level.SOLVE}


async def _body(request: web.Request) -> Any:
    return await json_body(request, limit=MAX_WEBHOOK_BODY)


def _text(body: dict[str, Any], key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {value!r}")
    return value


def _severity(value: object) -> Severity:
    choices = [s.value for s in Severity]
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"severity: expected one of {', '.join(choices)}, got {value!r}")
    return Severity(value)


class _FaultApi:
    def __init__(
        self,
        store: Store,
        support: Callable[[], SupportConfig | None],
        check_token: TokenCheck,
        clock: Callable[[], datetime],
    ) -> None:
        self.support = support
        self.check_token = check_token
        self.clock = clock
        self.service = FaultService(store, {}, clock=clock)
        self._seen: SupportConfig | None = None

    def config(self) -> SupportConfig:
        current = self.support() or SupportConfig()
        if current is not self._seen:
            # Rebuilding contracts runs the holiday look-ups: only after a reload.
            self.service.update_contracts(current.support_contracts())
            self._seen = current
        return current

    def view(self, fault: Fault, now: datetime) -> dict[str, Any]:
        contract = self.service.contracts.get(fault.contract)
        if contract is None:  # a contract removed from the config: history without deadlines
            return {
                "id": fault.id,
                "contract": fault.contract,
                "title": fault.title,
                "severity": fault.severity.value,
                "error": "contract not configured",
            }
        return {"contract": fault.contract, **fault_json(summarize_fault(contract, fault, now))}

    def guarded(self, handler: Handler, *, write: bool) -> Handler:
        async def run(request: web.Request) -> web.Response:
            self.config()
            if write:
                denied = self.check_token(request)
                if denied is not None:
                    return denied
            try:
                return await handler(request)
            except FaultNotFoundError as exc:
                return json_error(404, str(exc))
            except FaultError as exc:
                return json_error(409, str(exc))
            except BodyError as exc:
                return exc.response()
            except ValueError as exc:
                return json_error(400, str(exc))

        return run

    async def list_faults(self, request: web.Request) -> web.Response:
        contract = request.query.get("contract")
        open_only = request.query.get("open", "false").lower() in ("1", "true", "yes")
        now = self.clock()
        # The store's open flag is a superset of "no Solution yet under the contract".
        faults = await self.service.list(contract=contract, open_only=open_only)
        views = [self.view(f, now) for f in faults]
        if open_only:
            views = [v for v in views if v.get("open", True)]
        return web.json_response({"faults": views})

    async def get_fault(self, request: web.Request) -> web.Response:
        fault = await self.service.get(request.match_info["id"])
        return web.json_response(self.view(fault, self.clock()))

    async def open_fault(self, request: web.Request) -> web.Response:
        body = only_fields(
            await _body(request), {"id", "contract", "title", "severity", "received_at", "note"}
        )
        now = self.clock()
        contracts = sorted(self.service.contracts)
        default = contracts[0] if len(contracts) == 1 else None
        if "contract" not in body and default is None:
            raise ValueError(f"contract: required, one of {', '.join(contracts) or 'none'}")
        fault, created = await self.service.open(
            _text(body, "contract", default),
            _text(body, "title"),
            _severity(body.get("severity")),
            parse_instant(body.get("received_at", "now"), "received_at", now=now),
            fault_id=_text(body, "id") if "id" in body else None,
            source="api",
            note=_text(body, "note", ""),
        )
        return web.json_response(self.view(fault, now), status=201 if created else 200)

    async def level(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        body = only_fields(await _body(request) if request.can_read_body else {}, {"at", "note"})
        now = self.clock()
        fault = await self.service.record_level(
            request.match_info["id"],
            _LEVEL_ACTIONS[action],
            parse_instant(body.get("at", "now"), "at", now=now),
            source="api",
            note=_text(body, "note", ""),
        )
        return web.json_response(self.view(fault, now))

    async def reassess(self, request: web.Request) -> web.Response:
        body = only_fields(await _body(request), {"severity", "at", "note"})
        now = self.clock()
        fault = await self.service.reassess(
            request.match_info["id"],
            _severity(body.get("severity")),
            parse_instant(body.get("at", "now"), "at", now=now),
            source="api",
            note=_text(body, "note", ""),
        )
        return web.json_response(self.view(fault, now))

    async def alertmanager(self, request: web.Request) -> web.Response:
        support = self.config()
        try:
            payload = parse_webhook(await _body(request))
        except PayloadError as exc:
            log.warning("alertmanager_payload_refused", problem=str(exc))
            return json_error(400, str(exc))
        ops, skipped = plan(
            payload, support.routing(), frozenset(self.service.contracts), now=self.clock()
        )
        outcomes = [await self.service.apply_alert(op) for op in ops]
        for item in skipped:
            if item.reason != "no severity label":
                log.warning("alert_not_a_fault", fingerprint=item.fingerprint, reason=item.reason)
        log.info(
            "alertmanager_notification",
            receiver=payload.receiver,
            group_key=payload.group_key,
            alerts=len(payload.alerts),
            actions=[o.action.value for o in outcomes],
        )
        return web.json_response(
            {
                "faults": [
                    {"alert_key": o.alert_key, "fault": o.fault_id, "action": o.action.value}
                    for o in outcomes
                ],
                "skipped": [
                    {"index": s.index, "fingerprint": s.fingerprint, "reason": s.reason}
                    for s in skipped
                ],
            }
        )


def fault_routes(
    store: Store,
    support: Callable[[], SupportConfig | None],
    check_token: TokenCheck,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[web.RouteDef]:
    """The fault and webhook routes. ``support`` returns the current ``support:`` section (so a
    reload takes effect without re-mounting); ``check_token`` returns ``None`` when the request
    carries the bearer token, else the refusal to send."""
    api = _FaultApi(store, support, check_token, clock)
    return [
        web.get("/api/v1/faults", api.guarded(api.list_faults, write=False)),
        web.post("/api/v1/faults", api.guarded(api.open_fault, write=True)),
        web.get("/api/v1/faults/{id}", api.guarded(api.get_fault, write=False)),
        web.post(
            "/api/v1/faults/{id}/{action:ack|restore|solve}",
            api.guarded(api.level, write=True),
        ),
        web.post("/api/v1/faults/{id}/reassess", api.guarded(api.reassess, write=True)),
        web.post("/api/v1/alertmanager", api.guarded(api.alertmanager, write=True)),
    ]
