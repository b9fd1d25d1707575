"""Several monitoring locations (issue 14): the quorum of locations per bucket and target
(monitor.sla.quorum), and the month computed from located tallies, at fixed instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.accounting import Accounting, AccountingInputs, month_result
from monitor.config import ConfigError, load_config
from monitor.sla.buckets import target_verdict
from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import compute_month
from monitor.sla.policy import (
    BucketRule,
    BucketState,
    LocationRule,
    ServiceDef,
    SlaPolicy,
    Tally,
)
from monitor.sla.quorum import (
    LocatedTallies,
    canaries_all_failed,
    location_state,
    quorum_verdict,
    sum_tallies,
)
from tests.strategies import STANDARD_CREDIT, location_rules, location_tallies

A, U, Q = BucketState.AVAILABLE, BucketState.UNAVAILABLE, BucketState.UNKNOWN
NOV = Month(2026, 11)
GRID = month_grid(NOV, "UTC", 300)
THREE = LocationRule(quorum=2, of=("dublin", "frankfurt", "paris"))
SVC = ServiceDef("web", ("site",))
OK = Tally(ok=10)
DOWN = Tally(ok=0, failed=10, reasons=MappingProxyType({"status_code_503": 10}))
NOW = datetime(2026, 11, 2, tzinfo=UTC)  # a fixed instant inside the month


def policy(rule: LocationRule | None = THREE, **overrides: Any) -> SlaPolicy:
    fields: dict[str, Any] = {
        "name": "vendor-web",
        "service": "web",
        "objective_percent": Decimal("99.9"),
        "credit": STANDARD_CREDIT,
        "locations": rule,
    }
    fields.update(overrides)
    return SlaPolicy(**fields)


def at(index: int) -> int:
    return GRID.bucket_start(index)


def day_one(per_location: dict[str, dict[int, Tally]]) -> dict[str, dict[str, dict[int, Tally]]]:
    """Each location's tallies of the target ``site``: the first day all OK, overridden by
    ``per_location`` (location -> bucket index -> tally); a location absent sent nothing."""
    out: dict[str, dict[str, dict[int, Tally]]] = {}
    for name, overrides in per_location.items():
        column = {at(i): OK for i in range(288)}
        column.update({at(i): t for i, t in overrides.items()})
        out[name] = {"site": column}
    return out


class TestLocationRule:
    @pytest.mark.parametrize(
        ("quorum", "of", "message"),
        [
            (0, ("a", "b"), r"locations\.quorum: expected between 1 and 2"),
            (3, ("a", "b"), r"locations\.quorum: expected between 1 and 2"),
            (1, (), r"locations\.of: expected at least one"),
            (1, ("a", "a"), r"locations\.of: 'a' is listed twice"),
        ],
    )
    def test_invalid_rules_name_the_field(
        self, quorum: int, of: tuple[str, ...], message: str
    ) -> None:
        """A quorum outside 1..len(of), an empty or repeated list: one line naming the field."""
        with pytest.raises(ValueError, match=message):
            LocationRule(quorum=quorum, of=of)


class TestQuorumVerdict:
    @given(rule=location_rules(), data=st.data())
    def test_definition(self, rule: LocationRule, data: st.DataObject) -> None:
        """Unavailable iff at least quorum locations say so; unknown iff not, but down plus
        unheard (anything else than available, or absent) reach it; available otherwise."""
        states = {name: data.draw(st.sampled_from([A, U, Q, None]), label=name) for name in rule.of}
        given_states = {k: v for k, v in states.items() if v is not None}
        verdict = quorum_verdict(given_states, rule)
        down = [n for n in rule.of if states[n] is U]
        unheard = [n for n in rule.of if states[n] is not A and states[n] is not U]
        assert verdict.down == tuple(down)
        assert verdict.unheard == tuple(unheard)
        if len(down) >= rule.quorum:
            assert verdict.state is U
        elif len(down) + len(unheard) >= rule.quorum:
            assert verdict.state is Q
        else:
            assert verdict.state is A

    @given(rule=location_rules(), data=st.data())
    def test_a_silent_location_never_makes_a_bucket_more_available(
        self, rule: LocationRule, data: st.DataObject
    ) -> None:
        """Dropping one location's verdict (it stopped reporting) never turns an unknown or
        unavailable bucket available: the denominator stays the configured list."""
        states = {name: data.draw(st.sampled_from([A, U, Q]), label=name) for name in rule.of}
        silent = data.draw(st.sampled_from(rule.of))
        before = quorum_verdict(states, rule).state
        after = quorum_verdict({k: v for k, v in states.items() if k != silent}, rule).state
        if before is not A:
            assert after is not A
        if states[silent] is Q:
            assert after is before

    def test_two_dead_monitors_do_not_make_the_third_a_majority(self) -> None:
        """Quorum 2 of 3, two locations silent, the third sees the vendor available: unknown,
        and if it sees it unavailable: still unknown (one proof is not two)."""
        assert quorum_verdict({"paris": A}, THREE).state is Q
        assert quorum_verdict({"paris": U}, THREE).state is Q
        assert quorum_verdict({"paris": U, "dublin": U}, THREE).state is U
        assert quorum_verdict({"paris": U, "dublin": A, "frankfurt": A}, THREE).state is A

    def test_locations_outside_the_list_do_not_vote(self) -> None:
        """A location not listed in ``of`` is ignored, however it judged the bucket."""
        verdict = quorum_verdict({"oslo": U, "madrid": U, "dublin": A, "paris": A}, THREE)
        assert (verdict.state, verdict.down) == (A, ())


class TestLocationState:
    @given(tally=location_tallies(), canaries_failed=st.booleans(), in_gap=st.booleans())
    def test_canaries_and_gaps(
        self, tally: Tally | None, canaries_failed: bool, in_gap: bool
    ) -> None:
        """A location whose canaries all failed is unheard; in its gap only a proven
        unavailable bucket counts; otherwise the target's own verdict."""
        rule = BucketRule()
        state = location_state(tally, rule, canaries_failed=canaries_failed, in_gap=in_gap)
        own = target_verdict(tally, rule)
        if canaries_failed:
            assert state is Q
        elif in_gap:
            assert state is (U if own is U else Q)
        else:
            assert state is own

    def test_canaries_all_failed_needs_every_canary_failing(self) -> None:
        """Every canary failing every probe in the bucket; one success or one silent canary
        proves nothing; without canaries, never."""
        columns = {"c1": {0: Tally(failed=2)}, "c2": {0: Tally(failed=1)}}
        assert canaries_all_failed(columns, ["c1", "c2"], 0)
        assert not canaries_all_failed(columns, ["c1", "c2", "c3"], 0)
        assert not canaries_all_failed(
            {**columns, "c2": {0: Tally(ok=1, failed=1)}}, ["c1", "c2"], 0
        )
        assert not canaries_all_failed(columns, [], 0)


