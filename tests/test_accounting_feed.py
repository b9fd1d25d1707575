"""The accounting's change feed (issue 20): what tells ``/metrics`` which SLAs to ask again.

A daemon over a fixed clock (results fed through its own path, no probe runs), so nothing
depends on the date the tests run.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from monitor.instants import utc_from_epoch
from monitor.sla.policy import ExclusionKind, ExclusionWindow
from tests.test_metrics_sla_text import T0, Harness

pytestmark = pytest.mark.timeout(120)


class TestChangeFeed:
    def test_each_change_names_its_slas(self, tmp_path: Path) -> None:
        """A tally changed names the SLAs reading it (apart when only the running bucket's
        provisional state can move); a bucket
        elapsing names an SLA once its month is asked; a late result names its SLA; new
        inputs set ``everything``; ``take`` empties the feed."""
        h = Harness(tmp_path)
        h.history(2)
        d = h.daemon
        accounting = d.accounting
        policies = {p.name: p for p in accounting.inputs.policies}
        moment = utc_from_epoch(h.clock())
        for policy in policies.values():
            accounting.month_result(policy, moment)
        feed = accounting.watch()
        assert feed.take() == (False, set())

        # Nothing moved: asking again names nothing.
        for policy in policies.values():
            accounting.month_result(policy, moment)
        assert feed.take() == (False, set())

        # A tally of a1 in the running bucket (a canary's cover): its provisional state only.
        accounting.tally_changed(300, "a1", int(T0 - T0 % 300))
        assert feed.take() == (False, set())
        assert feed.take_running() == {"la", "ld"}
        # One in a closed bucket (a bucket set outright): the months reading it.
        accounting.tally_changed(300, "a1", int(T0 - T0 % 300) - 600)
        assert feed.take() == (False, {"la", "ld"})
        assert feed.take_running() == set()

        # A bucket elapses: the month moves when asked, and says so.
        h.clock.advance(300)
        accounting.month_result(policies["lb"], utc_from_epoch(h.clock()))
        assert feed.take() == (False, {"lb"})

        # A late result in a closed bucket of c1 (the daemon tells the accounting).
        h.feed("c1", h.clock() - 3600, False)
        assert feed.take()[1] == {"lc"}

        # While paused (the consumer asking itself), its own calls are not echoed back.
        feed.paused = True
        accounting.month_result(policies["la"], utc_from_epoch(h.clock()))
        feed.paused = False
        assert feed.take() == (False, set())

        # New inputs (an exclusion added through the API, a reload): everything.
        inputs = d._inputs()
        window = ExclusionWindow(
            id="x",
            start=utc_from_epoch(T0 - 600),
            end=utc_from_epoch(T0),
            kind=ExclusionKind.TELECOM_PROVIDER,
            reason="carrier outage",
            services=frozenset({"sa"}),
            source="api",
        )
        accounting.replace_inputs(type(inputs)(**{**inputs.__dict__, "windows": (window,)}))
        assert feed.take()[0] is True

    def test_a_dropped_feed_is_not_held(self, tmp_path: Path) -> None:
        """The accounting holds its feeds weakly: a scrape renderer dropped stops there."""
        h = Harness(tmp_path)
        accounting = h.daemon.accounting
        accounting.watch()
        gc.collect()
        assert len(accounting._feeds) == 0


class TestFastPath:
    def test_same_bucket_same_answer_and_every_change_seen(self, tmp_path: Path) -> None:
        """Within one bucket and with nothing changed, ``month_result`` answers the result
        already computed (the same object); a late result, a bucket closing and new inputs
        each give the month ``compute_month`` gives over the same tallies."""
        from monitor.accounting import month_result

        h = Harness(tmp_path)
        h.history(2)
        d = h.daemon
        accounting = d.accounting
        la = accounting.policy("la")

        def reference() -> object:
            moment = utc_from_epoch(h.clock())
            month = accounting.month_result(la, moment).month
            tallies = d._tallies_for(la.bucket_seconds, month, la)
            return month_result(accounting.inputs, la, month, tallies, moment)

        first = accounting.month_result(la, utc_from_epoch(h.clock()), stamp=False)
        h.clock.advance(30)
        assert accounting.month_result(la, utc_from_epoch(h.clock()), stamp=False) is first
        stamped = accounting.month_result(la, utc_from_epoch(h.clock()))
        assert stamped.now == utc_from_epoch(h.clock())
        assert stamped == reference()

        h.feed("a1", h.clock() - 1800, False)  # late: a closed bucket turns unavailable
        late = accounting.month_result(la, utc_from_epoch(h.clock()))
        assert late.buckets_unavailable == first.buckets_unavailable + 1
        assert late == reference()

        h.clock.advance(300)  # a bucket closes
        closed = accounting.month_result(la, utc_from_epoch(h.clock()))
        assert closed.buckets_pending == first.buckets_pending - 1
        assert closed == reference()
