"""The one path from a month's inputs to its figures: every month slawatch shows goes through
:func:`month_result`.

The daemon (``/metrics``, ``/api/v1/buckets``, the current and previous months of
``/api/v1/report``), ``slawatch report`` from a results file, ``slawatch report`` from the
store and the API's older months all build their :class:`AccountingInputs` with
:func:`inputs_from_config` and compute with :func:`month_result`. The contract logic a month
needs beyond the pure engine lives here once:

- the exclusion windows are the configuration's fixed windows plus those added through the API,
  and each recurring exclusion expanded over the SLA's month (:func:`month_windows`);
- each SLA's maintenance notice rule is applied to those windows: a window breaking it is a
  violation, and under ``policy: reject`` it is also not honoured. A refused window is always
  among the violations, on every path, because both come from the same call;
- an occurrence of a recurring exclusion is announced by its schedule: the configuration (the
  contract's or the vendor's published calendar) holds it before it starts, so the minimum
  notice rule is met by every occurrence. The support-hours rule still applies to each one.
  (Refusing every occurrence for lacking ``announced_at`` would count the vendor's agreed
  maintenance as downtime on evidence we do not have.)
- the month is judged "as of now" only while it runs in the SLA's zone; a month that has ended
  is computed as complete (``now`` ``None``).

:class:`Accounting` caches results for the daemon, whose scrapes come every few seconds. Nothing
here reads the clock.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import TYPE_CHECKING

from monitor.sla.calendar import Month, month_bounds, month_containing, month_grid
from monitor.sla.exclusions import expand_recurring
from monitor.sla.month import MonthResult, compute_month
from monitor.sla.policy import (
    ExclusionWindow,
    RecurringExclusion,
    ServiceDef,
    SlaPolicy,
    Tally,
)
from monitor.sla.running import JudgedState, RunningMonth
from monitor.sla.settled import (
    MonthMoney,
    SettledCounts,
    money_of_result,
    settled_counts,
    settled_money,
)
from monitor.support.notice import NoticeRule, Violation, apply_notice_rule

if TYPE_CHECKING:
    from monitor.config import Config

Tallies = Mapping[str, Mapping[int, Tally]]
"""target -> bucket start epoch -> tally."""
TallySource = Callable[[int, Month, SlaPolicy], Tallies]
"""(bucket_seconds, month, policy) -> target -> bucket start -> tally."""


@dataclass(frozen=True)
class AccountingInputs:
    """Everything a month needs but the tallies: the configuration's part and the store's."""

    policies: tuple[SlaPolicy, ...]
    services: Mapping[str, ServiceDef]
    windows: tuple[ExclusionWindow, ...]
    """Fixed windows: the configuration's, then those added through the API."""
    recurring: tuple[RecurringExclusion, ...]
    canaries: tuple[str, ...]
    gaps: tuple[tuple[datetime, datetime], ...]
    notice_rules: Mapping[str, NoticeRule] = field(default_factory=lambda: MappingProxyType({}))
    """SLA name -> its maintenance notice rule (SLAs without one honour every window)."""

    def policy(self, name: str) -> SlaPolicy:
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise KeyError(name)


def notice_rules(config: Config) -> dict[str, NoticeRule]:
    """SLA name -> its maintenance notice rule, for the SLAs that set one."""
    rules: dict[str, NoticeRule] = {}
    for sla in config.slas:
        if sla.maintenance_notice is not None:
            rules[sla.name] = sla.maintenance_notice.to_rule(config.support)
    return rules


def inputs_from_config(
    config: Config,
    *,
    api_windows: Sequence[ExclusionWindow] = (),
    gaps: Sequence[tuple[datetime, datetime]] = (),
) -> AccountingInputs:
    """The month inputs of ``config``, with the windows added through the API and the gaps
    (time the monitor was not running) the store holds."""
    return AccountingInputs(
        policies=config.sla_policies(),
        services=MappingProxyType(config.service_defs()),
        windows=(*config.exclusion_windows(), *api_windows),
        recurring=config.recurring_exclusions(),
        canaries=config.canaries(),
        gaps=tuple(gaps),
        notice_rules=MappingProxyType(notice_rules(config)),
    )


def select_policies(
    config: Config, service: str | None, field: str = "--service"
) -> list[SlaPolicy]:
    """The SLAs to report: all, or those over ``service`` (an error names the known ones)."""
    policies = list(config.sla_policies())
    if service is None:
        return policies
    chosen = [p for p in policies if service in (p.service, p.name)]
    if not chosen:
        known = sorted({p.service for p in policies})
        raise ValueError(f"{field}: expected one of {', '.join(known)}, got {service!r}")
    return chosen


@dataclass(frozen=True)
class MonthWindows:
    """An SLA's exclusion windows for a month: those honoured, and every notice rule broken
    (a refused window is always among the violations)."""

    honoured: tuple[ExclusionWindow, ...]
    violations: tuple[Violation, ...]


_NO_WINDOWS = MonthWindows((), ())