class TestLocatedTallies:
    @given(
        rule=location_rules(),
        cells=st.dictionaries(
            st.sampled_from(["dublin", "frankfurt", "paris", "madrid", "oslo"]),
            location_tallies().filter(lambda t: t is not None),
        ),
    )
    def test_mapping_is_the_sum_over_voting_locations(
        self, rule: LocationRule, cells: dict[str, Tally]
    ) -> None:
        """Read as a mapping, a bucket's tally is the sum over the locations of ``of``."""
        located = LocatedTallies(rule, {name: {"site": {0: t}} for name, t in cells.items()})
        voting = [t for name, t in cells.items() if name in rule.of]
        if not voting:
            assert "site" not in located
            return
        assert located["site"][0] == sum_tallies(voting)
        assert list(located["site"]) == [0]


class TestMonth:
    def test_seen_by_two_of_three_is_unavailable(self) -> None:
        """Dublin and Frankfurt see bucket 10 fail, Paris does not: the bucket is unavailable
        and the outage names the two locations; the failed probes are summed over them."""
        tallies = LocatedTallies(
            THREE, day_one({"dublin": {10: DOWN}, "frankfurt": {10: DOWN}, "paris": {}})
        )
        result = compute_month(policy(), SVC, NOV, tallies, (), now=NOW)
        assert result.states[10] is U
        assert result.buckets_unavailable == 1
        [outage] = result.outages
        assert outage.locations == ("dublin", "frankfurt")
        assert outage.failed_targets == {"site": 20}
        assert outage.probes == 30
        assert result.to_json()["outages"][0]["locations"] == ["dublin", "frankfurt"]
        assert result.to_json()["rules"]["locations"]["of"] == ["dublin", "frankfurt", "paris"]

    def test_seen_by_one_is_available(self) -> None:
        """Only Paris sees bucket 10 fail: the other two prove it available."""
        tallies = LocatedTallies(
            THREE, day_one({"dublin": {}, "frankfurt": {}, "paris": {10: DOWN}})
        )
        result = compute_month(policy(), SVC, NOV, tallies, (), now=NOW)
        assert result.states[10] is A
        assert result.buckets_unavailable == 0
        assert result.outages == ()

    def test_a_dead_location_makes_a_single_failure_unknown(self) -> None:
        """Frankfurt stopped reporting: Dublin's failure plus the unheard Frankfurt reach the
        quorum of 2, so the bucket is unknown (never claimed, never available); where Dublin
        and Paris both saw it available the bucket stays available."""
        tallies = LocatedTallies(THREE, day_one({"dublin": {10: DOWN}, "paris": {}}))
        result = compute_month(policy(), SVC, NOV, tallies, (), now=NOW)
        assert result.states[10] is Q
        assert result.states[11] is A
        assert result.buckets_unavailable == 0

    def test_a_location_with_failing_canaries_is_unheard(self) -> None:
        """Paris' canary failed all of bucket 10: Paris is unheard there, so Dublin's failure
        with Paris unheard reaches the quorum as unknown, not available."""
        by_location = day_one({"dublin": {10: DOWN}, "frankfurt": {}, "paris": {}})
        by_location["paris"]["canary"] = {at(10): Tally(failed=3, reasons={"timeout": 3})}
        plain = compute_month(policy(), SVC, NOV, LocatedTallies(THREE, by_location), (), now=NOW)
        assert plain.states[10] is A  # without canaries, Paris' probes count
        guarded = compute_month(
            policy(),
            SVC,
            NOV,
            LocatedTallies(THREE, by_location, canaries=("canary",)),
            (),
            canaries=("canary",),
            now=NOW,
        )
        assert guarded.states[10] is Q

    def test_a_gap_of_one_location_only_keeps_its_proof(self) -> None:
        """Frankfurt was not running during bucket 10 (its partial probes said OK): inside
        its gap only unavailability counts, so Dublin's failure makes the bucket unknown."""
        gap = (at(10) + 100.0, at(12) + 0.0)
        tallies = LocatedTallies(
            THREE, day_one({"dublin": {10: DOWN}, "frankfurt": {}}), gaps={"frankfurt": [gap]}
        )
        result = compute_month(policy(), SVC, NOV, tallies, (), now=NOW)
        assert result.states[10] is Q

    def test_located_and_plain_tallies_are_not_mixed_up(self) -> None:
        """An SLA with locations refuses one daemon's tallies, and the reverse, in one line."""
        with pytest.raises(ValueError, match=r"sla vendor-web: locations: .* each location"):
            compute_month(policy(), SVC, NOV, {"site": {}}, (), now=NOW)
        with pytest.raises(ValueError, match="sets no locations"):
            compute_month(policy(None), SVC, NOV, LocatedTallies(THREE, {}), (), now=NOW)

    @settings(max_examples=40, deadline=None)
    @given(
        data=st.data(),
        rule=st.sampled_from(
            [THREE, LocationRule(1, ("dublin", "paris")), LocationRule(3, THREE.of)]
        ),
    )
    def test_running_month_equals_compute_month(
        self, data: st.DataObject, rule: LocationRule
    ) -> None:
        """Accounting's running month over located tallies equals month_result after tallies
        of any location change at any bucket (each change told with tally_changed)."""
        svc = ServiceDef("web", ("site", "api"))
        pol = policy(rule)
        inputs = AccountingInputs(
            policies=(pol,),
            services={"web": svc},
            windows=(),
            recurring=(),
            canaries=(),
            gaps=(),
        )
        by_location: dict[str, dict[str, dict[int, Tally]]] = {name: {} for name in rule.of}
        holder: dict[str, LocatedTallies] = {"t": LocatedTallies(rule, by_location)}
        accounting = Accounting(inputs, lambda seconds, month, p: holder["t"])
        now = datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
        for _ in range(data.draw(st.integers(1, 12), label="events")):
            where = data.draw(st.sampled_from(rule.of), label="location")
            target = data.draw(st.sampled_from(["site", "api"]), label="target")
            index = data.draw(st.integers(0, 20), label="bucket")
            tally = data.draw(location_tallies(), label="tally")
            column = by_location[where].setdefault(target, {})
            if tally is None:
                column.pop(at(index), None)
            else:
                column[at(index)] = tally
            holder["t"] = LocatedTallies(rule, by_location)
            accounting.tally_changed(300, target, at(index))
            now += timedelta(seconds=data.draw(st.integers(0, 600), label="step"))
            running = accounting.month_result(pol, now)
            reference = month_result(inputs, pol, NOV, holder["t"], now)
            assert running.to_json() == reference.to_json()
            assert tuple(running.states) == tuple(reference.states)


