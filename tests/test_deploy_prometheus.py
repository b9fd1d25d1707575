"""deploy/prometheus: promtool checks and unit tests, plus the conventions every alert follows."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.peers import require_binary
from tests.test_deploy_contract import (
    PROMETHEUS_DIR,
    RULE_TESTS,
    RULES,
    RUNBOOK_DOC,
    alerts,
    contract_metric_names,
    family_of,
    load_yaml,
    metric_names_in,
    rules,
)

SEVERITIES = {"page", "ticket", "info"}
SCOPES = {"vendor", "contract", "monitor"}


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    """Run promtool with a timeout; the caller checks the outcome."""
    binary = require_binary("promtool", "prometheus")
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lower case, punctuation dropped, - for space."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def _unit_test_cases() -> list[tuple[str, bool]]:
    """(alertname, expects at least one alert) for every alert_rule_test in the test files."""
    cases: list[tuple[str, bool]] = []
    for path in RULE_TESTS:
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.append((case["alertname"], bool(case.get("exp_alerts"))))
    return cases


def _firing_label_sets() -> dict[str, list[dict[str, str]]]:
    found: dict[str, list[dict[str, str]]] = {}
    for path in RULE_TESTS:
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    found.setdefault(case["alertname"], []).append(alert["exp_labels"])
    return found


class TestPromtool:
    def test_check_rules(self) -> None:
        """`promtool check rules` accepts the rules file."""
        proc = promtool("check", "rules", str(RULES))
        assert proc.returncode == 0, proc.stderr
        assert f"SUCCESS: {len(rules())} rules found" in proc.stdout

    def test_check_config(self) -> None:
        """The example scrape configuration is valid and loads the rules next to it."""
        proc = promtool("check", "config", "prometheus.yml")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "SUCCESS: 1 rule files found" in proc.stdout

    @pytest.mark.parametrize("path", RULE_TESTS, ids=lambda p: p.name)
    def test_unit_tests_pass(self, path: Path) -> None:
        """Every promtool unit test passes."""
        proc = promtool("test", "rules", path.name)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "SUCCESS" in proc.stdout

    def test_unit_tests_catch_a_changed_rule(self, tmp_path: Path) -> None:
        """The unit tests are live: a slower confirmation delay of the page makes them fail."""
        mutated = RULES.read_text().replace(
            "for: 2m\n        labels:\n          severity: page",
            "for: 4m\n        labels:\n          severity: page",
            1,
        )
        assert mutated != RULES.read_text()
        (tmp_path / RULES.name).write_text(mutated)
        test_file = RULE_TESTS[0]
        (tmp_path / test_file.name).write_text(test_file.read_text())
        proc = promtool("test", "rules", test_file.name, cwd=tmp_path)
        assert proc.returncode != 0
        assert "SlawatchServiceUnavailable" in proc.stdout + proc.stderr

    def test_check_rules_rejects_bad_promql(self, tmp_path: Path) -> None:
        """promtool reports a broken expression with a non-zero status."""
        broken = tmp_path / "broken.yml"
        broken.write_text(
            RULES.read_text().replace("slawatch_service_up == 0", "slawatch_service_up ==", 1)
        )
        proc = promtool("check", "rules", str(broken))
        assert proc.returncode != 0


class TestAlertConventions:
    def test_every_alert_tested_firing_and_quiet(self) -> None:
        """Each alert has a unit test where it fires and one where it does not."""
        cases = _unit_test_cases()
        for rule in alerts():
            name = rule["alert"]
            assert (name, True) in cases, f"{name}: no firing test"
            assert (name, False) in cases, f"{name}: no not-firing test"

    def test_no_test_for_an_unknown_alert(self) -> None:
        """A test named after a removed or misspelt alert would pass vacuously; none exists."""
        names = {rule["alert"] for rule in alerts()}
        assert {name for name, _ in _unit_test_cases()} <= names

    def test_severity_and_scope(self) -> None:
        """Each alert sets severity (page, ticket, info) and scope (vendor, contract, monitor)."""
        for rule in alerts():
            assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
            assert rule["labels"]["scope"] in SCOPES, rule["alert"]

    def test_firing_alerts_carry_service(self) -> None:
        """Every firing alert in the unit tests has the labels severity and service."""
        for name, label_sets in _firing_label_sets().items():
            for labels in label_sets:
                assert labels.get("service"), f"{name}: no service label"
                assert labels.get("severity") in SEVERITIES, name

    def test_runbook_links_resolve(self) -> None:
        """runbook_url points at the alert's own section of docs/runbooks.md, which exists."""
        anchors = {github_slug(h) for h in re.findall(r"(?m)^#+ (.+)$", RUNBOOK_DOC.read_text())}
        for rule in alerts():
            anchor = f"runbook-{rule['alert'].lower()}"
            assert rule["annotations"]["runbook_url"].endswith(f"docs/runbooks.md#{anchor}")
            assert anchor in anchors, f"docs/runbooks.md has no section {anchor}"

    def test_github_slug(self) -> None:
        """The slug helper produces the anchors the runbook links use."""
        assert github_slug("Runbook: SlawatchServiceUnavailable") == (
            "runbook-slawatchserviceunavailable"
        )
        assert github_slug("What pages at 99.999 %") == "what-pages-at-99999-"

    def test_summary_and_description(self) -> None:
        """Each alert explains itself in a summary and a description."""
        for rule in alerts():
            assert rule["annotations"]["summary"].strip(), rule["alert"]
            assert rule["annotations"]["description"].strip(), rule["alert"]


class TestMetricNames:
    def test_rules_read_only_contract_metrics(self) -> None:
        """Every slawatch_* series in the rules is in the architecture contract (or requested)."""
        known = contract_metric_names()
        unknown = {
            name
            for rule in rules()
            for name in metric_names_in(rule["expr"])
            if family_of(name, known) is None
        }
        assert unknown == set()
