"""The ``support:`` section and SLA ``maintenance_notice`` through the real config loader."""

from __future__ import annotations

from datetime import date, time, timedelta
from decimal import Decimal

import pytest

from monitor.config import Config, ConfigError, parse_config_text
from monitor.config.support import notice_reference_issues
from monitor.support.calendar import OpeningInterval
from monitor.support.faults import CONTRACT_DEADLINES, Level, Severity
from monitor.support.notice import NoticePolicy
from tests.test_config import KINDS

BASE = """\
targets:
  - name: web-login
    kind: web
    web: {url: "https://agent.example/login"}
services:
  - name: web
    targets: [web-login]
slas:
  - name: web-sla
    service: web
    objective: 99.9
    monthly_fee: "100.00"
    currency: EUR
"""


def parse(extra: str, base: str = BASE) -> Config:
    """``base`` plus ``extra`` through the loader, with the test probe kinds."""
    return parse_config_text(base + extra, "s.yaml", KINDS)


def errors(extra: str, base: str = BASE) -> list[str]:
    """The rendered error lines for ``base`` plus ``extra``."""
    with pytest.raises(ConfigError) as info:
        parse(extra, base)
    return str(info.value).splitlines()


class TestSupportSection:
    """Valid ``support:`` sections and their conversion."""

    def test_defaults_are_the_contract(self) -> None:
        """A contract with only name, fee and currency is Schedule 1 as written."""
        config = parse(
            "support:\n  contracts:\n    - {name: uma, annual_fee: 24000.10, currency: GBP}\n"
        )
        assert config.support is not None
        contract = config.support.support_contracts()["uma"]
        assert contract.annual_fee == Decimal("24000.10")
        assert dict(contract.deadlines) == dict(CONTRACT_DEADLINES)
        assert contract.credits.percent_per_day[Severity.BUSINESS_CRITICAL] == Decimal(5)
        assert contract.credits.max_days == 20
        hours = contract.hours
        assert (hours.timezone, hours.holiday_country, hours.holiday_subdivision) == (
            "Europe/London",
            "GB",
            "NIR",
        )
        assert hours.week[0] == (OpeningInterval(time(9), time(17)),)
        assert hours.week[5] == ()
        assert hours.business_day == timedelta(hours=8)
        assert config.support.routing().resolved_level is Level.RESTORE

    def test_everything_configured(self) -> None:
        """Every key is honoured."""
        config = parse(
            """\
support:
  contracts:
    - name: uma
      annual_fee: "1000"
      currency: GBP
      support_hours:
        timezone: Europe/Dublin
        weekdays: {monday: ["08:00-12:00", "13:00-18:00"], saturday: "10:00-12:00"}
        holidays: {country: GB, subdivision: ENG}
        closed_dates: [2026-12-24]
        closed_every_year: ["01-02"]
      business_day: 7h30m
      deadlines:
        minor: {acknowledge: 8h, restore_business_days: 10, credit_from_level: 2,
                solve_business_days: null}
      credits: {defect_with_workaround: 2.5, max_days: 10}
  alertmanager: {default_contract: uma, resolved_records: solve, severity_label: sev}
"""
        )
        assert config.support is not None
        contract = config.support.support_contracts()["uma"]
        hours = contract.hours
        assert hours.week[0] == (
            OpeningInterval(time(8), time(12)),
            OpeningInterval(time(13), time(18)),
        )
        assert hours.week[1] == ()
        assert hours.closed_dates == frozenset({date(2026, 12, 24)})
        assert hours.annual_closures == frozenset({(1, 2)})
        assert hours.business_day == timedelta(hours=7, minutes=30)
        assert contract.deadlines[Severity.MINOR].restore_days == 10
        assert contract.credits.percent_per_day[Severity.DEFECT_WITH_WORKAROUND] == Decimal("2.5")
        routing = config.support.routing()
        assert (routing.resolved_level, routing.severity_label) == (Level.SOLVE, "sev")

    def test_absent_section(self) -> None:
        """No ``support:`` means no contracts."""
        assert parse("").support is None


CONTRACT = "support:\n  contracts:\n    - name: uma\n      annual_fee: 10\n      currency: GBP\n"


