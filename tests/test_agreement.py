"""The four paths from results to money agree: for generated configurations and results
(notice rules, recurring, configured and API exclusions, canaries, gaps, quorum, both unknown
policies, an as-of inside or after the month) ``slawatch report`` from a results file,
``slawatch report`` from the store, the running daemon (what ``/metrics`` shows) and
``/api/v1/report`` give the same month: figures, outages and credit.

This is what keeps issue 10 (the report and the daemon disagreeing on a credit) from coming
back: a second copy of contract logic on any path makes this fail.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from monitor.clock import FixedClock
from monitor.config import load_config
from monitor.http.reports import daemon_report
from monitor.instants import parse_instant
from monitor.reports.build import build_reports, grid_tallies
from monitor.reports.full import compose
from monitor.reports.results import parse_lines, tally_results
from monitor.reports.stored import store_month_results
from monitor.runtime.daemon import Daemon
from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import MonthResult
from monitor.sla.policy import ExclusionKind, ExclusionWindow
from monitor.store.base import TallyRow, WriteBatch
from monitor.store.sqlite import SqliteStore
from tests.strategies import month_scenarios

pytestmark = pytest.mark.timeout(600)

MONTH = Month(2026, 11)


def result_lines(scenario: dict[str, Any]) -> list[str]:
    """The probe results as a results file holds them (one probe per target and bucket)."""
    lines = []
    for target, outcomes in scenario["probes"].items():
        for index, outcome in enumerate(outcomes):
            if outcome == "-":
                continue
            ts = scenario["day"] + timedelta(minutes=5 * index, seconds=17)
            record = {"ts": ts.isoformat(), "target": target, "ok": outcome == "u"}
            if outcome == "f":
                record["error"] = "timeout"
            lines.append(json.dumps(record))
    return lines


def api_windows(scenario: dict[str, Any]) -> list[ExclusionWindow]:
    return [
        ExclusionWindow(
            id=w["id"],
            start=parse_instant(w["start"], "start"),
            end=parse_instant(w["end"], "end"),
            kind=ExclusionKind(w["kind"]),
            services=frozenset(w.get("services", ())),
            announced_at=(
                parse_instant(w["announced_at"], "announced_at") if "announced_at" in w else None
            ),
            source="api",
        )
        for w in scenario["api"]
    ]


def reports_json(results: list[MonthResult]) -> list[dict[str, Any]]:
    document: dict[str, Any] = json.loads(compose(results, "json", {}, None))
    reports: list[dict[str, Any]] = document["reports"]
    return reports


async def store_and_daemon_paths(
    scenario: dict[str, Any], config_path: Path, lines: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    config = load_config(config_path)
    now: datetime = scenario["now"]
    (policy,) = config.sla_policies()
    grid = month_grid(MONTH, policy.timezone, policy.bucket_seconds)
    # The daemon judges canary cover as results arrive and stores the excused counts; a
    # results file is tallied with the same cover.
    tallies = tally_results(parse_lines(lines), grid, canaries=config.canary_intervals())
    store = SqliteStore(config.monitor.database_path, vantage="agree")
    await store.open()
    try:
        rows = [
            TallyRow.of("agree", target, start, policy.bucket_seconds, t)
            for target, buckets in tallies.items()
            for start, t in buckets.items()
        ]
        await store.write_batch(WriteBatch(tallies=rows, heartbeat=now.timestamp()))
        for start, end in scenario["gaps"]:
            await store.record_gap(start.timestamp(), end.timestamp(), "monitor_not_running")
        for window in api_windows(scenario):
            await store.add_exclusion(window)
        stored = await store_month_results(
            config, store, [policy], MONTH, now, await store.list_exclusions()
        )
    finally:
        await store.close()
    daemon = Daemon(config, config_path, clock=FixedClock(now.timestamp()))
    await daemon.store.open()
    try:
        await daemon._load_history(now.timestamp())
        live = daemon.accounting.month_result(policy, now, MONTH)
        text, _ = await daemon_report(daemon, None, str(MONTH), "json")
    finally:
        await daemon.store.close()
    return reports_json(stored), reports_json([live]), json.loads(text)["reports"]


class TestFourPathsAgree:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(month_scenarios())
    def test_same_month_on_every_path(self, scenario: dict[str, Any]) -> None:
        """Results file, store, daemon and API: identical month documents (figures, outages,
        exclusions applied, credit)."""
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory)
            scenario["config"]["monitor"]["state_dir"] = str(root)
            config_path = root / "slawatch.yaml"
            config_path.write_text(yaml.safe_dump(scenario["config"]), encoding="utf-8")
            lines = result_lines(scenario)
            config = load_config(config_path)
            from_results = reports_json(
                build_reports(
                    config,
                    grid_tallies(parse_lines(lines), config.canary_intervals()),
                    MONTH,
                    now=scenario["now"],
                    extra_exclusions=api_windows(scenario),
                    gaps=scenario["gaps"],
                )
            )
            from_store, live, api = asyncio.run(
                store_and_daemon_paths(scenario, config_path, lines)
            )
        assert from_store == from_results
        assert live == from_results
        assert api == from_results
