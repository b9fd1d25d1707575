"""The configuration file: ``load_config(path) -> Config`` or ``ConfigError`` listing every problem.

The whole file is checked before anything runs: YAML structure (duplicate keys, anchors, tags),
each section's model, then the rules across sections. All problems are reported together,
sorted by line, as ``<file>:<line>: <key.path>: <what was expected>, got <value>``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from monitor.config.checks import cross_checks
from monitor.config.errors import ConfigError, Issue, Problem, format_path
from monitor.config.loader import (
    ConfigFileError,
    YamlDocument,
    lines_of,
    read_config_file,
    read_plain_yaml,
    read_yaml,
)
from monitor.config.model import (
    Config,
    CreditTierConfig,
    ExclusionConfig,
    MonitorSettings,
    RecurringExclusionConfig,
    ServiceConfig,
    SlaConfig,
    TargetConfig,
    registered_kinds,
)
from monitor.config.slim import slim
from monitor.config.translate import translate_errors, yaml_keys

if TYPE_CHECKING:
    from probes.registry import ProbeKind

__all__ = [
    "Config",
    "ConfigError",
    "CreditTierConfig",
    "ExclusionConfig",
    "MonitorSettings",
    "RecurringExclusionConfig",
    "ServiceConfig",
    "SlaConfig",
    "TargetConfig",
    "gc_paused",
    "load_config",
    "parse_config_text",
]


def load_config(path: str | Path, kinds: Mapping[str, ProbeKind] | None = None) -> Config:
    """Read and validate the file at ``path``; raises ``ConfigError`` naming every problem."""
    source = str(path)
    try:
        text = read_config_file(path)
    except ConfigFileError as exc:
        raise ConfigError(source, [Problem(1, "", str(exc))]) from exc
    return parse_config_text(text, source, kinds)


def parse_config_text(
    text: str, name: str = "<config>", kinds: Mapping[str, ProbeKind] | None = None
) -> Config:
    """Validate configuration ``text``; ``name`` is the file name used in error lines."""
    # Composing and validating a 10,000-SLA file allocates millions of objects that all stay
    # alive until the end: the cyclic garbage collector, triggered by allocations, walked them
    # again and again (80 % of the load time, 36 s of 43 s here). None of them is garbage
    # before the load ends, so it is paused for the load (bench/config_bench.py).
    with gc_paused():
        return _parse_config_text(text, name, kinds)


def _parse_config_text(text: str, name: str, kinds: Mapping[str, ProbeKind] | None) -> Config:
    kinds = registered_kinds() if kinds is None else kinds
    # Issue 20: a valid file needs no line numbers, so it is first read without them. Its
    # models' and cross-checks' problems, if any, then look up the lines of their own key paths
    # alone; anything YAML itself refuses is read again with every line recorded, as before.
    plain = read_plain_yaml(text)
    if plain is not None:
        config, issues = _validate(plain, kinds)
        if config is not None and not issues:
            return slim(config)
        where = lines_of(text, [found.path for found in issues])
        raise ConfigError(name, [_located(where, found) for found in issues])
    document, problems = read_yaml(text, name)
    if document.data is None and problems:
        raise ConfigError(name, problems)
    data = document.data
    if not isinstance(data, dict):
        problems.append(
            Problem(
                1, "", f"the file must be a mapping with targets, services and slas, got {data!r}"
            )
        )
        raise ConfigError(name, problems)
    config, issues = _validate(data, kinds)
    # A value YAML already refused (an alias, a tag) reaches the models as null; saying so
    # again there would only add noise.
    refused = {p.path for p in problems if p.path}
    problems += [
        located
        for located in (_located(document, found) for found in issues)
        if located.path not in refused
    ]
    if problems or config is None:
        raise ConfigError(name, problems)
    return slim(config)


def _validate(
    data: dict[str, Any], kinds: Mapping[str, ProbeKind]
) -> tuple[Config | None, list[Issue]]:
    """``data`` through every model and every cross-check: the configuration (``None`` when a
    model refused it) and every problem found."""
    issues: list[Issue] = []
    config: Config | None = None
    try:
        config = Config.model_validate(data, context={"kinds": kinds})
    except ValidationError as exc:
        issues += translate_errors(
            exc.errors(),
            Config,
            data,
            keys_of=lambda model: _keys_of(model, kinds),
            extra=lambda model, key: _options_model(model, key, kinds),
        )
    issues += cross_checks(data)
    return config, issues


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block (as it was after it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _keys_of(model: type[BaseModel], kinds: Mapping[str, ProbeKind]) -> list[str]:
    keys = yaml_keys(model)
    if model is TargetConfig:
        keys += sorted(kinds)
    return keys


def _options_model(model: type[BaseModel], key: str, kinds: Mapping[str, ProbeKind]) -> Any:
    if model is TargetConfig and key in kinds:
        return kinds[key].options
    return None


def _located(document: YamlDocument, found: Issue) -> Problem:
    return Problem(document.line_of(found.path), format_path(found.path), found.text())