def _announced_by_schedule(rule: NoticeRule) -> NoticeRule:
    """The rule for a recurring occurrence: its schedule is its notice (no minimum to check)."""
    return dataclasses.replace(rule, min_notice=None)


def month_windows(inputs: AccountingInputs, policy: SlaPolicy, month: Month) -> MonthWindows:
    """The windows touching ``month`` for ``policy``'s service, recurring ones expanded over
    the month in the SLA's zone, after the SLA's notice rule."""
    if not inputs.windows and not inputs.recurring:
        return _NO_WINDOWS  # issue 20: nothing to honour or break (most SLAs, most months)
    start, end = month_bounds(month, policy.timezone)
    fixed = [w for w in inputs.windows if w.end > start and w.start < end]
    occurrences = [w for rec in inputs.recurring for w in expand_recurring(rec, start, end)]
    fixed = [w for w in fixed if w.covers(policy.service)]
    occurrences = [w for w in occurrences if w.covers(policy.service)]
    rule = inputs.notice_rules.get(policy.name)
    if rule is None:
        honoured, violations = [*fixed, *occurrences], []
    else:
        written = apply_notice_rule(fixed, rule)
        scheduled = apply_notice_rule(occurrences, _announced_by_schedule(rule))
        honoured = [*written.honoured, *scheduled.honoured]
        violations = [*written.violations, *scheduled.violations]
    # In time order, whatever order the sources listed them in (the store lists its windows
    # by start, the configuration as written): the report's list must not depend on the path.
    honoured.sort(key=lambda w: (w.start, w.end, w.id))
    return MonthWindows(tuple(honoured), tuple(violations))


def month_violations(
    inputs: AccountingInputs, month_of: Callable[[SlaPolicy], Month]
) -> dict[str, list[Violation]]:
    """SLA name -> the notice rules broken in its month ``month_of(policy)``, for every SLA
    with a rule."""
    return {
        policy.name: list(month_windows(inputs, policy, month_of(policy)).violations)
        for policy in inputs.policies
        if policy.name in inputs.notice_rules
    }


def as_of(policy: SlaPolicy, month: Month, now: datetime) -> datetime | None:
    """``now`` while ``month`` runs in the SLA's zone; ``None`` (complete) once it has ended."""
    return now if now < month_bounds(month, policy.timezone)[1] else None


def month_result(
    inputs: AccountingInputs,
    policy: SlaPolicy,
    month: Month,
    tallies: Tallies,
    now: datetime,
) -> MonthResult:
    """``policy``'s ``month`` from ``tallies`` as of ``now``: the one month assembly."""
    start, _ = month_bounds(month, policy.timezone)
    if start > now:
        raise ValueError(f"month: {month} has not started yet in {policy.timezone}")
    service = inputs.services.get(policy.service)
    if service is None:
        raise ValueError(
            f"sla {policy.name}: service: expected one of {sorted(inputs.services)}, "
            f"got {policy.service!r}"
        )
    return compute_month(
        policy,
        service,
        month,
        tallies,
        month_windows(inputs, policy, month).honoured,
        canaries=inputs.canaries,
        gaps=inputs.gaps,
        now=as_of(policy, month, now),
    )


class ChangeFeed:
    """The SLAs whose figures may have moved since the consumer last took them (issue 20).

    ``/metrics`` keeps each SLA's text and, at 10,000 SLAs, cannot afford to ask every SLA's
    month at every scrape. :class:`Accounting` adds an SLA's name here whenever something it
    holds for that SLA may change what :meth:`Accounting.month_result` returns or what the
    running bucket looks like: a running month's ``version`` moved (buckets elapsed, a marked
    bucket re-judged), a tally of one of its targets changed (:meth:`Accounting.tally_changed`,
    even for the running bucket), another location's input changed, a month was built or
    forgotten. ``everything`` is set when the inputs are replaced (reload, exclusions).

    What the feed does not carry is time alone: a bucket elapsing moves a month's figures
    only once someone calls ``month_result``; the consumer asks every SLA whose running
    bucket changed (see ``monitor.metrics.sla_text``). While ``paused`` the consumer is
    asking itself: what its own calls change is already in the results they return.
    """

    __slots__ = ("__weakref__", "everything", "names", "paused", "running")

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.running: set[str] = set()
        """SLAs only a tally of a bucket not yet judged changed for (the running bucket)."""
        self.everything = False
        self.paused = False

    def take(self) -> tuple[bool, set[str]]:
        """(everything changed, the names changed) since the last call; empties the feed
        but for ``running`` (see :meth:`take_running`)."""
        everything, names = self.everything, self.names
        self.everything, self.names = False, set()
        return everything, names

    def take_running(self) -> set[str]:
        """The SLAs whose running bucket's tallies changed since the last call; empties it."""
        running, self.running = self.running, set()
        return running


