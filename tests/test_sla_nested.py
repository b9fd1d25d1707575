"""Nested services: "both SBCs down, or the IVR call fails" is one service (issue 12, 7)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import ConfigError, parse_config_text
from monitor.reports.full import compose
from monitor.sla.buckets import nested_verdict, service_verdict
from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import compute_month
from monitor.sla.policy import BucketState, ServiceDef, ServiceRule, ServiceRuleKind, Tally
from tests.strategies import service_rules

CONFIG = """\
targets:
  - {name: sbc-a, kind: tcp, interval: 30s, tcp: {host: 127.0.0.1, port: 5060}}
  - {name: sbc-b, kind: tcp, interval: 30s, tcp: {host: 127.0.0.1, port: 5061}}
  - {name: ivr-call, kind: tcp, interval: 30s, tcp: {host: 127.0.0.1, port: 5062}}
services:
  - name: sbc-pair
    targets: [sbc-a, sbc-b]
    down_when: all
  - name: voice
    targets: [ivr-call]
    services: [sbc-pair]
    down_when: any
slas:
  - name: voice-sla
    service: voice
    objective: 99.999
    monthly_fee: "10000.00"
    currency: USD
    credit_tiers:
      - {below: 99.999, at_least: 99.9, credit_percent: 10}
"""

NOV = Month(2026, 11)
GRID = month_grid(NOV, "UTC", 300)
FAIL = Tally(failed=1, reasons=MappingProxyType({"timeout": 1}))
OK = Tally(ok=1)
_STATES = [BucketState.AVAILABLE, BucketState.UNAVAILABLE, BucketState.UNKNOWN]


def month(cells: dict[str, Tally]) -> BucketState:
    config = parse_config_text(CONFIG)
    (policy,) = config.sla_policies()
    service = config.service_defs()["voice"]
    tallies = {name: dict.fromkeys(GRID.starts(), OK) for name in service.all_targets}
    for name, cell in cells.items():
        tallies[name][GRID.bucket_start(7)] = cell
    return compute_month(policy, service, NOV, tallies, []).states[7]


class TestNestedService:
    def test_one_sbc_down_is_available(self) -> None:
        """One SBC of the redundant pair down, the IVR fine: the service is available."""
        assert month({"sbc-a": FAIL}) is BucketState.AVAILABLE

    def test_both_sbcs_down_is_unavailable(self) -> None:
        """Both SBCs down: the pair is down, so the service is."""
        assert month({"sbc-a": FAIL, "sbc-b": FAIL}) is BucketState.UNAVAILABLE

    def test_the_ivr_call_failing_is_unavailable(self) -> None:
        """The IVR call failing alone takes the service down."""
        assert month({"ivr-call": FAIL}) is BucketState.UNAVAILABLE

    def test_the_claim_states_the_nested_rule(self) -> None:
        """The claim's method sentence describes each level's rule."""
        config = parse_config_text(CONFIG)
        (policy,) = config.sla_policies()
        service = config.service_defs()["voice"]
        tallies = {name: dict.fromkeys(GRID.starts(), OK) for name in service.all_targets}
        tallies["ivr-call"][GRID.bucket_start(7)] = FAIL
        result = compute_month(policy, service, NOV, tallies, [])
        claim = compose([result], "claim", None, None)
        assert "at least 1 of: ivr-call, service sbc-pair (at least 2 of: sbc-a, sbc-b)" in claim
        assert result.rules["service_targets"] == ["ivr-call", "sbc-a", "sbc-b"]


class TestConfig:
    def test_a_cycle_is_one_line_naming_the_services(self) -> None:
        """a -> b -> a is refused in one line naming both services."""
        text = CONFIG.replace(
            "    targets: [sbc-a, sbc-b]\n    down_when: all\n",
            "    targets: [sbc-a, sbc-b]\n    services: [voice]\n    down_when: all\n",
        )
        with pytest.raises(ConfigError) as caught:
            parse_config_text(text, "c.yaml")
        lines = [line for line in caught.value.lines() if "cycle" in line]
        assert len(lines) == 1
        assert "services form a cycle (sbc-pair -> voice -> sbc-pair)" in lines[0]

    def test_an_unknown_nested_service_is_named(self) -> None:
        """A nested service that does not exist is refused at its key."""
        text = CONFIG.replace("services: [sbc-pair]", "services: [sbc-pairs]")
        with pytest.raises(ConfigError, match=r"services\[1\]\.services\[0\]: must name a service"):
            parse_config_text(text, "c.yaml")

    def test_quorum_counts_targets_and_services(self) -> None:
        """quorum may go up to the number of members, targets and services together."""
        text = CONFIG.replace("    down_when: any\n", "    down_when: quorum\n    quorum: 2\n")
        service = parse_config_text(text).service_defs()["voice"]
        assert service.rule == ServiceRule(ServiceRuleKind.QUORUM, 2)
        with pytest.raises(ConfigError, match="must be between 1 and the number of members"):
            parse_config_text(text.replace("quorum: 2", "quorum: 3"))


class TestProperties:
    @given(service_rules, st.lists(st.sampled_from(_STATES), min_size=1, max_size=4), st.data())
    def test_a_service_of_one_child_equals_the_child(
        self, rule: ServiceRule, states: list[BucketState], data: st.DataObject
    ) -> None:
        """A service whose only member is a service has that service's verdict, whatever its
        own rule (any, all or a quorum of 1)."""
        names = [f"t{i}" for i in range(len(states))]
        if rule.min_down is not None and rule.min_down > len(names):
            rule = ServiceRule(ServiceRuleKind.QUORUM, len(names))
        child = ServiceDef("child", tuple(names), rule)
        outer_rule = data.draw(
            st.sampled_from(
                [
                    ServiceRule(),
                    ServiceRule(ServiceRuleKind.ALL),
                    ServiceRule(ServiceRuleKind.QUORUM, 1),
                ]
            )
        )
        parent = ServiceDef("parent", (), outer_rule, services=(child,))
        by_name: dict[str, Any] = dict(zip(names, states, strict=True))
        assert nested_verdict(parent, by_name) is nested_verdict(child, by_name)
        assert nested_verdict(child, by_name) is service_verdict(states, rule)

    def test_all_targets_are_listed_once(self) -> None:
        """A target reached through two nested services is one column."""
        shared = ServiceDef("pair", ("a", "b"), ServiceRule(ServiceRuleKind.ALL))
        outer = ServiceDef("outer", ("b", "c"), services=(shared,))
        assert outer.all_targets == ("b", "c", "a")
        assert outer.members == 3
