"""The configuration file: valid files, defaults, immutability, conversion to policy types."""

from __future__ import annotations

import argparse
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import given
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.cli.check_config import register
from monitor.cli.check_config import run as check_config
from monitor.config import (
    Config,
    ConfigError,
    ExclusionConfig,
    MonitorSettings,
    RecurringExclusionConfig,
    ServiceConfig,
    SlaConfig,
    TargetConfig,
    load_config,
    parse_config_text,
)
from monitor.config.errors import YamlFloat
from monitor.config.fieldtypes import format_duration
from monitor.config.loader import read_yaml
from monitor.config.translate import yaml_keys
from monitor.sla.credits import credit_tier
from monitor.sla.policy import (
    BucketRuleKind,
    CreditTier,
    ExclusionKind,
    PartialExclusion,
    ServiceRuleKind,
    UnknownPolicy,
)
from probes.fields import SecretRef, parse_duration
from probes.registry import ProbeKind
from probes.result import Outcome, ProbeContext, ProbeResult
from tests.strategies import TIER_POINTS, config_durations, tier_bounds

ROOT = Path(__file__).resolve().parent.parent


class WebOptions(BaseModel):
    """A small options model standing in for a real probe kind's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    method: Literal["GET", "HEAD"] = "GET"
    password: SecretRef | None = None


class PortOptions(BaseModel):
    """A second kind, so that block/kind mismatches can be written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(ge=1, le=65535)


async def _answer(options: object, context: ProbeContext) -> ProbeResult:
    return context.result(Outcome.UP)


KINDS = {
    "web": ProbeKind("web", WebOptions, _answer, "test kind: web"),
    "port": ProbeKind("port", PortOptions, _answer, "test kind: port"),
}

VALID = """\
# a comment that must not change the content hash
monitor:
  name: vantage-1
  listen: "[::1]:9180"
  api_token: {env: SLAWATCH_API_TOKEN}
targets:
  - name: web-login
    kind: web
    interval: 1m
    timeout: 15s
    labels: {team: web}
    web: {url: "https://agent.example/login", method: HEAD}
  - name: edge.tcp
    kind: port
    interval: 5s
    port: {host: 127.0.0.1, port: 5060}
  - name: net-canary
    kind: port
    role: canary
    port: {host: 127.0.0.1, port: 53}
services:
  - name: web
    targets: [web-login, edge.tcp]
    down_when: quorum
    quorum: 2
slas:
  - name: web-sla
    service: web
    objective: 99.999
    monthly_fee: 10000.10
    currency: EUR
    unavailable_when: failed_fraction
    failed_fraction: 0.5
    credit_tiers:
      - {below: 99.999, at_least: 99.9, credit_percent: 10}
      - {below: 99.9, above: 99.0, credit_percent: 25}
      - {at_most: 99.0, credit_percent: 50}
    credit_cap: "5000"
exclusions:
  - id: mw-2026-11-10
    kind: scheduled_maintenance
    start: 2026-11-10T02:00:00Z
    end: 2026-11-10T04:00:00+01:00
    reason: core switch upgrade
    services: [web]
    announced_at: 2026-11-03T09:00:00Z
recurring_exclusions:
  - id: sunday-window
    kind: scheduled_maintenance
    rrule: "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2;BYMINUTE=0;BYSECOND=0"
    dtstart: 2026-01-04T02:00:00
    timezone: Europe/London
    duration: 2h
  - id: nightly
    kind: third_party
    cron: "30 1 * * *"
    duration: 15m
"""


def parse(text: str = VALID) -> Config:
    return parse_config_text(text, "test.yaml", KINDS)


