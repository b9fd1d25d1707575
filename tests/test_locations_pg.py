"""Three locations on one real PostgreSQL, real daemons (issue 14).

Three ``slawatch run`` processes, each with its own configuration (``monitor.location`` dublin,
frankfurt, paris), share one PostgreSQL schema. They probe the "same" target ``site``: each
location's configuration points it at its own path of one loopback web server, so the test
decides per location whether the vendor answers. The SLA reads ``locations: {down_when:
quorum, quorum: 2, of: [dublin, frankfurt, paris]}``, with 5-second buckets and 1-second probes.

Checked, in one run (to keep CI time modest):

1. an outage seen from dublin and frankfurt is unavailable, its outage names both locations;
2. an outage seen from paris alone leaves its buckets available;
3. every daemon's ``/api/v1/report`` gives the same month figures and outages;
4. exactly one daemon exports ``slawatch_accountant 1`` and the SLA's contract series (so the
   shipped rules, which alert per instance on ``slawatch_service_up == 0``, page once: during
   the 2-of-3 outage only the accountant's ``slawatch_service_up`` exists, and reads 0); after
   a SIGKILL of it another takes over within ``FAILOVER`` seconds;
5. with that location dead, a failure seen from one remaining location is unknown (one
   failure plus one unheard location reach the quorum of 2), never available or unavailable.

The month semantics at fixed instants (quorum, unheard, canaries, gaps) are in
tests/test_sla_quorum.py; this test is about real processes agreeing and failing over.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import pg_cluster
from tests.daemon_harness import DaemonProcess, free_port, wait_until
from tests.test_daemon import BUCKET, http_target, midday_zone, sla, states_between
from tests.web_target import WebTarget, web_target

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

LOCATIONS = ("dublin", "frankfurt", "paris")
FAILOVER = 10.0
"""Seconds within which another daemon becomes the accountant after the holder is killed:
the server frees the lock when the killed process's connection closes, and every daemon tries
at each flush (every second)."""

# Figures of a month that do not depend on the instant a daemon is asked (its ``as_of``,
# pending buckets and month-to-date figures do).
SAME = (
    "buckets_unavailable",
    "uptime_ratio_exact",
    "uptime_percent",
    "credit_amount",
    "error_budget_used",
    "outages",
)


def _config(directory: Path, location: str, target: WebTarget, zone: str) -> tuple[Path, int]:
    port = free_port()
    rule = {"down_when": "quorum", "quorum": 2, "of": list(LOCATIONS)}
    config = {
        "monitor": {
            "name": f"member-{location}",
            "location": location,
            "state_dir": str(directory / "state"),
            "listen": f"127.0.0.1:{port}",
            "allow_short_buckets": True,
            "store": {
                "backend": "postgresql",
                "dsn": {"env": "SLAWATCH_PG_DSN"},
                "connect_timeout": "2s",
                "statement_timeout": "5s",
            },
        },
        "targets": [http_target("site", target.url(location))],
        "services": [{"name": "web", "targets": ["site"]}],
        "slas": [{**sla("vendor-web", "web", timezone=zone), "locations": rule}],
    }
    directory.mkdir()
    path = directory / "slawatch.yaml"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path, port


@pytest.fixture
def target() -> Iterator[WebTarget]:
    with web_target() as t:
        yield t


def _fail_from(target: WebTarget, failing: set[str]) -> None:
    for location in LOCATIONS:
        target.set(location, "status" if location in failing else "up")


def _next_bucket(offset: float = 0.3) -> float:
    """Sleep until ``offset`` seconds into the next bucket; return that bucket's start."""
    now = time.time()
    start = (now // BUCKET + 1) * BUCKET
    time.sleep(start + offset - now)
    return start


def _accountants(daemons: dict[str, DaemonProcess]) -> list[str]:
    return [name for name, d in daemons.items() if d.metric("slawatch_accountant") == 1.0]


def _figures(daemon: DaemonProcess) -> dict[str, Any]:
    [report] = daemon.json("/api/v1/report?format=json")["reports"]
    return {key: report[key] for key in SAME}


class TestThreeLocations:
    def test_quorum_agreement_and_failover(self, tmp_path: Path, target: WebTarget) -> None:
        """Seen by 2 of 3: unavailable; by 1: available; identical figures on every daemon;
        one accountant, replaced after a SIGKILL; a dead location makes one failure unknown."""
        dsn = pg_cluster.cluster().schema_dsn(pg_cluster.schema_for(tmp_path))
        zone = midday_zone()
        _fail_from(target, set())
        daemons: dict[str, DaemonProcess] = {}
        with ExitStack() as stack:
            for location in LOCATIONS:
                path, port = _config(tmp_path / location, location, target, zone)
                daemon = DaemonProcess(
                    path, port, path.parent / "daemon.log", {"SLAWATCH_PG_DSN": dsn}
                )
                stack.callback(daemon.stop)
                daemons[location] = daemon
            for daemon in daemons.values():
                daemon.wait_ready(30)

            # 4. exactly one accountant; only it exports the SLA's contract series.
            [holder] = wait_until(
                lambda: (lambda found: found if len(found) == 1 else None)(_accountants(daemons)),
                15,
                "exactly one accountant",
            )
            for name, daemon in daemons.items():
                ratio = daemon.metric("slawatch_month_uptime_ratio", sla="vendor-web")
                assert (ratio is not None) == (name == holder), (name, holder, ratio)

            # 1. dublin and frankfurt see two whole buckets fail.
            _next_bucket()
            first = _next_bucket()
            _fail_from(target, {"dublin", "frankfurt"})
            # What pages (SlawatchServiceUnavailable: slawatch_service_up == 0 per instance)
            # comes from the accountant alone, with the quorum's verdict: one page, not three.
            wait_until(
                lambda: daemons[holder].metric("slawatch_service_up", sla="vendor-web") == 0.0,
                2 * BUCKET - 1,
                "the accountant's slawatch_service_up 0 during the 2-of-3 outage",
            )
            for name, daemon in daemons.items():
                if name != holder:
                    assert daemon.metric("slawatch_service_up", sla="vendor-web") is None, name
            time.sleep(max(0.0, first + 2 * BUCKET + 0.3 - time.time()))
            _fail_from(target, set())
            # 2. paris alone sees the next two whole buckets fail.
            lone = _next_bucket()
            _fail_from(target, {"paris"})
            time.sleep(2 * BUCKET)
            _fail_from(target, set())
            _next_bucket()
            time.sleep(BUCKET)  # the last of them closes, settles, is read by every daemon

            for name, daemon in daemons.items():
                both = states_between(daemon, "vendor-web", first, first + BUCKET)
                assert both == ["unavailable", "unavailable"], (name, both)
                alone = states_between(daemon, "vendor-web", lone, lone + BUCKET)
                assert alone == ["available", "available"], (name, alone)
            # 3. the same month on every daemon, outages naming the locations that saw them.
            figures = wait_until(
                lambda: (lambda seen: seen if all(f == seen[0] for f in seen) else None)(
                    [_figures(d) for d in daemons.values()]
                ),
                10,
                "identical month figures on every daemon",
            )
            # The verdicts every daemon stored are those of the month it shows (row 31).
            with psycopg.connect(dsn) as conn:
                stored = conn.execute(
                    "SELECT vantage, location, bucket_start, state FROM service_buckets "
                    "WHERE bucket_start IN (%s, %s, %s, %s) ORDER BY 1, 3",
                    (int(first), int(first) + BUCKET, int(lone), int(lone) + BUCKET),
                ).fetchall()
            expected = ["unavailable", "unavailable", "available", "available"]
            for location in LOCATIONS:
                mine = [r for r in stored if r[1] == location]
                assert [r[3] for r in mine] == expected, (location, stored)
            outages = figures[0]["outages"]
            assert [o["locations"] for o in outages] == [["dublin", "frankfurt"]], outages
            assert figures[0]["buckets_unavailable"] >= 2

            # 4. SIGKILL the accountant: another takes over within FAILOVER seconds.
            daemons[holder].signal(signal.SIGKILL)
            daemons[holder].proc.wait(10)
            killed_at = time.monotonic()
            survivors = {n: d for n, d in daemons.items() if n != holder}
            [successor] = wait_until(
                lambda: (lambda found: found if len(found) == 1 else None)(_accountants(survivors)),
                FAILOVER,
                "another accountant after the SIGKILL",
                every=0.5,
            )
            assert time.monotonic() - killed_at <= FAILOVER
            assert successor != holder

            # 5. the dead location is unheard: a failure seen by one survivor is unknown; a
            # bucket both survivors see available stays available.
            seen_by = min(survivors)
            _next_bucket()
            dead = _next_bucket()
            _fail_from(target, {seen_by})
            time.sleep(2 * BUCKET)
            _fail_from(target, set())
            _next_bucket()
            calm = _next_bucket()
            time.sleep(BUCKET + 2)
            for name, daemon in survivors.items():
                states = states_between(daemon, "vendor-web", dead, dead + BUCKET)
                assert states == ["unknown", "unknown"], (name, states)
                [after] = states_between(daemon, "vendor-web", calm, calm)
                assert after == "available", (name, after)
