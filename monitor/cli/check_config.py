"""``slawatch check-config --config FILE``: validate the whole file without running anything.

Exit status 0 and one summary line when the file is valid; 1 and one line per problem on stderr
otherwise, so it can gate a deployment or a reload (``ExecReload=`` / ``ExecStartPre=``).
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
    except ConfigError as exc:
        for line in exc.lines():
            print(line, file=stderr)
        count = len(exc.problems)
        print(f"{count} problem{'s' if count != 1 else ''} in {args.config}", file=stderr)
        return 1
    for warning in config_warnings(config):
        print(f"{args.config}: warning: {warning}", file=stderr)
    print(summary(config), file=stdout)
    return 0
