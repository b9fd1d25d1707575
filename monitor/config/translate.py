"""Pydantic's validation errors, said the way an operator editing the file needs to read them.

Pydantic's locations include union members and its messages say "Input should be"; here every
error becomes an ``Issue`` at a key path that exists in the file, with "must be ..." wording, the
list of valid keys for an unknown key (and a close match), and the secret rule spelled out.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from monitor.config.errors import (
    NOTHING,
    REDACTED,
    FieldProblems,
    Issue,
    KeyPath,
    did_you_mean,
    issue,
)

SECRET_INLINE = "secrets are not written inline: use {env: NAME} or {file: PATH}"

KeysOf = Callable[[type[BaseModel]], list[str]]


def yaml_keys(model: type[BaseModel]) -> list[str]:
    """The keys a file may write for ``model`` (its fields minus internal ones, by alias)."""
    hidden: Iterable[str] = getattr(model, "__internal_fields__", ())
    return [info.alias or name for name, info in model.model_fields.items() if name not in hidden]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _model_in(typing.get_args(annotation)[0])
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType, tuple, list, dict, typing.Mapping) or args:
        for arg in args:
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def model_at(
    root: type[BaseModel], path: KeyPath, extra: Callable[[type[BaseModel], str], Any] | None
) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path`` (list indexes are skipped)."""
    model: type[BaseModel] | None = root
    for part in path:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if info is None:
            model = _model_in(extra(model, part)) if extra is not None else None
        else:
            model = _model_in(info.annotation)
    return model


def clean_location(loc: Sequence[str | int], data: Any) -> KeyPath:
    """Drop pydantic's union-member and function names, keeping keys that exist in ``data``."""
    out: list[str | int] = []
    current = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(current, dict) and isinstance(part, str):
            if part in current:
                out.append(part)
                current = current[part]
            elif last or part.isidentifier():
                out.append(part)
                current = None
        elif isinstance(current, list) and isinstance(part, int):
            out.append(part)
            current = current[part] if 0 <= part < len(current) else None
    return tuple(out)


def _as_written(data: Any, path: KeyPath, value: Any) -> Any:
    # Quote the file's own text (2026-11-10T04:00:00Z, 10s) rather than the parsed value.
    if value is REDACTED or value is NOTHING:
        return value
    current = data
    for part in path:
        in_map = isinstance(current, dict) and isinstance(part, str) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if not (in_map or in_list):
            return value
        current = current[part]
    return current


def _choices(expected: str) -> list[str]:
    return re.findall(r"'([^']*)'", expected)


def _strip_got(message: str) -> str:
    # Messages from shared validators (parse_duration, ...) already quote the value; the
    # translator appends ", got <value>" itself so that every line has one shape.
    head, sep, _ = message.rpartition(", got ")
    message = head if sep else message
    if message.startswith("expected "):
        message = "must be " + message.removeprefix("expected ")
    return message


def translate_error(
    error: ErrorDetails,
    root: type[BaseModel],
    data: Any,
    *,
    keys_of: KeysOf = yaml_keys,
    extra: Callable[[type[BaseModel], str], Any] | None = None,
) -> list[Issue]:
    """One pydantic error -> the issues it stands for, at paths relative to ``root``."""
    kind = error["type"]
    path = clean_location(error["loc"], data)
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "value_error" and isinstance(ctx.get("error"), FieldProblems):
        problems: FieldProblems = ctx["error"]
        base = path[:-1] if problems.from_parent and path else path
        return [
            issue((*base, *i.path), i.message, _as_written(data, (*base, *i.path), i.value))
            for i in problems.issues
        ]
    if kind == "missing":
        return [issue(path, "is required")]
    if kind == "extra_forbidden":
        model = model_at(root, path[:-1], extra)
        if model is None:
            return [issue(path, "unknown key")]
        valid = keys_of(model)
        name = str(path[-1]) if path else ""
        return [
            issue(
                path, f"unknown key, expected one of: {', '.join(valid)}{did_you_mean(name, valid)}"
            )
        ]
    secret_named = kind in ("model_type", "model_attributes_type") and (
        ctx.get("class_name") == "SecretRef"
    )
    if secret_named or (kind == "value_error" and str(ctx.get("error")) == SECRET_INLINE):
        # The value is a secret written where it must not be: never echo it into logs.
        return [issue(path, SECRET_INLINE, REDACTED)]
    if kind in ("model_type", "model_attributes_type", "dict_type", "mapping_type"):
        return [issue(path, "must be a mapping (key: value lines)", value)]
    if kind in ("list_type", "tuple_type", "set_type", "frozen_set_type", "iterable_type"):
        return [issue(path, "must be a list", value)]
    if kind in ("enum", "literal_error"):
        choices = _choices(str(ctx.get("expected", "")))
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        return [issue(path, f"must be one of: {', '.join(choices)}{hint}", value)]
    if kind in ("string_type", "str_type"):
        return [issue(path, "must be a string (quote it)", value)]
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return [issue(path, "must be a whole number", value)]
    if kind in ("bool_type", "bool_parsing"):
        return [issue(path, "must be true or false", value)]
    if kind in ("float_type", "float_parsing", "decimal_type", "decimal_parsing"):
        return [issue(path, "must be a number", value)]
    if kind == "value_error" and ctx.get("error") is not None:
        message = str(ctx["error"])
        # Some option validators name their own field first; the path already says it.
        if path and isinstance(path[-1], str):
            message = message.removeprefix(f"{path[-1]}: ")
        return [issue(path, _strip_got(message), value)]
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
    elif message.startswith("Input "):
        message = message.removeprefix("Input ")
    return [issue(path, _strip_got(message), value)]


def translate_errors(
    errors: Iterable[ErrorDetails],
    root: type[BaseModel],
    data: Any,
    *,
    keys_of: KeysOf = yaml_keys,
    extra: Callable[[type[BaseModel], str], Any] | None = None,
) -> list[Issue]:
    out: list[Issue] = []
    for error in errors:
        out.extend(translate_error(error, root, data, keys_of=keys_of, extra=extra))
    return out
