"""Sealing the previous month from the month the daemon already holds (issue 20, se24).

Once a month is over, the daemon seals each SLA's month (``monitor.reports.seal``). Its
accounting (``monitor.accounting.Accounting``) holds that month as running state for every
SLA (``monitor.sla.running.RunningMonth``: judged from the store's tallies at start, or a
snapshot the store's guard proves, then from every tally this daemon wrote since), and its
result equals :func:`monitor.sla.month.compute_month` over the same tallies
(``tests/test_sla_running.py``). Computing the month again from all its buckets, per SLA, cost
11.4 % of the daemon's samples at 10,000 one-target SLAs after a start early in a month, and
at a real month's end it reads and judges every stored tally of every SLA.

:func:`held_result` hands the held month over only where the store path would compute the
same month (otherwise None, and the month is computed from the store as before):

- the SLA is not judged by locations (those read other members' tallies from the store);
- the month is held, complete (every bucket judged, nothing marked: ``month_result``
  re-judges what a late tally marked), under the same SLA, service and canaries;
- the windows it honours are the ones the store's exclusions give for the month, and the
  gaps the store holds for the month cover the same buckets as the gaps it was judged with;
- the store took every write of this daemon (``trusted``: the daemon's last flush
  committed; a failed flush keeps its tallies in memory and writes them later).

What this cannot see is a write to the store by someone else while the daemon runs (a
``slawatch import`` into its file): the daemon's own figures for the month then already
ignore it, and a report of the sealed month shows that today's recomputation differs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime

from monitor.accounting import Accounting, AccountingInputs, month_windows
from monitor.reports.stored import UNMEASURED, Unmeasured
from monitor.sla.calendar import Month
from monitor.sla.month import MonthResult, _gap_buckets
from monitor.sla.policy import SlaPolicy
from monitor.sla.running import RunningMonth
from monitor.sla.running_codec import _canonical, inputs_digest


def held_result(
    accounting: Accounting,
    policy: SlaPolicy,
    month: Month,
    inputs: AccountingInputs,
    now: datetime,
) -> MonthResult | Unmeasured | None:
    """``policy``'s complete ``month`` as ``accounting`` holds it, if it is the month the
    store path computes under ``inputs`` (the store's exclusions and gaps); ``UNMEASURED``
    if that month is complete and no bucket of it held a tally; else None."""
    if policy.locations is not None or not accounting.built(policy, month):
        return None
    try:
        mine = accounting.policy(policy.name)
    except KeyError:
        return None
    if mine is not policy and mine != policy:
        return None
    try:
        known = accounting.held(policy, month)  # sm32: a settled month is built here
    except ValueError:  # HistoryNotLoaded: its snapshot did not decode; the store path
        return None
    if (
        known is not None
        and known.first_tallied is None
        and known.elapsed >= known.grid.count
        and not known.marked
        and _same_inputs(known, policy, month, inputs)
    ):
        # Every bucket judged, none holding a tally, nothing marked since: no bucket was
        # measured, which is all the daemon's seal asks of such a month (it is not sealed);
        # its figures are not built for that (4 s at 10,000 SLAs on a new store).
        return UNMEASURED
    # The result first: it advances this month only (a marked bucket re-judged), where
    # ``held_months`` would advance the running month too; then the month it came from.
    try:
        result = accounting.month_result(policy, now, month)
    except ValueError:
        return None
    if result.now is not None:
        return None  # not computed as complete (never for a month over): the store path
    running = accounting.held(policy, month)  # the month just asked
    if running is None or running.elapsed < running.grid.count:
        return None
    return result if _same_inputs(running, policy, month, inputs) else None


def _same_inputs(
    running: RunningMonth, policy: SlaPolicy, month: Month, inputs: AccountingInputs
) -> bool:
    """Whether ``running`` was judged with what ``inputs`` give ``policy``'s ``month``."""
    service = inputs.services.get(policy.service)
    if service is None or (running.service is not service and running.service != service):
        return False
    if tuple(running.canaries) != tuple(inputs.canaries):
        return False
    if running.windows != month_windows(inputs, policy, month).honoured:
        return False
    # The gaps as judging reads them: the buckets they touch (the daemon holds the gaps of
    # its live window, the store those of the month: equal where it matters).
    return running.gap_buckets == frozenset(_gap_buckets(running.grid, inputs.gaps))


def held_from(
    accounting: Accounting, month: Month, now: datetime, trusted: Callable[[], bool]
) -> Callable[[SlaPolicy, AccountingInputs], MonthResult | Unmeasured | None]:
    """``monitor.reports.seal.seal_months``'s ``held`` for ``month``: :func:`held_result`
    while ``trusted()`` (the store has taken every write of the daemon so far)."""

    def held(policy: SlaPolicy, inputs: AccountingInputs) -> MonthResult | Unmeasured | None:
        if not trusted():
            return None
        return held_result(accounting, policy, month, inputs, now)

    return held


DONE_KEY = "month_seals_done_by_sla"
"""The store's key-value record of the SLA months the daemon finished sealing (issue 20, se24;
per SLA since rl34): ``{month: {sla: token}}``, the token :data:`SEALED` (a seal is stored:
written once, it stands whatever the configuration becomes) or, for a month with nothing
measured (left unsealed), :func:`unmeasured_token` of the inputs that decided so. A restart
reads it once instead of asking the store for every SLA's seal (10,000 queries at 10,000
SLAs), and a pass after a configuration edit asks only about the SLAs whose token does not
stand (before rl34 the record named whole months under the configuration's content hash: one
SLA added made the next pass read all 10,000 seals again, ~8 s of CPU).

The record before rl34 (``{month: content hash}``) was under :data:`OLD_DONE_KEY`; it is
not read: over an older store the first pass asks the store about every SLA once (a seal
already stored is kept as it is), never skips one."""

OLD_DONE_KEY = "month_seals_done"
"""The record's key before rl34 (whole months per configuration content hash): not read."""

SEALED = "sealed"
"""The token of an SLA month whose seal is stored."""

KEEP_DONE = 4
"""Months kept in the record (each SLA zone's previous month is one of the last few)."""


def done_slas(record: object, month: str) -> dict[str, str]:
    """``{sla: token}`` of ``month`` in ``record`` (the store's :data:`DONE_KEY` value);
    empty for anything else (an unreadable record re-checks, never skips)."""
    if not isinstance(record, dict):
        return {}
    slas = record.get(month)
    if not isinstance(slas, dict):
        return {}
    return {str(k): v for k, v in slas.items() if isinstance(v, str)}


def record_done(record: object, month: str, done: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``record`` with ``done`` (``{sla: token}``) added to ``month``'s SLAs, the oldest
    months dropped."""
    kept: dict[str, dict[str, str]] = {}
    if isinstance(record, dict):
        for key, value in record.items():
            if isinstance(value, dict):
                kept[str(key)] = {str(k): v for k, v in value.items() if isinstance(v, str)}
    kept[month] = {**kept.get(month, {}), **done}
    return dict(sorted(kept.items())[-KEEP_DONE:])


def unmeasured_token(policy: SlaPolicy, month: Month, inputs: AccountingInputs) -> str | None:
    """What decided that ``policy``'s ``month`` had no measured bucket, besides the store's
    tallies: the SLA, its service, the canaries (``running_codec.inputs_digest``, gaps left
    out: a gap only makes buckets unknown, never measured) and the exclusion windows it
    honours (removing one may uncover a measured bucket). Another token: asked again.
    None when the SLA's service is not in ``inputs``."""
    service = inputs.services.get(policy.service)
    if service is None:
        return None
    judging = inputs_digest(policy, service, month, inputs.canaries, (), 0)
    windows = _canonical(month_windows(inputs, policy, month).honoured)  # seed-independent
    return hashlib.sha256(f"{judging}\n{windows}".encode()).hexdigest()[:32]
