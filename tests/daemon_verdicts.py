"""What the daemon verdict tests share (tests/test_flush_slices.py, test_verdict_resume.py,
test_accounting_verdicts.py): their Hypothesis settings, the steps they play alike (a flush
the store refuses among them), and the check that the store holds the reference month's
verdicts (``compute_month`` via ``month_result``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from monitor.accounting import month_result
from monitor.instants import utc_from_epoch
from monitor.runtime.daemon import Daemon
from monitor.sla.calendar import month_containing
from monitor.sla.policy import BucketState, Tally
from monitor.store.base import StoreError
from tests.test_metrics_sla_text import Harness


def daemon_examples(count: int) -> settings:
    """Hypothesis settings for ``count`` examples, each running a daemon over a fixed clock:
    slow by nature (no deadline), with function-scoped fixtures (temporary folders, the
    monkeypatch) shared by the examples on purpose."""
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


async def failed_flush(d: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flush whose write the store refuses (a full disk): it reports failure."""

    async def refuse(batch: Any) -> None:
        raise StoreError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(d.store, "write_batch", refuse)
        assert await d.flush() is False


async def shared_step(
    h: Harness, number: int, event: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> bool:
    """Play ``event``, the ``number``-th step, on ``h``'s daemon if it is one of the steps
    the verdict tests share: a result or the clock moving on (``Harness.play``), an
    exclusion (from half an hour ago), a flush, a flush the store refuses. False if it is
    none of them (a step of the test's own)."""
    if h.play(event):
        return True
    d = h.daemon
    if event[0] == "exclude":
        await h.exclude(f"x{number}", event[1], before=1800)
    elif event[0] == "flush":
        assert await d.flush()
    elif event[0] == "fail":
        await failed_flush(d, monkeypatch)
    else:
        return False
    return True


async def assert_store_holds_reference(h: Harness, *, stored_tallies: bool) -> None:
    """Every SLA's stored verdicts of its running month are the reference month's states,
    one per bucket from the first holding a tally of its targets to the last settled.

    The reference is over the daemon's live tallies, or with ``stored_tallies`` over those
    the store holds (every one, whatever daemon wrote it: after a restart the live state
    holds only the last hour's)."""
    d = h.daemon
    now = d.clock()
    moment = utc_from_epoch(now)
    inputs = d.accounting.inputs
    settle = d._settle_seconds()
    for policy in inputs.policies:
        month = month_containing(moment, policy.timezone)
        size = policy.bucket_seconds
        tallies: Mapping[str, Mapping[int, Tally]]
        if stored_tallies:
            grid = month_result(inputs, policy, month, {}, moment)
            begin = int(grid.start.timestamp())
            tallies = await d.store.load_tallies(
                begin, begin + len(grid.states) * size, bucket_seconds=size
            )
        else:
            tallies = d._tallies_for(size, month, policy)
        reference = month_result(inputs, policy, month, tallies, moment)
        start = int(reference.start.timestamp())
        upto = min(len(reference.states), int((now - settle - start) // size))
        first = min(
            (
                (bucket - start) // size
                for target in inputs.services[policy.service].all_targets
                for bucket in tallies.get(target, {})
                if start <= bucket < start + upto * size
            ),
            default=None,
        )
        rows = await d.store.load_service_buckets(policy.name, start, start + upto * size)
        stored = {(r.bucket_start - start) // size: r for r in rows}
        if first is None:
            assert not stored, policy.name
            continue
        assert sorted(stored) == list(range(first, upto)), policy.name
        for index, row in stored.items():
            assert row.state is reference.states[index], (policy.name, index)
            assert (row.kind is not None) == (row.state is BucketState.EXCLUDED)
