"""``slawatch claim record|list``: note a claim filed with the vendor from the command line.

The same record as ``POST /api/v1/claims`` (``monitor.claims``): validated by
``claim_from_json`` and kept in the store's key-value table under ``claims_filed``, so the
"claim deadline approaching with an unclaimed credit" alert stops once the claim is in. A
running daemon picks the record up when it next loads its state (at start); it merges the
stored claims before writing its own, so neither side loses the other's records.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from monitor.http.claims import claim_from_json
from monitor.runtime.claims import KV_KEY, Claim, claims_from_kv, claims_to_kv

if TYPE_CHECKING:
    from monitor.config import Config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``claim record`` and ``claim list`` to the ``slawatch`` command line."""
    parser = subparsers.add_parser(
        "claim",
        help="note a claim filed with the vendor (stops the unclaimed-credit alert)",
        description="Record claims filed with the vendor in the store the configuration names.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("record", help="note that the claim for an SLA's month was filed")
    add.add_argument("--config", required=True, help="slawatch YAML configuration")
    add.add_argument("--sla", required=True, help="the SLA the claim is for")
    add.add_argument("--month", required=True, help="the claimed month, YYYY-MM")
    add.add_argument("--reference", default="", help="the vendor's ticket reference")
    add.add_argument(
        "--filed-at", help="when the claim was filed, RFC 3339 with an offset (default: now)"
    )
    add.set_defaults(func=run)
    listing = actions.add_parser("list", help="the claims recorded as filed")
    listing.add_argument("--config", required=True, help="slawatch YAML configuration")
    listing.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``slawatch claim``; 0 on success, 2 on bad input (named on stderr)."""
    from monitor.config import ConfigError, load_config
    from monitor.store.base import StoreError

    stdout = sys.stdout if out is None else out
    stderr = sys.stderr if err is None else err
    try:
        config = load_config(args.config)
        now = datetime.fromtimestamp(time.time(), UTC)
        if args.action == "record":
            body: dict[str, Any] = {
                "sla": args.sla,
                "month": args.month,
                "reference": args.reference,
            }
            if args.filed_at is not None:
                body["filed_at"] = args.filed_at
            claim = claim_from_json(body, {s.name for s in config.slas}, now)
            asyncio.run(record(config, claim))
            print(
                f"recorded claim {claim.sla} {claim.month} filed {claim.filed_at.isoformat()}"
                + (f" reference {claim.reference}" if claim.reference else ""),
                file=stdout,
            )
        else:
            for claim in asyncio.run(listed(config)):
                print(
                    f"{claim.sla} {claim.month} filed {claim.filed_at.isoformat()} "
                    f"{claim.reference}".rstrip(),
                    file=stdout,
                )
    except (ConfigError, StoreError, ValueError, OSError) as exc:
        print(f"slawatch claim {args.action}: {exc}", file=stderr)
        return 2
    return 0


async def record(config: Config, claim: Claim) -> None:
    """Add ``claim`` to the stored claims (replacing one for the same SLA and month)."""
    from monitor.reports.stores import cli_store

    store = cli_store(config, read_only=False)
    await store.open()
    try:
        claims = claims_from_kv(await store.kv_get(KV_KEY))
        claims[claim.key] = claim
        await store.kv_set(KV_KEY, claims_to_kv(claims))
    finally:
        await store.close()


async def listed(config: Config) -> list[Claim]:
    """The stored claims, by SLA and month (nothing when there is no store yet)."""
    from monitor.reports.stores import cli_store, store_present

    if not store_present(config):
        return []
    store = cli_store(config, read_only=True, integrity_check=False)
    await store.open()
    try:
        claims = claims_from_kv(await store.kv_get(KV_KEY))
    finally:
        await store.close()
    return sorted(claims.values(), key=lambda c: (c.sla, c.month))
