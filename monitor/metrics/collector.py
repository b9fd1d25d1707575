"""`/metrics`: families built from the daemon's current state at scrape time.

Nothing here is a global gauge set from all over the code: the collector reads the live state,
the cached month results and the daemon's health when Prometheus asks, on the daemon's own
registry (tests build their own). Names follow the exporter conventions and are fixed, because
deploy/ (rules, dashboard) depends on them: ``METRIC_NAMES`` lists every one.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from importlib import metadata
from typing import TYPE_CHECKING

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from monitor.metrics.contract import CONTRACT_METRIC_NAMES
from monitor.metrics.sla_text import SLICE_SECONDS, SlaFamilies
from monitor.metrics.sla_text import instant_service_state as instant_service_state
from monitor.metrics.sla_text import outage_open as outage_open
from monitor.metrics.sla_text import provisional_bucket_state as provisional_bucket_state
from monitor.metrics.text import header as _header
from monitor.metrics.text import label_value as _label_value
from monitor.metrics.text import num as _num
from monitor.runtime.health import WarmingGate
from monitor.runtime.state import TargetFeed, TargetStatus
from probes.result import Outcome, ProbeResult

if TYPE_CHECKING:
    from monitor.config.model import TargetConfig
    from monitor.runtime.view import DaemonView


def _version() -> str:
    """The installed package's version (``slawatch_build_info``), from its metadata."""
    try:
        return metadata.version("slawatch")
    except metadata.PackageNotFoundError:
        return "unknown"


VERSION = _version()

# (metric name, ProbeResult.details key, help)
DETAIL_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("slawatch_probe_http_status_code", "status_code", "HTTP status code of the last probe."),
    (
        "slawatch_probe_certificate_expiry_timestamp_seconds",
        "certificate_expiry_timestamp",
        "Earliest notAfter of the peer certificate seen by the last TLS probe (epoch seconds).",
    ),
    ("slawatch_probe_sip_status_code", "sip_status", "Final SIP status code of the last probe."),
    (
        "slawatch_probe_sip_post_dial_delay_seconds",
        "post_dial_delay_seconds",
        "Test call: INVITE sent to the first 18x response.",
    ),
    (
        "slawatch_probe_sip_answer_seconds",
        "answer_seconds",
        "Test call: INVITE sent to the 200 OK answer.",
    ),
    (
        "slawatch_probe_rtp_packets_received",
        "rtp_packets_received",
        "Test call: RTP packets received from the far end.",
    ),
    (
        "slawatch_probe_rtp_loss_ratio",
        "rtp_loss_ratio",
        "Test call: RTP packets lost / expected (RFC 3550).",
    ),
    (
        "slawatch_probe_rtp_jitter_seconds",
        "rtp_jitter_seconds",
        "Test call: RTP interarrival jitter (RFC 3550).",
    ),
    ("slawatch_probe_mos", "mos", "Test call: estimated MOS (simplified ITU-T G.107 E-model)."),
)

