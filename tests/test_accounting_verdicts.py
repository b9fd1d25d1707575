"""The flush's verdict pass skips the SLAs with nothing to write (issue 20): it writes exactly
what a pass visiting every SLA writes, after any sequence of results (late ones included),
time passing and exclusions.

Two daemons over fixed clocks get the same events; one forgets what it may skip before every
pass. Nothing depends on the date the tests run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.runtime.daemon import Daemon
from tests.daemon_verdicts import daemon_examples
from tests.strategies import harness_exclusions, harness_steps
from tests.test_metrics_sla_text import Harness

pytestmark = pytest.mark.timeout(300)


async def flush_pass(
    d: Daemon, late: list[tuple[int, str, int]]
) -> tuple[list[Any], dict[str, Any]]:
    """The verdict pass of one flush that the store took (the marks committed); rw25: the
    marks of SLAs without one resumed from the store first, as a flush does, and again for
    those the pass found without one (this pass's rows are the next flush's there)."""
    await d._resume_verdict_marks(d.clock())
    rows, marks = d._closed_verdicts(d.clock(), late)
    if d._verdicts_resume:
        await d._resume_verdict_marks(d.clock())
        more, again = d._closed_verdicts(d.clock(), ())
        rows, marks = [*rows, *more], {**marks, **again}
    d._verdicts_written.update(marks)
    d._verdicts_idle[1].update(d._verdicts_idle_next)
    return rows, marks


class TestVerdictSkip:
    @daemon_examples(20)
    @given(
        st.lists(
            harness_steps(
                st.tuples(st.just("flush")),
                harness_exclusions,
            ),
            max_size=25,
        )
    )
    def test_skipping_writes_what_visiting_every_sla_writes(
        self, tmp_path_factory: pytest.TempPathFactory, events: list[tuple[Any, ...]]
    ) -> None:
        """The rows of every pass, and the marks written after it, are those of a pass that
        visits every SLA."""

        async def run() -> None:
            skipping = Harness(tmp_path_factory.mktemp("skip"))
            visiting = Harness(tmp_path_factory.mktemp("visit"))
            both = (skipping, visiting)
            for h in both:
                h.history(3)
                await h.daemon.store.open()
            try:
                for number, event in enumerate([*events, ("flush",)]):
                    if event[0] == "result":
                        _, target, ok, age = event
                        for h in both:
                            h.feed(target, h.clock() - age, ok)
                    elif event[0] == "advance":
                        for h in both:
                            h.clock.advance(event[1])
                    elif event[0] == "exclude":
                        for h in both:
                            await h.exclude(f"x{number}", event[1], before=1800)
                    else:
                        outs = []
                        for h in both:
                            dirty = h.daemon.state.take_dirty()
                            if h is visiting:
                                h.daemon._verdicts_idle = (None, {})
                            rows, _ = await flush_pass(h.daemon, [key for key, _ in dirty])
                            # A skipped SLA has no mark (its mark would be the one written).
                            outs.append((rows, h.daemon._verdicts_written))
                        assert outs[0] == outs[1]
            finally:
                for h in both:
                    await h.daemon.store.close()

        asyncio.run(run())

    def test_a_quiet_second_visits_no_sla(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        """Once the verdicts are written, a pass a second later with no tally written
        visits no SLA (no running month asked), nor one writing a1's running bucket; one with
        a1's tally of a closed bucket written visits la and ld only; the pass after the next
        bucket settles visits them all."""

        async def run() -> None:
            h = Harness(tmp_path_factory.mktemp("quiet"))
            d = h.daemon
            h.history(3)
            await d.store.open()
            d.state.take_dirty()
            while (await flush_pass(d, []))[0]:
                pass
            asked: list[str] = []
            original = d.accounting.running_month

            def spy(policy: Any, now: Any) -> Any:
                asked.append(policy.name)
                return original(policy, now)

            d.accounting.running_month = spy  # type: ignore[method-assign]
            h.clock.advance(1)
            await flush_pass(d, [])
            assert asked == []
            h.feed("a1", h.clock() - 1, True)  # fl24: the running bucket's: no mark can move
            await flush_pass(d, [key for key, _ in d.state.take_dirty()])
            assert asked == []
            h.feed("a1", h.clock() - 900, True)  # a late one, in a closed bucket
            await flush_pass(d, [key for key, _ in d.state.take_dirty()])
            assert sorted(asked) == ["la", "ld"]
            asked.clear()
            h.clock.advance(15 * 60 + 60)  # every SLA's next bucket (5 and 15 minutes) settled
            await flush_pass(d, [])
            assert sorted(asked) == ["la", "lb", "lc", "ld"]
            await d.store.close()

        asyncio.run(run())
