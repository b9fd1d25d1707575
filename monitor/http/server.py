"""Start the daemon's HTTP interface: the aiohttp runner bound to ``monitor.listen``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from monitor.http.api import build_app

if TYPE_CHECKING:
    from monitor.http.web_config import WebSecurity
    from monitor.runtime.view import DaemonView


async def serve(
    daemon: DaemonView, web_security: WebSecurity | None = None
) -> tuple[str, int] | None:
    """Serve ``/metrics`` and the API for ``daemon``; the server stops with the daemon (after
    its last flush). Returns the address bound (port 0 in the configuration picks one).
    ``web_security`` (the web configuration file) adds TLS, basic auth and headers."""
    app = build_app(daemon)
    if web_security is not None:
        # Outermost: a request without credentials never takes a read slot.
        web_security.install(app)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    daemon.on_stop(runner.cleanup)
    host, port = daemon.config.monitor.listen_address
    context = None if web_security is None else web_security.context
    site = web.TCPSite(runner, host, port, reuse_address=True, ssl_context=context)
    await site.start()
    for address in runner.addresses:
        # IPv4 (host, port) or IPv6 (host, port, flowinfo, scope_id): the first two.
        if isinstance(address, tuple) and len(address) >= 2:
            return str(address[0]), int(address[1])
    return None