HELP_PROBE_SUCCESS = "1 if the target's last probe succeeded, else 0."
HELP_PROBE_DURATION = "Duration of the target's last probe."
HELP_PROBE_PHASE = "Duration of each phase of the target's last probe."
HELP_PROBES_TOTAL = "Probes run since the daemon started, by outcome."
HELP_LAST_RUN = "When the target's last probe started (epoch seconds)."
HELP_ACCOUNTANT = (
    "1 on the one daemon that exports the contract series of SLAs judged by locations "
    "(the accountant, elected through the shared database); 0 on the others."
)
HELP_NETWORK_UP = "0 when every canary target fails: the monitor's own network is down."
HELP_IN_FLIGHT = "Probes running now."
HELP_SCHEDULER_LAG = "How late probes start after their scheduled time."
HELP_RELOAD_OK = "1 if the last configuration reload succeeded."
HELP_RELOAD_TIME = "When the configuration was last loaded successfully (epoch seconds)."
HELP_STORE_ERRORS = "Failed writes to the store (the rows are kept and retried)."
HELP_STORE_UP = "1 if the last flush reached the store, 0 while writes fail (rows kept, retried)."
HELP_STORE_CORRUPT = (
    "1 once the check of the SQLite file after the start found damage (nothing more is written "
    "to it), else 0."
)
HELP_SHARD_MEMBERS = "Live members of this daemon's location at its last heartbeat (sharding)."
HELP_SHARD_OWNED = "Targets of the location this member probes (its rendezvous share)."
HELP_SHARD_UP = "1 while shard heartbeats reach the database, 0 while it keeps its last share."
HELP_EVIDENCE_DROPPED = (
    "Failure evidence dropped because too much was waiting for the store (the tallies are kept)."
)
HELP_LAST_FLUSH = "When the store last committed a flush (epoch seconds)."
HELP_INTERNAL_ERRORS = "Unexpected exceptions caught in a background loop (logged; it goes on)."
HELP_PENDING_ROWS = "Rows waiting to be written to the store."
HELP_BUILD = "slawatch build information."
HELP_RUNS_SKIPPED = (
    "Scheduled probe runs that never started (the loop stalled longer than an interval)."
)
HELP_RUNS_LATE = "Probe runs that started more than 1 s after their grid time."

_TARGET_LABELS = ["target", "kind", "role"]

METRIC_NAMES: frozenset[str] = frozenset(
    {
        "slawatch_probe_success",
        "slawatch_probe_duration_seconds",
        "slawatch_probe_phase_seconds",
        "slawatch_probes_total",
        "slawatch_probe_last_run_timestamp_seconds",
        *(name for name, _, _ in DETAIL_GAUGES),
        "slawatch_service_up",
        "slawatch_bucket_state",
        "slawatch_month_buckets",
        "slawatch_month_uptime_ratio",
        "slawatch_month_uptime_worst_case_ratio",
        "slawatch_month_to_date_uptime_ratio",
        "slawatch_month_coverage_ratio",
        "slawatch_month_uptime_estimate_ratio",
        "slawatch_month_monitor_error_buckets",
        "slawatch_sla_objective_ratio",
        "slawatch_sla_breached",
        "slawatch_error_budget_buckets",
        "slawatch_error_budget_remaining_buckets",
        "slawatch_credit_projected_ratio",
        "slawatch_credit_projected_amount",
        "slawatch_credit_next_tier_buckets",
        "slawatch_claim_deadline_timestamp_seconds",
        "slawatch_outage_open",
        "slawatch_previous_month_credit_amount",
        "slawatch_previous_month_claim_deadline_timestamp_seconds",
        "slawatch_monitor_network_up",
        "slawatch_scheduler_lag_seconds",
        "slawatch_probes_in_flight",
        "slawatch_probe_runs_skipped_total",
        "slawatch_probe_runs_late_total",
        "slawatch_config_last_reload_successful",
        "slawatch_config_last_reload_success_timestamp_seconds",
        "slawatch_store_write_errors_total",
        "slawatch_store_up",
        "slawatch_store_corrupt",
        "slawatch_evidence_dropped_total",
        "slawatch_store_last_flush_timestamp_seconds",
        "slawatch_store_pending_rows",
        "slawatch_build_info",
        "slawatch_internal_errors_total",
        "slawatch_sla_min_coverage_ratio",
        "slawatch_outage_location_info",
        "slawatch_accountant",
        "slawatch_shard_members",  # issue 14: sharding inside a location
        "slawatch_shard_targets_owned",
        "slawatch_shard_up",
    }
)
# The contract families (target info, claims, support SLA) come from monitor.metrics_contract.
METRIC_NAMES = METRIC_NAMES | CONTRACT_METRIC_NAMES


