"""The real daemon (`slawatch run`) against real HTTP servers on loopback.

Buckets are 5 seconds long here (allow_short_buckets) and targets are probed every second, so
an outage, its buckets, the metrics and the report can be seen in a few seconds of wall time.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_harness import free_port, request, running_daemon, wait_until
from tests.web_target import WebTarget, web_target

pytestmark = pytest.mark.timeout(120)

BUCKET = 5
TOKEN = "test-token-0123456789"


def write_config(
    directory: Path,
    port: int,
    targets: list[dict[str, Any]],
    services: list[dict[str, Any]],
    slas: list[dict[str, Any]],
    token_file: bool = True,
) -> Path:
    if token_file:
        (directory / "token").write_text(TOKEN + "\n", encoding="utf-8")
    config = {
        "monitor": {
            "name": "test-vantage",
            "state_dir": str(directory / "state"),
            "listen": f"127.0.0.1:{port}",
            "allow_short_buckets": True,
            "log_level": "info",
            **({"api_token": {"file": str(directory / "token")}} if token_file else {}),
        },
        "targets": targets,
        "services": services,
        "slas": slas,
    }
    path = directory / "slawatch.yaml"
    # JSON is YAML: no need for a YAML writer in the tests.
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def http_target(name: str, url: str, **options: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "http",
        "interval": "1s",
        "timeout": "900ms",
        "http": {
            "url": url,
            "fail_if_body_not_matches_regexp": ["service OK"],
            "max_body_bytes": 100_000,
            **options,
        },
    }


def midday_zone(at: float | None = None) -> str:
    """A fixed-offset IANA zone in which ``at`` (default: now) is between 12:00 and 13:00.

    The daemon runs on the wall clock, so an SLA in UTC may cross a month boundary during a
    test (or start it in the month's last bucket, or with a fresh month's large error budget).
    In this zone the month the test sees is at least 11 hours from either of its ends, whatever
    the date, so every month-level figure follows from what the test did. Month-edge logic
    itself is tested in the pure tests with fixed instants.
    """
    hour = datetime.fromtimestamp(time.time() if at is None else at, UTC).hour
    offset = 12 - hour  # -11 .. +12, all of them Etc/GMT zones (whose sign is inverted)
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"


def sla(
    name: str, service: str, objective: float = 99.999, timezone: str | None = None
) -> dict[str, Any]:
    """An SLA over 5-second buckets in ``timezone`` (default: a zone where it is midday)."""
    return {
        "name": name,
        "service": service,
        "objective": objective,
        "bucket": f"{BUCKET}s",
        "timezone": timezone or midday_zone(),
        "monthly_fee": "1000.00",
        "currency": "EUR",
        "credit_tiers": [
            {"below": objective, "at_least": 99.0, "credit_percent": 10},
            {"below": 99.0, "credit_percent": 25},
        ],
    }


def _month_buckets(daemon: Any, sla_name: str, month: str | None) -> dict[str, Any]:
    query = f"/api/v1/buckets?sla={sla_name}" + (f"&month={month}" if month else "")
    data: dict[str, Any] = daemon.json(query)["buckets"][0]
    return data


def _previous(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year - (number == 1):04d}-{(number - 2) % 12 + 1:02d}"


def buckets_of(daemon: Any, sla_name: str, month: str | None = None) -> tuple[int, list[str]]:
    """The first bucket's epoch and every bucket's state of ``month`` (default: the current)."""
    data = _month_buckets(daemon, sla_name, month)
    # The start carries its UTC offset: no dependence on the host's own zone or DST.
    return int(datetime.fromisoformat(data["start"]).timestamp()), data["states"]


def states_between(daemon: Any, sla_name: str, t0: float, t1: float) -> list[str]:
    """The states of the buckets holding ``t0`` .. ``t1``, across a month boundary if need be."""
    data = _month_buckets(daemon, sla_name, None)
    months = [data]
    while datetime.fromisoformat(months[0]["start"]).timestamp() > t0:
        months.insert(0, _month_buckets(daemon, sla_name, _previous(months[0]["month"])))
    by_epoch: dict[int, str] = {}
    for month in months:
        start = int(datetime.fromisoformat(month["start"]).timestamp())
        for index, state in enumerate(month["states"]):
            by_epoch[start + index * BUCKET] = state
    first = int(t0 // BUCKET) * BUCKET
    last = int(t1 // BUCKET) * BUCKET
    return [by_epoch[e] for e in range(first, last + 1, BUCKET) if e in by_epoch]


@pytest.fixture
def target() -> Any:
    with web_target() as t:
        yield t


class TestFailureModes:
    def test_each_failure_mode_fails_its_probe_with_a_reason(
        self, tmp_path: Path, target: WebTarget
    ) -> None:
        """Down, slow, wrong status, wrong body, reset and oversized targets each fail with the
        matching reason, while a healthy target beside them stays up: one slow target delays
        no other."""
        for mode in ("up", "status", "body", "slow", "reset", "big"):
            target.set(mode, mode)
        closed = free_port()
        targets = [
            http_target(f"t-{m}", target.url(m))
            for m in ("up", "status", "body", "slow", "reset", "big")
        ]
        targets.append(http_target("t-down", f"http://127.0.0.1:{closed}/"))
        names = [t["name"] for t in targets]
        port = free_port()
        config = write_config(
            tmp_path,
            port,
            targets,
            [{"name": "web", "targets": names, "down_when": "any"}],
            [sla("web-sla", "web")],
        )
        with running_daemon(config, port) as daemon:

            def last_reasons() -> dict[str, str] | None:
                rows = daemon.json("/api/v1/status")["targets"]
                got = {r["target"]: r["last_reason"] for r in rows if r["last_outcome"]}
                # The first probe of a cold daemon on a loaded machine may be slow: wait for
                # the healthy target's steady state.
                return got if len(got) == len(names) and got["t-up"] == "" else None

            reasons = wait_until(last_reasons, 15, "every target probed once")
            assert reasons["t-up"] == ""
            assert reasons["t-status"] == "status_code_500"
            assert reasons["t-body"] == "body_regex_missing"
            assert reasons["t-slow"].startswith("timeout")
            assert reasons["t-reset"] in {
                "connection_reset",
                "empty_reply",
                "malformed_response",
            }
            assert reasons["t-big"] == "body_too_large"
            assert reasons["t-down"] == "connection_refused"
            assert daemon.metric("slawatch_probe_success", target="t-up") == 1.0
            assert daemon.metric("slawatch_probe_success", target="t-slow") == 0.0
            assert daemon.metric("slawatch_service_up", sla="web-sla") == 0.0
            # The healthy target kept its one-second rhythm while the slow one hung.
            runs_before = daemon.metric("slawatch_probes_total", target="t-up", outcome="up") or 0
            time.sleep(3.2)
            runs_after = daemon.metric("slawatch_probes_total", target="t-up", outcome="up") or 0
            assert runs_after - runs_before >= 3


class TestOutageBucketsMetricsReport:
    @pytest.mark.calendar
    def test_outage_becomes_unavailable_buckets_in_api_metrics_and_report(
        self, tmp_path: Path, target: WebTarget
    ) -> None:
        """A target answering 500 for two buckets shows up as unavailable buckets, an outage
        with its reason in the report, month metrics and a projected credit.

        The credit counts proven unavailable buckets over the whole month (the claimable
        reading)."""
        target.set("svc", "up")
        port = free_port()
        # Two unavailable buckets breach 99.9999% in any month: even a whole 31-day month of
        # 5-second buckets (535,680) gives an error budget of floor(0.54) = 0 buckets. And the
        # claimable uptime counts the month's unmeasured buckets as available, so it stays above
        # 99%: the 10% tier, 100.00 EUR, whatever the date.
        config = write_config(
            tmp_path,
            port,
            [http_target("api", target.url("svc"))],
            [{"name": "web", "targets": ["api"]}],
            [sla("web-sla", "web", objective=99.9999)],
        )
        with running_daemon(config, port) as daemon:
            wait_until(
                lambda: daemon.metric("slawatch_probe_success", target="api") == 1.0, 10, "api up"
            )
            # Start the outage at a bucket boundary so it spans whole buckets.
            time.sleep(BUCKET - time.time() % BUCKET + 0.05)
            t0 = time.time()
            target.set("svc", "status")
            time.sleep(2 * BUCKET)
            target.set("svc", "up")
            t1 = time.time() - 0.5
            wait_until(
                lambda: "pending" not in states_between(daemon, "web-sla", t0, t1),
                3 * BUCKET,
                "outage buckets closed",
            )
            assert states_between(daemon, "web-sla", t0, t1) == ["unavailable", "unavailable"]
            assert (
                daemon.metric("slawatch_month_buckets", sla="web-sla", state="unavailable") or 0
            ) >= 2
            assert daemon.metric("slawatch_sla_breached", sla="web-sla") == 1.0
            assert (
                daemon.metric("slawatch_credit_projected_amount", sla="web-sla", currency="EUR")
                == 100.0
            )
            assert (
                daemon.metric("slawatch_probes_total", target="api", outcome="down")
                >= 2 * BUCKET - 1
            )
            report = daemon.json("/api/v1/report?service=web&format=json")
            month = report[0] if isinstance(report, list) else report["reports"][0]
            assert month["buckets_unavailable"] >= 2
            assert any("status_code_500" in o["errors"] for o in month["outages"])
            status, claim = daemon.get("/api/v1/report?service=web&format=claim")
            assert status == 200
            assert "SLA Claim" in claim


class TestDurability:
    @pytest.mark.calendar
    def test_sigkill_loses_nothing_written_and_the_gap_is_unknown(
        self, tmp_path: Path, target: WebTarget
    ) -> None:
        """Kill -9 mid-month, stay down for more than two buckets, restart: every tally the
        store had is still there and the downtime reads as unknown buckets, never available."""
        target.set("svc", "up")
        port = free_port()
        config = write_config(
            tmp_path,
            port,
            [http_target("api", target.url("svc"))],
            [{"name": "web", "targets": ["api"]}],
            [sla("web-sla", "web")],
        )
        db = tmp_path / "state" / "slawatch.db"
        with running_daemon(config, port) as daemon:
            wait_until(
                lambda: (
                    (daemon.metric("slawatch_probes_total", target="api", outcome="up") or 0) >= 4
                ),
                15,
                "a few probes",
            )
            time.sleep(1.5)  # at least one flush after them
            daemon.signal(signal.SIGKILL)
            daemon.proc.wait(5)
            killed_at = time.time()
        before = _tally_rows(db)
        assert sum(ok for _, ok, _ in before) >= 4
        time.sleep(2 * BUCKET + 1)
        with running_daemon(config, port) as daemon:
            restarted_at = time.time()
            after = _tally_rows(db)
            assert set(before) <= set(after), "rows written before the kill were lost"
            wait_until(
                lambda: (
                    "pending"
                    not in states_between(
                        daemon, "web-sla", killed_at + BUCKET, restarted_at - BUCKET
                    )
                ),
                10,
                "gap buckets computed",
            )
            gap_states = states_between(
                daemon, "web-sla", killed_at + BUCKET, restarted_at - BUCKET
            )
            assert gap_states, "expected whole buckets inside the gap"
            assert set(gap_states) == {"unknown"}
            assert "downtime_recorded_as_unknown" in daemon.log()

    def test_sigterm_flushes_and_exits_within_five_seconds(
        self, tmp_path: Path, target: WebTarget
    ) -> None:
        """SIGTERM with a slow probe in flight: exit 0 within 5 s, and every probe the metrics
        counted is in the store."""
        target.set("svc", "up")
        target.set("slow", "slow")
        port = free_port()
        config = write_config(
            tmp_path,
            port,
            [http_target("api", target.url("svc")), http_target("slowpoke", target.url("slow"))],
            [{"name": "web", "targets": ["api", "slowpoke"]}],
            [sla("web-sla", "web")],
        )
        db = tmp_path / "state" / "slawatch.db"
        with running_daemon(config, port) as daemon:
            wait_until(
                lambda: (
                    (daemon.metric("slawatch_probes_total", target="api", outcome="up") or 0) >= 3
                ),
                15,
                "a few probes",
            )
            counted = daemon.metric("slawatch_probes_total", target="api", outcome="up") or 0
            t0 = time.monotonic()
            daemon.signal(signal.SIGTERM)
            code = daemon.proc.wait(10)
            took = time.monotonic() - t0
        assert code == 0
        assert took < 5.0, f"shutdown took {took:.2f}s"
        rows = _tally_rows(db)
        stored_ok = sum(ok for (name, _start), ok, _failed in rows if name == "api")
        assert stored_ok >= counted


class TestReload:
    def test_sighup_applies_a_valid_file_and_rejects_an_invalid_one(
        self, tmp_path: Path, target: WebTarget
    ) -> None:
        """A valid new file adds a target without losing the running bucket's counts; an
        invalid one is logged and flagged in a metric while the old configuration keeps
        running."""
        target.set("a", "up")
        target.set("b", "up")
        port = free_port()
        services = [{"name": "web", "targets": ["a"]}]
        config = write_config(
            tmp_path, port, [http_target("a", target.url("a"))], services, [sla("web-sla", "web")]
        )
        with running_daemon(config, port) as daemon:
            wait_until(
                lambda: daemon.metric("slawatch_probe_success", target="a") == 1.0, 10, "a up"
            )
            write_config(
                tmp_path,
                port,
                [http_target("a", target.url("a")), http_target("b", target.url("b"))],
                services,
                [sla("web-sla", "web")],
            )
            before = daemon.metric("slawatch_probes_total", target="a", outcome="up") or 0
            daemon.signal(signal.SIGHUP)
            wait_until(
                lambda: daemon.metric("slawatch_probe_success", target="b") == 1.0, 10, "b probed"
            )
            assert (daemon.metric("slawatch_probes_total", target="a", outcome="up") or 0) >= before
            assert daemon.metric("slawatch_config_last_reload_successful") == 1.0
            config.write_text(config.read_text().replace('"interval": "1s"', '"interval": "-5s"'))
            daemon.signal(signal.SIGHUP)
            wait_until(
                lambda: daemon.metric("slawatch_config_last_reload_successful") == 0.0,
                10,
                "reload flagged as failed",
            )
            assert "config_reload_rejected" in daemon.log()
            runs = daemon.metric("slawatch_probes_total", target="b", outcome="up") or 0
            wait_until(
                lambda: (
                    (daemon.metric("slawatch_probes_total", target="b", outcome="up") or 0)
                    > runs + 1
                ),
                10,
                "old configuration still probing",
            )


class TestExclusionsApi:
    @pytest.mark.calendar
    def test_exclusion_recorded_after_the_fact_excludes_past_buckets_at_once(
        self, tmp_path: Path, target: WebTarget
    ) -> None:
        """POST an exclusion over a past outage (telecom provider failure): its buckets turn
        excluded immediately, the credit disappears, and DELETE brings them back. Without the
        token, or with bad input, the API says what is wrong and changes nothing."""
        target.set("svc", "up")
        port = free_port()
        config = write_config(
            tmp_path,
            port,
            [http_target("api", target.url("svc"))],
            [{"name": "web", "targets": ["api"]}],
            [sla("web-sla", "web")],
        )
        with running_daemon(config, port) as daemon:
            wait_until(
                lambda: daemon.metric("slawatch_probe_success", target="api") == 1.0, 10, "api up"
            )
            time.sleep(BUCKET - time.time() % BUCKET + 0.05)
            t0 = time.time()
            target.set("svc", "status")
            time.sleep(BUCKET)
            target.set("svc", "up")
            t1 = time.time() - 0.5
            before = wait_until(
                lambda: [
                    states
                    for states in [states_between(daemon, "web-sla", t0, t1)]
                    if "pending" not in states and "unavailable" in states
                ],
                3 * BUCKET,
                "the outage bucket",
            )[0]
            start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 - 1))
            end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t1 + 1))
            window = {
                "kind": "telecom_provider",
                "start": start,
                "end": end,
                "reason": "carrier outage, ticket 4711",
                "services": ["web"],
            }
            url = daemon.base + "/api/v1/exclusions"
            assert request("POST", url, window)[0] == 401
            status, body = request(
                "POST", url, {**window, "start": "2026-11-10T02:00:00"}, token=TOKEN
            )
            assert status == 400
            assert "add Z or +01:00" in body
            status, body = request("POST", url, {**window, "kind": "act_of_god"}, token=TOKEN)
            assert status == 400
            assert "kind: expected one of" in body
            status, body = request("POST", url, window, token=TOKEN)
            assert status == 201, body
            ident = json.loads(body)["id"]
            assert set(states_between(daemon, "web-sla", t0, t1)) == {"excluded"}
            assert daemon.metric("slawatch_sla_breached", sla="web-sla") == 0.0
            listed = daemon.json("/api/v1/exclusions")["exclusions"]
            assert any(w["id"] == ident and w["source"] == "api" for w in listed)
            status, _ = request("DELETE", f"{url}/{ident}", token=TOKEN)
            assert status == 200
            assert states_between(daemon, "web-sla", t0, t1) == before

    def test_write_endpoints_are_refused_without_a_configured_token(
        self, tmp_path: Path, target: WebTarget
    ) -> None:
        """No monitor.api_token: every write is refused with 403 and says how to enable it."""
        port = free_port()
        config = write_config(
            tmp_path,
            port,
            [http_target("api", target.url("svc"))],
            [{"name": "web", "targets": ["api"]}],
            [sla("web-sla", "web")],
            token_file=False,
        )
        with running_daemon(config, port) as daemon:
            status, body = request("POST", daemon.base + "/api/v1/exclusions", {}, token="anything")
            assert status == 403
            assert "monitor.api_token" in body


class TestCanary:
    @pytest.mark.calendar
    def test_buckets_where_every_canary_fails_are_excluded_as_customer_network(
        self, tmp_path: Path, target: WebTarget
    ) -> None:
        """With the canary failing as well as the vendor target, the buckets are the
        customer's network (exclusion iii), not vendor downtime."""
        target.set("svc", "status")
        target.set("canary", "status")
        port = free_port()
        canary = {**http_target("canary", target.url("canary")), "role": "canary"}
        config = write_config(
            tmp_path,
            port,
            [http_target("api", target.url("svc")), canary],
            [{"name": "web", "targets": ["api"]}],
            [sla("web-sla", "web")],
        )
        with running_daemon(config, port) as daemon:
            t0 = time.time() + BUCKET
            time.sleep(3 * BUCKET)
            t1 = time.time() - BUCKET
            states = states_between(daemon, "web-sla", t0, t1)
            assert states
            assert set(states) == {"excluded"}
            assert daemon.metric("slawatch_monitor_network_up") == 0.0
            assert daemon.metric("slawatch_sla_breached", sla="web-sla") == 0.0


def _tally_rows(db: Path) -> list[tuple[tuple[str, int], int, int]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT target, bucket_start, ok, failed FROM tallies").fetchall()
    finally:
        conn.close()
    return [((t, s), ok, failed) for t, s, ok, failed in rows]
