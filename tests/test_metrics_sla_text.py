"""The per-SLA families written as cached text (monitor.metrics.sla_text): valid exposition,
the figures of the one month assembly, and every change on the next scrape.

A daemon is built in process over a fixed clock (no probe runs; results are fed through its
own result path), so nothing depends on the date the tests run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from monitor.clock import FixedClock
from monitor.config import load_config
from monitor.instants import utc_from_epoch
from monitor.metrics import collector
from monitor.metrics.collector import TARGETS_WARMING, MetricsExposition
from monitor.metrics.contract import ContractCollector
from monitor.metrics.sla_text import (
    _SCRAPE_ONLY,
    SLA_FAMILY_NAMES,
    WARMING,
    SlaFamilies,
    _count_text,
    _month_lines,
    _ratio,
    _SlaText,
    _written_month_lines,
    instant_service_state,
    outage_open,
    provisional_bucket_state,
)
from monitor.metrics.text import label_value as _label_value
from monitor.metrics.text import num
from monitor.runtime.claims import Claim
from monitor.runtime.daemon import Daemon
from monitor.sla.calendar import Month
from monitor.sla.month import MonthResult
from monitor.sla.policy import BucketState, ExclusionKind, ExclusionWindow
from probes.result import Outcome, ProbeResult
from tests.strategies import harness_exclusions, harness_steps

pytestmark = pytest.mark.timeout(300)

T0 = datetime(2026, 12, 2, 10, 2, 17, tzinfo=UTC).timestamp()
"""A fixed instant: 1 day 10 hours into December (UTC), November over."""

CONFIG = """
monitor:
  name: text-test
  state_dir: {state}
targets:
  - {{name: a1, kind: http, interval: 30s, timeout: 5s, http: {{url: "http://127.0.0.1:9/a1"}}}}
  - {{name: b1, kind: http, interval: 30s, timeout: 5s, http: {{url: "http://127.0.0.1:9/b1"}}}}
  - {{name: b2, kind: http, interval: 60s, timeout: 5s, http: {{url: "http://127.0.0.1:9/b2"}}}}
  - {{name: c1, kind: tcp, interval: 30s, timeout: 5s, tcp: {{host: 127.0.0.1, port: 9}}}}
services:
  - {{name: sa, targets: [a1]}}
  - {{name: sb, targets: [b1, b2], down_when: quorum, quorum: 2}}
  - {{name: sc, targets: [c1]}}
  - {{name: sd, targets: [a1], services: [sb], down_when: all}}
slas:
  - name: la
    service: sa
    objective: {objective}
    monthly_fee: "1000.00"
    currency: EUR
    credit_tiers:
      - {{below: 99.9, at_least: 99.0, credit_percent: 10}}
      - {{below: 99.0, credit_percent: 30}}
  - name: lb
    service: sb
    objective: 99.5
    timezone: Europe/London
    unknown_buckets: unavailable
    monthly_fee: "200"
    currency: USD
    credit_tiers:
      - {{below: 99.5, credit_percent: 25}}
  - name: lc
    service: sc
    objective: 99.0
    bucket: 15m
    monthly_fee: "50"
    currency: GBP
  - name: ld
    service: sd
    objective: 95
    timezone: America/New_York
    monthly_fee: "10"
    currency: EUR
exclusions:
  - id: mw1
    kind: scheduled_maintenance
    start: 2026-12-01T02:00:00Z
    end: 2026-12-01T03:00:00Z
    reason: core switch upgrade
    services: [sb]