class DaemonCollector(Collector):
    """Reads the daemon at scrape time: the monitor's own families (the per-target and per-SLA
    ones are written as text by ``TargetFamilies`` and ``monitor.metrics.sla_text``)."""

    def __init__(self, daemon: DaemonView) -> None:
        self._daemon = daemon

    def collect(self) -> Iterable[Metric]:
        yield from self._monitor()

    # -- the monitor itself ------------------------------------------------------------------------
    def _monitor(self) -> Iterator[Metric]:
        d = self._daemon
        h = d.health
        canaries = d.accounting.inputs.canaries
        if canaries:
            lasts = [d.state.targets.get(c) for c in canaries]
            known = [s.last for s in lasts if s is not None and s.last is not None]
            if known:
                network = GaugeMetricFamily("slawatch_monitor_network_up", HELP_NETWORK_UP)
                network.add_metric([], 0.0 if all(not r.ok for r in known) else 1.0)
                yield network
        lag = h.scheduler_lag
        yield HistogramMetricFamily(
            "slawatch_scheduler_lag_seconds",
            HELP_SCHEDULER_LAG,
            buckets=[(bound, float(count)) for bound, count in lag.cumulative()],
            sum_value=lag.total,
        )
        yield GaugeMetricFamily(
            "slawatch_probes_in_flight", HELP_IN_FLIGHT, value=d.scheduler.in_flight
        )
        yield CounterMetricFamily(
            "slawatch_probe_runs_skipped", HELP_RUNS_SKIPPED, value=d.scheduler.runs_skipped
        )
        yield CounterMetricFamily(
            "slawatch_probe_runs_late", HELP_RUNS_LATE, value=d.scheduler.runs_late
        )
        yield GaugeMetricFamily(
            "slawatch_config_last_reload_successful",
            HELP_RELOAD_OK,
            value=1.0 if h.reload_successful else 0.0,
        )
        if h.last_reload_success is not None:
            yield GaugeMetricFamily(
                "slawatch_config_last_reload_success_timestamp_seconds",
                HELP_RELOAD_TIME,
                value=h.last_reload_success,
            )
        yield CounterMetricFamily(
            "slawatch_store_write_errors", HELP_STORE_ERRORS, value=h.store_write_errors
        )
        internal = CounterMetricFamily(
            "slawatch_internal_errors", HELP_INTERNAL_ERRORS, labels=["loop"]
        )
        for loop, count in sorted(h.internal_errors.items()):
            internal.add_metric([loop], float(count))
        yield internal
        yield GaugeMetricFamily(
            "slawatch_store_up", HELP_STORE_UP, value=0.0 if h.store_failing else 1.0
        )
        # sc28 (issue 20): the integrity check runs after ready now (rd28); what it finds pages
        # through SlawatchStoreCorrupt, not only through /readyz (which no alert reads).
        yield GaugeMetricFamily(
            "slawatch_store_corrupt",
            HELP_STORE_CORRUPT,
            value=0.0 if h.store_corrupt is None else 1.0,
        )
        if h.shard is not None:  # issue 14: this member's view of its location
            yield GaugeMetricFamily(
                "slawatch_shard_members", HELP_SHARD_MEMBERS, value=len(h.shard.members)
            )
            yield GaugeMetricFamily(
                "slawatch_shard_targets_owned", HELP_SHARD_OWNED, value=h.shard.targets_owned
            )
            yield GaugeMetricFamily(
                "slawatch_shard_up", HELP_SHARD_UP, value=1.0 if h.shard.up else 0.0
            )
        yield CounterMetricFamily(
            "slawatch_evidence_dropped", HELP_EVIDENCE_DROPPED, value=d.state.evidence_dropped
        )
        if h.last_flush is not None:
            yield GaugeMetricFamily(
                "slawatch_store_last_flush_timestamp_seconds", HELP_LAST_FLUSH, value=h.last_flush
            )
        yield GaugeMetricFamily(
            "slawatch_store_pending_rows", HELP_PENDING_ROWS, value=d.state.pending_rows
        )
        yield GaugeMetricFamily(
            "slawatch_accountant", HELP_ACCOUNTANT, value=1.0 if h.accountant else 0.0
        )
        info = GaugeMetricFamily("slawatch_build_info", HELP_BUILD, labels=["version", "vantage"])
        info.add_metric([VERSION, d.config.monitor.name], 1.0)
        yield info


