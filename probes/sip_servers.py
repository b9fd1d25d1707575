"""Server failover for every SIP probe kind (RFC 3263 §4.3 as a phone does it).

``over_servers`` locates the servers of a target's domain URI (``probes.sip.locate``) and
runs one attempt per server, in DNS order, until one answers: a server that refuses the
connection, times out, fails the TLS handshake or answers 503 gives way to the next, each
within its share of the probe's timeout. The result is the answering server's, with the
evidence of the walk: ``server`` (who answered), ``servers_failed`` (who did not, and why),
``servers_tried`` and ``dns_path``. When every server failed the reason is
``all_servers_failed`` (``down``, or ``timeout`` if every one timed out) and
``servers_failed`` names each; with a single server its own reason stays.

A target with an IP literal or an explicit ``host`` runs once, as before, with no DNS.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from probes.result import DetailValue, Outcome, ProbeContext, ProbeResult
from probes.sip.locate import LocateError, ServerAddress, locate
from probes.sip.options import SipBaseOptions

MIN_ATTEMPT_SECONDS = 0.1
"""Less time than this left: the remaining servers are recorded as ``not_tried``."""

OptionsT = TypeVar("OptionsT", bound=SipBaseOptions)
Attempt = Callable[[OptionsT, ProbeContext], Awaitable[ProbeResult]]

FAILOVER_REASONS = frozenset(
    {
        "timeout",
        "connection_refused",
        "icmp_unreachable",
        "network_unreachable",
        "tls_handshake_failed",
        "connect_timeout",
        "connection_reset",
        "connection_closed",
        "resolve_failed",
    }
)
"""Reasons that say "this server is unusable" rather than "the service refused the request"."""


def should_fail_over(result: ProbeResult) -> bool:
    """Whether the next server should be tried after ``result`` (pure).

    Never after a call was answered: the service was reached and what followed is its
    verdict. A 503 is the server saying it cannot serve now (RFC 3263 §4.3).
    """
    if result.outcome in (Outcome.UP, Outcome.ERROR):
        return False
    if "answer_seconds" in result.details:
        return False
    return result.reason in FAILOVER_REASONS or result.details.get("sip_status") == 503


def for_server(options: OptionsT, server: ServerAddress) -> OptionsT:
    """``options`` aimed at one located server; the URI (and so the TLS name) is unchanged."""
    return options.model_copy(
        update={"host": server.address, "port": server.port, "transport": server.transport}
    )


async def over_servers(
    options: OptionsT, ctx: ProbeContext, attempt: Attempt[OptionsT], *, keep_deadline: bool = False
) -> ProbeResult:
    """Run ``attempt`` against each located server until one does not call for failover.

    Each attempt gets a context whose ``timeout_seconds`` is its share; its ``deadline`` is
    that share too, or the probe's own with ``keep_deadline`` (a call: the share bounds only
    the wait for the server's first response, an answered call may use the rest).
    """
    if not options.needs_location():
        return await attempt(options, ctx)
    uri = options.parsed_uri()
    started = time.monotonic()
    try:
        location = await locate(
            uri.bare_host,
            secure=uri.scheme == "sips",
            transport=options.declared_transport(),
            port=options.port or uri.port,
            nameservers=options.resolver,
            lifetime=max(0.001, ctx.remaining() - 0.05),
        )
    except LocateError as exc:
        # Our own resolver not answering is the monitor's trouble, not the vendor's.
        outcome = Outcome.ERROR if exc.reason == "resolver_timeout" else Outcome.DOWN
        return ctx.result(outcome, exc.reason, details={"error": str(exc)[:300]})
    resolve_seconds = time.monotonic() - started
    failed: list[str] = []
    timeouts = 0
    result: ProbeResult | None = None
    servers = location.servers
    for index, server in enumerate(servers):
        left = ctx.remaining()
        if left < MIN_ATTEMPT_SECONDS:
            failed.extend(f"{s.label} not_tried" for s in servers[index:])
            break
        share = left / (len(servers) - index)
        if options.server_timeout is not None and index < len(servers) - 1:
            share = min(left, options.server_timeout)
        sub = ProbeContext(
            target=ctx.target,
            timeout_seconds=share,
            started_at=ctx.started_at,
            deadline=ctx.deadline if keep_deadline else time.monotonic() + share,
        )
        result = await attempt(for_server(options, server), sub)
        if not should_fail_over(result):
            return _with_walk(ctx, result, result.outcome, result.reason, server, failed,
                              index + 1, location.path, resolve_seconds)  # fmt: skip
        failed.append(f"{server.label} {result.reason or 'status_code_503'}")
        timeouts += result.outcome is Outcome.TIMEOUT
    assert result is not None or failed
    if len(servers) == 1 and result is not None:
        return _with_walk(ctx, result, result.outcome, result.reason, None, failed, 1,
                          location.path, resolve_seconds)  # fmt: skip
    # Servers left untried for lack of time make the verdict a timeout, not "down".
    untried = any(entry.endswith(" not_tried") for entry in failed)
    outcome = Outcome.TIMEOUT if untried or timeouts == len(servers) else Outcome.DOWN
    last = result or ctx.result(outcome, "all_servers_failed")
    return _with_walk(ctx, last, outcome, "all_servers_failed", None, failed, len(servers),
                      location.path, resolve_seconds)  # fmt: skip


def _with_walk(
    ctx: ProbeContext,
    result: ProbeResult,
    outcome: Outcome,
    reason: str,
    server: ServerAddress | None,
    failed: list[str],
    tried: int,
    path: str,
    resolve_seconds: float,
) -> ProbeResult:
    details: dict[str, DetailValue] = dict(result.details)
    if server is not None:
        details["server"] = server.label
    if failed:
        details["servers_failed"] = "; ".join(failed)[:1000]
    details["servers_tried"] = tried
    details["dns_path"] = path[:500]
    if reason == "all_servers_failed":
        details["error"] = f"every server failed: {'; '.join(failed)}"[:1000]
    phases = {"resolve": resolve_seconds, **result.phases}
    return ctx.result(outcome, reason, phases=phases, details=details)
