"""`/metrics`: families built from the daemon's current state at scrape time.

Nothing here is a global gauge set from all over the code: the collector reads the live state,
the cached month results and the daemon's health when Prometheus asks, on the daemon's own
registry (tests build their own). Names follow the exporter conventions and are fixed, because
deploy/ (rules, dashboard) depends on them: ``METRIC_NAMES`` lists every one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
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
from prometheus_client.utils import floatToGoString

from monitor.instants import utc_from_epoch
from monitor.metrics.contract import CONTRACT_METRIC_NAMES
from monitor.runtime.state import TargetStatus, bucket_floor
from monitor.sla.buckets import nested_verdict, target_verdict
from monitor.sla.calendar import month_containing
from monitor.sla.month import MonthResult, all_failures_excused
from monitor.sla.policy import BucketState, ServiceDef, SlaPolicy
from monitor.sla.quorum import LocatedTallies, latest_verdicts
from probes.result import Outcome, ProbeResult

if TYPE_CHECKING:
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
HELP_SERVICE_UP = (
    "1 if the service is available by its rule over its targets' last probes, 0 if not; "
    "absent while unknown."
)
HELP_BUCKET_STATE = "State of the running bucket: 1 on its state (available, unavailable, ...)."
HELP_MONTH_BUCKETS = "Buckets of the current calendar month by state (pending = not yet elapsed)."
HELP_UPTIME = (
    "Monthly Uptime Percentage / 100, remaining buckets taken as available: the best the month "
    "can still end at."
)
HELP_UPTIME_WORST = "Monthly uptime ratio if every unknown bucket were unavailable."
HELP_UPTIME_MTD = "Uptime ratio over the buckets elapsed so far this month."
HELP_OBJECTIVE = "The SLA's objective as a ratio (99.999% -> 0.99999)."
HELP_BREACHED = "1 if the month's uptime is already below the objective."
HELP_BUDGET = "Error budget of the month in buckets (floor)."
HELP_BUDGET_REMAINING = "Error budget left in buckets; negative once breached."
HELP_CREDIT_RATIO = "Projected service credit as a fraction of the monthly fee (a floor)."
HELP_CREDIT_AMOUNT = "Projected service credit amount in the contract's currency (a floor)."
HELP_NEXT_TIER = "More unavailable buckets that would move the credit to the next tier."
HELP_CLAIM_DEADLINE = "Last moment to file this month's claim (epoch seconds)."
HELP_OUTAGE_OPEN = "1 while an outage (consecutive unavailable buckets) is running."
HELP_OUTAGE_LOCATION = (
    "1 for each monitoring location that saw the running outage (SLAs judged by locations)."
)
HELP_ACCOUNTANT = (
    "1 on the one daemon that exports the contract series of SLAs judged by locations "
    "(the accountant, elected through the shared database); 0 on the others."
)
HELP_PREV_CREDIT = "Credit owed for the previous month (file the claim before the deadline)."
HELP_PREV_DEADLINE = "Claim deadline of the previous month (epoch seconds)."
HELP_NETWORK_UP = "0 when every canary target fails: the monitor's own network is down."
HELP_IN_FLIGHT = "Probes running now."
HELP_SCHEDULER_LAG = "How late probes start after their scheduled time."
HELP_RELOAD_OK = "1 if the last configuration reload succeeded."
HELP_RELOAD_TIME = "When the configuration was last loaded successfully (epoch seconds)."
HELP_STORE_ERRORS = "Failed writes to the store (the rows are kept and retried)."
HELP_STORE_UP = "1 if the last flush reached the store, 0 while writes fail (rows kept, retried)."
HELP_SHARD_MEMBERS = "Live members of this daemon's location at its last heartbeat (sharding)."
HELP_SHARD_OWNED = "Targets of the location this member probes (its rendezvous share)."
HELP_SHARD_UP = "1 while shard heartbeats reach the database, 0 while it keeps its last share."
HELP_EVIDENCE_DROPPED = (
    "Failure evidence dropped because too much was waiting for the store (the tallies are kept)."
)
HELP_LAST_FLUSH = "When the store last committed a flush (epoch seconds)."
HELP_INTERNAL_ERRORS = "Unexpected exceptions caught in a background loop (logged; it goes on)."
HELP_MIN_COVERAGE = "The SLA's min_coverage as a ratio (the month's coverage should stay above it)."
HELP_PENDING_ROWS = "Rows waiting to be written to the store."
HELP_BUILD = "slawatch build information."
HELP_COVERAGE = "Measured / eligible buckets of the month so far (below min_coverage: warn)."
HELP_UPTIME_ESTIMATE = "The month's uptime under the unknown_buckets policy (not claimable)."
HELP_MONITOR_ERROR_BUCKETS = "Unknown buckets of the month holding the monitor's own errors."
HELP_RUNS_SKIPPED = (
    "Scheduled probe runs that never started (the loop stalled longer than an interval)."
)
HELP_RUNS_LATE = "Probe runs that started more than 1 s after their grid time."

_TARGET_LABELS = ["target", "kind", "role"]
_SLA_LABELS = ["sla", "service"]

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


def _ratio(percent: object) -> float | None:
    from fractions import Fraction

    if percent is None:
        return None
    assert isinstance(percent, Fraction)
    return float(percent / 100)


class DaemonCollector(Collector):
    """Reads the daemon at scrape time: the per-SLA and monitor families (the per-target ones
    are written by ``TargetFamilies``)."""

    def __init__(self, daemon: DaemonView) -> None:
        self._daemon = daemon

    def collect(self) -> Iterable[Metric]:
        now = self._daemon.clock()
        yield from self._slas(now)
        yield from self._monitor()

    # -- per SLA ---------------------------------------------------------------------------------
    def _slas(self, now: float) -> Iterator[Metric]:
        d = self._daemon
        up = GaugeMetricFamily("slawatch_service_up", HELP_SERVICE_UP, labels=_SLA_LABELS)
        bucket_state = GaugeMetricFamily(
            "slawatch_bucket_state", HELP_BUCKET_STATE, labels=[*_SLA_LABELS, "state"]
        )
        month_buckets = GaugeMetricFamily(
            "slawatch_month_buckets", HELP_MONTH_BUCKETS, labels=[*_SLA_LABELS, "state"]
        )
        gauges = {
            name: GaugeMetricFamily(name, text, labels=_SLA_LABELS)
            for name, text in (
                ("slawatch_month_uptime_ratio", HELP_UPTIME),
                ("slawatch_month_uptime_worst_case_ratio", HELP_UPTIME_WORST),
                ("slawatch_month_to_date_uptime_ratio", HELP_UPTIME_MTD),
                ("slawatch_month_coverage_ratio", HELP_COVERAGE),
                ("slawatch_month_uptime_estimate_ratio", HELP_UPTIME_ESTIMATE),
                ("slawatch_month_monitor_error_buckets", HELP_MONITOR_ERROR_BUCKETS),
                ("slawatch_sla_objective_ratio", HELP_OBJECTIVE),
                ("slawatch_sla_min_coverage_ratio", HELP_MIN_COVERAGE),
                ("slawatch_sla_breached", HELP_BREACHED),
                ("slawatch_error_budget_buckets", HELP_BUDGET),
                ("slawatch_error_budget_remaining_buckets", HELP_BUDGET_REMAINING),
                ("slawatch_credit_projected_ratio", HELP_CREDIT_RATIO),
                ("slawatch_credit_next_tier_buckets", HELP_NEXT_TIER),
                ("slawatch_claim_deadline_timestamp_seconds", HELP_CLAIM_DEADLINE),
                ("slawatch_outage_open", HELP_OUTAGE_OPEN),
                ("slawatch_previous_month_claim_deadline_timestamp_seconds", HELP_PREV_DEADLINE),
            )
        }
        amount = GaugeMetricFamily(
            "slawatch_credit_projected_amount",
            HELP_CREDIT_AMOUNT,
            labels=[*_SLA_LABELS, "currency"],
        )
        previous_amount = GaugeMetricFamily(
            "slawatch_previous_month_credit_amount",
            HELP_PREV_CREDIT,
            labels=[*_SLA_LABELS, "currency"],
        )
        moment = utc_from_epoch(now)
        services = d.accounting.inputs.services
        located_info = GaugeMetricFamily(
            "slawatch_outage_location_info", HELP_OUTAGE_LOCATION, labels=[*_SLA_LABELS, "location"]
        )
        for policy in d.accounting.inputs.policies:
            labels = [policy.name, policy.service]
            if policy.locations is not None and not d.health.accountant:
                # Issue 14: one daemon (the accountant) exports what pages; every daemon still
                # computes the same month for its API and web view.
                continue
            if policy.locations is not None:
                state = located_service_state(d, policy, services[policy.service], now)
            else:
                state = instant_service_state(d, services[policy.service], now)
            if state is BucketState.AVAILABLE:
                up.add_metric(labels, 1.0)
            elif state is BucketState.UNAVAILABLE:
                up.add_metric(labels, 0.0)
            result = d.accounting.month_result(policy, moment, stamp=False)
            current = provisional_bucket_state(d, policy, services[policy.service], now)
            for s in BucketState:
                if s is not BucketState.PENDING:
                    bucket_state.add_metric([*labels, s.value], 1.0 if s is current else 0.0)
            for s, count in (
                (BucketState.AVAILABLE, result.buckets_available),
                (BucketState.UNAVAILABLE, result.buckets_unavailable),
                (BucketState.EXCLUDED, result.buckets_excluded),
                (BucketState.UNKNOWN, result.buckets_unknown),
                (BucketState.PENDING, result.buckets_pending),
            ):
                month_buckets.add_metric([*labels, s.value], count)
            for name, value in (
                ("slawatch_month_uptime_ratio", _ratio(result.uptime_percent)),
                (
                    "slawatch_month_uptime_worst_case_ratio",
                    _ratio(result.uptime_percent_worst_case),
                ),
                (
                    "slawatch_month_to_date_uptime_ratio",
                    _ratio(result.month_to_date_uptime_percent),
                ),
                (
                    "slawatch_month_coverage_ratio",
                    None if result.coverage is None else float(result.coverage),
                ),
                ("slawatch_month_uptime_estimate_ratio", _ratio(result.uptime_percent_estimate)),
                (
                    "slawatch_month_monitor_error_buckets",
                    float(result.buckets_unknown_monitor_error),
                ),
                ("slawatch_sla_objective_ratio", float(policy.objective_percent) / 100),
                ("slawatch_sla_min_coverage_ratio", float(result.min_coverage)),
                ("slawatch_sla_breached", 1.0 if result.breached else 0.0),
                ("slawatch_error_budget_buckets", float(result.error_budget_buckets)),
                ("slawatch_error_budget_remaining_buckets", float(result.error_budget_remaining)),
                ("slawatch_credit_projected_ratio", float(result.credit_percent) / 100),
                (
                    "slawatch_credit_next_tier_buckets",
                    None
                    if result.buckets_to_next_tier is None
                    else float(result.buckets_to_next_tier),
                ),
                ("slawatch_claim_deadline_timestamp_seconds", result.claim_deadline.timestamp()),
                ("slawatch_outage_open", 1.0 if outage_open(result, moment) else 0.0),
            ):
                if value is not None:
                    gauges[name].add_metric(labels, value)
            amount.add_metric([*labels, result.currency], float(result.credit_amount))
            if result.outages and outage_open(result, moment):
                for where in result.outages[-1].locations:
                    located_info.add_metric([*labels, where], 1.0)
            previous = d.accounting.month_result(
                policy, moment, result.month.previous(), stamp=False
            )
            previous_amount.add_metric([*labels, previous.currency], float(previous.credit_amount))
            gauges["slawatch_previous_month_claim_deadline_timestamp_seconds"].add_metric(
                labels, previous.claim_deadline.timestamp()
            )
        yield from (up, bucket_state, month_buckets, amount, previous_amount, located_info)
        yield from gauges.values()

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
    new result, and a scrape every 15 s sees only half the targets of a 30 s interval change,
    so each target's lines are cached until its last result (or its labels) change. The text
    is byte for byte what ``generate_latest`` wrote for the same families. A sample reflects
    the target's state when its chunk was rendered: no later than the scrape's end.
    """

    def __init__(self, daemon: DaemonView) -> None:
        self._daemon = daemon
        # target -> (last result the lines were built from, (kind, role), one line block per family)
        self._cache: dict[str, tuple[ProbeResult | None, tuple[str, str], tuple[str, ...]]] = {}

    async def render(self) -> str:
        """The text of every per-target family, yielding to the event loop every
        ``RENDER_CHUNK`` targets so that probes due meanwhile start on time."""
        d = self._daemon
        cache = self._cache
        targets = d.config.targets
        blocks: list[tuple[str, ...]] = []
        for offset in range(0, len(targets), RENDER_CHUNK):
            if offset:
                await asyncio.sleep(0)
            for target in targets[offset : offset + RENDER_CHUNK]:
                status = d.state.targets.get(target.name)
                last = status.last if status is not None else None
                labels = (target.kind, target.role)
                entry = cache.get(target.name)
                # Recording a result replaces ``last`` and bumps the outcome counts together,
                # so the identity of ``last`` says whether the counts moved too.
                if entry is None or entry[0] is not last or entry[1] != labels:
                    entry = (last, labels, _target_blocks(target.name, *labels, status))
                    cache[target.name] = entry
                blocks.append(entry[2])
        if len(cache) > len(blocks):
            keep = {t.name for t in targets}
            for name in [n for n in cache if n not in keep]:
                del cache[name]
        parts: list[str] = []
        for index, header in enumerate(_TARGET_HEADERS):
            parts.append(header)
            parts.extend(block[index] for block in blocks)
        return "".join(parts)


