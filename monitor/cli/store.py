"""``slawatch store init|check|backup|status``: the evidence store's own commands (issue 17).

``init`` creates a new, empty store (the daemon also creates one where no file exists, but
never adopts an existing empty or foreign file). ``check`` runs every check of
:mod:`monitor.store.check` and names what failed. ``backup`` copies the store with SQLite's
online backup API: one read transaction, so the copy is consistent while the daemon writes.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.store.versions import SchemaStatus


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "store",
        help="create, check and back up the evidence store",
        description="The evidence store's maintenance commands; see docs/storage.md.",
    )
    commands = parser.add_subparsers(dest="store_command", metavar="SUBCOMMAND", required=True)
    for name, func, help_text in (
        ("init", _init, "create a new, empty store (refuses an existing file)"),
        ("check", _check, "run every check on the store; exit 1 when any fails"),
        ("backup", _backup, "copy the store consistently while the daemon runs"),
        ("status", _status, "the store's schema version and this build's"),
        ("migrate", _migrate, "bring the store to this build's schema version"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        where = sub.add_mutually_exclusive_group(required=True)
        where.add_argument("--config", type=Path, help="the YAML configuration naming the store")
        where.add_argument("--database", type=Path, help="the store file itself")
        if name == "backup":
            sub.add_argument("destination", type=Path, help="the copy to write (must not exist)")
        sub.set_defaults(func=func)

    month = subparsers.add_parser(
        "month",
        help="seal a closed month's figures",
        description="Month commands; `month seal` freezes a closed month's figures.",
    )
    month_commands = month.add_subparsers(dest="month_command", metavar="SUBCOMMAND", required=True)
    seal = month_commands.add_parser(
        "seal",
        help="store a closed month's figures, outages, exclusions and hashes as its seal",
        description="Compute the month from the store (the one month computation) and store "
        "it as the month's sealed record; a sealed month is never re-sealed.",
    )
    seal.add_argument("--config", type=Path, required=True, help="the YAML configuration")
    seal.add_argument("--month", required=True, help="calendar month, YYYY-MM")
    seal.add_argument("--service", help="seal only this service (or SLA name)")
    seal.add_argument("--as-of", help="RFC 3339 instant treated as now (default: the clock)")
    seal.set_defaults(func=_seal)
    roll = month_commands.add_parser(
        "roll-up",
        help="drop a sealed month's per-target tallies after its dispute period",
        description="Once every SLA's month is sealed and its claim window plus the dispute "
        "period is over, drop the month's per-target tallies; the seals, service verdicts and "
        "failure evidence stay (docs/storage.md).",
    )
    roll.add_argument("--config", type=Path, required=True, help="the YAML configuration")
    roll.add_argument("--month", required=True, help="calendar month, YYYY-MM")
    roll.add_argument(
        "--dispute-days",
        type=int,
        default=DISPUTE_DAYS,
        help=f"days after the claim deadline the tallies are kept (default {DISPUTE_DAYS})",
    )
    roll.add_argument("--as-of", help="RFC 3339 instant treated as now (default: the clock)")
    roll.set_defaults(func=_roll_up)


DISPUTE_DAYS = 90
"""Default dispute period after a month's claim deadline before its tallies are rolled up."""


def _now(args: argparse.Namespace) -> Any:
    from datetime import UTC, datetime

    from monitor.clock import system_clock
    from monitor.instants import parse_instant

    if args.as_of is None:
        return datetime.fromtimestamp(system_clock(), UTC)
    return parse_instant(args.as_of, "--as-of")


