"""One invalid file per rule in tests/config_invalid/, each with its exact error lines.

In the manner of blackbox_exporter's config_test.go: the file name names the rule, and the
expected text is the whole ``str(ConfigError)``, so a changed message or line number fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.config import ConfigError, parse_config_text
from tests.test_config import KINDS

HERE = Path(__file__).resolve().parent / "config_invalid"

EXPECTED: dict[str, list[str]] = {
    "anchor_alias.yaml": [
        (
            "anchor_alias.yaml:4: targets[0].web: anchors are not allowed (write plain "
            "data), got &login"
        ),
        (
            "anchor_alias.yaml:7: targets[1].web: aliases are not allowed (write the "
            "value out), got *login"
        ),
    ],
    "bucket_not_dividing_quarter_hour.yaml": [
        (
            "bucket_not_dividing_quarter_hour.yaml:14: slas[0].bucket: must divide 15 minutes "
            "exactly (such as 10s, 1m, 5m or 15m), got '7m'"
        ),
    ],
    "bucket_short_without_allow.yaml": [
        (
            "bucket_short_without_allow.yaml:14: slas[0].bucket: must be at least 5m "
            "(set monitor.allow_short_buckets: true for demos and tests), got '1m'"
        ),
    ],
    "claim_window_days_not_whole.yaml": [
        (
            "claim_window_days_not_whole.yaml:14: slas[0].claim_window_days: must be a "
            "whole number, got 7.5"
        ),
    ],
    "credit_percent_above_100.yaml": [
        (
            "credit_percent_above_100.yaml:15: slas[0].credit_tiers[0].credit_percent: "
            "must be a percentage between 0 and 100, got 150"
        ),
    ],
    "credit_tier_above_objective.yaml": [
        (
            "credit_tier_above_objective.yaml:15: slas[0].credit_tiers[0]: a tier with a "
            "credit must lie below the objective (99.9): bound it with below: 99.9"
        ),
    ],
    "credit_tier_empty_band.yaml": [
        (
            "credit_tier_empty_band.yaml:15: slas[0].credit_tiers[0].at_least: must be "
            "below the upper bound (the band is empty), got 99.5"
        ),
    ],
    "credit_tier_two_lower_bounds.yaml": [
        (
            "credit_tier_two_lower_bounds.yaml:15: slas[0].credit_tiers[0].above: give "
            "one lower bound, at_least or above, not both, got 99.0"
        ),
    ],
    "credit_tier_two_upper_bounds.yaml": [
        (
            "credit_tier_two_upper_bounds.yaml:15: slas[0].credit_tiers[0].at_most: give "
            "one upper bound, below or at_most, not both, got 99.5"
        ),
    ],
    "credit_tier_unknown_bound.yaml": [
        (
            "credit_tier_unknown_bound.yaml:15: slas[0].credit_tiers[0].less_than: "
            "unknown key, expected one of: below, at_most, at_least, above, "
            "credit_percent"
        ),
    ],
    "credit_tiers_overlap.yaml": [
        (
            "credit_tiers_overlap.yaml:16: slas[0].credit_tiers[1]: overlaps "
            "credit_tiers[0]: an uptime would fall in both bands"
        ),
    ],
    "credit_tiers_overlap_at_shared_edge.yaml": [
        (
            "credit_tiers_overlap_at_shared_edge.yaml:16: slas[0].credit_tiers[1]: "
            "overlaps credit_tiers[0]: an uptime would fall in both bands"
        ),
    ],
    "currency_lowercase.yaml": [
        (
            "currency_lowercase.yaml:13: slas[0].currency: must be a three-letter "
            "upper-case currency code such as USD or EUR, got 'usd'"
        ),
    ],
    "down_when_invalid.yaml": [
        (
            "down_when_invalid.yaml:8: services[0].down_when: must be one of: any, all, "
            "quorum, got 'majority'"
        ),
    ],
    "duplicate_key.yaml": [
        (
            "duplicate_key.yaml:5: targets[0].interval: duplicate key (first written on "
            "line 4): YAML would silently keep only the last one"
        ),
    ],
    "empty_file.yaml": [
        (
            "empty_file.yaml:1: empty_file.yaml is empty: expected a mapping with "
            "targets, services and slas"
        ),
    ],
    "exclusion_end_not_after_start.yaml": [
        (
            "exclusion_end_not_after_start.yaml:12: exclusions[0].end: must be after "
            "start (2026-11-10T04:00:00+00:00), got '2026-11-10T04:00:00Z'"
        ),
    ],
    "exclusion_id_duplicate.yaml": [
        (
            "exclusion_id_duplicate.yaml:14: recurring_exclusions[0].id: exclusion ids "
            "must be unique: already used at exclusions[0], got 'mw-1'"
        ),
    ],
    "exclusion_kind_unknown.yaml": [
        (
            "exclusion_kind_unknown.yaml:10: exclusions[0].kind: must be one of: "
            "scheduled_maintenance, force_majeure, telecom_provider, customer_network, "
            "customer_misconfiguration, third_party, suspension, pre_release_feature "
            "(did you mean 'scheduled_maintenance'?), got 'maintenance'"
        ),
    ],
    "exclusion_naive_time.yaml": [
        (
            "exclusion_naive_time.yaml:11: exclusions[0].start: must carry a UTC offset: "
            "add Z or +01:00, got '2026-11-10T02:00:00'"
        ),
    ],
    "exclusion_time_not_a_time.yaml": [
        (
            "exclusion_time_not_a_time.yaml:11: exclusions[0].start: must be a date and "
            "time such as 2026-11-10T02:00:00Z, got 'next tuesday'"
        ),
    ],
    "exclusion_unknown_service.yaml": [
        (
            "exclusion_unknown_service.yaml:13: exclusions[0].services[0]: must name a "
            "service, one of: web, got 'voice'"
        ),
    ],
    "failed_fraction_missing.yaml": [
        (
            "failed_fraction_missing.yaml:9: slas[0].failed_fraction: is required with "
            "unavailable_when: failed_fraction"
        ),
    ],
    "failed_fraction_out_of_range.yaml": [
        (
            "failed_fraction_out_of_range.yaml:15: slas[0].failed_fraction: must be more "
            "than 0 and at most 1, got 1.5"
        ),
    ],
    "failed_fraction_without_mode.yaml": [
        (
            "failed_fraction_without_mode.yaml:14: slas[0].failed_fraction: is only "
            "allowed with unavailable_when: failed_fraction, got 0.5"
        ),
    ],
    "interval_below_1s.yaml": [
        "interval_below_1s.yaml:5: targets[0].interval: must be at least 1s, got -5",
    ],
    "interval_not_a_duration.yaml": [
        (
            "interval_not_a_duration.yaml:5: targets[0].interval: must be a duration "
            "such as 30s, 5m or 1h30m, got '30 seconds'"
        ),
    ],
    "interval_too_long_for_bucket.yaml": [
        (
            "interval_too_long_for_bucket.yaml:4: targets[0].interval: must let 2 probe(s) "
            "fall in each 5m bucket of SLA web-sla (at most 2m30s), got '3m'"
        ),
    ],
    "kind_unknown.yaml": [
        (
            "kind_unknown.yaml:3: targets[0].kind: must be a probe kind, one of: port, "
            "web (did you mean 'web'?), got 'wbe'"
        ),
    ],
    "labels_invalid_name.yaml": [
        (
            "labels_invalid_name.yaml:5: targets[0].labels.team-name: is not a label "
            "name: use [a-zA-Z_][a-zA-Z0-9_]*"
        ),
    ],
    "merge_key.yaml": [
        ("merge_key.yaml:4: targets[0]: merge keys (<<) are not allowed: write the keys out"),
    ],
    "min_probes_zero.yaml": [
        ("min_probes_zero.yaml:14: slas[0].min_probes: must be greater than or equal to 1, got 0"),
    ],
    "monitor_allow_short_buckets_not_bool.yaml": [
        (
            "monitor_allow_short_buckets_not_bool.yaml:2: monitor.allow_short_buckets: "
            "must be true or false, got 'yes'"
        ),
    ],
    "monitor_evidence_retention_short.yaml": [
        (
            "monitor_evidence_retention_short.yaml:2: monitor.evidence_retention: must "
            "be at least 1d, got '12h'"
        ),
    ],
    "monitor_listen_invalid.yaml": [
        (
            "monitor_listen_invalid.yaml:2: monitor.listen: must be host:port such as "
            "127.0.0.1:9180 or [::1]:9180, got '::1:9180'"
        ),
    ],
    "monitor_log_level_invalid.yaml": [
        (
            "monitor_log_level_invalid.yaml:2: monitor.log_level: must be one of: debug, "
            "info, warning, error, got 'verbose'"
        ),
    ],
    "monitor_rtp_ports_invalid.yaml": [
        (
            "monitor_rtp_ports_invalid.yaml:2: monitor.rtp_ports: must be a range "
            "low-high with 1024 <= low <= high <= 65535, got '20999-20000'"
        ),
    ],
    "monitor_unknown_key.yaml": [
        (
            "monitor_unknown_key.yaml:2: monitor.state_directory: unknown key, expected "
            "one of: name, location, state_dir, database, store, listen, api_token, "
            "evidence_retention, allow_short_buckets, log_level, rtp_ports, web_config, sharding "
            "(did you mean 'state_dir'?)"
        ),
    ],
    "monthly_fee_missing.yaml": [
        "monthly_fee_missing.yaml:9: slas[0].monthly_fee: is required",
    ],
    "monthly_fee_negative.yaml": [
        ("monthly_fee_negative.yaml:12: slas[0].monthly_fee: must not be negative, got -1000"),
    ],
    "monthly_fee_not_a_number.yaml": [
        (
            "monthly_fee_not_a_number.yaml:12: slas[0].monthly_fee: must be a number "
            "such as 99.9 or \"10000.00\", got '1,000.00'"
        ),
    ],
    "non_string_key.yaml": [
        ("non_string_key.yaml:6: targets[0].labels: keys must be strings (quote it), got 1"),
    ],
    "number_leading_zero_octal.yaml": [
        (
            "number_leading_zero_octal.yaml:15: slas[0].credit_tiers[0].credit_percent: "
            "write numbers in plain decimal (YAML 1.1 reads a leading 0 as octal, 0x as hex "
            "and 1:30 as 90; quote it if it is text), got 010"
        ),
    ],
    "objective_above_100.yaml": [
        (
            "objective_above_100.yaml:11: slas[0].objective: must be a percentage above "
            "0 and at most 100, got 100.5"
        ),
    ],
    "objective_zero.yaml": [
        (
            "objective_zero.yaml:11: slas[0].objective: must be a percentage above 0 and "
            "at most 100, got 0"
        ),
    ],
    "options_block_missing.yaml": [
        ("options_block_missing.yaml:2: targets[0].web: an options block named 'web' is required"),
    ],
    "options_block_wrong_kind.yaml": [
        (
            "options_block_wrong_kind.yaml:5: targets[0].port: options block does not "
            "match kind 'web': name it 'web'"
        ),
    ],
    "options_invalid_value.yaml": [
        (
            "options_invalid_value.yaml:6: targets[0].port.port: must be less than or "
            "equal to 65535, got 70000"
        ),
    ],
    "options_unknown_key.yaml": [
        (
            "options_unknown_key.yaml:6: targets[0].web.methd: unknown key, expected one "
            "of: url, method, password (did you mean 'method'?)"
        ),
    ],
    "options_written_as_options.yaml": [
        (
            "options_written_as_options.yaml:5: targets[0].options: unknown key: write "
            "the options under 'web'"
        ),
    ],
    "quorum_missing.yaml": [
        ("quorum_missing.yaml:6: services[0].quorum: is required with down_when: quorum"),
    ],
    "quorum_out_of_range.yaml": [
        (
            "quorum_out_of_range.yaml:9: services[0].quorum: must be between 1 and the "
            "number of members (1), got 2"
        ),
    ],
    "quorum_without_quorum_mode.yaml": [
        (
            "quorum_without_quorum_mode.yaml:8: services[0].quorum: is only allowed with "
            "down_when: quorum, got 1"
        ),
    ],
    "recurring_cron_invalid.yaml": [
        (
            "recurring_cron_invalid.yaml:8: recurring_exclusions[0].cron: must be a "
            "5-field cron expression such as '0 2 * * SUN', got '0 25 * * SUN'"
        ),
    ],
    "recurring_cron_six_fields.yaml": [
        (
            "recurring_cron_six_fields.yaml:8: recurring_exclusions[0].cron: must be a "
            "5-field cron expression such as '0 2 * * SUN', got '0 2 * * SUN 30'"
        ),
    ],
    "recurring_dtstart_with_cron.yaml": [
        (
            "recurring_dtstart_with_cron.yaml:9: recurring_exclusions[0].dtstart: is "
            "only used with rrule, got '2026-01-04T02:00:00'"
        ),
    ],
    "recurring_duration_over_7_days.yaml": [
        (
            "recurring_duration_over_7_days.yaml:9: recurring_exclusions[0].duration: "
            "must be at most 1w, got '8d'"
        ),
    ],
    "recurring_duration_zero.yaml": [
        (
            "recurring_duration_zero.yaml:9: recurring_exclusions[0].duration: must be "
            "more than 0s, got '0s'"
        ),
    ],
    "recurring_neither_rrule_nor_cron.yaml": [
        (
            "recurring_neither_rrule_nor_cron.yaml:6: recurring_exclusions[0].rrule: "
            "give exactly one of rrule or cron"
        ),
    ],
    "recurring_rrule_and_cron.yaml": [
        (
            "recurring_rrule_and_cron.yaml:8: recurring_exclusions[0].rrule: give "
            "exactly one of rrule or cron"
        ),
        (
            "recurring_rrule_and_cron.yaml:9: recurring_exclusions[0].dtstart: is only "
            "used with rrule, got '2026-01-04T02:00:00'"
        ),
    ],
    "recurring_rrule_invalid.yaml": [
        (
            "recurring_rrule_invalid.yaml:8: recurring_exclusions[0].rrule: must be an "
            "RFC 5545 RRULE (invalid 'FREQ': FORTNIGHTLY), got "
            "'FREQ=FORTNIGHTLY;BYDAY=SU'"
        ),
    ],
    "recurring_rrule_without_dtstart.yaml": [
        (
            "recurring_rrule_without_dtstart.yaml:6: recurring_exclusions[0].dtstart: is "
            "required with rrule (local time in timezone)"
        ),
    ],
    "role_invalid.yaml": [
        (
            "role_invalid.yaml:5: targets[0].role: must be one of: probe, canary (did "
            "you mean 'canary'?), got 'canry'"
        ),
    ],
    "secret_inline_api_token.yaml": [
        (
            "secret_inline_api_token.yaml:2: monitor.api_token: secrets are not written "
            "inline: use {env: NAME} or {file: PATH}, got an inline value (not shown)"
        ),
    ],
    "secret_inline_in_options.yaml": [
        (
            "secret_inline_in_options.yaml:6: targets[0].web.password: secrets are not "
            "written inline: use {env: NAME} or {file: PATH}, got an inline value (not "
            "shown)"
        ),
    ],
    "secret_ref_both_forms.yaml": [
        (
            "secret_ref_both_forms.yaml:2: monitor.api_token: give exactly one of 'env' "
            "(a variable name) or 'file' (a path), got {'env': 'TOKEN', 'file': "
            "'/etc/slawatch/token'}"
        ),
    ],
    "service_canary_member.yaml": [
        (
            "service_canary_member.yaml:11: services[0].targets[1]: is a canary (it "
            "watches the monitor's own network) and cannot be part of a service, got "
            "'net-canary'"
        ),
    ],
    "service_target_twice.yaml": [
        ("service_target_twice.yaml:7: services[0].targets[1]: is listed twice, got 'web-login'"),
    ],
    "service_unknown_target.yaml": [
        (
            "service_unknown_target.yaml:7: services[0].targets[0]: must name a target, "
            "one of: web-login (did you mean 'web-login'?), got 'web-logon'"
        ),
    ],
    "sla_name_duplicate.yaml": [
        (
            "sla_name_duplicate.yaml:14: slas[1].name: SLA names must be unique: already "
            "used at slas[0], got 'web-sla'"
        ),
    ],
    "sla_unknown_service.yaml": [
        (
            "sla_unknown_service.yaml:10: slas[0].service: must name a service, one of: "
            "web (did you mean 'web'?), got 'wbe'"
        ),
    ],
    "target_name_duplicate.yaml": [
        (
            "target_name_duplicate.yaml:5: targets[1].name: target names must be unique: "
            "already used at targets[0], got 'web-login'"
        ),
    ],
    "target_name_pattern.yaml": [
        (
            "target_name_pattern.yaml:2: targets[0].name: must start with a lower-case "
            "letter or digit and use only a-z 0-9 _ . -, got 'Web_Login'"
        ),
    ],
    "targets_empty.yaml": [
        "targets_empty.yaml:1: targets: must list at least one target, got []",
    ],
    "targets_missing.yaml": [
        "targets_missing.yaml:1: targets: is required",
        (
            "targets_missing.yaml:3: services[0].targets[0]: must name a target, one of: "
            "(none defined), got 'web-login'"
        ),
    ],
    "timeout_not_below_interval.yaml": [
        (
            "timeout_not_below_interval.yaml:6: targets[0].timeout: must be less than "
            "interval (10s), got '10s'"
        ),
    ],
    "timeout_zero.yaml": [
        "timeout_zero.yaml:5: targets[0].timeout: must be more than 0s, got '0s'",
    ],
    "timezone_host_localtime.yaml": [
        (
            "timezone_host_localtime.yaml:14: slas[0].timezone: must be an IANA time zone "
            "such as UTC or Europe/London, not the host's own zone, got 'localtime'"
        ),
    ],
    "timezone_invalid.yaml": [
        (
            "timezone_invalid.yaml:14: slas[0].timezone: must be an IANA time zone such "
            "as UTC or Europe/London (did you mean 'Europe/London'?), got 'Europe/Londn'"
        ),
    ],
    "top_level_not_mapping.yaml": [
        (
            "top_level_not_mapping.yaml:1: the file must be a mapping with targets, "
            "services and slas, got ['targets']"
        ),
    ],
    "unknown_target_key.yaml": [
        (
            "unknown_target_key.yaml:5: targets[0].intervall: unknown key, expected one "
            "of: name, kind, interval, timeout, role, labels, port, web (did you mean "
            "'interval'?)"
        ),
    ],
    "unknown_top_level_key.yaml": [
        (
            "unknown_top_level_key.yaml:5: service: unknown key, expected one of: "
            "monitor, targets, services, slas, exclusions, recurring_exclusions, support "
            "(did you mean 'services'?)"
        ),
    ],
    "yaml_syntax_error.yaml": [
        (
            "yaml_syntax_error.yaml:5: YAML syntax error at column 1: while parsing a flow "
            "mapping: did not find expected ',' or '}'"
        ),
    ],
    "yaml_tag.yaml": [
        (
            "yaml_tag.yaml:4: targets[0].web.url: YAML tags are not allowed (write plain "
            "data), got !!python/name:os.system"
        ),
    ],
    # Magnitudes (issue 11): what check-config accepts must be computable.
    "monthly_fee_too_large.yaml": [
        (
            "monthly_fee_too_large.yaml:12: slas[0].monthly_fee: must be less than 10^12 "
            "in size, got '1e999999999'"
        ),
    ],
    "monthly_fee_too_many_places.yaml": [
        (
            "monthly_fee_too_many_places.yaml:12: slas[0].monthly_fee: must have at most 4 "
            "decimal places, got 10000.123456"
        ),
    ],
    "objective_too_many_places.yaml": [
        (
            "objective_too_many_places.yaml:11: slas[0].objective: must have at most 6 "
            "decimal places, got 99.12345678"
        ),
    ],
    "credit_percent_too_many_places.yaml": [
        (
            "credit_percent_too_many_places.yaml:14: slas[0].credit_tiers[0].credit_percent: "
            "must have at most 6 decimal places, got '1e-9'"
        ),
    ],
    "monitor_evidence_retention_too_long.yaml": [
        (
            "monitor_evidence_retention_too_long.yaml:2: monitor.evidence_retention: must be "
            "at most 520w, got '100000d'"
        ),
    ],
    "exclusion_time_out_of_years.yaml": [
        (
            "exclusion_time_out_of_years.yaml:11: exclusions[0].start: must lie in the years "
            "2000 to 2099, got '0001-01-01T00:00:00Z'"
        ),
        (
            "exclusion_time_out_of_years.yaml:12: exclusions[0].end: must lie in the years "
            "2000 to 2099, got '9999-12-31T23:59:59Z'"
        ),
    ],
    # Structure (issue 11): hostile files end in one line, not a RecursionError.
    "nesting_too_deep.yaml": [
        (
            "nesting_too_deep.yaml:1: mappings and lists nest deeper than 64 levels: not a "
            "slawatch configuration"
        ),
    ],
    "key_not_printable.yaml": [
        "key_not_printable.yaml:2: targets[0].kind: is required",
        "key_not_printable.yaml:3: targets[0]: keys must be printable text, got 'kind\\tx'",
    ],
}


class TestInvalidFiles:
    @pytest.mark.parametrize("name", sorted(EXPECTED))
    def test_exact_error(self, name: str) -> None:
        """The file is refused with exactly the expected lines, sorted by line."""
        with pytest.raises(ConfigError) as caught:
            parse_config_text((HERE / name).read_text(encoding="utf-8"), name, KINDS)
        assert str(caught.value).splitlines() == EXPECTED[name]

    def test_every_file_has_an_expectation(self) -> None:
        """No rule file sits in the folder untested."""
        assert sorted(p.name for p in HERE.glob("*.yaml")) == sorted(EXPECTED)

    def test_problems_carry_line_path_message(self) -> None:
        """ConfigError.problems holds (line, key path, message) tuples in line order."""
        with pytest.raises(ConfigError) as caught:
            parse_config_text((HERE / "targets_missing.yaml").read_text(), "t.yaml", KINDS)
        assert caught.value.problems == [
            (1, "targets", "is required"),
            (
                3,
                "services[0].targets[0]",
                "must name a target, one of: (none defined), got 'web-login'",
            ),
        ]


class TestAllProblemsAtOnce:
    def test_problems_from_every_section(self) -> None:
        """Problems in different sections and layers are all reported in one run."""
        text = (
            "targets:\n"
            "  - name: web-login\n"
            "    kind: web\n"
            "    interval: 0.5s\n"
            "    web: {url: x, methd: GET}\n"
            "services:\n"
            "  - name: web\n"
            "    targets: [web-login, nope]\n"
            "slas:\n"
            "  - name: web-sla\n"
            "    service: web\n"
            "    objective: 99.9\n"
            "    monthly_fee: 100\n"
            "    currency: EURO\n"
        )
        with pytest.raises(ConfigError) as caught:
            parse_config_text(text, "all.yaml", KINDS)
        assert [(line, path) for line, path, _ in caught.value.problems] == [
            (4, "targets[0].interval"),
            (5, "targets[0].web.methd"),
            (8, "services[0].targets[1]"),
            (14, "slas[0].currency"),
        ]
