"""deploy/grafana/slawatch.json: its queries are valid PromQL over metrics the daemon exports,
and it has the panels issue 6 asks for."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from monitor.metrics.collector import METRIC_NAMES
from tests.peers import require_binary
from tests.test_deploy_contract import DASHBOARD, family_of, metric_names_in

# The support SLA's families: exported only by a daemon with a support contract (and, for the
# fault series, an open fault).
SUPPORT_FAMILIES = frozenset(
    n for n in METRIC_NAMES if n.startswith(("slawatch_fault_", "slawatch_support_"))
) | {"slawatch_maintenance_notice_violations"}

# Grafana's variables, replaced by values Prometheus accepts for a syntax check.
_VARIABLES = {"$__rate_interval": "5m", "$__interval": "5m", "$sla": ".*", "$target": ".*"}


def dashboard() -> dict[str, Any]:
    """The shipped dashboard."""
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression: panel targets, variable queries, annotations."""
    found = [t["expr"] for p in panels(board) for t in p.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", variable["query"]["query"])
            assert inner, variable["query"]
            found.append(inner.group(1))
    found += [a["expr"] for a in board["annotations"]["list"] if "expr" in a]
    return found


def _substituted(expr: str) -> str:
    for name, value in _VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


class TestDashboardQueries:
    def test_every_query_names_an_exported_metric(self) -> None:
        """Each query reads at least one slawatch metric, and every one it reads is exported."""
        exported = METRIC_NAMES
        for expr in queries(dashboard()):
            names = metric_names_in(expr)
            assert names or "up{" in expr, f"query reads no slawatch metric: {expr}"
            unknown = {n for n in names if family_of(n, exported) is None}
            assert unknown == set(), f"{expr}: {unknown}"

    def test_queries_are_valid_promql(self, tmp_path: Path) -> None:
        """Every query parses: promtool checks them as recording rules."""
        promtool = require_binary("promtool", "prometheus")
        exprs = [_substituted(e) for e in queries(dashboard())]
        assert not any("$" in e for e in exprs), [e for e in exprs if "$" in e]
        rules = {
            "groups": [
                {
                    "name": "dashboard",
                    "rules": [
                        {"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)
                    ],
                }
            ]
        }
        path = tmp_path / "dashboard-queries.yml"
        path.write_text(yaml.safe_dump(rules))
        proc = subprocess.run(
            [promtool, "check", "rules", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"SUCCESS: {len(exprs)} rules found" in proc.stdout

    def test_syntax_check_is_live(self) -> None:
        """The name check rejects a misspelt metric."""
        assert family_of("slawatch_probe_moss", METRIC_NAMES) is None
        assert family_of("slawatch_probes_total", METRIC_NAMES) == "slawatch_probes_total"


class TestDashboardContent:
    def _reads(self, metric: str) -> list[str]:
        return [
            p["title"]
            for p in panels(dashboard())
            if any(metric in t["expr"] for t in p.get("targets", []))
        ]

    def test_required_views(self) -> None:
        """Uptime vs objective, bucket timeline, budget, credit, latency and phases, voice
        quality, faults and deadlines each have a panel."""
        for metric in (
            "slawatch_month_uptime_ratio",
            "slawatch_sla_objective_ratio",
            "slawatch_bucket_state",
            "slawatch_error_budget_remaining_buckets",
            "slawatch_credit_projected_amount",
            "slawatch_probe_duration_seconds",
            "slawatch_probe_phase_seconds",
            "slawatch_probe_mos",
            "slawatch_probe_rtp_loss_ratio",
            "slawatch_fault_open",
            "slawatch_fault_deadline_timestamp_seconds",
            "slawatch_previous_month_claim_deadline_timestamp_seconds",
        ):
            assert self._reads(metric), f"no panel reads {metric}"

    def test_bucket_timeline(self) -> None:
        """The buckets are a state timeline at bucket resolution with every state mapped."""
        [panel] = [p for p in panels(dashboard()) if p["type"] == "state-timeline"]
        assert panel["interval"] == "5m"
        mapped = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
        assert {m["text"] for m in mapped.values()} == {
            "available",
            "unavailable",
            "excluded",
            "unknown",
        }

    def test_calendar_month_range_and_unique_ids(self) -> None:
        """The default range is this calendar month, and panel ids are unique."""
        board = dashboard()
        assert board["time"] == {"from": "now/M", "to": "now"}
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids))
