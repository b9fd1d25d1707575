"""``sip_options``: is the SIP server alive? One OPTIONS transaction, judged by its final code.

Liveness, not configuration, is the question, so which final codes count is configurable:
a 200 by default, but a Cisco gateway's 501 or a proxy's 404/483 also proves the server is
up when the target says so (``expected_codes: [200, 404, "5xx"]``).

Verdicts: an accepted code -> ``up``; another code -> ``down`` with ``status_code_<n>``; no
answer before Timer F (64*T1) or the target's timeout -> ``timeout``; ICMP/TCP refusal ->
``down`` with ``connection_refused``/``icmp_unreachable``; only unparseable answers ->
``down`` with ``malformed_response``; TLS failure -> ``down`` with ``tls_handshake_failed``.

The helpers ``sip_session`` and ``failure_result`` are shared with ``sip_register``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Mapping

import structlog
from pydantic import Field

from probes.fields import SecretUnavailable
from probes.result import DetailValue, Outcome, ProbeContext, ProbeResult
from probes.sip.message import SipResponse, new_call_id, new_tag
from probes.sip.options import SipBaseOptions
from probes.sip.transaction import SipEndpoint, SipError, build_request
from probes.sip.transport import tls_details
from probes.sip_servers import over_servers
from probes.tls import client_context

log = structlog.get_logger(__name__)

DEADLINE_RESERVE_SECONDS = 0.05
"""Finish this much before the target's timeout so the verdict is ours, not a cancellation."""


class LocalSetupError(Exception):
    """Our side cannot set the probe up (a TLS file will not load): ``error``, not evidence."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SipOptionsOptions(SipBaseOptions):
    """The ``sip_options`` block of a target: the shared SIP fields plus ``max_forwards``.

    ``max_forwards: 0`` asks the first hop itself to answer (RFC 3261 §11.1): a proxy then
    replies 483 or 200 without forwarding, so the probe tests that hop and nothing behind it.
    """

    max_forwards: int = Field(default=70, ge=0, le=255)


@contextlib.asynccontextmanager
async def sip_session(
    options: SipBaseOptions,
    ctx: ProbeContext,
    phases: dict[str, float],
    details: dict[str, DetailValue],
) -> AsyncIterator[SipEndpoint]:
    """An endpoint to the target, open within the target's time budget; ``connect`` timed,
    the TLS version and certificate expiry put in ``details``."""
    ssl_context: ssl.SSLContext | None = None
    if options.effective_transport() == "tls":
        try:
            ssl_context = client_context(options.tls)
        except (ssl.SSLError, OSError) as exc:
            raise LocalSetupError("tls_config_error", f"TLS set-up failed: {exc}") from exc
    started = time.monotonic()
    endpoint = await SipEndpoint.open(
        options.target(ssl_context, connect_timeout=max(0.001, ctx.remaining())), t1=options.t1
    )
    if endpoint.transport.reliable:
        phases["connect"] = time.monotonic() - started
    details.update(tls_details(endpoint.transport))
    try:
        yield endpoint
    finally:
        await endpoint.close()


def budget(ctx: ProbeContext) -> float:
    """Seconds this probe may still wait for answers."""
    return max(0.001, ctx.remaining() - DEADLINE_RESERVE_SECONDS)


def failure_result(
    ctx: ProbeContext,
    exc: BaseException,
    phases: Mapping[str, float],
    details: dict[str, DetailValue],
) -> ProbeResult:
    """The result for an exception raised while probing (CancelledError is never passed here)."""
    if isinstance(exc, TimeoutError):
        limit = f"within the target timeout ({ctx.timeout_seconds:g}s)"
        if details.get("transport") != "udp" and "connect" not in phases:
            details["error"] = f"connection not established {limit}"
        else:
            details["error"] = f"no final response {limit}"
        return ctx.result(Outcome.TIMEOUT, "timeout", phases=phases, details=details)
    if isinstance(exc, SipError):
        details["error"] = str(exc)
        outcome = Outcome.TIMEOUT if exc.reason == "timeout" else Outcome.DOWN
        return ctx.result(outcome, exc.reason, phases=phases, details=details)
    if isinstance(exc, SecretUnavailable):
        details["error"] = str(exc)
        return ctx.result(Outcome.ERROR, "secret_unavailable", phases=phases, details=details)
    if isinstance(exc, LocalSetupError):
        details["error"] = str(exc)
        return ctx.result(Outcome.ERROR, exc.reason, phases=phases, details=details)
    log.error("sip_probe_failed", target=ctx.target, exc_info=exc)
    details["error"] = f"{type(exc).__name__}: {exc}"
    return ctx.result(Outcome.ERROR, "probe_error", phases=phases, details=details)


def response_details(response: SipResponse) -> dict[str, DetailValue]:
    """What a final response contributes to the evidence."""
    details: dict[str, DetailValue] = {"sip_status": response.status, "sip_reason": response.reason}
    server = response.headers.get("Server") or response.headers.get("User-Agent")
    if server:
        details["server"] = server[:200]
    return details


def local_from_uri(options: SipBaseOptions, endpoint: SipEndpoint) -> str:
    if options.from_uri:
        return options.from_uri
    host, _ = endpoint.transport.local
    host = f"[{host}]" if ":" in host else host
    scheme = "sips" if endpoint.transport.name == "tls" else "sip"
    return f"{scheme}:{options.contact_user}@{host}"


async def probe(options: SipOptionsOptions, ctx: ProbeContext) -> ProbeResult:
    """Send one OPTIONS to the target's server (each located server in turn) and judge it."""
    return await over_servers(options, ctx, probe_server)


async def probe_server(options: SipOptionsOptions, ctx: ProbeContext) -> ProbeResult:
    """Send one OPTIONS to one server and judge the final response."""
    phases: dict[str, float] = {}
    details: dict[str, DetailValue] = {"transport": options.effective_transport()}
    try:
        async with (
            asyncio.timeout(budget(ctx)),
            sip_session(options, ctx, phases, details) as endpoint,
        ):
            request = build_request(
                "OPTIONS",
                options.uri,
                from_uri=local_from_uri(options, endpoint),
                to_uri=options.to_uri or options.uri,
                call_id=new_call_id(endpoint.transport.local[0]),
                cseq=1,
                from_tag=new_tag(),
                contact=endpoint.contact(options.contact_user),
                user_agent=options.user_agent,
                extra=[("Accept", "application/sdp")],
                max_forwards=options.max_forwards,
            )
            started = time.monotonic()
            try:
                response = await endpoint.request(request)
            finally:
                details["retransmissions"] = endpoint.stats.retransmissions
                if endpoint.stats.garbage_received:
                    details["unparseable_replies"] = endpoint.stats.garbage_received
            phases["response"] = time.monotonic() - started
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return failure_result(ctx, exc, phases, details)
    details.update(response_details(response))
    if options.accepts(response.status):
        return ctx.result(Outcome.UP, phases=phases, details=details)
    return ctx.result(
        Outcome.DOWN, f"status_code_{response.status}", phases=phases, details=details
    )