class TestConfig:
    BASE = (
        "monitor: {{name: d1, location: dublin}}\n"
        "targets:\n  - {{name: site, kind: http, http: {{url: 'http://127.0.0.1:9/'}}}}\n"
        "services:\n  - {{name: web, targets: [site]}}\n"
        "slas:\n  - name: vendor-web\n    service: web\n    objective: 99.9\n"
        "    monthly_fee: '100.00'\n    currency: EUR\n    locations: {locations}\n"
    )

    def _load(self, tmp_path: Path, locations: str) -> Any:
        path = tmp_path / "c.yaml"
        path.write_text(self.BASE.format(locations=locations))
        return load_config(path)

    def test_locations_reach_the_policy(self, tmp_path: Path) -> None:
        """``locations`` becomes the SLA's LocationRule; without it the SLA has none."""
        config = self._load(
            tmp_path, "{down_when: quorum, quorum: 2, of: [dublin, frankfurt, paris]}"
        )
        [pol] = config.sla_policies()
        assert pol.locations == THREE

    @pytest.mark.parametrize(
        ("locations", "field", "expected"),
        [
            ("{quorum: 4, of: [dublin, paris]}", "slas[0].locations.quorum", "between 1 and"),
            ("{quorum: 0, of: [dublin]}", "slas[0].locations.quorum", "between 1 and"),
            ("{quorum: 1, of: [dublin, dublin]}", "slas[0].locations.of[1]", "listed twice"),
            ("{quorum: 1, of: []}", "slas[0].locations.of", "at least one"),
            ("{down_when: any, quorum: 1, of: [a]}", "slas[0].locations.down_when", "quorum"),
        ],
    )
    def test_bad_locations_name_the_field(
        self, tmp_path: Path, locations: str, field: str, expected: str
    ) -> None:
        """Each mistake is one line naming the file, the line and the field."""
        with pytest.raises(ConfigError) as caught:
            self._load(tmp_path, locations)
        lines = str(caught.value).strip().splitlines()
        assert len(lines) == 1, lines
        assert f": {field}: " in lines[0], lines[0]
        assert expected in lines[0], lines[0]