"""


def write_config(root: Path, objective: str = "99.9") -> Path:
    path = root / "slawatch.yaml"
    path.write_text(CONFIG.format(state=root / "var", objective=objective), encoding="utf-8")
    return path


def result(target: str, at: float, ok: bool) -> ProbeResult:
    return ProbeResult(
        target,
        Outcome.UP if ok else Outcome.DOWN,
        at,
        duration_seconds=0.01,
        reason="" if ok else "status_code_503",
    )


class Harness:
    """A daemon over a fixed clock with its store open, fed results through its own path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = write_config(root)
        self.clock = FixedClock(T0)
        self.daemon = Daemon(load_config(self.path), self.path, clock=self.clock)
        self.daemon.scheduler.apply(self.daemon._schedule(), now=T0)

    def feed(self, target: str, at: float, ok: bool) -> None:
        scheduled = self.daemon.scheduler.targets[target]
        self.daemon._on_result(scheduled, result(target, at, ok))

    def play(self, event: tuple[Any, ...]) -> bool:
        """Play a drawn ``("result", target, ok, age)`` (a result ``age`` seconds before the
        clock) or ``("advance", seconds)`` (tests/strategies.py's ``harness_steps``); False
        if ``event`` is neither (a step of the test's own)."""
        if event[0] == "result":
            _, target, ok, age = event
            self.feed(target, self.clock() - age, ok)
        elif event[0] == "advance":
            self.clock.advance(event[1])
        else:
            return False
        return True

    async def exclude(self, ident: str, service: str, *, before: float = 3600.0) -> None:
        """A carrier's window over ``service`` from ``before`` seconds ago to 10 minutes
        ahead, added through the daemon as the API adds it."""
        now = self.clock()
        await self.daemon.add_exclusion(
            ExclusionWindow(
                id=ident,
                start=utc_from_epoch(now - before),
                end=utc_from_epoch(now + 600),
                kind=ExclusionKind.TELECOM_PROVIDER,
                reason="carrier outage",
                services=frozenset({service}),
                source="api",
            )
        )

    def history(self, hours: float) -> None:
        """Every target probed every 5 minutes (c1: 15) for ``hours`` before now and once 5 s
        ago; a1 down for the last 12 minutes (an outage running), b2 down one early bucket."""
        start = T0 - hours * 3600
        for target in ("a1", "b1", "b2", "c1"):
            at = start
            while at < T0:
                ok = not (
                    (target == "a1" and at > T0 - 720)
                    or (target == "b2" and T0 - 3 * 3600 <= at < T0 - 3 * 3600 + 300)
                )
                self.feed(target, at, ok)
                at += 300 if target != "c1" else 900
            # The last probe, inside the running bucket and fresh.
            self.feed(target, T0 - 5, target != "a1")


