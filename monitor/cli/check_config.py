"""``slawatch check-config --config FILE``: validate the whole file without running anything.

Exit status 0 and one summary line when the file is valid; 1 and one line per problem on stderr
otherwise, so it can gate a deployment or a reload (``ExecReload=`` / ``ExecStartPre=``). No
input prints a traceback: should a check itself fail, that is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from monitor.config import Config, ConfigError, load_config
from monitor.config.checks import config_warnings


def summary(config: Config) -> str:
    """``ok: 3 targets, 2 services, 1 SLAs`` plus the content hash for change logs."""
    return (
        f"ok: {len(config.targets)} targets, {len(config.services)} services, "
        f"{len(config.slas)} SLAs (content {config.content_hash[:12]})"
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check-config`` to the ``slawatch`` command line."""
    parser = subparsers.add_parser(
        "check-config",
        help="validate a configuration file and list every problem",
        description="Validate the whole configuration file: YAML structure, every section, "
        "and the references between sections. Nothing is probed or written.",
    )
    parser.add_argument("--config", required=True, help="slawatch YAML configuration")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``slawatch check-config``; 0 when valid, 1 with the problems on stderr otherwise."""
    stdout = sys.stdout if out is None else out
    stderr = sys.stderr if err is None else err
    try:
        config = load_config(args.config)
        # The secrets `run` reads before it starts (issue 12): a missing one is a problem here.
        from monitor.config.secrets import check_secrets

        check_secrets(config, args.config)
        warnings = config_warnings(config)
    except ConfigError as exc:
        for line in exc.lines():
            print(one_line(line), file=stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} in {args.config}", file=stderr)
        return 1
    except Exception as exc:  # RecursionError and MemoryError included
        # A check that fails on some input is our bug, but the operator gating a deployment
        # gets one line saying so, not a traceback (which could quote the file's content).
        print(
            one_line(
                f"{args.config}: internal error while checking the file "
                f"({type(exc).__name__}: {exc}); please report it"
            ),
            file=stderr,
        )
        return 2
    for warning in warnings:
        print(f"{args.config}: warning: {warning}", file=stderr)
    print(summary(config), file=stdout)
    return 0


def one_line(text: str) -> str:
    """``text`` with line breaks escaped, so each problem stays one line of output."""
    return text.replace("\r", "\\r").replace("\n", "\\n")
