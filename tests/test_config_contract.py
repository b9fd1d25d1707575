"""check-config and the contract: cron's day OR, unreachable credit tiers, secrets read as run
reads them, min_coverage (issue 12, problems 4 and 5)."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.cli.check_config import run as check_config
from monitor.config import ConfigError, parse_config_text
from monitor.sla.calendar import Month, month_bounds
from monitor.sla.credits import month_bucket_counts, tier_reachable, uptime_percent
from monitor.sla.exclusions import expand_recurring
from monitor.sla.month import compute_month
from monitor.sla.policy import CreditTier, ExclusionKind, RecurringExclusion

BASE = """\
targets:
  - name: web
    kind: tcp
    interval: 30s
    tcp: {host: 127.0.0.1, port: 80}
services:
  - name: web
    targets: [web]
slas:
  - name: web-sla
    service: web
    objective: 99.999
    monthly_fee: "100.00"
    currency: USD
    credit_tiers:
      - {below: 99.999, at_least: 99.9, credit_percent: 10}
"""

FIRST_SUNDAY_CRON = """\
recurring_exclusions:
  - id: first-sunday
    kind: scheduled_maintenance
    cron: "0 2 1-7 * SUN"
    timezone: Europe/London
    duration: 2h
"""


def run_check(tmp_path: Path, text: str) -> tuple[int, str, str]:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    status = check_config(argparse.Namespace(config=str(path)), out, err)
    return status, out.getvalue(), err.getvalue()


class TestCronDayRule:
    def test_day_of_month_and_day_of_week_is_refused_with_the_rrule(self) -> None:
        """'0 2 1-7 * SUN' is refused, explaining cron's OR and showing the first-Sunday rrule."""
        with pytest.raises(ConfigError) as caught:
            parse_config_text(BASE + FIRST_SUNDAY_CRON, "c.yaml")
        (line,) = caught.value.lines()
        assert line.startswith("c.yaml:20: recurring_exclusions[0].cron: restricts both")
        assert "matching EITHER field" in line
        assert 'rrule: "FREQ=MONTHLY;BYDAY=1SU;BYHOUR=2;BYMINUTE=0;BYSECOND=0"' in line
        assert "cron_day_rule: or" in line

    def test_the_suggested_rrule_means_the_first_sunday(self) -> None:
        """The rrule in the message has one occurrence a month, on its first Sunday."""
        rec = RecurringExclusion(
            id="first-sunday",
            kind=ExclusionKind.SCHEDULED_MAINTENANCE,
            duration=timedelta(hours=2),
            timezone="Europe/London",
            rrule="FREQ=MONTHLY;BYDAY=1SU;BYHOUR=2;BYMINUTE=0;BYSECOND=0",
            dtstart=datetime(2026, 1, 1),
        )
        start, end = month_bounds(Month(2026, 11), "Europe/London")
        windows = expand_recurring(rec, start, end)
        assert [w.start for w in windows] == [datetime(2026, 11, 1, 2, 0, tzinfo=UTC)]

    def test_cron_day_rule_or_accepts_cron_meaning(self) -> None:
        """With cron_day_rule: or the line is accepted and means days 1-7 plus every Sunday:
        every occurrence is listed in the month's result."""
        config = parse_config_text(BASE + FIRST_SUNDAY_CRON + "    cron_day_rule: or\n")
        (rec,) = config.recurring_exclusions()
        assert rec.cron_day_rule == "or"
        month = Month(2026, 11)
        start, end = month_bounds(month, "UTC")
        windows = expand_recurring(rec, start, end)
        # November 2026: days 1-7 (7 windows) and Sundays 8, 15, 22, 29 (4 more).
        assert len(windows) == 11
        (policy,) = config.sla_policies()
        service = config.service_defs()["web"]
        result = compute_month(policy, service, month, {"web": {}}, windows)
        assert len(result.recurring_occurrences) == 11
        assert len(result.to_json()["recurring_occurrences"]) == 11

    def test_the_engine_refuses_it_too(self) -> None:
        """Built without the config layer, the engine refuses the ambiguous line as well."""
        rec = RecurringExclusion(
            id="x",
            kind=ExclusionKind.SCHEDULED_MAINTENANCE,
            duration=timedelta(hours=2),
            timezone="UTC",
            cron="0 2 1-7 * SUN",
        )
        start, end = month_bounds(Month(2026, 11), "UTC")
        with pytest.raises(ValueError, match="cron fires on a day matching EITHER"):
            expand_recurring(rec, start, end)


