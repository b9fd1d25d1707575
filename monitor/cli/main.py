"""``slawatch``: one command line, one sub-command per module.

:data:`COMMANDS` maps each sub-command to the module that registers it: that module exposes
``register(subparsers)``, which adds the sub-command and sets ``func`` (``func(args) -> int``,
the exit status). Modules are imported only when needed: ``slawatch report`` on a month of
results should not pay half a second for the daemon's imports. :data:`COMMAND_MODULES` is the
tuple of all those modules (imported on first access).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from importlib import import_module
from types import ModuleType

COMMANDS: Mapping[str, str] = {
    "run": "monitor.cli.run",
    "demo": "monitor.cli.demo",
    "report": "monitor.cli.report",
    "check-config": "monitor.cli.check_config",
    "fault": "monitor.cli.fault",
    "evidence": "monitor.cli.evidence",
    "claim": "monitor.cli.claim",
    "import": "monitor.promsource.importer",
    "store": "monitor.cli.store",
    "month": "monitor.cli.store",
}


def _modules(names: Sequence[str]) -> tuple[ModuleType, ...]:
    return tuple(import_module(name) for name in dict.fromkeys(names))


def __getattr__(name: str) -> tuple[ModuleType, ...]:
    if name == "COMMAND_MODULES":
        return _modules(list(COMMANDS.values()))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command`` known, only its module is imported and registered."""
    parser = argparse.ArgumentParser(
        prog="slawatch", description="Hold a vendor to its SLA: probes, uptime, credits."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = COMMANDS.get(command) if command is not None else None
    wanted = [chosen] if chosen is not None else list(COMMANDS.values())
    for module in _modules(wanted):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the chosen sub-command."""
    import sys

    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(words[0] if words else None).parse_args(words)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