def _roll_up(args: argparse.Namespace) -> int:
    from monitor.config import ConfigError, load_config
    from monitor.reports.seal import roll_up_month
    from monitor.reports.stores import cli_store, store_name, store_present
    from monitor.sla.calendar import Month
    from monitor.store.base import StoreError

    try:
        config = load_config(args.config)
        month = Month.parse(args.month)
        now = _now(args)
        if not store_present(config):
            raise StoreError(f"{store_name(config)}: no store")
        store = cli_store(config, read_only=False)

        async def roll() -> int:
            await store.open()
            try:
                return await roll_up_month(config, store, month, now, args.dispute_days)
            finally:
                await store.close()

        dropped = asyncio.run(roll())
    except (ConfigError, StoreError, ValueError, OSError) as exc:
        print(f"slawatch month roll-up: {exc}", file=sys.stderr)
        return 2
    print(f"{month}: {dropped} tally rows rolled up (seals, verdicts and failure evidence kept)")
    return 0


def _seal(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from monitor.accounting import select_policies
    from monitor.clock import system_clock
    from monitor.config import ConfigError, load_config
    from monitor.instants import parse_instant
    from monitor.reports.seal import seal_months
    from monitor.reports.stores import cli_store, store_name, store_present
    from monitor.sla.calendar import Month
    from monitor.store.base import StoreError

    try:
        config = load_config(args.config)
        policies = select_policies(config, args.service)
        month = Month.parse(args.month)
        now = (
            datetime.fromtimestamp(system_clock(), UTC)
            if args.as_of is None
            else parse_instant(args.as_of, "--as-of")
        )
        if not store_present(config):
            raise StoreError(f"{store_name(config)}: no store to seal a month from")
        store = cli_store(config, read_only=False)

        async def seal() -> list[tuple[Any, bool]]:
            await store.open()
            try:
                return await seal_months(config, store, policies, month, now)
            finally:
                await store.close()

        sealed = asyncio.run(seal())
    except (ConfigError, StoreError, ValueError, OSError) as exc:
        print(f"slawatch month seal: {exc}", file=sys.stderr)
        return 2
    for seal_, new in sealed:
        state = "sealed" if new else "already sealed"
        print(f"{seal_.sla} {seal_.month}: {state} ({seal_.digest})")
    return 0


def _postgres(args: argparse.Namespace) -> Config | None:
    """The configuration when it names a PostgreSQL store and no ``--database`` file is given:
    ``status`` and ``migrate`` then ask the server (``schema_version()`` / ``migrate()`` work
    on a store that is not open)."""
    if args.database is not None or args.config is None:
        return None
    from monitor.config import load_config

    config = load_config(args.config)
    return config if config.monitor.store.backend == "postgresql" else None


def _path(args: argparse.Namespace) -> Path:
    if args.database is not None:
        return Path(args.database)
    from monitor.config import load_config
    from monitor.store.base import StoreError

    config = load_config(args.config)
    if config.monitor.store.backend != "sqlite":
        # These commands work on the SQLite file; a server's own tools do this for PostgreSQL
        # (the daemon migrates its schema when it starts), so say so instead of "no store".
        raise StoreError(
            f"{args.config}: monitor.store.backend is {config.monitor.store.backend}; "
            "`slawatch store init`, `check` and `backup` work on a SQLite file (--database "
            "PATH); create, check and back up a PostgreSQL store with the server's tools "
            "(createdb, pg_dump); `store status` and `store migrate` ask it"
        )
    return config.monitor.database_path


def _vantage(args: argparse.Namespace) -> str:
    if args.config is None:
        return "store"
    from monitor.config import load_config

    return load_config(args.config).monitor.name


def _fail(what: str, exc: BaseException) -> int:
    print(f"slawatch store {what}: {exc}", file=sys.stderr)
    return 2


def _init(args: argparse.Namespace) -> int:
    from monitor.config import ConfigError
    from monitor.store.base import StoreError
    from monitor.store.sqlite import SqliteStore

    try:
        path = _path(args)
        if path.exists():
            raise StoreError(f"{path}: already exists; `slawatch store init` only creates")
        store = SqliteStore(path, _vantage(args))

        async def create() -> None:
            await store.open()
            await store.close()

        asyncio.run(create())
    except (ConfigError, StoreError, OSError) as exc:
        return _fail("init", exc)
    print(f"{path}: new store created (schema version {_build_version()})")
    return 0


def _build_version() -> int:
    from monitor.store.schema import SCHEMA_VERSION

    return SCHEMA_VERSION


def _check(args: argparse.Namespace) -> int:
    from monitor.config import ConfigError
    from monitor.store.base import StoreError
    from monitor.store.check import check_store

    try:
        path = _path(args)
    except (ConfigError, StoreError, OSError) as exc:
        return _fail("check", exc)
    report = check_store(path)
    print("\n".join(report.lines()), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


def backup_store(source: Path, destination: Path) -> Path:
    """Copy ``source`` to ``destination`` with the online backup API, then check the copy.

    ``pages=-1`` copies the whole file in one step inside one read transaction, so the copy
    is one consistent snapshot even while the daemon commits (WAL readers see a fixed state).
    """
    from monitor.store import schema
    from monitor.store.base import StoreError
    from monitor.store.check import check_store

    if destination.exists():
        raise StoreError(f"{destination}: backup destination already exists")
    if not schema.check_magic(source):
        raise StoreError(f"{source}: no database file here to back up")
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        dst = sqlite3.connect(destination)
        try:
            src.backup(dst, pages=-1)
            # The copy is read on its own (no -wal beside it): fold it into one file.
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    report = check_store(destination)
    if not report.ok:
        raise StoreError("; ".join(report.lines()))
    return destination


def _backup(args: argparse.Namespace) -> int:
    from monitor.config import ConfigError
    from monitor.store.base import StoreError
    from monitor.store.schema import SchemaError

    try:
        written = backup_store(_path(args), Path(args.destination))
    except (ConfigError, StoreError, SchemaError, sqlite3.Error, OSError) as exc:
        return _fail("backup", exc)
    print(f"{written}: backup written and checked")
    return 0


def _status(args: argparse.Namespace) -> int:
    from monitor.config import ConfigError
    from monitor.store import schema
    from monitor.store.base import StoreError

    try:
        config = _postgres(args)
        if config is not None:
            status = asyncio.run(_server_schema(config, migrate=False))
            print(status.line())
            return 0
        path = _path(args)
        if not schema.check_magic(path):
            print(f"{path}: no store (this build writes schema version {_build_version()})")
            return 1
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = schema.check_file(conn, path, integrity=False)
        finally:
            conn.close()
    except (ConfigError, StoreError, schema.SchemaError, sqlite3.Error, OSError) as exc:
        return _fail("status", exc)
    print(f"{path}: schema version {found} (this build: {_build_version()})")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    """Open read-write (each pending migration runs in its own transaction) and report."""
    from monitor.config import ConfigError
    from monitor.store import schema
    from monitor.store.base import StoreError
    from monitor.store.sqlite import SqliteStore

    try:
        config = _postgres(args)
        if config is not None:
            was = asyncio.run(_server_schema(config, migrate=False))
            now = asyncio.run(_server_schema(config, migrate=True))
            print(f"{now.backend} {now.where}: schema version {was.version} -> {now.version}")
            return 0
        path = _path(args)
        if not schema.check_magic(path):
            raise StoreError(f"{path}: no store to migrate (`slawatch store init` creates one)")
        store = SqliteStore(path, _vantage(args))

        async def run() -> tuple[int, int]:
            await store.open()
            try:
                return store.schema_version_at_open or 0, (await store.migrate()).version
            finally:
                await store.close()

        before, after = asyncio.run(run())
    except (ConfigError, StoreError, schema.SchemaError, OSError) as exc:
        return _fail("migrate", exc)
    print(f"{path}: schema version {before} -> {after}")
    return 0


async def _server_schema(config: Config, *, migrate: bool) -> SchemaStatus:
    """The PostgreSQL schema's status, after migrating it forward when ``migrate``."""
    from monitor.reports.stores import cli_store
    from monitor.store.base import StoreError
    from monitor.store.versions import VersionedStore

    store = cli_store(config, read_only=not migrate)
    if not isinstance(store, VersionedStore):
        raise StoreError(f"{config.monitor.store.backend}: no schema versions")
    return await (store.migrate() if migrate else store.schema_version())
