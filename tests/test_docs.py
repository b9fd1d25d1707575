"""README.md and docs/: every relative link and anchor resolves, the README's two set-up
commands are the ones CI runs, and every metric the daemon exports and every probe kind is
documented somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.metrics.collector import METRIC_NAMES
from probes.registry import PROBE_KINDS
from tests.test_deploy_prometheus import github_slug

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
ALL_TEXT = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)
README_LIMIT = 15_000
PENDING: dict[str, str] = {}
"""Pages linked before they exist: allowed only while missing (once present, checked as any)."""
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of ``path`` (duplicates get -1, -2, ...)."""
    found: set[str] = set()
    fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            slug = github_slug(line.lstrip("#"))
            n = 0
            while (candidate := slug if n == 0 else f"{slug}-{n}") in found:
                n += 1
            found.add(candidate)
    return found


def links(path: Path) -> list[str]:
    """Link targets outside code blocks and spans."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return LINK.findall(text)


def broken(path: Path) -> list[str]:
    out = []
    for target in links(path):
        if re.match(r"[a-z]+:", target) or target.startswith(("<", "mailto:")):
            continue
        file_part, _, fragment = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        relative = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else ""
        if not resolved.exists():
            if relative not in PENDING:
                out.append(f"{target}: no such file")
            continue
        if fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            out.append(f"{target}: no heading with that anchor")
    return out


class TestDocs:
    @pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
    def test_every_relative_link_and_anchor_resolves(self, page: Path) -> None:
        """Each relative link names an existing file, and each #anchor one of its headings."""
        assert broken(page) == []

    def test_the_checker_sees_a_broken_link(self, tmp_path: Path) -> None:
        """A missing file and a missing anchor are both reported."""
        page = tmp_path / "p.md"
        page.write_text("# Title\n[a](#title) [b](#nope) [c](missing.md)\n", encoding="utf-8")
        assert broken(page) == ["#nope: no heading with that anchor", "missing.md: no such file"]

    def test_readme_is_short_and_maps_the_docs(self) -> None:
        """README.md stays an introduction (<= 15 KB) and links every page under docs/."""
        assert len(README.encode()) <= README_LIMIT
        mapped = {(ROOT / t.partition("#")[0]).resolve() for t in LINK.findall(README)}
        pages = {p.resolve() for p in (ROOT / "docs").rglob("*.md")}
        assert sorted(str(p) for p in pages - mapped) == []

    def test_two_setup_commands_and_ci_runs_the_test_one(self) -> None:
        """The set-up section shows exactly the run and test scripts; .ci/run calls the test one."""
        setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
        block = setup.split("```sh", 1)[1].split("```", 1)[0]
        commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
        assert commands == ["./scripts/run.sh", "./scripts/test.sh"]
        assert "./scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")

    def test_every_exported_metric_is_documented(self) -> None:
        """Every name in METRIC_NAMES appears in README.md or docs/."""
        assert sorted(n for n in METRIC_NAMES if n not in ALL_TEXT) == []

    def test_every_probe_kind_is_documented(self) -> None:
        """Every kind in the probe registry has its options described."""
        assert sorted(k for k in PROBE_KINDS if f"`{k}`" not in ALL_TEXT) == []

    def test_runbooks_live_in_docs(self) -> None:
        """Every runbook section is in docs/runbooks.md, where the alerts' runbook_url points."""
        runbooks = anchors(ROOT / "docs" / "runbooks.md")
        assert len([a for a in runbooks if a.startswith("runbook-")]) >= 20
