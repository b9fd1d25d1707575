"""The import layers of ``monitor/`` (docs/architecture.md, "Layers"): a lower layer never
imports a higher one, no import circle exists, and the daemon's core imports neither the HTTP
server nor the Prometheus client.

Every import counts for the layers: module level, inside functions (deferred) and under
``TYPE_CHECKING``. For circles, deferred imports count (a deferred import hides a circle, it
does not remove it) and type-only ones do not (they run no code). This is the Python substitute
for Go's refusal to compile a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MONITOR = ROOT / "monitor"

# Lowest first. A module may import its own layer's modules (without a circle) and lower ones.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("monitor.instants", "monitor.instant_bounds", "monitor.clock", "monitor.host"),
    ("monitor.sla",),
    ("monitor.store", "monitor.support"),
    ("monitor.config",),
    ("monitor.accounting",),
    ("monitor.reports", "monitor.web"),
    ("monitor.runtime",),
    ("monitor.metrics", "monitor.promsource"),
    ("monitor.http",),
    ("monitor.cli",),
)
CORE = "monitor.runtime"
CORE_MAY_NOT_IMPORT = ("aiohttp", "prometheus_client")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, *, typing_only: bool = True) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import statement in ``path``; ``typing_only=False``
    leaves out those under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path) if path.is_relative_to(ROOT) else ""
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    skipped: set[int] = set()
    if not typing_only:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # "from monitor.x import y" imports the module monitor.x.y when there is one, and
            # monitor.x itself for any name that is not a module.
            names_only = False
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                if _is_module(candidate):
                    yield node.lineno, candidate
                else:
                    names_only = True
            if names_only:
                yield node.lineno, base


def _is_module(name: str) -> bool:
    where = MONITOR.parent / name.replace(".", "/")
    return where.with_suffix(".py").exists() or (where / "__init__.py").exists()


def layer_of(module: str) -> int | None:
    for rank, members in enumerate(LAYERS):
        for member in members:
            if module == member or module.startswith(member + "."):
                return rank
    return None


def graph() -> dict[str, set[str]]:
    """Module -> the monitor modules it imports when it runs (type-only imports create no
    initialisation order, so they cannot make a circle; they still obey the layers)."""
    edges: dict[str, set[str]] = {}
    for path in sorted(MONITOR.rglob("*.py")):
        name = module_name(path)
        edges[name] = {
            m for _, m in imports(path, typing_only=False) if m.startswith("monitor.") and m != name
        }
    return edges


SOURCES = sorted(p for p in MONITOR.rglob("*.py") if module_name(p) != "monitor")


class TestLayers:
    def test_every_package_has_a_layer(self) -> None:
        """A new package under monitor/ is placed in the table (and in docs/architecture.md)."""
        missing = sorted({module_name(p) for p in SOURCES if layer_of(module_name(p)) is None})
        assert missing == [], f"add to LAYERS in tests/test_layers.py: {missing}"

    @pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
    def test_no_import_reaches_up(self, path: Path) -> None:
        """Each module imports only its own layer and the layers below."""
        mine = layer_of(module_name(path))
        if mine is None:
            pytest.fail(f"{module_name(path)} has no layer")
        upward = [
            f"line {line}: {target} ({LAYERS[theirs][0]} layer)"
            for line, target in imports(path)
            if (theirs := layer_of(target)) is not None and theirs > mine
        ]
        assert upward == []

    def test_no_circle(self) -> None:
        """No module reaches itself through imports, however deferred."""
        edges = graph()
        known = set(edges)
        resolved = {
            name: {t if t in known else t.rpartition(".")[0] for t in targets} & known
            for name, targets in edges.items()
        }
        state: dict[str, int] = {}
        stack: list[str] = []
        circles: list[list[str]] = []

        def visit(node: str) -> None:
            state[node] = 1
            stack.append(node)
            for nxt in sorted(resolved[node]):
                if state.get(nxt) == 1:
                    circles.append([*stack[stack.index(nxt) :], nxt])
                elif nxt not in state:
                    visit(nxt)
            stack.pop()
            state[node] = 2

        for node in sorted(resolved):
            if node not in state:
                visit(node)
        assert circles == []

    def test_core_imports_no_server_or_exporter(self) -> None:
        """runtime/ is the daemon's core: the web server and the Prometheus client are
        adapters above it."""
        found = [
            f"{module_name(path)} line {line}: {target}"
            for path in SOURCES
            if module_name(path).startswith(CORE)
            for line, target in imports(path)
            if target.split(".")[0] in CORE_MAY_NOT_IMPORT
        ]
        assert found == []


class TestTheCheckItself:
    def test_a_circle_is_found(self, tmp_path: Path) -> None:
        """The walker sees deferred and TYPE_CHECKING imports, and can leave out the latter."""
        source = tmp_path / "m.py"
        source.write_text(
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from monitor.runtime.daemon import Daemon\n"
            "def f():\n    from monitor.http import api\n",
            encoding="utf-8",
        )
        assert [m for _, m in imports(source)][-2:] == [
            "monitor.runtime.daemon",
            "monitor.http.api",
        ]
        assert "monitor.runtime.daemon" not in [m for _, m in imports(source, typing_only=False)]


class TestAdaptersSeeTheView:
    def test_http_and_metrics_never_import_the_daemon(self) -> None:
        """The HTTP routes and the collectors see the daemon through runtime/view.py only."""
        found = [
            f"{module_name(path)} line {line}: {target}"
            for path in SOURCES
            if module_name(path).startswith(("monitor.http", "monitor.metrics"))
            for line, target in imports(path)
            if target.startswith("monitor.runtime.daemon")
        ]
        assert found == []