async def scrape(exposition: MetricsExposition) -> str:
    return (await exposition.render()).decode("utf-8")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """(sample name, labels) -> value, through prometheus_client's own parser."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, f"sample written twice: {key}"
            found[key] = sample.value
    return found


def check_layout(text: str) -> None:
    """Every family: HELP and TYPE once, right before its samples, which are contiguous."""
    seen: list[str] = []
    current = None
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in seen, f"family {name} written twice"
            assert lines[number + 1].startswith(f"# TYPE {name} "), name
            seen.append(name)
            current = name
        elif line.startswith("# TYPE "):
            assert line.split(" ")[2] == current
        else:
            metric = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            assert metric is not None, line
            name = metric.group(0)
            assert current is not None, line
            assert name.startswith(current), f"sample {name} outside its family (in {current})"
    assert text.endswith("\n")


def expected(daemon: Daemon) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every per-SLA sample the scrape must hold, from the one month assembly
    (``Accounting.month_result``) and the live state, written out independently of the
    renderer."""
    now = daemon.clock()
    moment = utc_from_epoch(now)
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    def put(name: str, labels: dict[str, str], value: float | None) -> None:
        if value is not None:
            out[(name, frozenset(labels.items()))] = float(value)

    def ratio(value: Any) -> float | None:
        return None if value is None else float(value / 100)

    services = daemon.accounting.inputs.services
    kinds = {t.name: t.kind for t in daemon.config.targets}
    for service in services.values():
        for target in service.all_targets:
            put(
                "slawatch_target_info",
                {"target": target, "service": service.name, "kind": kinds[target]},
                1.0,
            )
    for policy in daemon.accounting.inputs.policies:
        labels = {"sla": policy.name, "service": policy.service}
        service = services[policy.service]
        result: MonthResult = daemon.accounting.month_result(policy, moment)
        previous = daemon.accounting.month_result(policy, moment, result.month.previous())
        up = instant_service_state(daemon, service, now)
        put(
            "slawatch_service_up",
            labels,
            {BucketState.AVAILABLE: 1.0, BucketState.UNAVAILABLE: 0.0}.get(up),
        )
        current = provisional_bucket_state(daemon, policy, service, now)
        for state in BucketState:
            if state is not BucketState.PENDING:
                put(
                    "slawatch_bucket_state",
                    {**labels, "state": state.value},
                    1.0 if state is current else 0.0,
                )
        for state_name, count in (
            ("available", result.buckets_available),
            ("unavailable", result.buckets_unavailable),
            ("excluded", result.buckets_excluded),
            ("unknown", result.buckets_unknown),
            ("pending", result.buckets_pending),
        ):
            put("slawatch_month_buckets", {**labels, "state": state_name}, count)
        put("slawatch_month_uptime_ratio", labels, ratio(result.uptime_percent))
        put(
            "slawatch_month_uptime_worst_case_ratio",
            labels,
            ratio(result.uptime_percent_worst_case),
        )
        put(
            "slawatch_month_to_date_uptime_ratio",
            labels,
            ratio(result.month_to_date_uptime_percent),
        )
        put(
            "slawatch_month_coverage_ratio",
            labels,
            None if result.coverage is None else float(result.coverage),
        )
        put("slawatch_month_uptime_estimate_ratio", labels, ratio(result.uptime_percent_estimate))
        put("slawatch_month_monitor_error_buckets", labels, result.buckets_unknown_monitor_error)
        put("slawatch_sla_objective_ratio", labels, float(policy.objective_percent) / 100)
        put("slawatch_sla_min_coverage_ratio", labels, float(policy.min_coverage))
        put("slawatch_sla_breached", labels, 1.0 if result.breached else 0.0)
        put("slawatch_error_budget_buckets", labels, result.error_budget_buckets)
        put("slawatch_error_budget_remaining_buckets", labels, result.error_budget_remaining)
        put("slawatch_credit_projected_ratio", labels, float(result.credit_percent) / 100)
        put(
            "slawatch_credit_projected_amount",
            {**labels, "currency": result.currency},
            float(result.credit_amount),
        )
        put(
            "slawatch_credit_next_tier_buckets",
            labels,
            None if result.buckets_to_next_tier is None else result.buckets_to_next_tier,
        )
        put(
            "slawatch_claim_deadline_timestamp_seconds",
            labels,
            result.claim_deadline.timestamp(),
        )
        put("slawatch_outage_open", labels, 1.0 if outage_open(result, moment) else 0.0)
        put(
            "slawatch_previous_month_credit_amount",
            {**labels, "currency": previous.currency},
            float(previous.credit_amount),
        )
        put(
            "slawatch_previous_month_claim_deadline_timestamp_seconds",
            labels,
            previous.claim_deadline.timestamp(),
        )
        filed = daemon.claims.get(f"{policy.name}|{previous.month}") is not None
        put("slawatch_claim_filed", labels, 1.0 if filed else 0.0)
    return out