class TestReadYaml:
    def test_lines_of_keys_and_items(self) -> None:
        """Every key and list item is found at its 1-based line."""
        document, problems = read_yaml("a: 1\nb:\n  - x\n  - {c: 2}\n", "f.yaml")
        assert problems == []
        assert document.lines[("a",)] == 1
        assert document.lines[("b", 1)] == 4
        assert document.lines[("b", 1, "c")] == 4
        assert document.line_of(("b", 1, "missing")) == 4

    def test_floats_keep_their_text(self) -> None:
        """A float remembers what was written, so Decimal never passes through binary."""
        document, _ = read_yaml("fee: 10000.10\n", "f.yaml")
        fee = document.data["fee"]
        assert isinstance(fee, YamlFloat)
        assert fee.text == "10000.10"

    def test_timestamps_stay_text(self) -> None:
        """PyYAML would build a datetime; the models want the text to check its offset."""
        document, _ = read_yaml("t: 2026-11-10T02:00:00\n", "f.yaml")
        assert document.data["t"] == "2026-11-10T02:00:00"

    def test_aliases_are_never_expanded(self) -> None:
        """A "billion laughs" file is refused at once instead of expanding 9**10 nodes."""
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
        document, problems = read_yaml("\n".join(lines) + "\n", "laughs.yaml")
        assert document.data["a9"] == [None] * 9
        assert sum(p.message.startswith("aliases are not allowed") for p in problems) == 81

    @pytest.mark.parametrize(
        "path", sorted((ROOT / "tests" / "config_invalid").glob("*.yaml")), ids=lambda p: p.name
    )
    def test_libyaml_and_pure_python_agree(self, path: Path) -> None:
        """The fast (libyaml) and fallback (PyYAML) parsers give the same data, lines, problems."""
        text = path.read_text(encoding="utf-8")
        fast_doc, fast_problems = read_yaml(text, path.name)
        pure_doc, pure_problems = read_yaml(text, path.name, pure=True)
        assert fast_doc == pure_doc
        # Syntax errors are worded by each parser in its own way; their place is the same.
        assert [(p.line, p.path) for p in fast_problems] == [
            (p.line, p.path) for p in pure_problems
        ]
        if not path.name.startswith("yaml_syntax"):
            assert fast_problems == pure_problems