def _header(name: str, help_text: str, kind: str) -> str:
    escaped = help_text.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {escaped}\n# TYPE {name} {kind}\n"


RENDER_CHUNK = 500
"""Targets rendered between two yields to the event loop (~5 ms of work at most)."""

_TARGET_HEADERS: tuple[str, ...] = (
    _header("slawatch_probe_success", HELP_PROBE_SUCCESS, "gauge"),
    _header("slawatch_probe_duration_seconds", HELP_PROBE_DURATION, "gauge"),
    _header("slawatch_probe_phase_seconds", HELP_PROBE_PHASE, "gauge"),
    _header("slawatch_probes_total", HELP_PROBES_TOTAL, "counter"),
    _header("slawatch_probe_last_run_timestamp_seconds", HELP_LAST_RUN, "gauge"),
    *(_header(name, text, "gauge") for name, _, text in DETAIL_GAUGES),
)
_ZERO_OUTCOMES = dict.fromkeys(Outcome, 0)


def _label_value(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _target_blocks(name: str, kind: str, role: str, status: TargetStatus | None) -> tuple[str, ...]:
    """One text block per family in ``_TARGET_HEADERS`` order (empty when it has no sample).

    Label names are sorted, as ``generate_latest`` writes them: kind, outcome|phase, role,
    target.
    """
    head = f'{{kind="{_label_value(kind)}",'
    tail = f'role="{_label_value(role)}",target="{_label_value(name)}"}}'
    labels = head + tail
    outcomes = status.outcomes if status is not None else _ZERO_OUTCOMES
    totals = "".join(
        f'slawatch_probes_total{head}outcome="{outcome.value}",{tail} {_num(count)}\n'
        for outcome, count in outcomes.items()
    )
    last = status.last if status is not None else None
    if last is None:
        return ("", "", "", totals, "", *("" for _ in DETAIL_GAUGES))
    details = []
    for metric, key, _ in DETAIL_GAUGES:
        value = last.details.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            details.append(f"{metric}{labels} {_num(value)}\n")
        else:
            details.append("")
    return (
        f"slawatch_probe_success{labels} {'1.0' if last.ok else '0.0'}\n",
        f"slawatch_probe_duration_seconds{labels} {_num(last.duration_seconds)}\n",
        "".join(
            f'slawatch_probe_phase_seconds{head}phase="{_label_value(phase)}",{tail} '
            f"{_num(seconds)}\n"
            for phase, seconds in last.phases.items()
        ),
        totals,
        f"slawatch_probe_last_run_timestamp_seconds{labels} {_num(last.started_at)}\n",
        *details,
    )


def _num(value: float) -> str:
    """``floatToGoString``, with the common case (a float's own repr) taken without its
    checks: it is called ~10 times per target per scrape."""
    number = float(value)
    if -1e6 < number < 1e6:
        return repr(number)
    return _go_float(number)


# prometheus_client leaves it unannotated; this is how generate_latest writes every value.
_go_float: Callable[[float], str] = floatToGoString


class MetricsExposition:
    """The ``/metrics`` body: the per-target families as cached text, then the registry."""

    def __init__(self, daemon: DaemonView, extra: Sequence[Collector] = ()) -> None:
        self.registry = build_registry(daemon, extra)
        self._targets = TargetFamilies(daemon)

    async def render(self) -> bytes:
        targets = await self._targets.render()
        return targets.encode("utf-8") + generate_latest(self.registry)


def instant_service_state(daemon: DaemonView, service: ServiceDef, now: float) -> BucketState:
    """The service by its rule over its targets' latest results; a result older than two
    intervals (or none yet) is unknown, so a stalled monitor never reads as available."""
    states: dict[str, BucketState] = {}
    scheduled = daemon.scheduler.targets
    for name in service.all_targets:
        status = daemon.state.targets.get(name)
        target = scheduled.get(name)
        last = status.last if status else None
        if (
            last is None
            or target is None
            or now - last.started_at > 2 * target.interval + target.timeout
        ):
            states[name] = BucketState.UNKNOWN
        else:
            states[name] = BucketState.AVAILABLE if last.ok else BucketState.UNAVAILABLE
    return nested_verdict(service, states)


def located_service_state(
    daemon: DaemonView, policy: SlaPolicy, service: ServiceDef, now: float
) -> BucketState:
    """Issue 14: the service "now" for an SLA judged by locations: the quorum of locations
    over the running bucket (the bucket before it while the running one has no verdict yet),
    from every location's tallies as last read from the shared store."""
    size = policy.bucket_seconds
    month = month_containing(utc_from_epoch(now), policy.timezone)
    located = daemon.accounting.tallies_of(policy, month)
    assert isinstance(located, LocatedTallies)
    states = latest_verdicts(
        located, service.all_targets, bucket_floor(now, size), size, policy.bucket_rule
    )
    return nested_verdict(service, states)


def provisional_bucket_state(
    daemon: DaemonView, policy: SlaPolicy, service: ServiceDef, now: float
) -> BucketState:
    """The running bucket's verdict so far, by the same rules the month will apply once it
    closes (the engine itself reports a running bucket as pending)."""
    start = bucket_floor(now, policy.bucket_seconds)
    end = start + policy.bucket_seconds
    month = month_containing(utc_from_epoch(now), policy.timezone)
    for window in daemon.accounting.windows_for(policy, month):
        if window.start.timestamp() < end and window.end.timestamp() > start:
            return BucketState.EXCLUDED
    if policy.locations is not None:  # issue 14: the quorum of locations, as the month
        located = daemon.accounting.tallies_of(policy, month)
        assert isinstance(located, LocatedTallies)
        return nested_verdict(
            service,
            {
                name: located.verdict(name, start, policy.bucket_seconds, policy.bucket_rule).state
                for name in service.all_targets
            },
        )
    tallies = daemon.state.tallies(policy.bucket_seconds)
    cells = [tallies.get(name, {}).get(start) for name in service.all_targets]
    states = {
        name: target_verdict(cell, policy.bucket_rule)
        for name, cell in zip(service.all_targets, cells, strict=True)
    }
    state = nested_verdict(service, states)
    # As the month judges it: excluded only when every failure was excused by the canaries.
    if (
        daemon.accounting.inputs.canaries
        and state is not BucketState.AVAILABLE
        and all_failures_excused(cells)
    ):
        return BucketState.EXCLUDED
    return state


def outage_open(result: MonthResult, now: datetime) -> bool:
    """An outage runs if the latest one reaches the running bucket or the one just closed."""
    if not result.outages:
        return False
    last_end = result.outages[-1].end
    return (now - last_end).total_seconds() < result.bucket_seconds


def build_registry(daemon: DaemonView, extra: Sequence[Collector] = ()) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    for collector in extra:
        registry.register(collector)
    return registry
