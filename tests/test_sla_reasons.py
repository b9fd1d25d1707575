"""The reasons table (probes/reasons.py) classifies every reason a probe can produce."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from probes.reasons import (
    MONITOR_PREFIXES,
    MONITOR_REASONS,
    VENDOR_PREFIXES,
    VENDOR_REASONS,
    Side,
    classify,
    side_of,
)
from probes.result import Outcome

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [*sorted((ROOT / "probes").rglob("*.py")), ROOT / "monitor" / "runtime" / "scheduler.py"]
_TOKEN = re.compile(r"^[a-z][a-z0-9_]*$")
_CARRIER = re.compile(r"(Error|Failed|Failure|Down)$")


def _literal(node: ast.AST) -> str | None:
    """A reason literal, or an f-string's literal head followed by ``*`` (a family)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        head = node.values[0]
        if isinstance(head, ast.Constant) and isinstance(head.value, str):
            return head.value + "*"
    if isinstance(node, ast.IfExp):
        return None
    return None


def _branches(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.IfExp):
        return [*_branches(node.body), *_branches(node.orelse)]
    return [node]


def _outcome_of(node: ast.AST) -> str | None:
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Outcome"
    ):
        return node.attr
    return None


def emitted_reasons() -> dict[str, set[str]]:
    """Reason token (or ``family*``) -> the outcomes it is given with (``?`` if unknown), read
    from every place a probe names a reason: ``ctx.result(outcome, reason)``, exceptions that
    carry a reason (``ProbeDown``, ``_Failed``, ``TransportError``...), ``(Outcome.X, reason)``
    tuples, ``reason = ...`` assignments, reason tables (``*_REASONS`` dicts) and verdict
    functions that return a reason."""
    found: dict[str, set[str]] = {}

    def add(node: ast.AST, outcome: str | None) -> None:
        for branch in _branches(node):
            value = _literal(branch)
            if value and _TOKEN.match(value.rstrip("*")):
                found.setdefault(value, set()).add(outcome or "?")

    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in ast.walk(tree):
            if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) and re.search(
                "reason|verdict", func.name
            ):
                for node in ast.walk(func):
                    if isinstance(node, ast.Return) and node.value is not None:
                        add(node.value, None)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name == "result" and len(node.args) >= 2:
                    add(node.args[1], _outcome_of(node.args[0]))
                elif _CARRIER.search(name) and node.args:
                    add(node.args[0], "DOWN" if name == "ProbeDown" else None)
            elif isinstance(node, ast.Tuple) and len(node.elts) >= 2:
                outcome = _outcome_of(node.elts[0])
                if outcome is not None:
                    add(node.elts[1], outcome)
            elif isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if any(n in ("reason", "failure") for n in names):
                    add(node.value, None)
                if any(n.endswith("_REASONS") for n in names) and isinstance(node.value, ast.Dict):
                    for value in node.value.values:
                        add(value, None)
    return found


def _example(token: str) -> str:
    return token[:-1] + "x" if token.endswith("*") else token


class TestReasonsTable:
    def test_the_scan_finds_the_known_reasons(self) -> None:
        """The source scan sees reasons of every probe family (so it is not vacuous)."""
        found = emitted_reasons()
        for token in (
            "secret_unavailable",
            "status_code_*",
            "local_*",
            "dns_no_answer",
            "http_incomplete_body",
            "rtp_ports_exhausted",
            "tls_error",
            "connection_refused",
        ):
            assert token in found, token

    def test_every_reason_a_probe_can_produce_is_classified(self) -> None:
        """Each reason token (or family) in the probe modules is in the table."""
        unclassified = sorted(t for t in emitted_reasons() if classify(_example(t)) is None)
        assert unclassified == []

    def test_every_reason_given_with_outcome_error_is_the_monitors(self) -> None:
        """A reason the probes give with outcome error is on the monitor's side in the table,
        so the results-file path (which has no outcome) reads it the same way."""
        wrong = sorted(
            t
            for t, outcomes in emitted_reasons().items()
            if "ERROR" in outcomes and classify(_example(t)) is not Side.MONITOR
        )
        assert wrong == []

    def test_the_two_sides_do_not_overlap(self) -> None:
        """No reason is on both sides."""
        assert not MONITOR_REASONS & VENDOR_REASONS
        for prefix in MONITOR_PREFIXES:
            assert not any(p.startswith(prefix) or prefix.startswith(p) for p in VENDOR_PREFIXES)

    @pytest.mark.parametrize(
        ("outcome", "reason", "side"),
        [
            (Outcome.ERROR, "status_code_503", Side.MONITOR),
            (Outcome.ERROR, "ValueError", Side.MONITOR),
            (Outcome.DOWN, "local_emfile", Side.MONITOR),
            (Outcome.DOWN, "secret_unavailable", Side.MONITOR),
            (Outcome.DOWN, "status_code_503", Side.VENDOR),
            (Outcome.TIMEOUT, "timeout_connect", Side.VENDOR),
            (Outcome.DOWN, "something_new", Side.VENDOR),
            (Outcome.DOWN, "HTTP 503", Side.VENDOR),
            (Outcome.DOWN, "ConnectionResetError", Side.MONITOR),
        ],
    )
    def test_side_of(self, outcome: Outcome, reason: str, side: Side) -> None:
        """Outcome error is always the monitor's; else the table, and vendor when unknown."""
        assert side_of(outcome, reason) is side