def per_sla(found: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> dict[Any, float]:
    """The samples of the families the text renderer writes."""
    return {key: value for key, value in found.items() if key[0] in SLA_FAMILY_NAMES}


def assert_matches(daemon: Daemon, text: str) -> dict[Any, float]:
    check_layout(text)
    found = per_sla(samples(text))
    assert found == expected(daemon)
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


class TestSlaText:
    def test_scrape_is_valid_and_holds_the_month_figures(self, tmp_path: Path) -> None:
        """Four SLAs in different states (an outage running, an exclusion, a quorum, a
        nested service, a 15-minute bucket, three zones, a target never probed): the
        exposition parses, each family is written once and contiguously, and every per-SLA
        sample equals the figures of ``accounting.month_result`` and the live state."""

        async def run() -> None:
            h = Harness(tmp_path)
            h.history(30)
            exposition = MetricsExposition(h.daemon, extra=[ContractCollector(h.daemon)])
            found = assert_matches(h.daemon, await scrape(exposition))
            # The states the scenario was built to show are there.
            assert value(found, "slawatch_outage_open", sla="la", service="sa") == 1.0
            assert value(found, "slawatch_service_up", sla="la", service="sa") == 0.0
            assert (
                value(found, "slawatch_month_buckets", sla="lb", service="sb", state="excluded")
                == 12.0
            )
            assert (
                value(
                    found,
                    "slawatch_credit_projected_amount",
                    sla="la",
                    service="sa",
                    currency="EUR",
                )
                is not None
            )
            # A second scrape (everything cached) writes the same bytes.
            assert await scrape(exposition) == await scrape(exposition)

        asyncio.run(run())

    def test_changes_show_on_the_next_scrape(self, tmp_path: Path) -> None:
        """New result in the running bucket, a bucket closing, a late result, an exclusion
        added through the API, a claim recorded, a result going stale and a reload that
        changes the objective: each shows on the very next scrape, equal to the figures."""

        async def run() -> None:
            h = Harness(tmp_path)
            await h.daemon.store.open()
            try:
                h.history(6)
                d = h.daemon
                exposition = MetricsExposition(d, extra=[ContractCollector(d)])
                la = {"sla": "la", "service": "sa"}
                before = assert_matches(d, await scrape(exposition))

                # a1 back up in the running bucket: service up, bucket state still unavailable
                # (the bucket already holds a failure under any_failed).
                h.feed("a1", T0 - 1, True)
                found = assert_matches(d, await scrape(exposition))
                assert value(found, "slawatch_service_up", **la) == 1.0

                # The running bucket closes: one more unavailable bucket, one fewer pending.
                h.clock.advance(300)
                found = assert_matches(d, await scrape(exposition))
                key = {**la, "state": "unavailable"}
                assert value(found, "slawatch_month_buckets", **key) == 1 + (
                    value(before, "slawatch_month_buckets", **key) or 0
                )

                # A late result in a closed bucket of c1 (15-minute SLA) turns it unavailable.
                h.feed("c1", T0 - 2 * 3600 + 10, False)
                found = assert_matches(d, await scrape(exposition))
                assert (
                    value(
                        found, "slawatch_month_buckets", sla="lc", service="sc", state="unavailable"
                    )
                    == 1.0
                )

                # An exclusion over the outage, added through the API.
                await d.add_exclusion(
                    ExclusionWindow(
                        id="carrier-1",
                        start=utc_from_epoch(T0 - 3600),
                        end=utc_from_epoch(T0 + 600),
                        kind=ExclusionKind.TELECOM_PROVIDER,
                        reason="carrier outage",
                        services=frozenset({"sa"}),
                        source="api",
                    )
                )
                found = assert_matches(d, await scrape(exposition))
                assert value(found, "slawatch_month_buckets", **key) == 0.0
                assert value(found, "slawatch_outage_open", **la) == 0.0

                # A claim for November recorded.
                await d.record_claim(Claim("la", Month(2026, 11), utc_from_epoch(h.clock()), "T-1"))
                found = assert_matches(d, await scrape(exposition))
                assert value(found, "slawatch_claim_filed", **la) == 1.0

                # Nothing probed for 2 intervals + timeout: the service is no longer known up.
                h.clock.advance(70)
                found = assert_matches(d, await scrape(exposition))
                assert value(found, "slawatch_service_up", **la) is None

                # A reload that changes the objective.
                write_config(tmp_path, objective="99.95")
                assert d.reload()
                found = assert_matches(d, await scrape(exposition))
                assert value(found, "slawatch_sla_objective_ratio", **la) == pytest.approx(0.9995)
            finally:
                await h.daemon.store.close()

        asyncio.run(run())

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        st.lists(
            harness_steps(
                st.tuples(st.just("scrape")),
                st.tuples(st.just("refresh")),
                harness_exclusions,
                st.tuples(st.just("unexclude")),
                st.tuples(st.just("claim"), st.sampled_from(["la", "lb", "lc", "ld"])),
                st.tuples(st.just("reload"), st.sampled_from(["99.9", "99.95", "99.99"])),
            ),
            max_size=30,
        )
    )
    def test_cached_text_equals_a_fresh_rendering(
        self, tmp_path_factory: pytest.TempPathFactory, events: list[tuple[Any, ...]]
    ) -> None:
        """After any sequence of results (late ones included), time passing, exclusions added
        and removed through the API, claims recorded, reloads, the daemon's refresh after its
        summary and scrapes, the renderer fed by changes writes exactly what a renderer
        without a cache writes, and every per-SLA sample equals the month's figures: every
        kind of change shows on the next scrape."""

        async def run() -> None:
            root = tmp_path_factory.mktemp("sla-text")
            h = Harness(root)
            d = h.daemon
            await d.store.open()
            try:
                exposition = MetricsExposition(d, extra=[ContractCollector(d)])
                cached = SlaFamilies(d)
                targets = collector.TargetFamilies(d)  # ps32: the per-target text too
                added: list[str] = []
                for event in [*events, ("scrape",)]:
                    if h.play(event):
                        continue
                    if event[0] == "refresh":
                        await d._summarise()  # starts the exposition's refresh after it
                        await cached.refresh()
                        await exposition.settled()
                    elif event[0] == "exclude":
                        ident = f"x{len(added)}"
                        await h.exclude(ident, event[1])
                        added.append(ident)
                    elif event[0] == "unexclude":
                        if added:
                            assert await d.delete_exclusion(added.pop())
                    elif event[0] == "claim":
                        await d.record_claim(
                            Claim(event[1], Month(2026, 11), utc_from_epoch(h.clock()), "T-1")
                        )
                    elif event[0] == "reload":
                        write_config(root, objective=event[1])
                        assert d.reload()
                    else:
                        assert await cached.render() == await SlaFamilies(d).render()
                        assert await targets.render() == await collector.TargetFamilies(d).render()
                        assert_matches(d, await scrape(exposition))
            finally:
                await d.store.close()

        asyncio.run(run())


