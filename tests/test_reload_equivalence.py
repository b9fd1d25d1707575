"""Issue 20: a reloaded daemon equals one started fresh with the new configuration.

``Accounting.replace_inputs`` keeps the running months of the SLAs a reload leaves standing
(found by identity, their windows carried when the windows' sources did not move, the target
index built in the reload's worker thread) and drops the others. Whatever the reload changes,
every SLA's current and previous month must then be what a daemon built from the new file
over the same results computes.

The daemons run in process over a fixed clock; results are fed through the daemon's own
result path (no probe runs), so nothing depends on the date the tests run.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.clock import FixedClock
from monitor.config import load_config
from monitor.instants import utc_from_epoch
from monitor.runtime.daemon import Daemon
from monitor.sla.month import MonthResult
from probes.result import Outcome, ProbeResult

pytestmark = pytest.mark.timeout(300)

T0 = datetime(2026, 12, 2, 10, 2, 17, tzinfo=UTC).timestamp()
"""A fixed instant: 1 day 10 hours into December (UTC), November over."""

TARGETS = ("a1", "a2", "b1", "b2", "c1")
"""The targets fed results; a2 is a canary throughout."""

CHANGES = (
    "objective",  # la's objective (a changed SLA)
    "drop_lc",  # an SLA removed
    "add_le",  # an SLA added (over a service already measured)
    "sa_targets",  # a service's targets change (every SLA over it, nested ones too)
    "window",  # a configuration exclusion window added (every month's windows move)
    "zone",  # ld's time zone (other months, other buckets)
    "canary",  # a second canary, k2 (every month's canaries move)
)
# Each change leaves what a result counts into the same before and after it: every fed target
# stays measured at the same bucket lengths (lz keeps c1's 15-minute buckets when lc goes,
# le measures sb at lb's length), and the canary added never fails. A result is counted into
# the buckets measuring it when it arrives, so a change that measured a target anew could not
# equal a fresh start fed the same results (the reloaded daemon never counted them there).

FEE = '\n    monthly_fee: "50"\n    currency: GBP'


def config_text(state: Path, changes: frozenset[str]) -> str:
    """The base configuration with ``changes`` (names from ``CHANGES``) applied."""
    sa = "[a1, b1]" if "sa_targets" in changes else "[a1]"
    objective = "99.95" if "objective" in changes else "99.9"
    zone = "Europe/Berlin" if "zone" in changes else "America/New_York"
    names = [*TARGETS, "k2"] if "canary" in changes else list(TARGETS)
    targets = "\n".join(
        f"  - name: {name}\n    kind: http\n    interval: 30s\n    timeout: 5s\n"
        f'    http: {{url: "http://127.0.0.1:9/{name}"}}'
        + ("\n    role: canary" if name in ("a2", "k2") else "")
        for name in names
    )
    slas = [
        f"""  - name: la
    service: sa
    objective: {objective}
    monthly_fee: "1000.00"
    currency: EUR
    credit_tiers:
      - {{below: 99.9, credit_percent: 10}}""",
        """  - name: lb
    service: sb
    objective: 99.5
    timezone: Europe/London
    unknown_buckets: unavailable
    monthly_fee: "200"
    currency: USD""",
        f"""  - name: ld
    service: sd
    objective: 95
    timezone: {zone}
    monthly_fee: "10"
    currency: EUR""",
        "  - name: lz\n    service: sc\n    objective: 99.5\n    bucket: 15m" + FEE,
    ]
    if "drop_lc" not in changes:
        slas.append("  - name: lc\n    service: sc\n    objective: 99.0\n    bucket: 15m" + FEE)
    if "add_le" in changes:
        slas.append("  - name: le\n    service: sb\n    objective: 99.9" + FEE)
    window = (
        """
exclusions:
  - id: mw1
    kind: scheduled_maintenance
    start: 2026-12-02T06:00:00Z
    end: 2026-12-02T07:00:00Z
    reason: core switch upgrade
    services: [sb]
"""
        if "window" in changes
        else "\n"
    )
    return f"""monitor:
  name: reload-test
  state_dir: {state}
targets:
{targets}
services:
  - {{name: sa, targets: {sa}}}
  - {{name: sb, targets: [b1, b2], down_when: quorum, quorum: 2}}
  - {{name: sc, targets: [c1]}}
  - {{name: sd, targets: [a1], services: [sb], down_when: all}}
