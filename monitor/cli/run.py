"""`slawatch run`: the composition root of the long-running service.

It builds the daemon's core (``monitor.runtime``: store, scheduler, accounting) with the system
clock, starts it, then starts the adapters above it (the HTTP interface, which serves
``/metrics`` and the API), and handles the signals. The core never imports the adapters.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from monitor.clock import Clock, system_clock
from monitor.config import Config, ConfigError, load_config
from monitor.config.secrets import check_secrets
from monitor.http.api import require_token
from monitor.http.server import serve
from monitor.http.web_config import WebConfigError, WebSecurity
from monitor.promsource.live import start_live_filler
from monitor.runtime.daemon import Daemon, daemon_store


async def start_daemon(daemon: Daemon, web_security: WebSecurity | None = None) -> None:
    """Start the core, then the adapters: the HTTP interface and the filler of ``kind:
    prometheus`` targets (which reads closed buckets from Prometheus into the daemon's live
    state); ready once they are up."""
    await daemon.start()
    daemon.run_in_background(
        lambda stop: start_live_filler(lambda: daemon.config, daemon.state, stop, daemon.health)
    )
    daemon.serving(await serve(daemon, web_security))


def web_config_path(config: Config, config_path: Path, flag: Path | None) -> Path | None:
    """``--web.config.file`` if given, else ``monitor.web_config`` (relative to the config
    file's directory)."""
    chosen = flag if flag is not None else config.monitor.web_config
    if chosen is None or flag is not None:
        return chosen
    return chosen if chosen.is_absolute() else config_path.parent / chosen


async def run_daemon(
    config: Config,
    config_path: Path,
    *,
    clock: Clock = system_clock,
    web_config: Path | None = None,
) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP reloads (the web configuration too). Returns the exit
    status."""
    # The daemon's own store (tl31, issue 20: the one ``Daemon`` builds, so its quick check
    # runs after ready here too, not at open and again after ready).
    daemon = Daemon(config, config_path, clock=clock, store=daemon_store(config))
    web_security = None
    if web_config is not None:
        web_security = WebSecurity(web_config, lambda request: require_token(daemon, request))
    daemon.handle_signals()
    if web_security is not None:
        security = web_security

        def reload_all() -> None:
            # The file is read in a worker thread (issue 20); the web config after it applies.
            daemon.reload_soon(then=security.reload)

        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_all)
    try:
        await start_daemon(daemon, web_security)
    except BaseException:
        await daemon.store.close()
        raise
    await daemon.wait()
    await daemon.stop()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the monitoring daemon",
        description="Probe the configured targets, keep buckets in the store, serve /metrics "
        "and the API. SIGHUP reloads the configuration; SIGTERM flushes and exits.",
    )
    parser.add_argument("--config", type=Path, required=True, help="the YAML configuration file")
    parser.add_argument(
        "--web.config.file",
        dest="web_config",
        type=Path,
        default=None,
        help="exporter-toolkit web configuration (TLS, basic auth, headers); overrides "
        "monitor.web_config",
    )
    parser.set_defaults(func=_run_command)


def _run_command(args: argparse.Namespace) -> int:
    from monitor.host.logs import configure_logging

    try:
        config = load_config(args.config)
        check_secrets(config, args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(config.monitor.log_level)
    from monitor.store.base import StoreOpenError

    web_config = web_config_path(config, args.config, args.web_config)
    try:
        return asyncio.run(run_daemon(config, args.config, web_config=web_config))
    except WebConfigError as exc:  # raised before anything starts: a clear line, exit 2
        print(exc, file=sys.stderr)
        return 2
    except StoreOpenError as exc:  # issue 17: a refused store is one line, not a traceback
        print(f"slawatch run: {exc}", file=sys.stderr)
        return 1
