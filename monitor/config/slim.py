"""A validated configuration made smaller in memory, without a change anyone can observe.

At 10,000 targets, services and SLAs the validated models cost about 9 KB per SLA (issue 20,
``bench/sla_memory_bench.py``), much of it the same small objects over and over: every
target's default TLS options, every SLA's credit tiers, and one set of "fields given" per
model instance (~200 bytes each, six per one-target SLA). :func:`slim` walks the validated
configuration once and

- shares equal frozen sub-models (a target's options' options, an SLA's tiers): frozen models
  are values (pydantic compares them by their fields), so one instance stands for all;
- shares equal sets of the fields given among frozen models (pydantic only writes that set
  through ``__setattr__``, which a frozen model refuses; a copy gets its own set);
- interns the strings the models hold (a target's name is also in its service's list).

Only frozen models are touched, and only their sub-objects are replaced by equal ones: every
comparison, dump and error message stays the same (``tests/test_config_slim.py``).
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel

__all__ = ["slim"]

M = TypeVar("M", bound=BaseModel)

_ATOMS: frozenset[type] = frozenset({type(None), bool, int, float, Decimal})
"""Values with nothing inside to share: left as they are, without a call."""


def slim(config: M) -> M:
    """``config`` with equal frozen sub-models, field sets and strings shared (in place)."""
    if config.model_config.get("frozen", False):
        _Slimmer().model(config, depth=0)
    return config


class _Slimmer:
    def __init__(self) -> None:
        self._models: dict[tuple[BaseModel, frozenset[str]], BaseModel] = {}
        self._fields: dict[frozenset[str], set[str]] = {}
        # type -> frozen model (True), other model (False), not a model (None): isinstance
        # through pydantic's metaclass is slow, and a 10,000-SLA file holds 600,000 values.
        self._kinds: dict[type, bool | None] = {}
        # Types :meth:`value` returns as they are (numbers, enums, mappings, paths): the
        # walk skips them without a call. Grown as :meth:`value` meets them.
        self._atoms: set[type] = set(_ATOMS)
        # Objects below the sections' items already walked, by identity: id -> (the object, kept
        # alive so that its id is not reused, and what it became). A credit table written alike
        # is one tuple for every SLA (``SlaConfig``) and each target's default TLS options one
        # object (``probes.http``): walked once, not 10,000 times (issue 20, cl32).
        self._walked: dict[int, tuple[Any, Any]] = {}

    def model(self, model: BaseModel, *, depth: int) -> BaseModel:
        """``model`` walked (its values slimmed), or an equal one seen before. ``depth`` 0 is
        the configuration, 1 its sections' items (each target, service, SLA: unique names,
        so walked and never looked up)."""
        if depth >= 2:
            walked = self._walked.get(id(model))
            if walked is not None:
                return walked[1]  # type: ignore[no-any-return]
        values = model.__dict__
        for name, value in values.items():
            # Issue 20 (start-up): most values are None, numbers, enums or strings; settled
            # here without a call (0.8 s -> 0.4 s at 10,000 SLAs), the rest in :meth:`value`.
            kind = type(value)
            if kind is str:
                interned = sys.intern(value)
                if interned is not value:
                    values[name] = interned
                continue
            if kind in self._atoms:
                continue
            slimmer = self.value(value, depth=depth + 1)
            if slimmer is not value:
                values[name] = slimmer
        given = model.__pydantic_fields_set__
        key = frozenset(given)
        shared = self._fields.setdefault(key, given)
        if shared is not given:
            object.__setattr__(model, "__pydantic_fields_set__", shared)
        if depth < 2:
            return model
        try:
            # Keyed with the fields given too: pydantic's equality leaves them out, and a dump
            # with exclude_unset reads them.
            slimmer = self._models.setdefault((model, key), model)
        except TypeError:  # a field holds an unhashable value (a mapping): not shared
            slimmer = model
        self._walked[id(model)] = (model, slimmer)
        return slimmer

    def value(self, value: Any, *, depth: int) -> Any:
        kind = type(value)
        if kind is str:
            return sys.intern(value)
        try:
            frozen = self._kinds[kind]
        except KeyError:
            frozen = self._kind(kind)
        if frozen is not None:
            # A model that is not frozen may be written: left as it is, values included.
            return self.model(value, depth=depth) if frozen else value
        if kind is tuple:
            if not value:
                return value
            walked = self._walked.get(id(value)) if depth >= 2 else None
            if walked is not None:
                return walked[1]
            items = tuple([self.value(item, depth=depth) for item in value])
            slimmer = value if all(a is b for a, b in zip(items, value, strict=True)) else items
            if depth >= 2:
                self._walked[id(value)] = (value, slimmer)
            return slimmer
        if kind is list:
            for index, item in enumerate(value):
                slimmer = self.value(item, depth=depth)
                if slimmer is not item:
                    value[index] = slimmer
            return value
        self._atoms.add(kind)
        return value

    def _kind(self, kind: type) -> bool | None:
        frozen = (
            bool(kind.model_config.get("frozen", False)) if issubclass(kind, BaseModel) else None
        )
        self._kinds[kind] = frozen
        return frozen