class TestChangeFeed:
    def test_a_scrape_evaluates_only_what_changed(self, tmp_path: Path) -> None:
        """After a scrape, a new result of a1 flags only the SLAs over a1 (la; ld through its
        nested service); a late result flags its SLA's month; nothing changed flags nothing;
        a bucket closing flags the SLAs of that bucket length; a result going stale flags
        its SLA at the instant it does; an exclusion flags every SLA. Each time the
        scrape equals the month's figures."""

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            await d.store.open()
            try:
                h.history(6)
                families = SlaFamilies(d)
                position = {p.name: i for i, p in enumerate(d.accounting.inputs.policies)}

                def flagged() -> set[str]:
                    families._collect(h.clock())
                    names = {n for n, i in position.items() if i in families._todo}
                    return names

                async def scrape_matches() -> None:
                    text = await families.render()
                    assert text == await SlaFamilies(d).render()
                    assert_matches(d, text)

                await scrape_matches()
                assert flagged() == set()

                h.feed("a1", h.clock() - 1, True)
                assert flagged() == {"la", "ld"}
                await scrape_matches()

                # A late result of c1 (15-minute buckets, two hours ago): its month moves.
                h.feed("c1", h.clock() - 2 * 3600 + 10, False)
                assert flagged() == {"lc"}
                assert families._todo[position["lc"]] & 1  # its month is asked again
                await scrape_matches()

                # Time passes within the running bucket, no result goes stale: nothing.
                h.clock.advance(3)
                assert flagged() == set()

                # b1's result of 5 s before T0 goes stale after 2 x 30 s + 5 s (b2 runs every
                # 60 s; c1's last result is the late one, stale already), a1's of 1 s before
                # T0 at T0 + 64: each SLA at that instant, not before.
                h.clock.seconds = T0 + 59.5
                assert flagged() == set()
                h.clock.seconds = T0 + 60.5
                assert flagged() == {"lb", "ld"}
                await scrape_matches()
                h.clock.seconds = T0 + 64.5
                assert flagged() == {"la", "ld"}
                await scrape_matches()

                # The running 5-minute bucket closes (T0 is 2 m 17 s into one): every SLA on
                # 5-minute buckets, not the 15-minute one (its bucket runs until 10:15).
                h.clock.seconds = T0 + 163
                assert flagged() == {"la", "lb", "ld"}
                await scrape_matches()
                assert flagged() == set()

                await h.exclude("carrier-1", "sa")
                assert flagged() == set(position)
                await scrape_matches()
                assert flagged() == set()
            finally:
                await d.store.close()

        asyncio.run(run())

    def test_the_daemon_summary_refreshes_the_text_before_the_scrape(self, tmp_path: Path) -> None:
        """After a bucket closes, the daemon's summary brings the per-SLA text up to date
        (``Daemon.summary_hooks``): the scrape after it has no SLA left to evaluate, and
        writes the figures of ``accounting.month_result``."""

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            h.history(6)
            exposition = MetricsExposition(d, extra=[ContractCollector(d)])
            assert_matches(d, await scrape(exposition))
            h.clock.advance(300)
            await d._summarise()  # starts the refresh in its own task
            await exposition.settled()
            families = exposition._slas
            families._collect(h.clock())
            # cpu26: only what the scrape evaluates anyway is left (a result gone stale
            # meanwhile flags its SLA's service-up line), never a month.
            assert all(not flags & ~_SCRAPE_ONLY for flags in families._todo.values())
            assert_matches(d, await scrape(exposition))

        asyncio.run(run())

    def test_the_refresh_leaves_new_results_to_the_scrape(self, tmp_path: Path) -> None:
        """cpu26: between two bucket closes the daemon's refresh (every second) does not
        evaluate the SLAs whose only change is a target's new result (their service-up and
        running-bucket lines): they stay flagged for the next scrape, which writes them from
        the latest results; a late result (its month moved) is still evaluated by the
        refresh. Each scrape equals a renderer without a cache and the month's figures."""

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            await d.store.open()
            try:
                h.history(6)
                families = SlaFamilies(d)
                position = {p.name: i for i, p in enumerate(d.accounting.inputs.policies)}
                await families.render()
                h.feed("a1", h.clock() - 1, False)
                await families.refresh()
                assert {n for n, i in position.items() if i in families._todo} == {"la", "ld"}
                text = await families.render()
                assert families._todo == {}
                assert text == await SlaFamilies(d).render()
                assert 'slawatch_service_up{service="sa",sla="la"} 0.0' in text
                assert_matches(d, text)
                # A late result of c1 moves lc's month: the refresh evaluates lc.
                h.feed("c1", h.clock() - 2 * 3600 + 10, False)
                await families.refresh()
                assert position["lc"] not in families._todo
                assert_matches(d, await families.render())
            finally:
                await d.store.close()

        asyncio.run(run())


