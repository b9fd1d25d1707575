"""``slawatch``: one command line, one sub-command per module in :data:`COMMAND_MODULES`.

Each module exposes ``register(subparsers)``, which adds its sub-command and sets ``func``
(``func(args) -> int``, the exit status).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from types import ModuleType

from monitor import daemon, demo, reporting

COMMAND_MODULES: tuple[ModuleType, ...] = (daemon, demo, reporting)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slawatch", description="Hold a vendor to its SLA: probes, uptime, credits."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the chosen sub-command."""
    args = build_parser().parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
