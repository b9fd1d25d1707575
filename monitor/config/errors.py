"""Configuration problems: where they are, what was expected, and what was found.

Every check in this package reports through ``Problem`` so that ``check-config`` can print all of
them at once, sorted by line, in one format an operator can jump to from an editor:
``slawatch.yaml:41: targets[3].interval: must be at least 1s, got -5``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

PathPart = str | int
KeyPath = tuple[PathPart, ...]

NOTHING: Any = object()
_REPR_LIMIT = 60


class YamlFloat(float):
    """A float that remembers how it was written, so money is never read through binary float.

    ``repr`` gives the source text back, which is what error messages should quote.
    """

    text: str

    def __new__(cls, value: float, text: str) -> YamlFloat:
        obj = super().__new__(cls, value)
        obj.text = text
        return obj

    def __repr__(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text

    def __reduce__(self) -> tuple[Any, ...]:
        return (YamlFloat, (float(self), self.text))


class _Redacted:
    def __repr__(self) -> str:
        return "an inline value (not shown)"


REDACTED: Any = _Redacted()


def show_value(value: Any) -> str:
    """The value as the operator wrote it, shortened when it is a whole block."""
    text = str(value) if isinstance(value, Decimal) else repr(value)
    if len(text) > _REPR_LIMIT:
        text = text[: _REPR_LIMIT - 3] + "..."
    return text


def format_path(path: KeyPath) -> str:
    """``("targets", 3, "interval")`` -> ``targets[3].interval``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'interval'?)`` when one choice is close, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class Issue:
    """A problem found inside one model, relative to it; ``value`` is omitted when absent."""

    path: KeyPath
    message: str
    value: Any = NOTHING

    def text(self) -> str:
        if self.value is NOTHING:
            return self.message
        return f"{self.message}, got {show_value(self.value)}"


def issue(path: KeyPath, message: str, value: Any = NOTHING) -> Issue:
    return Issue(path, message, value)


class FieldProblems(ValueError):
    """Raised from inside a pydantic validator to report one or more problems at sub-paths.

    Pydantic keeps the exception in the error's context, so the translator can put each issue
    at its own key instead of at the model that raised it. ``from_parent`` means the issue paths
    are relative to the parent of the location pydantic reports (used by the field that holds
    a target's probe options, whose problems belong under the options block's own key).
    """

    def __init__(self, issues: Sequence[Issue], *, from_parent: bool = False) -> None:
        super().__init__("; ".join(f"{format_path(i.path)}: {i.text()}" for i in issues))
        self.issues = tuple(issues)
        self.from_parent = from_parent


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a configuration file, at a line and a dotted key path."""

    line: int
    path: str
    message: str

    def render(self, source: str) -> str:
        if self.path:
            return _one_line(f"{source}:{self.line}: {self.path}: {self.message}")
        return _one_line(f"{source}:{self.line}: {self.message}")


# Every character str.splitlines() breaks on: a name or value quoted in a message that holds
# one (a service named "\x85", say) must not split the problem over two lines.
_LINE_BREAKS = str.maketrans({c: repr(c)[1:-1] for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def _one_line(text: str) -> str:
    return text.translate(_LINE_BREAKS)


class ConfigError(Exception):
    """Raised by ``load_config`` / ``parse_config_text`` when a file is not a valid configuration.

    ``problems`` holds every problem found, as ``(line, key_path, message)`` sorted by line;
    ``str()`` renders one ``<file>:<line>: <key.path>: <message>`` line per problem.
    """

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        ordered = sorted(set(problems))
        self.source = source
        self.problem_list: tuple[Problem, ...] = tuple(ordered)
        self.problems: list[tuple[int, str, str]] = [(p.line, p.path, p.message) for p in ordered]
        super().__init__("\n".join(p.render(source) for p in ordered))

    def lines(self) -> list[str]:
        return [p.render(self.source) for p in self.problem_list]