slas:
{chr(10).join(slas)}{window}"""


def write(root: Path, changes: frozenset[str]) -> Path:
    path = root / "slawatch.yaml"
    path.write_text(config_text(root / "var", changes), encoding="utf-8")
    return path


Feed = list[tuple[str, float, bool]]
"""(target, seconds before T0, up) in the order fed."""


def feed(daemon: Daemon, results: Feed) -> None:
    """Feed ``results`` through the daemon's own result path; the canary a2 never fails.

    A failure counts as excused when every canary was failing at its instant, decided when it
    is recorded under the canaries of that moment: a daemon that had k2 as a (never failing)
    canary then did not excuse what one without k2 excuses. That is history, not the reload:
    so the canaries change here, but no canary failure is fed."""
    for target, age, ok in results:
        ok = ok or target == "a2"
        scheduled = daemon.scheduler.targets[target]
        at = T0 - age
        daemon._on_result(
            scheduled,
            ProbeResult(
                target,
                Outcome.UP if ok else Outcome.DOWN,
                at,
                duration_seconds=0.01,
                reason="" if ok else "status_code_503",
            ),
        )


def started(path: Path, clock: FixedClock) -> Daemon:
    daemon = Daemon(load_config(path), path, clock=clock)
    daemon.scheduler.apply(daemon._schedule(), now=clock())
    return daemon


def months(daemon: Daemon) -> dict[tuple[str, str], MonthResult]:
    """Every SLA's current and previous month as of the daemon's clock."""
    moment = utc_from_epoch(daemon.clock())
    out: dict[tuple[str, str], MonthResult] = {}
    for policy in daemon.accounting.inputs.policies:
        current = daemon.accounting.month_result(policy, moment)
        previous = daemon.accounting.month_result(policy, moment, current.month.previous())
        out[(policy.name, str(current.month))] = current
        out[(policy.name, str(previous.month))] = previous
    return out


results_fed = st.lists(
    st.tuples(
        st.sampled_from(TARGETS),
        st.floats(min_value=1, max_value=40 * 3600, allow_nan=False),
        st.booleans(),
    ),
    max_size=40,
)
change_sets = st.frozensets(st.sampled_from(CHANGES))


class TestReloadEqualsAFreshStart:
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        before=results_fed,
        steps=st.lists(st.tuples(change_sets, results_fed), min_size=1, max_size=3),
    )
    def test_months_after_reloads_equal_a_fresh_daemon(
        self,
        tmp_path_factory: pytest.TempPathFactory,
        before: Feed,
        steps: list[tuple[frozenset[str], Feed]],
    ) -> None:
        """After results, the months asked (so held as running state), then one or more
        reloads as SIGHUP does them (read in a worker thread, applied on the loop), each
        followed by more results: every SLA's current and previous month equals that of a
        daemon started with the last file and fed the same results, and the months kept by
        the reload are the very objects held before it."""

        async def run() -> None:
            root = tmp_path_factory.mktemp("reload")
            clock = FixedClock(T0)
            reloaded = started(write(root, frozenset()), clock)
            feed(reloaded, before)
            months(reloaded)
            fed = list(before)
            for changes, after in steps:
                held = dict(reloaded.accounting._running)
                path = write(root, changes)
                loaded = await asyncio.to_thread(reloaded.read_config, path)
                assert reloaded.reload(loaded)
                assert reloaded._background == []  # nothing left memory: no store read
                for key, running in reloaded.accounting._running.items():
                    if key in held:
                        assert running is held[key]
                feed(reloaded, after)
                fed += after
                fresh_root = tmp_path_factory.mktemp("fresh")
                fresh = started(write(fresh_root, changes), clock)
                feed(fresh, fed)
                assert months(reloaded) == months(fresh)

        asyncio.run(run())

    def test_an_unchanged_sla_keeps_its_months_a_changed_one_does_not(self, tmp_path: Path) -> None:
        """A reload that changes one SLA's objective keeps every other SLA's running months
        (the same objects) and rebuilds only that SLA's."""

        async def run() -> None:
            clock = FixedClock(T0)
            daemon = started(write(tmp_path, frozenset()), clock)
            feed(daemon, [(t, age, age % 7 > 1) for t in TARGETS for age in range(60, 7200, 300)])
            months(daemon)
            held = dict(daemon.accounting._running)
            loaded = await asyncio.to_thread(
                daemon.read_config, write(tmp_path, frozenset({"objective"}))
            )
            assert daemon.accounting.rebuilt_by(daemon._inputs_of(loaded)) == [
                loaded.sla_policies()[0]
            ]
            assert daemon.reload(loaded)
            assert {name for name, _ in daemon.accounting._running} == {"lb", "lc", "ld", "lz"}
            for key, running in daemon.accounting._running.items():
                assert running is held[key]

        asyncio.run(run())
