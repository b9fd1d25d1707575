"""The README is the project's one manual: its links resolve, its two set-up commands are the
ones CI runs, and it documents every metric the daemon exports and every probe kind."""

from __future__ import annotations

import re
from pathlib import Path

from monitor.metrics.collector import METRIC_NAMES
from probes.registry import PROBE_KINDS
from tests.test_deploy_prometheus import github_slug

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _headings() -> list[str]:
    out, fence = [], False
    for line in README.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            out.append(line.lstrip("#").strip())
    return out


class TestReadme:
    def test_every_internal_link_resolves(self) -> None:
        """Each `](#anchor)` names a heading of the README (GitHub's anchor rules)."""
        anchors = {github_slug(h) for h in _headings()}
        links = set(re.findall(r"\]\(#([^)]+)\)", README))
        assert links
        assert sorted(links - anchors) == []

    def test_two_setup_commands_and_ci_runs_the_test_one(self) -> None:
        """The set-up section shows exactly the run and test scripts; .ci/run calls the test one."""
        setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
        block = setup.split("```sh", 1)[1].split("```", 1)[0]
        commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
        assert commands == ["./scripts/run.sh", "./scripts/test.sh"]
        assert "./scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")

    def test_every_exported_metric_is_documented(self) -> None:
        """Every name in METRIC_NAMES appears in the README."""
        assert sorted(n for n in METRIC_NAMES if n not in README) == []

    def test_every_probe_kind_is_documented(self) -> None:
        """Every kind in the probe registry has its options described."""
        assert sorted(k for k in PROBE_KINDS if f"`{k}`" not in README) == []
