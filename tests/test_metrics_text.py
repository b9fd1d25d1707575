"""The per-target families written as text: the same bytes prometheus_client would write."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from types import MappingProxyType, SimpleNamespace
from typing import Any, ClassVar
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
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


NAMES = ["a", "b", 'q"\\x\n', "d", "e", "f", "g"]
DETAILS: list[dict[str, Any]] = [
    {},
    {"status_code": 200},
    {"status_code": 503},
    {"status_code": 503, "certificate_expiry_timestamp": 1.8e9, "flag": True},
    {"mos": 4.25, "rtp_jitter_seconds": float("nan"), "sip_status": 1e20},
]
"""Target names (one with the characters a label value escapes) and the details drawn."""
RESULTS = st.tuples(
    st.just("result"),
    st.sampled_from(NAMES[:3]) | st.sampled_from(NAMES),
    st.sampled_from(list(Outcome)),
    st.integers(0, len(DETAILS) - 1),
    st.floats(0, 2e9, allow_nan=False),
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

    @settings(max_examples=200, deadline=None)
    # A status code moving under the same detail keys (the lines kept when they are equal).
    @example(
        [("result", "a", Outcome.UP, 1, 0.0), ("scrape",), ("result", "a", Outcome.UP, 2, 0.0)]
    )
    @given(
        st.lists(
            st.one_of(
                RESULTS,
                RESULTS,  # results (and scrapes) drawn more often than the rest
                RESULTS,
                st.tuples(st.just("scrape")),
                st.tuples(st.just("scrape")),
                st.tuples(st.just("interrupted")),
                st.tuples(st.just("forget"), st.lists(st.sampled_from(NAMES), unique=True)),
                st.tuples(st.just("reload during"), st.integers(0, 3)),
                st.tuples(
                    st.just("reload"),
                    st.lists(st.sampled_from(NAMES), unique=True),
                    st.lists(st.sampled_from(["http", "tcp", 'k"\\\n']), min_size=7, max_size=7),
                    st.sampled_from(["probe", "canary"]),
                ),
            ),
            max_size=40,
        )
    )
    def test_cached_text_equals_a_fresh_rendering(self, events: list[tuple[Any, ...]]) -> None:
        """After any sequence of results, reloads (targets added, removed, reordered, their
        labels changed; the live state forgetting the removed ones, or some alone), scrapes
        cancelled while they yield and reloads or results while a scrape yields, the renderer
        fed by the live state's changes writes exactly what a renderer without a cache
        writes, and that is byte for byte generate_latest's. Two targets per chunk, so that
        chunks and yields are many."""

        def targets_of(names: Iterable[str], kinds: list[str], role: str) -> tuple[Any, ...]:
            return tuple(
                SimpleNamespace(name=name, kind=kinds[NAMES.index(name)], role=role)
                for name in names
            )

        async def run() -> None:
            state = LiveState()
            config = SimpleNamespace(targets=targets_of(NAMES[:4], ["http"] * 7, "probe"))
            daemon: Any = SimpleNamespace(config=config, state=state)
            cached = metrics.TargetFamilies(daemon)
            clock = [1_795_000_000.0]

            def reload(event: tuple[Any, ...]) -> None:
                _, names, kinds, role = event
                daemon.config = SimpleNamespace(targets=targets_of(names, kinds, role))
                state.forget_targets(set(names))

            def play(event: tuple[Any, ...]) -> None:
                if event[0] == "result":
                    _, name, outcome, details, at = event
                    clock[0] += 1.5
                    state.record(result(name, outcome, at or clock[0], **DETAILS[details]), ())
                elif event[0] == "reload":
                    reload(event)
                elif event[0] == "forget":  # the live state alone (the daemon: with a reload)
                    state.forget_targets(set(event[1]))

            for event in [*events, ("scrape",)]:
                play(event)
                if event[0] == "interrupted":
                    task = asyncio.ensure_future(cached.render_parts())
                    await asyncio.sleep(0)  # the scrape runs to its first yield
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                elif event[0] == "reload during":
                    task = asyncio.ensure_future(cached.render_parts())
                    for _ in range(event[1]):
                        await asyncio.sleep(0)
                    state.record(result(NAMES[event[1]], Outcome.UP, clock[0]), ())
                    reload(("reload", NAMES[event[1] :], ["tcp"] * 7, "probe"))
                    await task
                elif event[0] == "scrape":
                    fresh = await metrics.TargetFamilies(daemon).render()
                    assert await cached.render() == fresh
                    registry = CollectorRegistry(auto_describe=False)
                    registry.register(ReferenceCollector(list(daemon.config.targets), state))
                    assert fresh.encode() == generate_latest(registry)

        with mock.patch.object(metrics, "RENDER_CHUNK", 2):
            asyncio.run(run())

    def test_a_scrape_reads_only_the_targets_with_a_new_result(self) -> None:
        """ps32 (issue 20): after a scrape, the next one reads the live state of the targets
        a result was recorded for only, writes their lines only, and hands out the very pieces
        of the previous scrape for every chunk none of them is in (nothing joined again)."""

        class CountingDict(dict[str, Any]):
            reads: ClassVar[list[str]] = []

            def get(self, key: str, default: Any = None) -> Any:
                self.reads.append(key)
                return super().get(key, default)

        names = [f"t{number:04d}" for number in range(1000)]
        targets = tuple(SimpleNamespace(name=name, kind="http", role="probe") for name in names)
        state = LiveState()
        for number, name in enumerate(names):
            state.record(result(name, Outcome.UP, 1_795_000_000.0 + number, status_code=200), ())
        state.targets = CountingDict(state.targets)
        daemon: Any = SimpleNamespace(config=SimpleNamespace(targets=targets), state=state)
        families = metrics.TargetFamilies(daemon)

        async def run() -> None:
            before = await families.render_parts()
            written: list[str] = []
            blocks = metrics._target_blocks

            def counted(name: str, *args: Any) -> tuple[str, ...]:
                written.append(name)
                return blocks(name, *args)

            with mock.patch.object(metrics, "_target_blocks", counted):
                for name in ("t0003", "t0007"):  # both in the first chunk
                    state.record(result(name, Outcome.DOWN, 1_795_000_100.0), ())
                CountingDict.reads.clear()  # (recording reads the status too)
                after = await families.render_parts()
            assert sorted(CountingDict.reads) == ["t0003", "t0007"]
            assert sorted(written) == ["t0003", "t0007"]
            assert len(after) == len(before)
            moved = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a is not b]
            # Each family's pieces: its header, then its four chunks of 250. The first chunk of
            # success, duration, counts, start and status code (gone from the two results)
            # moved; not its phases (the same as before), nor any other chunk.
            assert moved == [family * 5 + 1 for family in (0, 1, 3, 4, 5)]
            assert b"".join(after) == (await metrics.TargetFamilies(daemon).render_bytes())

        asyncio.run(run())