class TestReadyAfterTheText:
    def test_ready_waits_for_every_sla_written_then_a_scrape_evaluates_only_what_changed(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """fs28 (issue 20): the daemon is not ready while ``/metrics``' per-SLA and
        per-target lines were never written (the first scrape after a start wrote them all:
        13-32 s at 10,000 SLAs); the refresh after the first summary writes them and the
        daemon is ready. A scrape after that evaluates only the SLAs over a target with a new
        result (la and ld over a1) and that target's lines, builds no month, and writes the
        figures of a renderer without a cache and of the month."""

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            h.history(6)
            d.serving(None)
            exposition = MetricsExposition(d, extra=[ContractCollector(d)])
            families = exposition._slas
            assert families.warming
            assert d.health.problems(h.clock()) == [f"building {WARMING}, {TARGETS_WARMING}"]
            await d._summarise()  # the first summary; its hook starts the refresh
            await exposition.settled()
            assert not families.warming
            assert not exposition._targets.warming
            assert d.health.problems(h.clock()) == []
            h.feed("a1", h.clock() - 1, True)
            evaluated: list[tuple[str, str]] = []
            months = 0
            month_result = d.accounting.month_result

            def counted_month(*args: Any, **kwargs: Any) -> MonthResult:
                nonlocal months
                months += 1
                return month_result(*args, **kwargs)

            def counting(kind: str) -> Any:
                original = getattr(_SlaText, kind)

                def wrapper(self: _SlaText, *args: Any, **kwargs: Any) -> str:
                    evaluated.append((kind, self.policy.name))
                    return original(self, *args, **kwargs)

                return wrapper

            monkeypatch.setattr(d.accounting, "month_result", counted_month)
            target_blocks = collector._target_blocks

            def counted_blocks(name: str, *args: Any) -> tuple[str, ...]:
                evaluated.append(("target", name))
                return target_blocks(name, *args)

            monkeypatch.setattr(collector, "_target_blocks", counted_blocks)
            for kind in ("set_result", "up_line", "bucket_lines", "outage_line", "claim_line"):
                monkeypatch.setattr(_SlaText, kind, counting(kind))
            text = await scrape(exposition)
            assert months == 0
            assert sorted(evaluated) == [
                ("bucket_lines", "la"),
                ("bucket_lines", "ld"),
                ("target", "a1"),
                ("up_line", "la"),
                ("up_line", "ld"),
            ]
            monkeypatch.undo()
            assert_matches(d, text)
            sla_text = await families.render()
            assert sla_text == await SlaFamilies(d).render()

        asyncio.run(run())

    def test_a_scrape_before_the_first_refresh_ends_the_wait(self, tmp_path: Path) -> None:
        """fs28: a scrape that came first (writing every SLA's lines itself) ends it too; a
        renderer that does not gate readiness (tests, benches) never adds to it."""

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            h.history(6)
            plain = SlaFamilies(d)
            assert not plain.warming
            assert d.health.warming == set()
            exposition = MetricsExposition(d, extra=[ContractCollector(d)])
            assert d.health.warming == {WARMING, TARGETS_WARMING}
            assert_matches(d, await scrape(exposition))
            assert d.health.warming == set()

        asyncio.run(run())


class TestReloadSoon:
    def test_sighup_path_reads_in_a_thread_then_applies_in_order(self, tmp_path: Path) -> None:
        """``Daemon.reload_soon`` (the SIGHUP handler): the file is read off the loop, then
        applied; a broken file after it is refused and the last good one stays; the next
        scrape shows the new objective."""

        async def run() -> None:
            h = Harness(tmp_path)
            d = h.daemon
            exposition = MetricsExposition(d, extra=[ContractCollector(d)])
            write_config(tmp_path, objective="99.95")
            first, second = asyncio.Event(), asyncio.Event()
            d.reload_soon(then=first.set)
            await asyncio.wait_for(first.wait(), 60)
            assert d.health.reload_successful
            assert str(d.accounting.policy("la").objective_percent) == "99.95"
            found = assert_matches(d, await scrape(exposition))
            assert value(
                found, "slawatch_sla_objective_ratio", sla="la", service="sa"
            ) == pytest.approx(0.9995)
            h.path.write_text("targets: [", encoding="utf-8")
            d.reload_soon(then=second.set)
            await asyncio.wait_for(second.wait(), 60)
            assert not d.health.reload_successful
            assert str(d.accounting.policy("la").objective_percent) == "99.95"

        asyncio.run(run())


class TestValueText:
    """c22 (issue 20): the shortcuts in writing a value are the values written before."""

    @given(st.integers(1, 10**7), st.data())
    def test_ratio_is_the_float_of_the_exact_quotient(
        self, denominator: int, data: st.DataObject
    ) -> None:
        """A percent's ratio is ``float(percent / 100)``, to the last bit, for any fraction."""
        percent = Fraction(data.draw(st.integers(0, 100 * denominator)), denominator)
        ratio = _ratio(percent)
        assert ratio is not None
        assert ratio.hex() == float(percent / 100).hex()
        assert _ratio(None) is None

    @given(st.lists(st.integers(0, 10**7), max_size=20))
    def test_a_count_is_written_as_any_number(self, counts: list[int]) -> None:
        """A remembered count's text is the text of that count, asked once or again."""
        for count in [*counts, *counts]:
            assert _count_text(count) == num(count)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["la", "lb", 'q"\\uote', "\x00mark"]),
                st.integers(0, 3),  # unavailable buckets
                st.sampled_from([Decimal("0"), Decimal("0.0"), Decimal("100.00")]),
                st.sampled_from(["EUR", "USD", 'x"\\', "a\x00b"]),
                st.sampled_from([None, Fraction(1, 3), Fraction(2, 3)]),
            ),
            min_size=1,
            max_size=12,
        )
    )
    def test_first_lines_from_the_last_written_are_the_results_own(
        self, tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[Any, ...]]
    ) -> None:
        """em30 (issue 20): an SLA's first month lines, taken from the lines the result
        written just before it (another SLA's) wrote when their figures are equal, are the
        lines its own result writes, for any sequence of equal and differing results (an SLA
        sharing another's lines and then failing once writes its own), whatever the names
        and currency hold (the template's label mark included)."""
        h = Harness(tmp_path_factory.mktemp("first-lines"))
        policy = h.daemon.accounting.policy("la")
        base = h.daemon.accounting.month_result(policy, utc_from_epoch(T0))
        for name, unavailable, amount, currency, coverage in steps:
            shown = dataclasses.replace(
                base,
                sla=name,
                buckets_unavailable=unavailable,
                error_budget_remaining=base.error_budget_buckets - unavailable,
                credit_amount=amount,
                currency=currency,
                coverage=coverage,
            )
            labels = f'service="s",sla="{_label_value(name)}"'
            assert _month_lines(labels, policy, shown) == _written_month_lines(labels, shown, None)


