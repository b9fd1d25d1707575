"""Field types shared by the configuration and every probe's options.

Durations are written the way Prometheus and Gatus users write them (``30s``, ``5m``,
``1h30m``) or as a plain number of seconds. Secrets are never inline: a field that holds a
password or token names an environment variable or a file, and is read when it is used, so
rotating a secret file needs no reload.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator, model_validator

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``30s`` / ``5m`` / ``1h30m`` / ``250ms`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        if isinstance(value, int) and abs(value) > 10**15:
            # float() of a 400-digit YAML integer raises OverflowError, which pydantic does
            # not turn into a validation error: say it here (no duration is this long).
            raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        pos = 0
        seconds = 0.0
        for match in _DURATION_PART.finditer(text):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if pos != len(text) or not text:
            raise ValueError(f"expected a duration such as 30s, 5m or 1h30m, got {value!r}")
    else:
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A duration in seconds, accepting ``30s``-style strings."""


def checked_regex(pattern: str, *, over_bytes: bool) -> str:
    """``pattern`` if it compiles (over bytes when the probe matches bytes), else a
    ``ValueError`` saying why, for the option's validation error.

    A pattern Python only warns about (``FutureWarning``: ``[[``, ``--``, ``&&``, ``~~`` or
    ``||`` inside a set, "possible nested set") is refused too: a later Python reads it as
    set syntax, so the same configuration would match other bodies or answers after an
    upgrade, and the warning itself would reach the log as a multi-line report naming this
    file, not the option. Escaping the character (``\\[``) keeps today's meaning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        try:
            re.compile(pattern.encode() if over_bytes else pattern)
        except re.error as exc:
            # The reason before ", got": the configuration's error line keeps what precedes it.
            raise ValueError(f"expected a regular expression ({exc}), got {pattern!r}") from exc
        except FutureWarning as exc:
            raise ValueError(
                f"expected a regular expression that a later Python reads the same way "
                f"({str(exc)[:1].lower()}{str(exc)[1:]}: escape a literal character with a "
                f"backslash), got {pattern!r}"
            ) from exc
    return pattern


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretRef(BaseModel):
    """Where a secret lives: ``{env: NAME}`` or ``{file: /path}`` (first line, stripped)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @field_validator("env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        # A name a shell or systemd's Environment= can set. Anything else (a control
        # character, say) could only be a mistake, and printed back in a message it would
        # break the one-line error.
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(
                f"expected an environment variable name (letters, digits and _, not starting "
                f"with a digit), got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' (a variable name) or 'file' (a path)")
        return self

    def describe(self) -> str:
        return f"environment variable {self.env}" if self.env else f"file {self.file}"

    def read(self) -> str:
        """The secret's value; raises ``SecretUnavailable`` saying where it looked."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None or value == "":
                raise SecretUnavailable(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            text = self.file.read_text(encoding="utf-8")
        except OSError as exc:
            raise SecretUnavailable(f"cannot read secret file {self.file}: {exc.strerror}") from exc
        value = text.splitlines()[0].strip() if text.strip() else ""
        if not value:
            raise SecretUnavailable(f"secret file {self.file} is empty")
        return value


class SecretUnavailable(Exception):
    """Raised by ``SecretRef.read`` when the variable or file holding a secret is missing."""