class TestUnreachableTiers:
    def test_a_band_between_five_nines_and_four_is_flagged(self, tmp_path: Path) -> None:
        """With 5-minute buckets one bad bucket is 99.9888%: '< 99.999% and >= 99.99%' can
        never apply; check-config warns (and still exits 0)."""
        text = BASE.replace(
            "      - {below: 99.999, at_least: 99.9, credit_percent: 10}\n",
            "      - {below: 99.999, at_least: 99.99, credit_percent: 5}\n"
            "      - {below: 99.99, credit_percent: 10}\n",
        )
        status, out, err = run_check(tmp_path, text)
        assert status == 0
        assert out.startswith("ok: ")
        assert "warning: slas[0].credit_tiers[0]: no uptime at 5m buckets falls in this band" in err
        assert "credit_tiers[1]" not in err

    def test_a_reachable_table_gives_no_warning(self, tmp_path: Path) -> None:
        """The standard table warns about nothing."""
        assert run_check(tmp_path, BASE)[2] == ""

    @settings(max_examples=60)
    @given(
        st.sampled_from([60, 300, 900]),
        st.integers(0, 2_000),
        st.integers(1, 200),
    )
    def test_reachable_means_some_month_lands_in_it(
        self, bucket_seconds: int, lower_millis: int, width_millis: int
    ) -> None:
        """tier_reachable agrees with a search over every count in every month length."""
        lower = Decimal(100) - Decimal(lower_millis + width_millis) / 1000
        upper = Decimal(100) - Decimal(lower_millis) / 1000
        tier = CreditTier(Decimal(5), upper=upper, lower=lower)
        counts = month_bucket_counts(bucket_seconds)
        # Uptime falls as the count rises: past 100 - lower percent of the month, no count
        # can be in the band, so the search stops there.
        brute = any(
            tier.contains(uptime_percent(k, d) or Fraction(0))
            for d in counts
            for k in range(0, d * (lower_millis + width_millis) // 100_000 + 2)
        )
        assert tier_reachable(tier, counts) == brute


class TestSecrets:
    def test_check_config_reads_the_secret_files_run_needs(self, tmp_path: Path) -> None:
        """A password file that does not exist fails check-config as it fails run."""
        text = (
            BASE.replace(
                "    tcp: {host: 127.0.0.1, port: 80}\n",
                "    tcp: {host: 127.0.0.1, port: 80}\n",
            )
            + "monitor:\n  api_token: {file: "
            + str(tmp_path / "missing-token")
            + "}\n"
        )
        status, out, err = run_check(tmp_path, text)
        assert (status, out) == (1, "")
        assert "monitor.api_token: cannot read secret file" in err


class TestMinCoverage:
    def test_min_coverage_reaches_the_policy(self) -> None:
        """slas[].min_coverage (percent) becomes the policy's fraction; default 90%."""
        (default,) = parse_config_text(BASE).sla_policies()
        assert default.min_coverage == Fraction(9, 10)
        (policy,) = parse_config_text(BASE + "    min_coverage: 75\n").sla_policies()
        assert policy.min_coverage == Fraction(3, 4)

    def test_min_coverage_out_of_range_is_refused(self) -> None:
        """A coverage above 100% is refused at its key."""
        with pytest.raises(ConfigError, match=r"slas\[0\].min_coverage: must be a percentage"):
            parse_config_text(BASE + "    min_coverage: 120\n")
