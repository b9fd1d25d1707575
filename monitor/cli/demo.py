"""`slawatch demo`: the daemon on a shipped configuration, with its targets on loopback.

A newcomer runs one command and, within a minute and without internet access, sees live
metrics, buckets, an outage and a projected credit. So this starts small endpoints on
127.0.0.1 that the demo configuration probes: a web login page and API that stay up, a
"flaky" endpoint that fails for 40 seconds in every 2 minutes (by the wall clock, so every run
shows the same pattern), and a minimal SIP responder that answers OPTIONS with 200, standing in
for a voice edge proxy. Then it runs the real daemon, unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import cast

import structlog
from aiohttp import web

log = structlog.get_logger(__name__)

FLAKY_PERIOD = 120
FLAKY_DOWN = 40


def flaky_is_down(now: float) -> bool:
    return now % FLAKY_PERIOD < FLAKY_DOWN


def demo_web_app() -> web.Application:
    async def login(request: web.Request) -> web.Response:
        return web.Response(
            text="<html><title>Agent sign in</title><body>Sign in</body></html>",
            content_type="text/html",
        )

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def flaky(request: web.Request) -> web.Response:
        if flaky_is_down(time.time()):
            return web.Response(status=503, text="maintenance in progress")
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/login", login)
    app.router.add_get("/api/health", health)
    app.router.add_get("/flaky", flaky)
    return app


class SipOptionsResponder(asyncio.DatagramProtocol):
    """Answers any SIP request with 200 OK, echoing the headers RFC 3261 says a reply copies."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if self.transport is None or len(data) > 65535:
            return
        head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
        if not head or head[0].startswith("SIP/2.0") or head[0].split(" ")[0] == "ACK":
            return
        copied = [
            line
            for line in head[1:]
            if line.split(":", 1)[0].strip().lower()
            in ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")
        ]
        reply = "\r\n".join(
            ["SIP/2.0 200 OK", *copied, "Server: slawatch-demo", "Content-Length: 0", "", ""]
        )
        self.transport.sendto(reply.encode(), addr)


async def start_demo_targets(
    http_port: int = 18080, sip_port: int = 15060
) -> tuple[web.AppRunner, asyncio.DatagramTransport]:
    runner = web.AppRunner(demo_web_app(), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port, reuse_address=True).start()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        SipOptionsResponder, local_addr=("127.0.0.1", sip_port)
    )
    return runner, transport


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the daemon on config/demo.yaml with demo targets on loopback",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, default=Path("config/demo.yaml"))
    parser.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> int:
    return asyncio.run(run_demo(args.config))


async def run_demo(config_path: Path) -> int:
    from monitor.cli.run import start_daemon
    from monitor.config import ConfigError, load_config
    from monitor.host.logs import configure_logging
    from monitor.runtime.daemon import Daemon

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(config.monitor.log_level)
    token_ref = config.monitor.api_token
    if token_ref is not None and token_ref.file is not None and not token_ref.file.exists():
        token_ref.file.parent.mkdir(parents=True, exist_ok=True)
        token_ref.file.write_text(secrets.token_urlsafe(24) + "\n", encoding="utf-8")
        token_ref.file.chmod(0o600)
    runner, sip = await start_demo_targets()
    daemon = Daemon(config, config_path)
    daemon.handle_signals()
    try:
        await start_daemon(daemon)
        host, port = daemon.listen_address or config.monitor.listen_address
        base = f"http://{host}:{port}"
        print(
            _BANNER.format(
                base=base, config=config_path, token=token_ref.describe() if token_ref else "none"
            ),
            file=sys.stderr,
            flush=True,
        )
        await daemon.wait()
        await daemon.stop()
    finally:
        sip.close()
        await runner.cleanup()
    return 0


_BANNER = """
slawatch demo is running ({config}); press Ctrl-C to stop.
  metrics         {base}/metrics
  status (JSON)   {base}/api/v1/status
  buckets (JSON)  {base}/api/v1/buckets
  report          {base}/api/v1/report?format=text
  claim draft     {base}/api/v1/report?format=claim
The 'flaky' target fails for 40 s in every 2 minutes: watch slawatch_month_buckets,
slawatch_credit_projected_amount and the report's outages. API token: {token}.
"""