class TestValidFile:
    def test_sections_are_read(self) -> None:
        """A full file yields its targets, services, SLAs and exclusions."""
        config = parse()
        assert [t.name for t in config.targets] == ["web-login", "edge.tcp", "net-canary"]
        assert config.targets[0].options == WebOptions(
            url="https://agent.example/login", method="HEAD"
        )
        assert config.targets[0].interval == 60.0
        assert config.targets[0].timeout == 15.0
        assert config.monitor.listen_address == ("::1", 9180)
        assert config.monitor.api_token == SecretRef(env="SLAWATCH_API_TOKEN")

    def test_money_is_exact(self) -> None:
        """monthly_fee written as a bare float still becomes the exact Decimal written."""
        sla = parse().slas[0]
        assert sla.monthly_fee == Decimal("10000.10")
        assert str(sla.monthly_fee) == "10000.10"
        assert sla.objective == Decimal("99.999")
        assert sla.credit_cap == Decimal("5000")

    def test_defaults(self) -> None:
        """Keys left out take the documented defaults."""
        config = parse()
        target = config.targets[2]
        assert (target.interval, target.timeout, target.role) == (30.0, 10.0, "canary")
        assert dict(target.labels) == {}
        sla = config.slas[0]
        assert sla.bucket_seconds == 300
        assert sla.timezone == "UTC"
        assert sla.min_probes == 1
        assert sla.unknown_buckets is UnknownPolicy.EXCLUDE
        assert sla.partial_exclusion is PartialExclusion.ANY_OVERLAP
        assert sla.claim_window_days == 30
        assert config.monitor.log_level == "info"
        assert config.monitor.rtp_port_range == (20000, 20999)
        assert config.monitor.evidence_retention == 400 * 86400
        assert config.monitor.allow_short_buckets is False

    def test_timeout_default_fits_short_interval(self) -> None:
        """With a 5s interval the default timeout is half of it, not 10s."""
        assert parse().targets[1].timeout == 2.5

    @pytest.mark.parametrize(
        ("listen", "address"),
        [
            ("127.0.0.1:9180", ("127.0.0.1", 9180)),
            ("localhost:80", ("localhost", 80)),
            ("[::]:9180", ("::", 9180)),
            ("0.0.0.0:0", ("0.0.0.0", 0)),
        ],
    )
    def test_listen_forms(self, listen: str, address: tuple[str, int]) -> None:
        """host:port with a name, an IPv4 or a bracketed IPv6 address; port 0 for tests."""
        text = VALID.replace('listen: "[::1]:9180"', f'listen: "{listen}"')
        assert parse(text).monitor.listen_address == address

    def test_state_dir_from_systemd(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """$STATE_DIRECTORY (first entry) is the default state_dir; the database lives in it."""
        monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/slawatch:/var/lib/other")
        config = parse()
        assert config.monitor.state_dir == Path("/var/lib/slawatch")
        assert config.monitor.database_path == Path("/var/lib/slawatch/slawatch.db")

    def test_state_dir_fallback(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without $STATE_DIRECTORY the state lives in ./var."""
        monkeypatch.delenv("STATE_DIRECTORY", raising=False)
        assert parse().monitor.state_dir == Path("var")


class TestImmutability:
    def test_models_are_frozen(self) -> None:
        """Assigning to a loaded config fails: a reload builds a new one."""
        config = parse()
        with pytest.raises(ValidationError):
            config.targets[0].interval = 5.0  # type: ignore[misc]

    def test_labels_are_read_only(self) -> None:
        """Labels are a read-only mapping, not a dict someone could change under the daemon."""
        labels = parse().targets[0].labels
        with pytest.raises(TypeError):
            labels["team"] = "other"  # type: ignore[index]


class TestContentHash:
    def test_comments_and_order_do_not_count(self) -> None:
        """Reformatting the file (comments, key order) keeps the hash."""
        reordered = VALID.replace("# a comment that must not change the content hash\n", "")
        reordered = reordered.replace(
            "    interval: 1m\n    timeout: 15s\n", "    timeout: 15s\n    interval: 60s\n"
        )
        assert parse(reordered).content_hash == parse().content_hash

    def test_a_changed_value_counts(self) -> None:
        """Changing a value changes the hash."""
        changed = VALID.replace("monthly_fee: 10000.10", "monthly_fee: 10000.20")
        assert parse(changed).content_hash != parse().content_hash
        assert len(parse().content_hash) == 64


class TestConversion:
    def test_sla_policy(self) -> None:
        """An SLA becomes the engine's SlaPolicy with exact figures and its rules."""
        (policy,) = parse().sla_policies()
        assert policy.name == "web-sla"
        assert policy.service == "web"
        assert policy.objective_percent == Decimal("99.999")
        assert policy.bucket_rule.kind is BucketRuleKind.FAILED_FRACTION
        assert policy.bucket_rule.failed_fraction == Fraction(1, 2)
        assert policy.credit.monthly_fee == Decimal("10000.10")
        assert policy.credit.currency == "EUR"
        assert policy.credit.effective_cap == Decimal("5000")

    def test_credit_tiers_keep_their_edges(self) -> None:
        """below/at_most/at_least/above become the tier's bounds and inclusivity."""
        tiers = parse().sla_policies()[0].credit.tiers
        assert tiers == (
            CreditTier(Decimal(10), Decimal("99.999"), False, Decimal("99.9"), True),
            CreditTier(Decimal(25), Decimal("99.9"), False, Decimal("99.0"), False),
            CreditTier(Decimal(50), Decimal("99.0"), True, None, True),
        )

    def test_tiers_work_with_the_engine(self) -> None:
        """The converted table picks the band the contract's wording picks, at each edge."""
        credit = parse().sla_policies()[0].credit
        picked = [
            credit_tier(Fraction(value), credit)
            for value in (Decimal("99.999"), Decimal("99.9"), Decimal("99.0"), Decimal("98"))
        ]
        assert [t.credit_percent if t else None for t in picked] == [None, 10, 50, 50]

    def test_service_defs(self) -> None:
        """Services keep their targets and quorum rule."""
        (service,) = parse().service_defs().values()
        assert service.targets == ("web-login", "edge.tcp")
        assert service.rule.kind is ServiceRuleKind.QUORUM
        assert service.rule.min_down == 2

    def test_exclusion_windows(self) -> None:
        """Exclusions become aware windows with their kind and services."""
        (window,) = parse().exclusion_windows()
        assert window.start == datetime(2026, 11, 10, 2, tzinfo=UTC)
        assert window.end == datetime(2026, 11, 10, 3, tzinfo=UTC)
        assert window.kind is ExclusionKind.SCHEDULED_MAINTENANCE
        assert window.services == frozenset({"web"})
        assert window.announced_at == datetime(2026, 11, 3, 9, tzinfo=UTC)

    def test_recurring_exclusions(self) -> None:
        """Recurring windows keep their rule, zone and duration."""
        weekly, nightly = parse().recurring_exclusions()
        assert weekly.rrule is not None
        assert weekly.cron is None
        assert weekly.dtstart == datetime(2026, 1, 4, 2)
        assert weekly.timezone == "Europe/London"
        assert weekly.duration == timedelta(hours=2)
        assert nightly.cron == "30 1 * * *"
        assert nightly.timezone == "UTC"
        assert nightly.services == frozenset()

    def test_canaries(self) -> None:
        """Canary-role targets are listed apart."""
        assert parse().canaries() == ("net-canary",)


class TestDurations:
    @given(config_durations())
    def test_round_trip(self, seconds: float) -> None:
        """format_duration and parse_duration invert each other on whole milliseconds."""
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)

    @given(config_durations(min_ms=1, max_ms=7 * 86_400_000))
    def test_through_the_file(self, seconds: float) -> None:
        """A recurring window's duration written in any unit reaches the policy unchanged."""
        text = VALID.replace("duration: 15m", f"duration: {format_duration(seconds)}")
        nightly = parse(text).recurring_exclusions()[1]
        assert nightly.duration.total_seconds() == pytest.approx(seconds, abs=1e-6)

    def test_examples(self) -> None:
        """Hand-checked renderings."""
        assert [format_duration(s) for s in (0, 0.25, 90, 5400, 694861)] == [
            "0s",
            "250ms",
            "1m30s",
            "1h30m",
            "1w1d1h1m1s",
        ]


def _tier_text(tier: dict[str, str]) -> str:
    return "{" + "".join(f"{k}: {v}, " for k, v in tier.items()) + "credit_percent: 0}"


def _sla_with_tiers(*tiers: dict[str, str]) -> str:
    lines = "".join(f"      - {_tier_text(t)}\n" for t in tiers)
    return (
        "targets:\n  - {name: a, kind: web, web: {url: x}}\n"
        "services:\n  - {name: s, targets: [a]}\n"
        "slas:\n  - name: sla\n    service: s\n    objective: 100\n"
        f"    monthly_fee: 1\n    currency: USD\n    credit_tiers:\n{lines}"
    )


class TestCreditTierOverlap:
    @given(tier_bounds(), tier_bounds())
    def test_matches_brute_force(self, first: dict[str, str], second: dict[str, str]) -> None:
        """Two tiers are refused exactly when some uptime (edges included) is in both."""
        a, b = (
            parse(_sla_with_tiers(t)).sla_policies()[0].credit.tiers[0] for t in (first, second)
        )
        shared = any(a.contains(point) and b.contains(point) for point in TIER_POINTS)
        text = _sla_with_tiers(first, second)
        if not shared:
            assert parse(text).sla_policies()[0].credit.tiers == (a, b)
            return
        with pytest.raises(ConfigError) as caught:
            parse(text)
        assert [m for _, _, m in caught.value.problems] == [
            "overlaps credit_tiers[0]: an uptime would fall in both bands"
        ]


class TestLenientShapes:
    def test_empty_sections_mean_none(self) -> None:
        """'exclusions:' with nothing under it is no exclusions, not an error."""
        text = "targets:\n  - {name: a, kind: web, web: {url: x}}\nmonitor:\nexclusions:\n"
        config = parse(text)
        assert config.exclusions == ()
        assert config.monitor.listen == "127.0.0.1:9180"

    def test_item_that_is_not_a_mapping(self) -> None:
        """A bare string where a target belongs is named at its line."""
        with pytest.raises(ConfigError) as caught:
            parse("targets:\n  - web-login\n")
        assert caught.value.problems == [
            (2, "targets[0]", "must be a mapping (key: value lines), got 'web-login'")
        ]

    def test_not_utf8(self, tmp_path: Path) -> None:
        """A file that is not UTF-8 is refused with the byte offset."""
        path = tmp_path / "latin1.yaml"
        path.write_bytes(b"targets: []\n# caf\xe9\n")
        with pytest.raises(ConfigError) as caught:
            load_config(path, KINDS)
        assert caught.value.problems == [
            (1, "", "must be UTF-8 text: invalid continuation byte at byte 17")
        ]


class TestCheckConfigCommand:
    def test_valid_file(self, tmp_path: Path) -> None:
        """A valid file prints the summary and exits 0."""
        path = tmp_path / "ok.yaml"
        path.write_text((ROOT / "config" / "minimal.yaml").read_text())
        out, err = io.StringIO(), io.StringIO()
        assert check_config(argparse.Namespace(config=str(path)), out, err) == 0
        assert out.getvalue().startswith("ok: 1 targets, 1 services, 1 SLAs (content ")
        assert err.getvalue() == ""

    def test_invalid_file(self, tmp_path: Path) -> None:
        """An invalid file lists its problems on stderr and exits 1."""
        path = tmp_path / "bad.yaml"
        path.write_text("targets:\n  - name: x\n    kind: nope\n    interval: 0s\n")
        out, err = io.StringIO(), io.StringIO()
        assert check_config(argparse.Namespace(config=str(path)), out, err) == 1
        lines = err.getvalue().splitlines()
        assert lines[0].startswith(f"{path}:3: targets[0].kind: must be a probe kind, one of: ")
        assert lines[1] == f"{path}:4: targets[0].interval: must be at least 1s, got '0s'"
        assert lines[-1] == f"2 problems in {path}"
        assert out.getvalue() == ""

    def test_registers_on_a_command_line(self, capsys: pytest.CaptureFixture[str]) -> None:
        """register() adds check-config with --config, and its func is the exit status."""
        parser = argparse.ArgumentParser(prog="slawatch")
        register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(
            ["check-config", "--config", str(ROOT / "config" / "minimal.yaml")]
        )
        assert args.func(args) == 0
        assert capsys.readouterr().out.startswith("ok: 1 targets, 1 services, 1 SLAs")

    def test_missing_file(self, tmp_path: Path) -> None:
        """A missing file is a ConfigError naming it, not a traceback."""
        with pytest.raises(ConfigError) as caught:
            load_config(tmp_path / "absent.yaml")
        assert (
            str(caught.value)
            == f"{tmp_path / 'absent.yaml'}:1: cannot read file: No such file or directory"
        )


class TestRealRegistry:
    def test_nested_option_problems(self) -> None:
        """Errors deep inside a real kind's options keep their full path and line."""
        text = (
            "targets:\n"
            "  - name: login\n"
            "    kind: http\n"
            "    http:\n"
            "      url: https://agent.example/login\n"
            "      auth: {basic: {username: probe, password: hunter2}}\n"
            "      tls: {insecure_skip_verifyy: true}\n"
        )
        with pytest.raises(ConfigError) as caught:
            parse_config_text(text, "real.yaml")
        (secret, unknown) = caught.value.problems
        assert secret == (
            6,
            "targets[0].http.auth.basic.password",
            "secrets are not written inline: use {env: NAME} or {file: PATH}, "
            "got an inline value (not shown)",
        )
        assert unknown[:2] == (7, "targets[0].http.tls.insecure_skip_verifyy")
        assert unknown[2].startswith("unknown key, expected one of: ")
        assert "hunter2" not in str(caught.value)

    def test_call_timeout_must_cover_the_call(self) -> None:
        """A sip_call target whose timeout is shorter than its scripted call is refused."""
        text = (
            "targets:\n"
            "  - name: ivr\n"
            "    kind: sip_call\n"
            "    interval: 1m\n"
            "    timeout: 20s\n"
            "    sip_call: {uri: 'sip:100@127.0.0.1', answer_timeout: 15s, duration: 10s}\n"
        )
        with pytest.raises(ConfigError) as caught:
            parse_config_text(text, "call.yaml")
        assert caught.value.problems == [
            (
                5,
                "targets[0].timeout",
                "must cover the longest sip_call run its options allow (26s), got '20s'",
            )
        ]
        fitting = text.replace("timeout: 20s", "timeout: 26s")
        assert parse_config_text(fitting, "call.yaml").targets[0].timeout == 26.0


def _documented_keys(section: str) -> set[str]:
    configuration = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    body = configuration.split(f"## `{section}`", 1)[1].split("\n## ", 1)[0]
    body = body.split("\n### ", 1)[0]
    keys: set[str] = set()
    for row in body.splitlines():
        if row.startswith("| `"):
            keys.update(re.findall(r"`([a-z_<>]+)`", row.split("|")[1]))
    return keys


class TestReferenceDocs:
    @pytest.mark.parametrize(
        ("section", "model"),
        [
            ("monitor", MonitorSettings),
            ("targets", TargetConfig),
            ("services", ServiceConfig),
            ("slas", SlaConfig),
            ("exclusions", ExclusionConfig),
            ("recurring_exclusions", RecurringExclusionConfig),
        ],
    )
    def test_every_key_is_documented(self, section: str, model: type[BaseModel]) -> None:
        """docs/configuration.md lists exactly the keys each section accepts."""
        expected = set(yaml_keys(model)) | ({"<kind>"} if model is TargetConfig else set())
        assert _documented_keys(section) == expected


class TestShippedExamples:
    @pytest.mark.parametrize("name", ["minimal.yaml", "ujet-voice.yaml"])
    def test_loads_with_the_real_registry(self, name: str) -> None:
        """The examples in config/ are valid against the probe kinds that actually exist."""
        config = load_config(ROOT / "config" / name)
        assert config.slas
        assert config.sla_policies()[0].credit.tiers

    def test_voice_example_follows_the_contract(self) -> None:
        """ujet-voice.yaml measures 99.999% in 5-minute buckets, claims within 30 days."""
        config = load_config(ROOT / "config" / "ujet-voice.yaml")
        voice = next(p for p in config.sla_policies() if p.service == "voice")
        assert voice.objective_percent == Decimal("99.999")
        assert voice.bucket_seconds == 300
        assert voice.claim_window_days == 30
        assert config.canaries()
        assert config.exclusion_windows()
        assert config.recurring_exclusions()
