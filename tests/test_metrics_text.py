"""The per-target families written as text: the same bytes prometheus_client would write."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from monitor.metrics import collector as metrics
from monitor.runtime.state import LiveState
from probes.result import Outcome, ProbeResult

pytestmark = [pytest.mark.timeout(60), pytest.mark.calendar]

LABELS = ["target", "kind", "role"]


class ReferenceCollector(Collector):
    """The per-target families built the prometheus_client way (what the text replaces)."""

    def __init__(self, targets: list[Any], state: LiveState) -> None:
        self._targets = targets
        self._state = state

    def collect(self) -> Iterable[Metric]:
        success = GaugeMetricFamily(
            "slawatch_probe_success", metrics.HELP_PROBE_SUCCESS, labels=LABELS
        )
        duration = GaugeMetricFamily(
            "slawatch_probe_duration_seconds", metrics.HELP_PROBE_DURATION, labels=LABELS
        )
        phases = GaugeMetricFamily(
            "slawatch_probe_phase_seconds", metrics.HELP_PROBE_PHASE, labels=[*LABELS, "phase"]
        )
        totals = CounterMetricFamily(
            "slawatch_probes", metrics.HELP_PROBES_TOTAL, labels=[*LABELS, "outcome"]
        )
        last_run = GaugeMetricFamily(
            "slawatch_probe_last_run_timestamp_seconds", metrics.HELP_LAST_RUN, labels=LABELS
        )
        details = [
            (GaugeMetricFamily(name, text, labels=LABELS), key)
            for name, key, text in metrics.DETAIL_GAUGES
        ]
        for target in self._targets:
            status = self._state.targets.get(target.name)
            labels = [target.name, target.kind, target.role]
            outcomes = status.outcomes if status else dict.fromkeys(Outcome, 0)
            for outcome, count in outcomes.items():
                totals.add_metric([*labels, outcome.value], count)
            if status is None or status.last is None:
                continue
            last = status.last
            success.add_metric(labels, 1.0 if last.ok else 0.0)
            duration.add_metric(labels, last.duration_seconds)
            last_run.add_metric(labels, last.started_at)
            for phase, seconds in last.phases.items():
                phases.add_metric([*labels, phase], seconds)
            for family, key in details:
                value = last.details.get(key)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    family.add_metric(labels, float(value))
        yield from (success, duration, phases, totals, last_run)
        yield from (family for family, _ in details)


def result(name: str, outcome: Outcome, at: float, **details: Any) -> ProbeResult:
    return ProbeResult(
        name,
        outcome,
        at,
        duration_seconds=0.0123456789 if outcome is Outcome.UP else 5.0,
        reason="" if outcome is Outcome.UP else "status_code_503",
        phases=MappingProxyType({"connect": 1.5e-05, "first_byte": 0.25}),
        details=MappingProxyType(details),
    )


class TestTargetFamilies:
    def test_text_equals_generate_latest_and_follows_new_results(self) -> None:
        """Probed and unprobed targets, odd label values, big, small, NaN and boolean
        details: the text is byte for byte generate_latest's, before and after more
        results arrive (the per-target cache is refreshed)."""
        targets = [
            SimpleNamespace(name="web-a", kind="http", role="probe"),
            SimpleNamespace(name="never", kind="tcp", role="canary"),
            SimpleNamespace(name='odd"\\name', kind="sip_options", role="probe"),
            SimpleNamespace(name="sip.b", kind="sip_call", role="probe"),
        ]
        state = LiveState()
        state.record(result("web-a", Outcome.UP, 1_795_000_000.25, status_code=200), ())
        state.record(
            result(
                'odd"\\name',
                Outcome.DOWN,
                1_795_000_001.5,
                status_code=503,
                certificate_expiry_timestamp=1.8e9,
                flag=True,
            ),
            (),
        )
        state.record(
            result("sip.b", Outcome.UP, 12.0, mos=4.25, rtp_jitter_seconds=float("nan")), ()
        )
        daemon: Any = SimpleNamespace(config=SimpleNamespace(targets=targets), state=state)
        families = metrics.TargetFamilies(daemon)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ReferenceCollector(targets, state))

        assert asyncio.run(families.render()).encode() == generate_latest(registry)
        state.record(result("web-a", Outcome.TIMEOUT, 1_795_000_030.0, sip_status=1e20), ())
        state.record(result("never", Outcome.UP, 1_795_000_031.0, rtp_packets_received=7), ())
        assert asyncio.run(families.render()).encode() == generate_latest(registry)
