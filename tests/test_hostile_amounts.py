"""Numbers the file may hold are numbers the engine can compute with (issue 11, defect 4's cause).

``monthly_fee: "1e999999999"`` passed check-config and then raised ``decimal.Overflow`` at the
first unavailable bucket, killing the daemon's write loop. Here Hypothesis writes SLA figures
as text, hostile magnitudes included; whatever ``check-config``'s parser accepts is run through
the month computation with every bucket unavailable (the largest credit) and rendered.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from monitor.config import ConfigError, parse_config_text
from monitor.sla.calendar import Month, month_grid
from monitor.sla.month import compute_month
from monitor.sla.policy import Tally
from tests.test_config import KINDS

pytestmark = pytest.mark.timeout(120)

MONTH = Month(2026, 2)

_HOSTILE = [
    "1e999999999",
    "-1e999999999",
    "1e-999999999",
    "1E+30",
    "999999999999.9999",
    "1000000000000",
    "0.000000001",
    "99.9999999",
    "NaN",
    "Infinity",
    "1_000",
    "0",
    "100",
    "99.999",
]
hostile = st.one_of(
    st.sampled_from(_HOSTILE),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
)
"""Any number as text: mostly refused, which is the point of the bounds."""


def plausible(low: str, high: str, places: int) -> st.SearchStrategy[str]:
    """Values in range at the edge of the precision bound, or now and then a hostile one."""
    inside = st.decimals(min_value=Decimal(low), max_value=Decimal(high), places=places)
    return st.one_of(inside.map(str), inside.map(str), inside.map(str), hostile)


def _config(objective: str, fee: str, cap: str | None, percent: str, fraction: str) -> str:
    cap_line = f'    credit_cap: "{cap}"\n' if cap is not None else ""
    return (
        "monitor: {allow_short_buckets: true}\n"
        "targets:\n"
        "  - {name: a, kind: port, port: {host: 127.0.0.1, port: 1}}\n"
        "services:\n"
        "  - {name: web, targets: [a]}\n"
        "slas:\n"
        "  - name: s\n"
        "    service: web\n"
        "    bucket: 15m\n"
        f'    objective: "{objective}"\n'
        f'    monthly_fee: "{fee}"\n'
        f"{cap_line}"
        "    currency: EUR\n"
        "    unavailable_when: failed_fraction\n"
        f'    failed_fraction: "{fraction}"\n'
        "    credit_tiers:\n"
        f'      - {{below: "{objective}", credit_percent: "{percent}"}}\n'
    )


class TestAcceptedFiguresCompute:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
    @given(
        objective=plausible("0.000001", "100", 6),
        fee=plausible("0", "999999999999.9999", 4),
        cap=st.one_of(st.none(), plausible("0", "999999999999.9999", 4)),
        percent=plausible("0", "100", 6),
        fraction=plausible("0.000001", "1", 6),
    )
    def test_worst_month_computes(
        self, objective: str, fee: str, cap: str | None, percent: str, fraction: str
    ) -> None:
        """Accepted figures give a month (every bucket unavailable) whose credit is a finite
        amount no larger than the fee, rendered to JSON without an exception."""
        try:
            config = parse_config_text(
                _config(objective, fee, cap, percent, fraction), "sla.yaml", KINDS
            )
        except ConfigError:
            reject()
        (policy,) = config.sla_policies()
        service = config.service_defs()["web"]
        grid = month_grid(MONTH, "UTC", 900)
        failed = Tally(ok=0, failed=1)
        tallies = {"a": {grid.bucket_start(index): failed for index in range(grid.count)}}
        result = compute_month(policy, service, MONTH, tallies, ())
        assert result.buckets_unavailable == grid.count
        rendered = json.loads(json.dumps(result.to_json()))
        amount = Decimal(rendered["credit_amount"])
        assert amount.is_finite()
        assert 0 <= amount <= Decimal(fee)

    def test_the_reported_fee_is_refused(self) -> None:
        """The issue's own value is refused with one line naming the field."""
        with pytest.raises(ConfigError) as caught:
            parse_config_text(_config("99.9", "1e999999999", None, "10", "0.5"), "s.yaml", KINDS)
        assert str(caught.value) == (
            "s.yaml:11: slas[0].monthly_fee: must be less than 10^12 in size, got '1e999999999'"
        )