@dataclass(frozen=True, slots=True, eq=False)
class SettledMonth:
    """sm32 (issue 20): an SLA's month that is over, held by its counts, not as running state.

    The owner hands one to :meth:`Accounting.install` instead of a :class:`RunningMonth` for a
    month every bucket of which is in a proven snapshot carrying its counts
    (``monitor.sla.settled``): the previous month at a start, which nothing but ``/metrics``'s
    two lines of money reads until something touches it. Anything that needs the month itself
    (its result: the API, a report, the web view, sealing; a late tally of it; windows other
    than those it was counted under) builds it from ``restore`` (the snapshot decoded) as the
    running month the owner would have built, at that moment, synchronously."""

    policy: SlaPolicy
    service: ServiceDef
    month: Month
    canaries: tuple[str, ...]
    windows: tuple[ExclusionWindow, ...]
    """The windows its counts were counted under (today's, when it was made)."""
    counts: SettledCounts
    buckets: int
    start_epoch: int
    end_epoch: int
    restore: Callable[[], JudgedState | None]
    """Its whole month's judged state, decoded from the snapshot; None if it does not decode
    (then the month is not loaded: see :attr:`Accounting.unloaded`)."""
    money: MonthMoney = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "money", settled_money(self.policy, self.month, self.buckets, self.counts)
        )


def settled_month(
    inputs: AccountingInputs,
    policy: SlaPolicy,
    month: Month,
    judged: int,
    settled: str,
    restore: Callable[[], JudgedState | None],
    floor: int,
) -> SettledMonth | None:
    """sm32 (issue 20): ``policy``'s ``month`` under ``inputs`` held by the counts ``settled``
    (``MonthSnapshot.settled``) of a proven snapshot of its first ``judged`` buckets, if that
    is the whole month and the counts were counted under the windows it honours under
    ``inputs`` and every bucket of it is before ``floor`` (the live state's: no tally of it
    is read from memory); else None (the month is built from the snapshot as before).
    ``restore`` decodes the snapshot."""
    service = inputs.services.get(policy.service)
    if service is None or policy.locations is not None or not settled:
        return None
    grid = month_grid(month, policy.timezone, policy.bucket_seconds)
    if judged != grid.count or floor < grid.end_epoch:
        return None
    windows = month_windows(inputs, policy, month).honoured
    counts = settled_counts(settled, windows, grid.count)
    if counts is None:
        return None
    return SettledMonth(
        policy,
        service,
        month,
        tuple(inputs.canaries),
        windows,
        counts,
        grid.count,
        grid.start_epoch,
        grid.end_epoch,
        restore,
    )


