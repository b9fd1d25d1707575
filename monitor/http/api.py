"""The daemon's one HTTP port: metrics, health, status, reports and exclusions.

Read endpoints are open (they show what Prometheus scrapes anyway); write endpoints need the
bearer token from ``monitor.api_token`` and are refused outright when none is configured, so a
fresh install cannot be written to by anyone who reaches the port. The scheme is matched without
regard to case (``Authorization: bearer TOKEN`` is accepted, as RFC 9110 section 11.1 says).
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from monitor.config.fieldtypes import NAME_PATTERN
from monitor.http.claims import claim_from_json
from monitor.http.common import MAX_BODY, BodyError, json_body, json_error, only_fields
from monitor.http.faults import fault_routes
from monitor.http.limits import Coalesce, ReadLimits
from monitor.http.pages import web_routes
from monitor.http.pages_source import DaemonWebSource
from monitor.http.pieces import send_pieces  # sc24
from monitor.http.reports import daemon_month_results
from monitor.instant_bounds import check_exclusion, check_recorded
from monitor.instants import parse_instant, utc_from_epoch
from monitor.metrics.collector import MetricsExposition, outage_open, provisional_bucket_state
from monitor.metrics.contract import ContractCollector
from monitor.sla.calendar import Month, month_containing
from monitor.sla.month import MonthResult
from monitor.sla.policy import ExclusionKind, ExclusionWindow, SlaPolicy
from monitor.store.base import ExclusionExistsError
from probes.fields import SecretUnavailable

if TYPE_CHECKING:
    from monitor.runtime.view import DaemonView

log = structlog.get_logger(__name__)

DAEMON: web.AppKey[DaemonView] = web.AppKey("daemon", object)  # type: ignore[arg-type]
LIMITS = web.AppKey("limits", ReadLimits)
BUCKETS_CHUNK = 4096
"""States encoded per piece by /api/v1/buckets (the loop runs probes between pieces)."""
STREAM_PIECE = 64 * 1024
"""Bytes written per piece of a streamed response."""


def require_token(daemon: DaemonView, request: web.Request) -> web.Response | None:
    """None when the request carries the configured bearer token, else the error response."""
    ref = daemon.config.monitor.api_token
    if ref is None:
        return json_error(403, "write endpoints are disabled: set monitor.api_token in the config")
    try:
        expected = ref.read()
    except SecretUnavailable as exc:
        log.error("api_token_unavailable", problem=str(exc))
        return json_error(503, f"the API token is unavailable: {exc}")
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        return web.json_response(
            {"error": "missing or wrong bearer token"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer realm="slawatch"'},
        )
    return None


async def read_json(request: web.Request) -> dict[str, Any] | web.Response:
    """The body as a JSON object, or the response refusing it."""
    try:
        body = await json_body(request)
    except BodyError as exc:
        return exc.response()
    if not isinstance(body, dict):
        return json_error(400, f"body: expected a JSON object, got {type(body).__name__}")
    return body


async def authorized_json(
    daemon: DaemonView, request: web.Request
) -> dict[str, Any] | web.Response:
    """A write request's JSON object, or the response refusing it (token first, then body)."""
    denied = require_token(daemon, request)
    if denied is not None:
        return denied
    return await read_json(request)


def window_json(window: ExclusionWindow) -> dict[str, Any]:
    return {
        "id": window.id,
        "kind": window.kind.value,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "reason": window.reason,
        "services": sorted(window.services),
        "announced_at": None if window.announced_at is None else window.announced_at.isoformat(),
        "source": window.source,
    }


def exclusion_from_json(body: dict[str, Any], services: set[str]) -> ExclusionWindow:
    only_fields(body, {"id", "kind", "start", "end", "reason", "services", "announced_at"})
    kind_text = body.get("kind")
    kinds = [k.value for k in ExclusionKind]
    if kind_text not in kinds:
        raise ValueError(f"kind: expected one of {', '.join(kinds)}, got {kind_text!r}")
    start = parse_instant(body.get("start"), "start")
    end = parse_instant(body.get("end"), "end")
    if end <= start:
        raise ValueError(f"end: must be after start {start.isoformat()}, got {end.isoformat()}")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason: expected a non-empty text saying why (it goes into the report)")
    chosen = body.get("services", [])
    if not isinstance(chosen, list) or not all(isinstance(s, str) for s in chosen):
        raise ValueError(f"services: expected a list of service names, got {chosen!r}")
    missing = sorted(set(chosen) - services)
    if missing:
        raise ValueError(
            f"services: unknown service(s) {', '.join(missing)}; known: {sorted(services)}"
        )
    announced = body.get("announced_at")
    ident = body.get("id", "")
    if not isinstance(ident, str):
        raise ValueError(f"id: expected a string, got {ident!r}")
    if ident:
        check_exclusion_id(ident)
    return ExclusionWindow(
        id=ident,
        start=start,
        end=end,
        kind=ExclusionKind(kind_text),
        reason=reason.strip(),
        services=frozenset(chosen),
        announced_at=None if announced is None else parse_instant(announced, "announced_at"),
        source="api",
    )