class TestSupportErrors:
    """Each invalid setting is reported at its line and key path with the value."""

    @pytest.mark.parametrize(
        ("extra", "expected"),
        [
            (
                CONTRACT + "      support_hours:\n        weekdays:\n          monday: 9-5\n"
                '          funday: "09:00-10:00"\n        closed_every_year: ["13-01"]\n',
                [
                    "s.yaml:21: support.contracts[0].support_hours.weekdays.monday: must be "
                    "opening hours such as 09:00-17:00, got '9-5'",
                    "s.yaml:22: support.contracts[0].support_hours.weekdays.funday: must be a "
                    "weekday: monday, tuesday, wednesday, thursday, friday, saturday, sunday",
                    "s.yaml:23: support.contracts[0].support_hours.closed_every_year[0]: must be "
                    "a month and day such as 12-25, got '13-01'",
                ],
            ),
            (
                CONTRACT + "      support_hours:\n        holidays:\n          subdivision: XYZ\n",
                [
                    "s.yaml:21: support.contracts[0].support_hours.holidays.subdivision: must be "
                    "one of ENG, NIR, SCT, WLS, got 'XYZ'",
                ],
            ),
            (
                CONTRACT + "  alertmanager:\n    default_contract: acme\n",
                [
                    "s.yaml:20: support.alertmanager.default_contract: must name a contract "
                    "(uma), got 'acme'"
                ],
            ),
            (
                CONTRACT + "      deadlines:\n        minor:\n          solve_business_days: null\n"
                "      credits:\n        minor: 101\n      business_day: 0s\n",
                [
                    "s.yaml:20: support.contracts[0].deadlines.minor.credit_from_level: needs "
                    "solve_business_days: credits run from that level's deadline, got 3",
                    "s.yaml:23: support.contracts[0].credits.minor: must be a percentage "
                    "between 0 and 100, got 101",
                    "s.yaml:24: support.contracts[0].business_day: must be more than 0s, got '0s'",
                ],
            ),
            (
                CONTRACT + "      support_hours:\n        weekdays: {}\n      color: red\n",
                [
                    "s.yaml:20: support.contracts[0].support_hours.weekdays: must open on at "
                    "least one day, got {}",
                    "s.yaml:21: support.contracts[0].color: unknown key, expected one of: name, "
                    "annual_fee, currency, support_hours, business_day, deadlines, credits, claim",
                ],
            ),
            (
                CONTRACT + "    - name: uma\n      annual_fee: 5\n      currency: GBP\n",
                ["s.yaml:19: support.contracts[1].name: is already used, got 'uma'"],
            ),
        ],
    )
    def test_error_lines(self, extra: str, expected: list[str]) -> None:
        """The rendered error lines name file, line, key path, expectation and value."""
        assert errors(extra) == expected


class TestMaintenanceNotice:
    """``slas[].maintenance_notice`` and its reference to a support contract."""

    NOTICE = BASE.replace(
        "    currency: EUR\n",
        "    currency: EUR\n"
        "    maintenance_notice: {outside_support_hours_of: uma, policy: reject}\n",
    )

    def test_rule_from_contract(self) -> None:
        """The rule uses the named contract's Support Hours and the chosen policy."""
        config = parse(
            "support:\n  contracts:\n    - {name: uma, annual_fee: 10, currency: GBP}\n",
            self.NOTICE,
        )
        notice = config.slas[0].maintenance_notice
        assert notice is not None
        rule = notice.to_rule(config.support)
        assert rule.min_notice == timedelta(hours=1)
        assert rule.policy is NoticePolicy.REJECT
        assert rule.support_hours is not None
        assert rule.support_hours.holiday_subdivision == "NIR"

    def test_default_is_no_rule(self) -> None:
        """The availability SLA sets no notice rule by default."""
        assert parse("").slas[0].maintenance_notice is None

    def test_unknown_contract(self) -> None:
        """A reference to a missing contract is refused when the file loads, at its line and
        key; the raw-data check names the same path."""
        with pytest.raises(
            ConfigError,
            match=r"s\.yaml:\d+: slas\[0\]\.maintenance_notice\."
            r"outside_support_hours_of: must name a contract in support\.contracts "
            r"\(none configured\), got 'uma'",
        ):
            parse("", self.NOTICE)
        raw = {"slas": [{"maintenance_notice": {"outside_support_hours_of": "uma"}}]}
        (problem,) = notice_reference_issues(raw)
        assert problem.path == ("slas", 0, "maintenance_notice", "outside_support_hours_of")