def test_location_lines_name_the_latest_outages_locations_while_it_runs(tmp_path: Path) -> None:
    """fs31 (issue 20): ``slawatch_outage_location_info`` names the locations of the month's
    latest outage (read once per result, with its end) while that outage reaches the running
    bucket or the one just closed; nothing once it is over, nor when it names none (an
    earlier outage's locations are not shown)."""
    from monitor.sla.month import Outage

    h = Harness(tmp_path)
    policy = h.daemon.accounting.policy("la")
    base = h.daemon.accounting.month_result(policy, utc_from_epoch(T0))
    size = base.bucket_seconds
    end = int(T0 // size * size)  # the latest outage ends where the running bucket starts

    def outage(ends: int, *where: str) -> Outage:
        return Outage(
            start=utc_from_epoch(ends - size),
            end=utc_from_epoch(ends),
            buckets=1,
            errors={},
            failed_targets={},
            locations=where,
        )

    entry = _SlaText(policy, h.daemon.accounting.inputs.services[policy.service])
    entry.set_result(
        dataclasses.replace(base, outages=(outage(end - 2 * size, "fra"), outage(end, "ams", 'q"')))
    )
    assert entry.location_lines(end + 1) == "".join(
        f'slawatch_outage_location_info{{location="{_label_value(where)}",{entry.labels}}} 1.0\n'
        for where in ("ams", 'q"')
    )
    assert entry.location_lines(end + size) == ""  # over: the running bucket is the next one
    entry.set_result(
        dataclasses.replace(base, outages=(outage(end - 2 * size, "fra"), outage(end)))
    )
    assert entry.location_lines(end + 1) == ""
    entry.set_result(dataclasses.replace(base, outages=()))
    assert entry.location_lines(end + 1) == ""