MAX_ID_LENGTH = 64
"""An exclusion id names a window in reports and logs: short, like the config's names."""


def check_exclusion_id(ident: str) -> None:
    """Refuse an API exclusion id the config would refuse as a name (and over 64 characters)."""
    if len(ident) > MAX_ID_LENGTH:
        raise ValueError(f"id: at most {MAX_ID_LENGTH} characters, got {len(ident)}")
    if not NAME_PATTERN.fullmatch(ident):
        raise ValueError(
            "id: must start with a lower-case letter or digit and use only a-z 0-9 _ . -, "
            f"got {ident!r}"
        )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(daemon: DaemonView) -> web.Application:
    limits = ReadLimits()
    app = web.Application(client_max_size=MAX_BODY, middlewares=[limits.middleware])
    app[DAEMON] = daemon
    app[LIMITS] = limits
    exposition = MetricsExposition(daemon, extra=[ContractCollector(daemon)])

    shared = Coalesce()

    async def metrics(request: web.Request) -> web.StreamResponse:
        # A burst of scrapes costs one rendering (limits.Coalesce); the body goes out as the
        # pieces it was rendered as, never joined (issue 20, sc24: monitor.http.pieces).
        pieces = await shared.run("/metrics", exposition.render_parts)
        return await send_pieces(request, pieces, CONTENT_TYPE_LATEST)

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(request: web.Request) -> web.Response:
        # 503 while starting/stopping, while durable writes fail, or while a background loop
        # has not completed an iteration for many of its periods (issue 11, defect 4).
        problems = daemon.health.problems(daemon.clock())
        if not problems:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready: " + "; ".join(problems) + "\n")

    async def status(request: web.Request) -> web.Response:
        return web.json_response(await shared.run("/api/v1/status", status_document))

    async def status_document() -> dict[str, Any]:
        now = daemon.clock()
        moment = utc_from_epoch(now)
        slas = []
        for policy in daemon.accounting.inputs.policies:
            result = daemon.accounting.month_result(policy, moment)
            service = daemon.accounting.inputs.services[policy.service]
            figures = result.to_json()
            slas.append(
                {
                    **{k: figures[k] for k in figures if k not in ("states", "outages")},
                    "current_bucket_state": provisional_bucket_state(
                        daemon, policy, service, now
                    ).value,
                    "outage_open": outage_open(result, moment),
                    "open_outages": [o for o in figures["outages"][-1:]]
                    if outage_open(result, moment)
                    else [],
                }
            )
        targets = []
        for target in daemon.config.targets:
            st = daemon.state.targets.get(target.name)
            last = st.last if st else None
            targets.append(
                {
                    "target": target.name,
                    "kind": target.kind,
                    "role": target.role,
                    "last_outcome": None if last is None else last.outcome.value,
                    "last_reason": None if last is None else last.reason,
                    "last_run": None
                    if last is None
                    else utc_from_epoch(last.started_at).isoformat(),
                }
            )
        return {
            "vantage": daemon.config.monitor.name,
            "now": moment.isoformat(),
            "slas": slas,
            "targets": targets,
        }

    def _month_arg(request: web.Request, tz: str) -> Month:
        text = request.query.get("month")
        if not text:
            return month_containing(utc_from_epoch(daemon.clock()), tz)
        return Month.parse(text)

    async def report(request: web.Request) -> web.Response:
        from monitor.http.reports import daemon_report

        try:
            text, content_type = await shared.run(
                request.path_qs,
                lambda: daemon_report(
                    daemon,
                    service=request.query.get("service") or None,
                    month=request.query.get("month") or None,
                    fmt=request.query.get("format", "json"),
                ),
            )
        except ValueError as exc:
            return json_error(400, str(exc))
        return web.Response(text=text, content_type=content_type)

    async def buckets(request: web.Request) -> web.StreamResponse:
        name = request.query.get("sla")
        policies = daemon.accounting.inputs.policies
        chosen = [p for p in policies if name in (None, p.name)]
        if not chosen:
            return json_error(
                404, f"sla: unknown SLA {name!r}; known: {[p.name for p in policies]}"
            )
        months = []
        for policy in chosen:
            try:
                months.append(_month_arg(request, policy.timezone))
            except ValueError as exc:
                return json_error(400, str(exc))
        # With 10 s buckets a month is 267,840 states per SLA: encoding it took 430 ms of the
        # loop per request. Each SLA's document is encoded once per month result (the
        # accounting cache recomputes at most once a bucket), in pieces with the loop free in
        # between, and every request streams the same bytes.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"buckets": [')
        for index, (policy, month) in enumerate(zip(chosen, months, strict=True)):
            # Issue 20: months before the previous one come from the store (their tallies are
            # no longer in memory), as for /api/v1/report.
            (result,) = await daemon_month_results(
                daemon, [policy], str(month), utc_from_epoch(daemon.clock())
            )
            data = await encoded_buckets(policy, month, result)
            if index:
                await response.write(b", ")
            for offset in range(0, len(data), STREAM_PIECE):
                await response.write(data[offset : offset + STREAM_PIECE])
                await asyncio.sleep(0)  # write() yields only when the socket is full
        await response.write(b"]}")
        await response.write_eof()
        return response

    encoded: dict[tuple[str, Month], tuple[MonthResult, bytes]] = {}

    async def encoded_buckets(policy: SlaPolicy, month: Month, result: MonthResult) -> bytes:
        key = (policy.name, month)
        hit = encoded.get(key)
        if hit is not None and hit[0] is result:
            return hit[1]
        head = json.dumps(
            {
                "sla": policy.name,
                "service": policy.service,
                "month": str(month),
                "start": result.start.isoformat(),
                "bucket_seconds": policy.bucket_seconds,
            }
        )
        parts = [head[:-1].encode(), b', "states": [']
        states = result.states
        for offset in range(0, len(states), BUCKETS_CHUNK):
            piece = ", ".join(f'"{s.value}"' for s in states[offset : offset + BUCKETS_CHUNK])
            parts.append(((", " if offset else "") + piece).encode())
            await asyncio.sleep(0)
        parts.append(b"]}")
        data = b"".join(parts)
        encoded.pop(key, None)
        encoded[key] = (result, data)
        while len(encoded) > 2 * len(daemon.accounting.inputs.policies) + 2:
            del encoded[next(iter(encoded))]  # the oldest: other months asked for once
        return data

    async def list_exclusions(request: web.Request) -> web.Response:
        windows = [*daemon.config.exclusion_windows(), *daemon.api_exclusions]
        return web.json_response({"exclusions": [window_json(w) for w in windows]})

    async def add_exclusion(request: web.Request) -> web.Response:
        body = await authorized_json(daemon, request)
        if isinstance(body, web.Response):
            return body
        try:
            window = exclusion_from_json(body, set(daemon.config.service_defs()))
            check_exclusion(
                window.start, window.end, window.announced_at, utc_from_epoch(daemon.clock())
            )
        except ValueError as exc:
            return json_error(400, str(exc))
        if window.id and window.id in {w.id for w in daemon.config.exclusion_windows()}:
            return json_error(409, f"id: {window.id!r} is already defined in the config file")
        try:
            stored = await daemon.add_exclusion(window)
        except ExclusionExistsError as exc:
            return json_error(409, str(exc))
        log.info(
            "exclusion_added",
            **{k: v for k, v in window_json(stored).items() if k != "services"},
            services=sorted(stored.services),
        )
        return web.json_response(window_json(stored), status=201)

    async def delete_exclusion(request: web.Request) -> web.Response:
        denied = require_token(daemon, request)
        if denied is not None:
            return denied
        ident = request.match_info["id"]
        if ident in {w.id for w in daemon.config.exclusion_windows()}:
            return json_error(409, f"{ident!r} is defined in the config file: remove it there")
        if not await daemon.delete_exclusion(ident):
            return json_error(404, f"no exclusion with id {ident!r}")
        log.info("exclusion_deleted", id=ident)
        return web.json_response({"deleted": ident})

    async def list_claims(request: web.Request) -> web.Response:
        claims = sorted(daemon.claims.values(), key=lambda c: (c.sla, c.month))
        return web.json_response({"claims": [c.to_json() for c in claims]})

    async def add_claim(request: web.Request) -> web.Response:
        body = await authorized_json(daemon, request)
        if isinstance(body, web.Response):
            return body
        slas = {p.name for p in daemon.accounting.inputs.policies}
        try:
            claim = claim_from_json(body, slas, utc_from_epoch(daemon.clock()))
            check_recorded(claim.filed_at, "filed_at", utc_from_epoch(daemon.clock()))
        except ValueError as exc:
            return json_error(400, str(exc))
        await daemon.record_claim(claim)
        log.info("claim_recorded", **claim.to_json())
        return web.json_response(claim.to_json(), status=201)

    app.router.add_routes(
        fault_routes(
            daemon.store,
            lambda: daemon.config.support,
            lambda request: require_token(daemon, request),
        )
    )
    app.router.add_routes(web_routes(DaemonWebSource(daemon, daemon.recent)))  # web view, /
    app.router.add_get("/api/v1/claims", list_claims)
    app.router.add_post("/api/v1/claims", add_claim)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/status", status)
    app.router.add_get("/api/v1/report", report)
    app.router.add_get("/api/v1/buckets", buckets)
    app.router.add_get("/api/v1/exclusions", list_exclusions)
    app.router.add_post("/api/v1/exclusions", add_exclusion)
    app.router.add_delete("/api/v1/exclusions/{id}", delete_exclusion)
    return app