class Accounting:
    """The daemon's month results per SLA, kept as running state.

    Each (SLA, month) the daemon shows is a :class:`monitor.sla.running.RunningMonth`: judged
    bucket states in one byte each, re-judged only where something changed, and summarised by
    the engine's own :func:`monitor.sla.month.assemble_month` (so it equals
    :func:`month_result` over the same tallies). What changes it:

    - time: buckets elapse (each call advances the month to ``now``);
    - a late result: the owner calls :meth:`tally_changed` for every tally it changes (a
      bucket still running needs no call, it is judged when it elapses);
    - the inputs (exclusions added or removed, reload): :meth:`replace_inputs` keeps the
      running months whose SLA, service, windows, canaries and gaps did not change.

    The summary is rebuilt only when the running month moved, so a scrape between two bucket
    closes costs a lookup per SLA. Nothing here reads the clock.
    """

    def __init__(
        self,
        inputs: AccountingInputs,
        tallies: TallySource,
        max_age: float = 5.0,
        *,
        floor: Callable[[int], int] | None = None,
    ):
        self._inputs = inputs
        self._tallies = tallies
        # Issue 20: the owner may drop closed buckets' tallies from ``tallies`` once every
        # running month has judged them; ``floor(bucket_seconds)`` is the bucket start before
        # which the source is no longer complete. A month reaching back before it is never
        # built from the source (its figures would be wrong): the owner reads its tallies
        # back from the store and hands them to :meth:`build`.
        self._floor = floor
        self._running: dict[tuple[str, Month], RunningMonth] = {}
        self._months: dict[str, list[Month]] = {}
        """SLA name -> the months it has running state for (at most two)."""
        self._results: dict[tuple[str, Month], tuple[int, MonthResult]] = {}
        self._windows: dict[tuple[str, Month], MonthWindows] = {}
        self._current: dict[str, tuple[float, float, Month]] = {}
        self._dependents: dict[tuple[int, str], tuple[str, ...]] = {}
        self._lost_under: tuple[AccountingInputs, int, set[str]] | None = None
        """Issue 20: the SLAs :meth:`rebuilt_by` found not kept under these inputs, with the
        months held then; taken by the next :meth:`replace_inputs` if nothing changed."""
        self._feeds: weakref.WeakSet[ChangeFeed] = weakref.WeakSet()
        # SLA name -> month asked (None: the running one) -> (from, until epoch, running
        # month, its version, result): month_result's fast path (see there).
        self._fast: dict[
            str, dict[Month | None, tuple[float, float, RunningMonth, int, MonthResult]]
        ] = {}
        self._settled: dict[str, SettledMonth] = {}
        """sm32 (issue 20): SLA name -> its month held by its counts (at most one: the
        previous), see :class:`SettledMonth`."""
        self._money: dict[str, tuple[MonthResult, MonthMoney]] = {}
        """sm32: SLA name -> the previous month's last result and its money (one object while
        the result stands: ``/metrics`` compares it)."""
        self.unloaded: set[str] = set()
        """sm32: SLAs whose settled month did not decode when it was needed: the owner reads
        their months back from the store (:meth:`install`) before they are shown again."""
        self._index()

    def watch(self) -> ChangeFeed:
        """A new :class:`ChangeFeed` told of every change from now on (held weakly)."""
        feed = ChangeFeed()
        self._feeds.add(feed)
        return feed

    def _notify(self, name: str) -> None:
        self._fast.pop(name, None)
        self._notify_moved(name)

    def _notify_moved(self, name: str) -> None:
        """Tell the feeds that a month of ``name`` moved its version in an advance, keeping
        month_result's fast entries: each holds the version it was taken at, so the moved
        month's entry misses and the other month's stays good (c22, issue 20: at a bucket
        close the previous month, asked beside the running one, took the slow path for
        every SLA: its tallies, an advance, the results cache)."""
        for feed in self._feeds:
            if not feed.paused:
                feed.names.add(name)

    def _notify_running(self, name: str) -> None:
        self._fast.pop(name, None)
        for feed in self._feeds:
            if not feed.paused:
                feed.running.add(name)

    def _notify_all(self) -> None:
        self._fast.clear()
        for feed in self._feeds:
            feed.everything = True

    @property
    def inputs(self) -> AccountingInputs:
        return self._inputs

    def _index(self, index: InputsIndex | None = None, old: AccountingInputs | None = None) -> None:
        """(bucket length, target) -> the SLAs whose month reads its tallies: once per
        configuration, O(targets in services). Issue 20: ``index`` built ahead for these
        inputs' SLAs (a reload, in its worker thread), or the one held when ``old`` had the
        same SLAs and services (an exclusion added or removed), is taken as it is."""
        inputs = self._inputs
        if index is None or index.policies is not inputs.policies:
            if (
                old is not None
                and old.policies is inputs.policies
                and old.services == (inputs.services)
            ):
                return  # the same SLAs over the same services: the index held stands
            index = index_inputs(inputs.policies, inputs.services)
        self._dependents = index.dependents
        self._by_name = index.by_name

    def replace_inputs(self, inputs: AccountingInputs, index: InputsIndex | None = None) -> None:
        """New inputs (a reload, an exclusion added or removed): keep every running month
        they leave standing (:func:`_keeps`), windows laid over again where they moved.

        Issue 20: O(SLAs) with a small constant, for a reload blocks the probes while this
        runs: unchanged SLAs are found by identity (``model.share_unchanged``), a month's
        windows are recomputed only when the windows' sources changed, and the target index
        may come built (``index``, see :func:`index_inputs`)."""
        self._notify_all()
        old = self._inputs
        if inputs is old:
            return  # the inputs held (``install`` after ``replace_inputs``): all stands
        self._inputs = inputs
        self._index(index, old)
        by_name = self._by_name
        same_gaps = inputs.gaps == old.gaps
        # A kept month's policy equals the held one (its name, service and zone), so its
        # windows move only when their sources do.
        same_windows = (
            inputs.windows == old.windows
            and inputs.recurring == old.recurring
            and inputs.notice_rules == old.notice_rules
        )
        if not same_windows:
            self._windows.clear()
        # The months that go are few on a reload (the SLAs changed): they are removed from
        # the held structures in place, which then need no copy (and no key hashed again).
        asked, self._lost_under = self._lost_under, None
        lost = (
            asked[2]
            if (
                asked is not None
                and _same_keeping(asked[0], inputs)
                and asked[1] == len(self._running) + len(self._settled)
            )
            else None
        )
        gone: list[tuple[str, Month]] = []
        moved: list[tuple[str, Month]] = []
        kept_names: set[str] = set()
        for key, running in self._running.items():
            policy = by_name.get(key[0])
            if (
                policy is None
                or not same_gaps
                or (not _keeps(running, policy, inputs) if lost is None else key[0] in lost)
            ):
                gone.append(key)
                continue
            kept_names.add(key[0])
            if not same_windows:
                # Only the windows moved (an exclusion added or removed): the judged states
                # stand, and the exclusions are laid over them again; no tally is read.
                windows = self.windows_for(policy, key[1])
                if windows != running.windows:
                    running.replace_windows(windows)
                    moved.append(key)
        for key in gone:
            del self._running[key]
            months = self._months.get(key[0])
            if months is not None:
                months.remove(key[1])
                if not months:
                    del self._months[key[0]]
        # sm32: a settled month stands as its running month would (its windows are compared
        # when its money is read: other windows build it then).
        for name, settled in list(self._settled.items()):
            policy = by_name.get(name)
            if (
                policy is None
                or not same_gaps
                or (not _keeps(settled, policy, inputs) if lost is None else name in lost)
            ):
                del self._settled[name]
            else:
                kept_names.add(name)
        self._money.clear()
        for key in (*gone, *moved):
            self._results.pop(key, None)  # a kept month's result is checked by its version
        # Cached windows and current-month spans stand for the SLAs kept as they were.
        if same_windows:
            for key in [k for k in self._windows if k[0] not in kept_names]:
                del self._windows[key]
        for name in [n for n in self._current if n not in kept_names]:
            del self._current[name]

    def rebuilt_by(self, inputs: AccountingInputs) -> list[SlaPolicy]:
        """The SLAs of ``inputs`` whose running months :meth:`replace_inputs` would not keep
        (new SLAs, or one whose rules, service, canaries or gaps change): the months to read
        back from the store before replacing, once closed tallies have left memory."""
        if inputs.gaps != self._inputs.gaps:
            return list(inputs.policies)
        by_name = {policy.name: policy for policy in inputs.policies}
        held: set[str] = set()
        lost: set[str] = set()
        months: list[tuple[str, RunningMonth | SettledMonth]] = [
            (name, running) for (name, _), running in self._running.items()
        ]
        months.extend(self._settled.items())
        for name, running in months:
            policy = by_name.get(name)
            if policy is None:
                continue
            held.add(name)
            if not _keeps(running, policy, inputs):
                lost.add(name)
        # Issue 20: a reload replaces the inputs right after asking (on the loop, nothing in
        # between): the SLAs found here need not be compared again there.
        self._lost_under = (inputs, len(self._running) + len(self._settled), lost)
        return [p for p in inputs.policies if p.name not in held or p.name in lost]

    def prepare(
        self,
        inputs: AccountingInputs,
        policy: SlaPolicy,
        month: Month,
        tallies: Tallies,
        now: datetime,
        judged: JudgedState | None = None,
    ) -> RunningMonth:
        """``policy``'s ``month`` under ``inputs``, built afresh from ``tallies`` (the store's,
        the live state's laid over them) and judged up to ``now``, not yet held: start-up and a
        reload that changes the SLA, once closed tallies have left memory. Only its compact
        state is kept, so the owner reads the store one batch of SLAs at a time and hands
        them all to :meth:`install` at once.

        Issue 20: ``judged`` is the month's first buckets as judged before (a snapshot the
        store proved unchanged, under the same inputs: ``monitor.runtime.snapshots``); the
        month starts from it and ``tallies`` need hold only the buckets after it."""
        service = inputs.services.get(policy.service)
        if service is None:
            raise ValueError(
                f"sla {policy.name}: service: expected one of "
                f"{sorted(inputs.services)}, got {policy.service!r}"
            )
        windows = month_windows(inputs, policy, month).honoured
        if judged is not None:
            running = RunningMonth.restored(
                policy,
                service,
                month,
                windows,
                judged,
                canaries=inputs.canaries,
                gaps=inputs.gaps,
            )
        else:
            running = RunningMonth(
                policy, service, month, windows, canaries=inputs.canaries, gaps=inputs.gaps
            )
        moment = as_of(policy, month, now)
        if self._floor is not None:
            # Issue 20 (e23): install marks every bucket from the floor on, to be judged
            # again from the live source at the first call; judging them here as well did it
            # twice (at start-up the last hour, every SLA, before ready). Judged up to it.
            floor = self._floor(policy.bucket_seconds)
            if floor < (running.end_epoch if moment is None else moment.timestamp()):
                moment = datetime.fromtimestamp(floor, UTC)
        running.advance(tallies, moment)
        return running

    def held_months(self, policy: SlaPolicy, now: datetime) -> list[RunningMonth]:
        """Issue 20: every month of ``policy`` held as running state, each advanced to ``now``
        (no bucket left marked): what the owner snapshots."""
        return [
            self._advanced(policy, now, month)[1]
            for month in list(self._months.get(policy.name, ()))
        ]

    def install(
        self,
        inputs: AccountingInputs,
        prepared: Sequence[RunningMonth | SettledMonth],
        index: InputsIndex | None = None,
    ) -> None:
        """Replace the inputs (:meth:`replace_inputs`) and hold the ``prepared`` months.

        Buckets from ``floor`` on are re-judged from the live source at the next call: a late
        result may have changed one while the owner read the store (the marks went to the
        months held then), and the live source holds every tally from ``floor`` on."""
        self.replace_inputs(inputs, index)
        self._notify_all()
        for running in prepared:
            policy = self._by_name.get(running.policy.name)
            if policy is None or not _keeps(running, policy, inputs):
                continue  # prepared under inputs replaced since: built again when asked
            key = (policy.name, running.month)
            self.unloaded.discard(policy.name)
            if isinstance(running, SettledMonth):
                if key in self._running:
                    del self._running[key]
                    self._months[policy.name].remove(running.month)
                self._settled[policy.name] = running
                self._results.pop(key, None)
                continue
            if (settled := self._settled.get(policy.name)) is not None and (
                settled.month == running.month
            ):
                del self._settled[policy.name]
            windows = self.windows_for(policy, running.month)
            if windows != running.windows:
                running.replace_windows(windows)
            if key not in self._running:
                self._months.setdefault(policy.name, []).append(running.month)
            self._running[key] = running
            self._results.pop(key, None)
            floor = 0 if self._floor is None else self._floor(policy.bucket_seconds)
            first, size = running.grid.start_epoch, policy.bucket_seconds
            for at in range(max(0, -((first - floor) // size)), running.elapsed):
                running.mark(first + at * size)
        for name, months in self._months.items():
            if months:
                self._forget_before(name, max(months).previous())

    def built(self, policy: SlaPolicy, month: Month) -> bool:
        """Whether ``policy``'s ``month`` is held (as running state, or settled)."""
        if (policy.name, month) in self._running:
            return True
        settled = self._settled.get(policy.name)
        return settled is not None and settled.month == month

    def is_settled(self, policy: SlaPolicy, month: Month) -> bool:
        """sm32: whether ``policy``'s ``month`` is held by its counts (not built)."""
        settled = self._settled.get(policy.name)
        return settled is not None and settled.month == month

    def held(self, policy: SlaPolicy, month: Month) -> RunningMonth | None:
        """``policy``'s ``month`` as held, as it stands (not advanced), or None: for readers
        that decide whether the held month may stand for the store's (``runtime.sealing``).
        A settled month is built first (see :class:`SettledMonth`)."""
        running = self._running.get((policy.name, month))
        if running is None:
            settled = self._settled.get(policy.name)
            if settled is not None and settled.month == month:
                running = self._wake(policy.name)
        return running

    def previous_money(self, policy: SlaPolicy, now: datetime, month: Month) -> MonthMoney:
        """sm32 (issue 20): the money of ``policy``'s ``month`` (the previous one, over) as of
        ``now``: what ``/metrics`` shows of it. A settled month's from its counts while its
        windows are those it was counted under; otherwise its result's
        (:meth:`month_result`, which builds a settled month first). Raises
        :class:`HistoryNotLoaded` as :meth:`month_result` does."""
        settled = self._settled.get(policy.name)
        if (
            settled is not None
            and settled.month == month
            and settled.windows == self.windows_for(policy, month)
        ):
            return settled.money
        result = self.month_result(policy, now, month, stamp=False)
        known = self._money.get(policy.name)
        if known is not None and known[0] is result:
            return known[1]
        money = money_of_result(result)
        if known is not None and known[1] == money:
            money = known[1]
        self._money[policy.name] = (result, money)
        return money

    def _wake(self, name: str) -> RunningMonth:
        """SLA ``name``'s settled month built as running state from its snapshot, and held as
        such (the month :meth:`install` would have held, had the owner prepared it). Raises
        :class:`HistoryNotLoaded` if its snapshot does not decode (``name`` is then among
        :attr:`unloaded` until the owner installs its months again)."""
        settled = self._settled.pop(name)
        judged = settled.restore()
        if judged is None or judged.judged != settled.buckets:
            self.unloaded.add(name)
            self._notify(name)
            raise HistoryNotLoaded(
                f"sla {name}: month {settled.month} is not loaded: its snapshot did not "
                "decode (the daemon reads its tallies back first)"
            )
        running = RunningMonth.restored(
            settled.policy,
            settled.service,
            settled.month,
            settled.windows,
            judged,
            canaries=settled.canaries,
            gaps=self._inputs.gaps,
        )
        policy = self._by_name.get(name, settled.policy)
        windows = self.windows_for(policy, settled.month)
        if windows != running.windows:
            running.replace_windows(windows)
        self._running[(name, settled.month)] = running
        self._months.setdefault(name, []).append(settled.month)
        return running

    def policy(self, name: str) -> SlaPolicy:
        policy = self._by_name.get(name)
        if policy is None:
            raise KeyError(name)
        return policy

    def windows_for(self, policy: SlaPolicy, month: Month) -> tuple[ExclusionWindow, ...]:
        """The windows ``policy`` honours in ``month`` (see :func:`month_windows`)."""
        key = (policy.name, month)
        windows = self._windows.get(key)
        if windows is None:
            windows = self._windows[key] = month_windows(self._inputs, policy, month)
        return windows.honoured

    def tally_changed(self, bucket_seconds: int, target: str, bucket_start: int) -> None:
        """A tally of ``target`` at ``bucket_start`` changed: re-judge that bucket in the
        running months reading it (a no-op for a bucket that has not elapsed yet)."""
        settled_months = self._settled
        for name in self._dependents.get((bucket_seconds, target), ()):
            judged = False
            if settled_months:
                settled = settled_months.get(name)
                if settled is not None and (
                    settled.start_epoch <= bucket_start < settled.end_epoch
                ):
                    # sm32: a tally of a month held by its counts (a write the snapshot's
                    # guard did not expect): the month is built, then judged again there.
                    try:
                        self._wake(name)
                    except HistoryNotLoaded:
                        continue  # read back from the store by the owner (``unloaded``)
            for month in self._months.get(name, ()):
                running = self._running[(name, month)]
                running.mark(bucket_start)
                judged = judged or (
                    running.grid.start_epoch
                    <= bucket_start
                    < running.grid.start_epoch + running.elapsed * bucket_seconds
                )
            if judged:
                self._notify(name)
            else:  # a bucket not judged yet: the running bucket's provisional state only
                self._notify_running(name)

    def tallies_of(self, policy: SlaPolicy, month: Month) -> Tallies:
        """The tallies ``policy``'s ``month`` is judged from (located for an SLA with
        ``locations``): for the running bucket's provisional verdict on ``/metrics``."""
        return self._tallies(policy.bucket_seconds, month, policy)

    def sla_changed(self, name: str, bucket_start: int) -> None:
        """Some input of SLA ``name``'s bucket at ``bucket_start`` changed (another location's
        tally or gap, issue 14): re-judge that bucket in its running months."""
        self._notify(name)
        for month in self._months.get(name, ()):
            self._running[(name, month)].mark(bucket_start)

    def month_result(
        self, policy: SlaPolicy, now: datetime, month: Month | None = None, *, stamp: bool = True
    ) -> MonthResult:
        """The month holding ``now`` (or ``month``), as of ``now``.

        With ``stamp=False`` the result may carry the ``now`` of an earlier call (every other
        figure is as of ``now``): for callers that read figures only, it saves a copy.
        """
        # Issue 20: the fast path. Between two bucket closes, with no tally of the SLA changed
        # (every change goes through tally_changed / sla_changed / new inputs, which drop the
        # entry) and the running month not moved by another caller (its version), the answer
        # is the result already returned: no tally source, no calendar, no advance.
        fast = self._fast.get(policy.name)
        hit = None if fast is None else fast.get(month)
        if hit is not None:
            lo, hi, running, version, result = hit
            epoch = now.timestamp()
            if lo <= epoch < hi and running.version == version:
                if stamp and result.now is not None and result.now != now:
                    result = dataclasses.replace(result, now=now)
                return result
        key, running, _, moment = self._advanced(policy, now, month)
        cached = self._results.get(key)
        if cached is not None and cached[0] == running.version:
            result = cached[1]
            self._remember(policy, month, running, result)
            if stamp and result.now != moment:
                result = dataclasses.replace(result, now=moment)
            return result
        result = running.result(moment)
        self._results[key] = (running.version, result)
        self._remember(policy, month, running, result)
        return result

    def _remember(
        self, policy: SlaPolicy, month: Month | None, running: RunningMonth, result: MonthResult
    ) -> None:
        """Keep ``result`` as the answer for ``now`` anywhere in the bucket it was asked in
        (after the month's end, for good), for :meth:`month_result`'s fast path."""
        if policy.locations is not None:
            return  # issue 14: other locations' tallies are read at every call
        size, start = policy.bucket_seconds, running.grid.start_epoch
        if running.elapsed >= running.grid.count:
            window = (float(running.end_epoch), float("inf"))
        else:
            window = (
                float(start + running.elapsed * size),
                float(start + (running.elapsed + 1) * size),
            )
        self._fast.setdefault(policy.name, {})[month] = (*window, running, running.version, result)

    def running_month(self, policy: SlaPolicy, now: datetime) -> RunningMonth:
        """The month holding ``now`` as running state, advanced to ``now``: its bucket states
        without the figures (what the flush writes as service verdicts)."""
        fast = self._fast.get(policy.name)
        hit = None if fast is None else fast.get(None)
        if hit is not None:  # month_result's fast path: nothing to advance
            lo, hi, running, version, _ = hit
            if lo <= now.timestamp() < hi and running.version == version:
                return running
        return self._advanced(policy, now, None)[1]

    def _advanced(
        self, policy: SlaPolicy, now: datetime, month: Month | None
    ) -> tuple[tuple[str, Month], RunningMonth, Tallies, datetime | None]:
        epoch = now.timestamp()
        span = self._current.get(policy.name)
        known = None if month is None else self._running.get((policy.name, month))
        if known is None and month is not None:
            settled = self._settled.get(policy.name)
            if settled is not None and settled.month == month:
                known = self._wake(policy.name)  # sm32
        if known is not None:
            # A month already running (the previous one, shown beside the current): as of
            # now until its end, complete after; no calendar arithmetic.
            tallies = self._tallies(policy.bucket_seconds, known.month, policy)
            moment_known = now if epoch < known.end_epoch else None
            before = known.version
            known.advance(tallies, moment_known)
            if known.version != before:
                self._notify_moved(policy.name)  # c22
            return (policy.name, known.month), known, tallies, moment_known
        if month is None and span is not None and span[0] <= epoch < span[1]:
            # The common call (the month running now): no calendar arithmetic per SLA.
            month = span[2]
            moment: datetime | None = now
        else:
            current = month_containing(now, policy.timezone)
            month = current if month is None else month
            start, end = month_bounds(month, policy.timezone)
            if start > now:
                raise ValueError(f"month: {month} has not started yet in {policy.timezone}")
            if month == current:
                self._current[policy.name] = (start.timestamp(), end.timestamp(), month)
            moment = as_of(policy, month, now)
        key = (policy.name, month)
        running = self._running.get(key)
        tallies = self._tallies(policy.bucket_seconds, month, policy)
        if running is None:
            # An SLA judged by locations reads every location's tallies from the shared store
            # (the daemon's LocationFeed), which the live state's eviction does not touch.
            floor = (
                0
                if self._floor is None or policy.locations is not None
                else self._floor(policy.bucket_seconds)
            )
            if floor > month_bounds(month, policy.timezone)[0].timestamp():
                raise HistoryNotLoaded(
                    f"sla {policy.name}: month {month} is not loaded: its closed buckets' "
                    "tallies are in the store only (the daemon reads them back first)"
                )
            service = self._inputs.services.get(policy.service)
            if service is None:
                raise ValueError(
                    f"sla {policy.name}: service: expected one of "
                    f"{sorted(self._inputs.services)}, got {policy.service!r}"
                )
            running = RunningMonth(
                policy,
                service,
                month,
                self.windows_for(policy, month),
                canaries=self._inputs.canaries,
                gaps=self._inputs.gaps,
            )
            self._running[key] = running
            self._months.setdefault(policy.name, []).append(month)
            self._forget_before(policy.name, month.previous())
            self._notify(policy.name)
        before = running.version
        running.advance(tallies, moment)
        if running.version != before:
            self._notify_moved(policy.name)  # c22
        return key, running, tallies, moment

    def _forget_before(self, name: str, month: Month) -> None:
        """Months before ``month`` are no longer shown live: drop their running state."""
        settled = self._settled.get(name)
        if settled is not None and settled.month < month:
            del self._settled[name]
            self._notify(name)
        months = self._months.get(name, [])
        for old in [m for m in months if m < month]:
            self._notify(name)
            months.remove(old)
            del self._running[(name, old)]
            self._results.pop((name, old), None)


class HistoryNotLoaded(ValueError):
    """A month was asked for whose closed tallies are only in the store (see ``floor``)."""


def _same_keeping(asked: AccountingInputs, inputs: AccountingInputs) -> bool:
    """Whether :func:`_keeps` answers the same under both: the same SLAs (one tuple), equal
    services and canaries. rl34 (issue 20): a reload that reads months back first asks
    ``rebuilt_by`` with the inputs of the moment and installs under inputs taken again once
    the store is read (an exclusion may have come meanwhile): the SLAs found then stand,
    not 20,000 months compared again on the loop."""
    return asked is inputs or (
        asked.policies is inputs.policies
        and asked.canaries == inputs.canaries
        and asked.services == inputs.services
    )


def _keeps(
    running: RunningMonth | SettledMonth, policy: SlaPolicy, inputs: AccountingInputs
) -> bool:
    """Whether ``running`` stands under ``inputs`` (only its windows may move), the gaps
    being the ones it was built with (the caller's check, once for every month).

    Identity first (issue 20): a reload shares every unchanged SLA's policy and service
    objects (``model.share_unchanged``), so 10,000 kept SLAs cost no field comparison."""
    service = inputs.services.get(policy.service)
    return (
        (policy is running.policy or policy == running.policy)
        and (service is running.service or service == running.service)
        and (inputs.canaries is running.canaries or inputs.canaries == running.canaries)
    )


@dataclass(frozen=True)
class InputsIndex:
    """Which SLAs read each (bucket length, target)'s tallies, and each SLA by name, for one
    tuple of SLAs over their services (:func:`index_inputs`)."""

    policies: tuple[SlaPolicy, ...]
    dependents: dict[tuple[int, str], tuple[str, ...]]
    by_name: dict[str, SlaPolicy]


def index_inputs(
    policies: tuple[SlaPolicy, ...], services: Mapping[str, ServiceDef]
) -> InputsIndex:
    """The index :class:`Accounting` keeps for ``policies`` over ``services``: pure, so a
    reload builds it in its worker thread (issue 20: ~0.2 s at 10,000 SLAs, off the loop)."""
    found: dict[tuple[int, str], list[str]] = {}
    for policy in policies:
        service = services.get(policy.service)
        # Nested services read every leaf target of their members.
        names = () if service is None else service.all_targets
        # Canaries are not read: their failures reach a month as the excused counts of
        # its targets' tallies (monitor.runtime.state), each change told by the owner.
        for name in names:
            found.setdefault((policy.bucket_seconds, name), []).append(policy.name)
    return InputsIndex(
        policies,
        {key: tuple(dict.fromkeys(v)) for key, v in found.items()},
        {policy.name: policy for policy in policies},
    )
