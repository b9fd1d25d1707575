"""``slawatch fault open|ack|restore|solve|reassess|list``: faults in the configured store.

The store is the one the daemon writes (``monitor.state_dir`` / ``monitor.database``); SQLite in
WAL mode lets this command write beside a running daemon. Times are RFC 3339 with an offset,
or ``now``. Exit status: 0 done, 2 bad input or refused (the reason on stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from monitor.support.faults import Level, Severity

if TYPE_CHECKING:
    from monitor.config import Config

_SEVERITIES = [s.value for s in Severity]
_LEVELS = {"ack": Level.ACKNOWLEDGE, "restore": Level.RESTORE, "solve": Level.SOLVE}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fault`` and its actions to the ``slawatch`` command line."""
    parser = subparsers.add_parser(
        "fault",
        help="record support requests (faults) and their responses for the support SLA",
        description="Open and update support-SLA faults in the store the configuration names.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", required=True, help="slawatch YAML configuration")
        sub.set_defaults(func=run)

    opened = actions.add_parser("open", help="open a fault (a Support Request received)")
    common(opened)
    opened.add_argument("--contract", help="support contract (default: the only one)")
    opened.add_argument("--title", required=True)
    opened.add_argument("--severity", required=True, choices=_SEVERITIES)
    opened.add_argument("--received-at", default="now", help="RFC 3339 or now (default)")
    opened.add_argument("--id", dest="fault_id", help="fault id (default: generated)")
    opened.add_argument("--note", default="")
    for name, text in (
        ("ack", "record the Level 1 acknowledgement"),
        ("restore", "record the Level 2 restoration or workaround"),
        ("solve", "record the Level 3 permanent correction (the Solution)"),
    ):
        sub = actions.add_parser(name, help=text)
        common(sub)
        sub.add_argument("fault_id", metavar="ID")
        sub.add_argument("--at", default="now", help="RFC 3339 or now (default)")
        sub.add_argument("--note", default="")
    reassess = actions.add_parser("reassess", help="change a fault's severity from a time on")
    common(reassess)
    reassess.add_argument("fault_id", metavar="ID")
    reassess.add_argument("--severity", required=True, choices=_SEVERITIES)
    reassess.add_argument("--at", default="now", help="RFC 3339 or now (default)")
    reassess.add_argument("--note", default="")
    listing = actions.add_parser("list", help="faults with deadlines, lateness and credits")
    common(listing)
    listing.add_argument("--contract")
    listing.add_argument("--open", action="store_true", help="only faults without a Solution")
    listing.add_argument("--format", choices=("text", "json", "csv"), default="text", dest="fmt")
    listing.add_argument("--as-of", default="now", help="RFC 3339 instant treated as now")


def run(
    args: argparse.Namespace,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    now: datetime | None = None,
) -> int:
    """Run one ``slawatch fault`` action; 0 on success, 2 on bad input or refusal."""
    from monitor.config import ConfigError, load_config
    from monitor.store.base import StoreError
    from monitor.support.faults import FaultError
    from monitor.support.service import FaultNotFoundError

    stdout = sys.stdout if out is None else out
    stderr = sys.stderr if err is None else err
    moment = datetime.now(UTC) if now is None else now
    try:
        config = load_config(args.config)
        text = asyncio.run(_run(args, config, moment))
    except (ConfigError, StoreError, FaultError, FaultNotFoundError, ValueError, OSError) as exc:
        print(f"slawatch fault {args.action}: {exc}", file=stderr)
        return 2
    stdout.write(text)
    return 0


async def _run(args: argparse.Namespace, config: Config, now: datetime) -> str:
    from monitor.instants import parse_instant
    from monitor.reports.stores import cli_store, store_name, store_present
    from monitor.support.contract import summarize
    from monitor.support.report import support_csv, support_json, support_text
    from monitor.support.service import FaultService

    support = config.support
    if support is None or not support.contracts:
        raise ValueError(f"{args.config}: no support contracts configured (support.contracts)")
    contracts = support.support_contracts()
    read_only = args.action == "list"
    if read_only and not store_present(config):
        raise ValueError(f"no store at {store_name(config)} (monitor.state_dir/monitor.database)")
    store = cli_store(config, read_only=read_only, integrity_check=False)
    await store.open()
    try:
        service = FaultService(store, contracts, clock=lambda: now)
        if args.action == "list":
            as_of = parse_instant(args.as_of, "--as-of", now=now)
            # Credit totals need every fault; --open only narrows the listing.
            faults = await service.list(contract=args.contract)
            chosen = [c for name, c in sorted(contracts.items()) if args.contract in (None, name)]
            summaries = [summarize(c, faults, as_of) for c in chosen]
            if args.open:
                summaries = [
                    replace(s, faults=tuple(f for f in s.faults if f.open)) for s in summaries
                ]
            if args.fmt == "json":
                return json.dumps(support_json(summaries), indent=2) + "\n"
            if args.fmt == "csv":
                return support_csv(summaries)
            return support_text(summaries)
        if args.action == "open":
            names = sorted(contracts)
            if args.contract is None and len(names) != 1:
                raise ValueError(f"--contract: required, one of {', '.join(names)}")
            fault, created = await service.open(
                args.contract or names[0],
                args.title,
                Severity(args.severity),
                parse_instant(args.received_at, "--received-at", now=now),
                fault_id=args.fault_id,
                source="cli",
                note=args.note,
            )
            verb = "opened" if created else "already open"
        elif args.action == "reassess":
            fault = await service.reassess(
                args.fault_id,
                Severity(args.severity),
                parse_instant(args.at, "--at", now=now),
                source="cli",
                note=args.note,
            )
            verb = f"reassessed as {args.severity}"
        else:
            fault = await service.record_level(
                args.fault_id,
                _LEVELS[args.action],
                parse_instant(args.at, "--at", now=now),
                source="cli",
                note=args.note,
            )
            verb = f"{args.action} recorded"
        summary = summarize(contracts[fault.contract], [fault], now)
        return f"fault {fault.id} {verb}\n" + support_text([summary])
    finally:
        await store.close()