class TargetFamilies:
    """The per-target families, written straight as exposition text.

    At 10,000 targets these are ~120,000 samples; building them as ``Metric`` objects and
    formatting them through ``generate_latest`` took a second per scrape, all of it blocking
    the event loop (and so delaying probes). A target's lines change only when it reports a
    new result (or its labels change), so each target's lines are kept, family by family,
    and grouped in chunks of ``RENDER_CHUNK`` targets whose text is kept joined and encoded.
    The text is byte for byte what ``generate_latest`` wrote for the same families. A sample
    reflects the target's state when the scrape wrote its lines: no later than the scrape's
    end.

    A scrape costs what changed since the last one, not the number of targets (ps32, issue
    20: between two scrapes 5 s apart a sixth of the targets of a 30 s interval have a new
    result, and looking at all 10,000 and joining every chunk again was ~6 % of the daemon's
    CPU at 100 SLAs of 100). As in ``monitor.metrics.sla_text``, what tells is a feed:
    :meth:`monitor.runtime.state.LiveState.watch` names every target a result was recorded
    for (or that was forgotten); a new configuration (its targets replaced: reload, labels)
    or a new live state has every target read again, the lines of a target whose last result
    and labels did not change kept as they were.
    """

    def __init__(self, daemon: DaemonView, *, gate_ready: bool = False) -> None:
        """``gate_ready``: the daemon is not ready (``Health.warming``) until every target's
        lines were written once (:meth:`warm_soon`, or a scrape)."""
        self._daemon = daemon
        # fs28 (issue 20): after a start no target's lines are written; the first scrape
        # after ready wrote all 10,000 (as many again as a scrape 15 s later).
        self._gate = WarmingGate(daemon.health.warming if gate_ready else None, TARGETS_WARMING)
        self._warm_task: asyncio.Task[list[bytes]] | None = None
        self._lock = asyncio.Lock()
        self._state: object = None
        self._feed: TargetFeed | None = None
        self._targets: Sequence[TargetConfig] = ()
        """The configuration's targets the positions below are of (replaced: read again)."""
        self._size = RENDER_CHUNK
        self._positions: dict[str, int] = {}
        self._names: list[str] = []
        self._lasts: list[ProbeResult | None] = []
        """Each target's last result its lines were written from (its identity says whether
        the counts moved too: recording a result replaces ``last`` and bumps them together)."""
        self._written: list[bool] = []
        self._rows: list[tuple[str, ...]] = []
        """Each target's lines, one block per family (the same strings as the columns)."""
        self._columns: list[list[str]] = []
        """Per family, each target's lines (in the configuration's order)."""
        self._chunks: list[list[bytes]] = []
        """Per chunk of targets, per family, its targets' lines joined and encoded."""
        self._todo: set[int] = set()
        """Targets to read again (kept here, not in the scrape: one cancelled loses none)."""
        self._dirty: set[int] = set()
        """The (chunk, family) whose text moved and is to be joined again, each as
        ``chunk * families + family``."""

    @property
    def warming(self) -> bool:
        """True until every target's lines were written once (only with ``gate_ready``)."""
        return self._gate.closed

    def warm_soon(self) -> None:
        """While warming: write every target's lines in a task of its own (the daemon's hook
        after each summary), as a scrape would; :meth:`render_parts` ends the warming."""
        task = self._warm_task
        if self._gate.closed and (task is None or task.done()):
            self._warm_task = asyncio.get_running_loop().create_task(self.render_parts())

    async def settled(self) -> None:
        """Wait for the writing :meth:`warm_soon` started, if one runs."""
        task = self._warm_task
        if task is not None:
            await task

    async def render(self) -> str:
        """The text of every per-target family (see :meth:`render_parts`)."""
        return (await self.render_bytes()).decode("utf-8")

    async def render_bytes(self) -> bytes:
        """The encoded text of every per-target family (the pieces of :meth:`render_parts`
        joined)."""
        return b"".join(await self.render_parts())

    async def render_parts(self) -> list[bytes]:
        """The encoded text of every per-target family as pieces to send one after the
        other, yielding to the event loop every ``RENDER_CHUNK`` targets written so that
        probes due meanwhile start on time. Only the targets the feed names are written
        again and only the chunks (and families) whose text moved are joined again; the
        pieces are the chunks themselves: the body is never joined (sc24). A reload while it
        yields starts the work again over the new targets, so a scrape never mixes two
        configurations."""
        async with self._lock:
            while True:
                self._collect()
                if await self._process():
                    break
            await self._join()
            self._gate.open()
            return self._parts()

    # -- what changed ------------------------------------------------------------------------
    def _stale(self) -> bool:
        """The configuration's targets (or the live state) are not those indexed."""
        d = self._daemon
        targets = d.config.targets
        return self._feed is None or self._state is not d.state or self._targets is not targets

    def _reindex(self) -> None:
        """A new configuration (or live state): every target read again, a target whose
        last result and labels are those its lines were written from keeping them."""
        d = self._daemon
        state = d.state
        if self._state is not state or self._feed is None:
            self._state = state
            self._feed = state.watch()
        self._feed.take()  # every target is read below
        targets = d.config.targets
        old_positions, old_targets, old_lasts = self._positions, self._targets, self._lasts
        old_written, old_columns, old_rows = self._written, self._columns, self._rows
        size = self._size = RENDER_CHUNK
        count = len(targets)
        families = len(_TARGET_HEADERS)
        names = [target.name for target in targets]
        statuses = state.targets
        lasts: list[ProbeResult | None] = [None] * count
        written = [False] * count
        rows: list[tuple[str, ...]] = [()] * count
        columns = [[""] * count for _ in range(families)]
        todo: set[int] = set()
        for position, name in enumerate(names):
            old = old_positions.get(name)
            status = statuses.get(name)
            last = None if status is None else status.last
            target = targets[position]
            if old is None or (old_targets[old].kind, old_targets[old].role) != (
                target.kind,
                target.role,
            ):
                todo.add(position)
                continue
            if old_written[old] and old_lasts[old] is last:
                lasts[position] = last
                written[position] = True
                rows[position] = old_rows[old]
                for family in range(families):
                    columns[family][position] = old_columns[family][old]
            else:
                todo.add(position)
        self._positions = {name: position for position, name in enumerate(names)}
        self._targets, self._names, self._lasts = targets, names, lasts
        self._written, self._rows, self._columns, self._todo = written, rows, columns, todo
        chunks = -(-count // size)
        self._chunks = [[b""] * families for _ in range(chunks)]
        self._dirty = set(range(chunks * families))

    def _collect(self) -> None:
        """Flag the targets a result was recorded for (or forgotten) since the last scrape."""
        if self._stale():
            self._reindex()
        feed = self._feed
        assert feed is not None
        positions = self._positions
        todo = self._todo
        for name in feed.take():
            position = positions.get(name)
            if position is not None:
                todo.add(position)

    async def _process(self) -> bool:
        """Write the flagged targets' lines again; False when the configuration (or the live
        state) changed while it yielded."""
        todo = self._todo
        statuses = self._daemon.state.targets
        names, targets, lasts, written = self._names, self._targets, self._lasts, self._written
        rows = self._rows
        columns, dirty, size = self._columns, self._dirty, self._size
        families = len(columns)
        done = 0
        while todo:
            if done == RENDER_CHUNK:
                await asyncio.sleep(0)
                if self._stale():
                    return False
                statuses = self._daemon.state.targets
                done = 0
            position = todo.pop()
            done += 1
            name = names[position]
            status = statuses.get(name)
            last = None if status is None else status.last
            before = lasts[position] if written[position] else None
            if written[position] and before is last:
                continue
            lasts[position] = last
            written[position] = True
            base = position // size * families
            old = rows[position]
            target = targets[position]
            row = rows[position] = _target_blocks(
                name, target.kind, target.role, status, before, old
            )
            if not old:  # its first lines (a start, a reload): every family's text moves
                for family, text in enumerate(row):
                    columns[family][position] = text
                dirty.update(range(base, base + families))
                continue
            for family, text in enumerate(row):
                if text != old[family]:
                    columns[family][position] = text
                    dirty.add(base + family)
        return True

    async def _join(self) -> None:
        """Join and encode the text of every (chunk, family) whose lines moved, yielding to
        the event loop every ``SLICE_SECONDS`` (the lock is held: nothing else changes
        them)."""
        dirty, chunks, columns, size = self._dirty, self._chunks, self._columns, self._size
        mark = time.perf_counter()
        while dirty:
            if time.perf_counter() - mark > SLICE_SECONDS:
                await asyncio.sleep(0)
                mark = time.perf_counter()
            chunk, family = divmod(dirty.pop(), len(columns))
            start = chunk * size
            chunks[chunk][family] = "".join(columns[family][start : start + size]).encode("utf-8")

    def _parts(self) -> list[bytes]:
        """Each family's header, then its text chunk by chunk."""
        chunks = self._chunks
        parts: list[bytes] = []
        for family, header in enumerate(_ENCODED_TARGET_HEADERS):
            parts.append(header)
            for chunk in chunks:
                piece = chunk[family]
                if piece:
                    parts.append(piece)
        return parts


TARGETS_WARMING = "per-target metrics"
"""fs28 (issue 20): what ``Health.warming`` names while the per-target lines are first written."""

RENDER_CHUNK = 250
"""Targets rendered between two yields to the event loop (~3 ms of work at most; sc24: 500
held the loop 20-60 ms per chunk on a loaded machine)."""

_TARGET_HEADERS: tuple[str, ...] = (
    _header("slawatch_probe_success", HELP_PROBE_SUCCESS, "gauge"),
    _header("slawatch_probe_duration_seconds", HELP_PROBE_DURATION, "gauge"),
    _header("slawatch_probe_phase_seconds", HELP_PROBE_PHASE, "gauge"),
    _header("slawatch_probes_total", HELP_PROBES_TOTAL, "counter"),
    _header("slawatch_probe_last_run_timestamp_seconds", HELP_LAST_RUN, "gauge"),
    *(_header(name, text, "gauge") for name, _, text in DETAIL_GAUGES),
)
_ENCODED_TARGET_HEADERS = tuple(header.encode("utf-8") for header in _TARGET_HEADERS)
_ZERO_OUTCOMES = dict.fromkeys(Outcome, 0)


_DETAIL_INDEX = {key: index for index, (_, key, _) in enumerate(DETAIL_GAUGES)}
_NO_DETAILS = ("",) * len(DETAIL_GAUGES)
_DETAIL_METRICS = tuple(metric for metric, _, _ in DETAIL_GAUGES)
_OUTCOME_VALUES = {outcome: outcome.value for outcome in Outcome}
_ESCAPED: dict[str, str] = {}


def _escaped(text: str) -> str:
    """A kind's, role's or phase's label value escaped, remembered (a handful of values;
    target names, one each, are escaped as they are written)."""
    escaped = _ESCAPED.get(text)
    if escaped is None:
        escaped = _label_value(text)
        if len(_ESCAPED) < 1000:
            _ESCAPED[text] = escaped
    return escaped


def _target_blocks(
    name: str,
    kind: str,
    role: str,
    status: TargetStatus | None,
    before: ProbeResult | None = None,
    lines: Sequence[str] = (),
) -> tuple[str, ...]:
    """One text block per family in ``_TARGET_HEADERS`` order (empty when it has no
    sample).

    ``before``: the target's previous last result, ``lines`` the blocks written from it. A
    block whose values did not move is kept as written (ps32, issue 20: a new result of an
    HTTP target moves its duration, phases, counts and start, rarely its success or its
    status code).

    Label names are sorted, as ``generate_latest`` writes them: kind, outcome|phase, role,
    target.
    """
    head = f'{{kind="{_escaped(kind)}",'
    tail = f'role="{_escaped(role)}",target="{_label_value(name)}"}}'
    outcomes = status.outcomes if status is not None else _ZERO_OUTCOMES
    totals = "".join(
        [
            f'slawatch_probes_total{head}outcome="{_OUTCOME_VALUES[outcome]}",{tail} '
            f"{_num(count)}\n"
            for outcome, count in outcomes.items()
        ]
    )
    last = status.last if status is not None else None
    if last is None:
        return ("", "", "", totals, "", *_NO_DETAILS)
    labels = head + tail
    if before is not None and last.ok is before.ok:
        success = lines[0]
    else:
        success = f"slawatch_probe_success{labels} {'1.0' if last.ok else '0.0'}\n"
    if before is not None and last.details == before.details:
        details: Sequence[str] = lines[5:]
    else:
        found = list(_NO_DETAILS)
        # The details the result holds, each in its family's place: the same lines as asking
        # for every family's key in turn (a result holds a few of the nine).
        for key, value in last.details.items():
            index = _DETAIL_INDEX.get(key)
            if index is not None and isinstance(value, int | float) and not isinstance(value, bool):
                found[index] = f"{_DETAIL_METRICS[index]}{labels} {_num(value)}\n"
        details = found
    return (
        success,
        f"slawatch_probe_duration_seconds{labels} {_num(last.duration_seconds)}\n",
        "".join(
            [
                f'slawatch_probe_phase_seconds{head}phase="{_escaped(phase)}",{tail} '
                f"{_num(seconds)}\n"
                for phase, seconds in last.phases.items()
            ]
        ),
        totals,
        f"slawatch_probe_last_run_timestamp_seconds{labels} {_num(last.started_at)}\n",
        *details,
    )


class MetricsExposition:
    """The ``/metrics`` body: the per-target and per-SLA families as cached text, then the
    registry (the monitor's own figures and the support SLA's, a few dozen series)."""

    def __init__(self, daemon: DaemonView, extra: Sequence[Collector] = ()) -> None:
        self.registry = build_registry(daemon, extra)
        self._targets = TargetFamilies(daemon, gate_ready=True)
        # fs28 (issue 20): /readyz waits for the per-SLA text to be written once.
        self._slas = SlaFamilies(daemon, gate_ready=True)
        # Issue 20: the daemon brings the per-SLA text up to date after each summary (in
        # slices, before the next scrape). Held weakly: an exposition dropped stops there.
        hooks = getattr(daemon, "summary_hooks", None)
        if isinstance(hooks, list):
            hooks.append(_weak_refresh(self._slas, self._targets))

    async def refresh(self) -> None:
        """Evaluate what changed for the per-SLA families now (the next scrape finds it)."""
        await self._slas.refresh()

    async def settled(self) -> None:
        """Wait for the per-SLA refresh (and the per-target warming) the daemon's hook
        started, if one runs."""
        await self._slas.settled()
        await self._targets.settled()

    async def render(self) -> bytes:
        """The whole body in one piece (tests, benches; ``/metrics`` sends the pieces)."""
        return b"".join(await self.render_parts())

    async def render_parts(self) -> Sequence[bytes]:
        """The body as pieces to send one after the other (``monitor.http.pieces``): the
        cached chunks of text themselves, so that a scrape neither joins nor copies the
        ~29 MB of 10,000 one-target SLAs (sc24, issue 20: the join and the one write of the
        joined body held the loop 60-150 ms and were the scrape's peak of memory); the
        per-SLA chunks made as they are sent (mem34, ``SlaPieces``)."""
        parts = await self._targets.render_parts()
        pieces = await self._slas.render_parts(parts)
        return pieces.followed_by((generate_latest(self.registry),))


def _weak_refresh(families: SlaFamilies, targets: TargetFamilies) -> Callable[[], Awaitable[None]]:
    """``families.refresh_soon`` (and, until ready, ``targets.warm_soon``) without keeping
    either alive."""
    ref = weakref.ref(families)
    target_ref = weakref.ref(targets)

    async def refresh() -> None:
        alive = ref()
        if alive is not None:
            alive.refresh_soon()
        warming = target_ref()
        if warming is not None:
            warming.warm_soon()

    return refresh


def build_registry(daemon: DaemonView, extra: Sequence[Collector] = ()) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    for collector in extra:
        registry.register(collector)
    return registry
