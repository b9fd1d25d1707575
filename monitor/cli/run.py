"""`slawatch run`: the composition root of the long-running service.

It builds the daemon's core (``monitor.runtime``: store, scheduler, accounting) with the system
clock, starts it, then starts the adapters above it (the HTTP interface, which serves
``/metrics`` and the API), and handles the signals. The core never imports the adapters.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from monitor.clock import Clock, system_clock
from monitor.config import Config, ConfigError, load_config
from monitor.config.secrets import check_secrets
from monitor.http.server import serve
from monitor.promsource.live import start_live_filler
from monitor.runtime.daemon import Daemon


async def start_daemon(daemon: Daemon) -> None:
    """Start the core, then the adapters: the HTTP interface and the filler of ``kind:
    prometheus`` targets (which reads closed buckets from Prometheus into the daemon's live
    state); ready once they are up."""
    await daemon.start()
    daemon.run_in_background(
        lambda stop: start_live_filler(lambda: daemon.config, daemon.state, stop, daemon.health)
    )
    daemon.serving(await serve(daemon))


async def run_daemon(config: Config, config_path: Path, *, clock: Clock = system_clock) -> int:
    """Run until SIGTERM/SIGINT; SIGHUP reloads. Returns the exit status."""
    # monitor.store picks the backend: SQLite (the default) or PostgreSQL.
    store = config.monitor.store.build(config.monitor.name, config.monitor.database_path)
    daemon = Daemon(config, config_path, clock=clock, store=store)
    daemon.handle_signals()
    try:
        await start_daemon(daemon)
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

    try:
        return asyncio.run(run_daemon(config, args.config))
    except StoreOpenError as exc:  # issue 17: a refused store is one line, not a traceback
        print(f"slawatch run: {exc}", file=sys.stderr)
        return 1
