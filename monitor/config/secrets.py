"""Checking, before anything runs, that every secret the configuration names can be read.

Secrets are read when used (so a rotated file needs no reload), but a daemon that starts and
then fails every authenticated probe would record vendor downtime that is really ours: so
`slawatch run` and SIGHUP first try each one and refuse a configuration naming a missing one.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from monitor.config import Config, ConfigError
from monitor.config.errors import Problem, format_path
from monitor.config.loader import read_yaml
from probes.fields import SecretRef, SecretUnavailable

_LEAVES = (str, int, float, Decimal, Enum, type(None))
"""Values that are never a secret nor hold one: skipped without a call (issue 20: 10,000
targets' options are walked at every start and reload)."""


def _secret_refs(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], SecretRef]]:
    if isinstance(value, SecretRef):
        yield path, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            item = getattr(value, name)
            if not isinstance(item, _LEAVES):
                yield from _secret_refs(item, (*path, name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if not isinstance(item, _LEAVES):
                yield from _secret_refs(item, (*path, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(item, _LEAVES):
                yield from _secret_refs(item, (*path, str(key)))


def check_secrets(config: Config, source: str | Path) -> None:
    """Raise ``ConfigError`` listing every secret that cannot be read, at its line and key."""
    found: list[tuple[tuple[str | int, ...], SecretRef]] = []
    if config.monitor.api_token is not None:
        found.append((("monitor", "api_token"), config.monitor.api_token))
    if config.monitor.store.dsn is not None:  # issue 14: the PostgreSQL connection string
        found.append((("monitor", "store", "dsn"), config.monitor.store.dsn))
    for index, target in enumerate(config.targets):
        found.extend(_secret_refs(target.options, ("targets", index, target.kind)))
    failures: list[tuple[tuple[str | int, ...], str]] = []
    for path, ref in found:
        try:
            ref.read()
        except SecretUnavailable as exc:
            failures.append((path, str(exc)))
    if not failures:
        return
    try:
        document, _ = read_yaml(Path(source).read_text(encoding="utf-8"), str(source))
        line_of = document.line_of
    except OSError:

        def line_of(path: tuple[str | int, ...]) -> int:
            return 1

    raise ConfigError(
        str(source), [Problem(line_of(path), format_path(path), msg) for path, msg in failures]
    )
