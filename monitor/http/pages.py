"""The pages' HTTP routes, served on the daemon's port next to ``/metrics`` (same listener,
same access: read-only, open like ``/metrics``).

    GET /                               overview (``?month=YYYY-MM`` for a past month)
    GET /sla/{name}                     redirect to the SLA's current month
    GET /sla/{name}/{YYYY-MM}           the month: heat-map, outages, exclusions, credit, claim
    GET /sla/{name}/{YYYY-MM}/claim.txt the claim draft as a download
    GET /support/{contract}             faults, deadlines on a support-hours timeline, credits
    GET /target/{name}                  last results, failures, latency and call quality
"""

from __future__ import annotations

import asyncio
import urllib.parse

from aiohttp import web

from monitor.sla.calendar import Month, month_containing
from monitor.web.view import WebSource

# monitor.web.render (jinja2 and the templates) is imported where a page is rendered, not at
# start: the daemon is ready about 0.05 s of CPU sooner (issue 20), and most daemons serve a
# page rarely, if ever.

HTML = "text/html"


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, content_type=HTML, charset="utf-8", status=status)


def _error(status: int, message: str) -> web.Response:
    from monitor.web.render import error_page

    return _html(error_page(status, message), status=status)


def _month(text: str | None, field: str) -> Month | None:
    from monitor.web.render import error_page

    if not text:
        return None
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=error_page(400, f"{field}: {exc}"), content_type=HTML
        ) from None


def sla_path(name: str, month: Month) -> str:
    return f"/sla/{urllib.parse.quote(name, safe='')}/{month}"


def web_routes(source: WebSource) -> list[web.RouteDef]:
    """The routes, reading everything from ``source``."""

    async def overview(request: web.Request) -> web.Response:
        from monitor.web.render import render_overview

        month = _month(request.query.get("month"), "month")
        now = source.now()
        try:
            results, summaries = await asyncio.gather(
                source.month_results(month), source.support_summaries(month)
            )
        except ValueError as exc:
            return _error(400, str(exc))
        zones = [p.timezone for p in source.policies()] or ["UTC"]
        latest = max(month_containing(now, tz) for tz in zones)
        return _html(
            render_overview(
                results, summaries, month=month, latest=latest, now=now, vantage=source.vantage
            )
        )

    def _policy(name: str) -> web.Response | None:
        if any(p.name == name for p in source.policies()):
            return None
        known = ", ".join(p.name for p in source.policies()) or "none"
        return _error(404, f"no SLA named {name!r}; known: {known}")

    async def sla_current(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        missing = _policy(name)
        if missing is not None:
            return missing
        policy = next(p for p in source.policies() if p.name == name)
        raise web.HTTPFound(sla_path(name, month_containing(source.now(), policy.timezone)))

    async def sla_month(request: web.Request) -> web.Response:
        from monitor.web.render import Nav, render_sla_month

        name = request.match_info["name"]
        missing = _policy(name)
        if missing is not None:
            return missing
        month = _month(request.match_info["month"], "month")
        assert month is not None
        try:
            result = (await source.month_results(month, sla=name))[0]
        except ValueError as exc:
            return _error(400, str(exc))
        claim = await source.claim_draft(result)
        policy = next(p for p in source.policies() if p.name == name)
        current = month_containing(source.now(), policy.timezone)
        nav = Nav(
            previous=sla_path(name, month.previous()),
            next=sla_path(name, month.next()) if month < current else None,
            overview=f"/?month={month}",
            claim=sla_path(name, month) + "/claim.txt",
        )
        return _html(
            render_sla_month(
                result, policy=policy, claim_text=claim, vantage=source.vantage, nav=nav
            )
        )

    async def claim_file(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        missing = _policy(name)
        if missing is not None:
            return missing
        month = _month(request.match_info["month"], "month")
        assert month is not None
        try:
            result = (await source.month_results(month, sla=name))[0]
        except ValueError as exc:
            return _error(400, str(exc))
        claim = await source.claim_draft(result)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return web.Response(
            text=claim,
            content_type="text/plain",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="claim-{safe}-{month}.txt"'},
        )

    async def support(request: web.Request) -> web.Response:
        from monitor.web.render import render_support

        name = request.match_info["contract"]
        month = _month(request.query.get("month"), "month")
        summaries = await source.support_summaries(month)
        chosen = next((s for s in summaries if s.contract.name == name), None)
        if chosen is None:
            known = ", ".join(s.contract.name for s in summaries) or "none"
            return _error(404, f"no support contract named {name!r}; known: {known}")
        return _html(render_support(chosen, vantage=source.vantage))

    async def target(request: web.Request) -> web.Response:
        from monitor.web.render import render_target

        name = request.match_info["name"]
        view = await source.target_view(name)
        if view is None:
            known = ", ".join(source.target_names()) or "none"
            return _error(404, f"no target named {name!r}; known: {known}")
        return _html(render_target(view, now=source.now(), vantage=source.vantage))

    return [
        web.get("/", overview),
        web.get("/sla/{name}", sla_current),
        web.get("/sla/{name}/{month}", sla_month),
        web.get("/sla/{name}/{month}/claim.txt", claim_file),
        web.get("/support/{contract}", support),
        web.get("/target/{name}", target),
    ]
