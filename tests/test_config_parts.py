"""Issue 20, dg31: the policies and services of a configuration share the frozen parts built
from the same validated values (``monitor.config.convert.Parts``): one credit table, bucket
rule, coverage and service rule for SLAs that write them alike, and nothing anyone can
observe changes: the policies and services equal those built without sharing, and so do the
snapshots' inputs digests (their canonical texts), which keep the shared parts' texts."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings

from monitor.config import parse_config_text
from monitor.config.model import share_unchanged
from monitor.sla.calendar import Month
from monitor.sla.running_codec import inputs_digest
from tests.test_config_slim import _plain, config_texts
from tests.test_snapshot_codec import _reflected

_GAPS = ((datetime(2026, 3, 2, 10, 7, tzinfo=UTC), datetime(2026, 3, 2, 10, 31, tzinfo=UTC)),)


@settings(max_examples=30, deadline=None)
@given(text=config_texts())
def test_shared_parts_change_nothing(text: str) -> None:
    """Built from the slimmed configuration, SLAs with the same credit tiers share one
    credit table, all of them one bucket rule and coverage, all services one rule; each
    policy and service equals, and is written as, the one built from the configuration
    validated without sharing, and digests alike."""
    config, plain = parse_config_text(text), _plain(text)
    policies, unshared = config.sla_policies(), plain.sla_policies()
    services, apart = config.service_defs(), plain.service_defs()
    for a in policies:
        for b in policies:
            same = a.credit.tiers == b.credit.tiers
            assert (a.credit is b.credit) == same
        assert a.bucket_rule is policies[0].bucket_rule
        assert a.min_coverage is policies[0].min_coverage
    assert len({id(s.rule) for s in services.values()}) == 1
    for mine, theirs in zip(policies, unshared, strict=True):
        assert mine == theirs
        assert _reflected(mine) == _reflected(theirs)
        for month in (Month(2026, 2), Month(2026, 3)):
            assert inputs_digest(
                mine, services[mine.service], month, ("t0",), _GAPS, 4000
            ) == inputs_digest(theirs, apart[theirs.service], month, ("t0",), _GAPS, 4000)
    assert services == apart


def test_values_written_apart_are_not_shared() -> None:
    """A fee written ``1000.00`` and one written ``1000.0`` are equal numbers but other texts
    (and other digests): their credit tables stay two objects, each written as given."""
    text = "\n".join(
        [
            "monitor:",
            "  name: parts",
            "targets:",
            "  - {name: t0, kind: http, interval: 60s, http: {url: 'https://127.0.0.1:1/'}}",
            "services:",
            "  - {name: s0, targets: [t0]}",
            "slas:",
            *(
                f"  - {{name: sla{i}, service: s0, objective: 99.9, monthly_fee: '{fee}',"
                " currency: EUR, credit_tiers: [{below: 99.9, credit_percent: 10}]}"
                for i, fee in enumerate(("1000.00", "1000.0", "1000.00"))
            ),
        ]
    )
    config = parse_config_text(text + "\n")
    a, b, c = config.sla_policies()
    assert a.credit == b.credit
    assert a.credit is not b.credit
    assert "1000.00" in _reflected(a.credit)
    assert "1000.0'" in _reflected(b.credit)
    month = Month(2026, 3)
    service = config.service_defs()["s0"]
    assert inputs_digest(a, service, month, (), (), 10) != inputs_digest(
        b, service, month, (), (), 10
    )
    assert a.credit is c.credit


@settings(max_examples=10, deadline=None)
@given(old=config_texts(), new=config_texts())
def test_a_reload_builds_what_a_fresh_load_builds(old: str, new: str) -> None:
    """``share_unchanged`` (a reload) gives policies and services equal to a fresh build."""
    before, after, fresh = parse_config_text(old), parse_config_text(new), parse_config_text(new)
    before.sla_policies()
    share_unchanged(after, before)
    assert after.sla_policies() == fresh.sla_policies()
    assert after.service_defs() == fresh.service_defs()
