"""The store a daemon that ran all month leaves, written fast (issue 20, mw24).

``bench/daemon_bench.py --month-end DAY`` (and ``tests/test_bench_month_end.py``) start the
daemon at a month's end. Writing the month tally by tally (``daemon_bench.prefill``) is 80 M
rows at 10,000 targets on day 28, more than an hour; a daemon that ran all month starts
instead from what it saved (``monitor.runtime.snapshots``): every SLA's previous and current
month as a snapshot up to the last hourly save, the tallies after it, the previous month
sealed (``monitor.reports.seal``), and a heartbeat. :func:`prefill_month_end` writes that:

1. **template**: one SLA of the layout's size (its first SLA's targets) is written tally by
   tally, the old route, from the previous month's start to ``now`` into a scratch store, and
   a daemon (``Daemon`` over a ``FixedClock``) reads it back and judges it: its running
   months' ``judged_state`` up to the snapshot instant is what the daemon itself would save;
2. **every SLA**: every target carries the same tallies, so every SLA of that size judges the
   same buckets; only the targets named in an outage's evidence differ. Each SLA's state is
   the template's with its own target names, encoded by ``running_codec.encode`` with its own
   ``inputs_digest``, and saved through ``MonthSnapshots.restorable`` (the guards armed, as
   at a start) and ``SnapshotStore.save_month_snapshots`` (as the hourly save);
3. **the tail**: the tallies after the snapshot instant, tally by tally, and a heartbeat at
   ``now`` (no downtime gap);
3b. **the verdicts** (vm26): every SLA's stored service verdicts of its current month, the
   template's (``state_at``, as ``Daemon._verdict_steps`` writes them) from its first bucket
   with a tally to the last settled at ``now``, written before the snapshots, which carry the
   hourly save's verdict mark (its vouch up to the snapshot instant, with the exclusions'
   digest: ``monitor.runtime.verdict_resume``). At most ``VERDICTS_IN_FULL`` rows: above it
   (10,000 one-target SLAs, 78 M rows at day 28) only those after the snapshot instant, the
   ones a start reads back; the earlier ones are vouched for and never read;
4. **the seal**: the template's previous month is sealed with ``make_seal`` from the
   daemon's ``month_result`` (as ``Daemon._seal_closed_months`` does an hour into the month),
   and every SLA's seal is that document with its own SLA, service and target names, its
   digest ``seal_digest``'s (sealing 10,000 months one by one costs minutes: the bucket
   states' encoding, ``seal_document``, is ~10 ms per SLA-month); and (dq30) the record a
   daemon's sealing pass leaves once the month is sealed (``monitor.runtime.sealing``'s
   ``DONE_KEY``), so that a start does not read and check every seal again.

What differs from a store a month of running leaves: the previous month's verdicts are not
stored (nothing reads them at a start), nor, above ``VERDICTS_IN_FULL``, the current month's
before the snapshot instant (a daemon over this store neither reads nor writes them: the
database is smaller, its verdict index shallower); the tallies before the snapshot instant
are not stored (a start from proven snapshots never reads them; the database file is smaller,
80 M rows fewer), so each seal's ``tallies_digest`` is over the tallies the store holds for
that month (none) rather than the month's; and the evidence rows of the month's probes are not
there. ``tests/test_bench_month_end.py`` holds the daemon's figures from this store equal to
those from the tally-by-tally store, and its stored verdicts to the reference's (a daemon over
it reads back only the last hour's, and writes none again).

Before vm26 the prefill stored no verdict at all: a daemon started over it wrote the whole
month's (78 M rows at 10,000 one-target SLAs) during the measured window, which a daemon that
ran all month never does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

BUCKET = 300
"""The bench's SLAs' bucket (the configuration's default, 5 minutes)."""


def month_end_now(day: int, real: float) -> int:
    """The latest instant at or before ``real``, a whole number of days before it, on the
    ``day``-th of its month (UTC): the daemon's clock at a month's end is the wall clock
    shifted by whole days, so every probe's phase on the 30 s grid and every 5-minute bucket
    boundary fall where they fall on the wall clock."""
    from monitor.instants import utc_from_epoch

    if not 1 <= day <= 31:
        raise ValueError(f"--month-end: expected a day of the month 1..31, got {day}")
    for back in range(0, 400):
        at = int(real) - back * 86400
        if utc_from_epoch(at).day == day:
            return at
    raise ValueError(f"--month-end: no {day}th within a year before now")


def tally_rows(
    vantage: str, names: list[str], first: int, last: int
) -> list[object]:  # list[TallyRow]; typed loosely to keep the import lazy
    """The old route's tallies for ``names`` over the buckets ``first..last``: 10 probes,
    one failure in one bucket of 100 (``daemon_bench.prefill``'s pattern)."""
    from monitor.store.base import TallyRow

    rows: list[object] = []
    for start in range(first, last + 1, BUCKET):
        failing = (start // BUCKET) % 100 == 0
        for name in names:
            rows.append(
                TallyRow(
                    vantage,
                    name,
                    start,
                    BUCKET,
                    9 if failing else 10,
                    1 if failing else 0,
                    {"http_503": 1} if failing else {},
                )
            )
    return rows


async def write_tallies(
    database: Path, vantage: str, names: list[str], first: int, last: int, heartbeat: float | None
) -> int:
    """Write :func:`tally_rows` (in batches) and a heartbeat; returns the rows written."""
    from monitor.store.base import WriteBatch
    from monitor.store.sqlite import SqliteStore

    store = SqliteStore(database, vantage=vantage)
    await store.open()
    written = 0
    try:
        step = max(1, 200_000 // max(len(names), 1)) * BUCKET
        for lo in range(first, last + 1, step):
            rows = tally_rows(vantage, names, lo, min(last, lo + step - BUCKET))
            await store.write_batch(WriteBatch(tallies=rows))  # type: ignore[arg-type]
            written += len(rows)
        await store.write_batch(WriteBatch(tallies=[], heartbeat=heartbeat))
    finally:
        await store.close()
    return written


def last_bucket(now: int) -> int:
    """The last bucket the old route stores: the one before the bucket holding ``now``."""
    return now - now % BUCKET - BUCKET


def history_start(config: Path, now: int) -> int:
    """The first bucket of the earliest previous month of the configuration's SLAs."""
    from monitor.config import load_config
    from monitor.instants import utc_from_epoch
    from monitor.sla.calendar import month_containing, month_grid

    loaded = load_config(config)
    moment = utc_from_epoch(now)
    return min(
        month_grid(
            month_containing(moment, p.timezone).previous(), p.timezone, p.bucket_seconds
        ).start_epoch
        for p in loaded.sla_policies()
    )


def prefill_tallies(config: Path, now: int) -> int:
    """The old route: every tally of the previous month and of this one up to ``now``, for
    every target in an SLA, and a heartbeat at ``now``. Returns the rows written."""
    from monitor.config import load_config

    loaded = load_config(config)
    names = sorted({t for s in loaded.service_defs().values() for t in s.targets})
    return asyncio.run(
        write_tallies(
            loaded.monitor.database_path,
            loaded.monitor.name,
            names,
            history_start(config, now),
            last_bucket(now),
            float(now),
        )
    )


def prefill_month_end(
    config: Path,
    now: int,
    write_template_config: Callable[[Path, int], Path],
    tail_hours: float = 1.0,
) -> dict[str, float]:
    """Write what a daemon that ran up to ``now`` leaves in ``config``'s store (see the
    module docs). ``write_template_config(directory, k)`` writes a configuration of one SLA
    ``sla0`` of service ``svc0`` holding the full configuration's first ``k`` targets under
    the same names (the layout's first SLA). Returns the figures (rows, snapshots, seals,
    seconds)."""
    from monitor.config import load_config

    began = time.perf_counter()
    loaded = load_config(config)
    database = Path(loaded.monitor.database_path)
    if database.exists():
        # Round 33: written on top of a store a daemon had run on (a --reuse-prefill whose
        # ports were taken), the prefill left that run's later tallies and spool in it, and
        # its current months did not start from their snapshots: refused, not measured.
        raise FileExistsError(f"{database}: the month-end prefill writes a new store, not into one")
    policies = [p for p in loaded.sla_policies() if p.locations is None]
    services = loaded.service_defs()
    sizes = {len(set(services[p.service].all_targets)) for p in policies}
    through = last_bucket(now) + BUCKET - int(tail_hours * 3600) // BUCKET * BUCKET
    out: dict[str, float] = {}
    templates: dict[int, Template] = {}
    scratch = Path(tempfile.mkdtemp(prefix="slawatch-template-"))
    try:
        for size in sorted(sizes):
            templates[size] = _template(
                scratch / str(size), size, now, through, write_template_config, loaded.content_hash
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    out["template_s"] = time.perf_counter() - began
    mark = time.perf_counter()
    names = sorted({t for s in services.values() for t in s.targets})
    out["tail_rows"] = float(
        asyncio.run(
            write_tallies(
                loaded.monitor.database_path,
                loaded.monitor.name,
                names,
                through,
                last_bucket(now),
                float(now),
            )
        )
    )
    out["tail_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    snapshots, seals, verdicts = asyncio.run(_save_months(loaded, config, now, templates))
    out["snapshots"], out["seals"] = float(snapshots), float(seals)
    out["verdict_rows"] = float(verdicts)
    out["months_s"] = time.perf_counter() - mark
    out["prefill_s"] = time.perf_counter() - began
    return out


@dataclasses.dataclass(frozen=True)
class Template:
    """One SLA of a layout's size as the daemon judged it from the old route's tallies."""

    sla: str
    service: str
    targets: list[str]
    """Its targets, sorted."""
    states: dict[str, object]
    """Month name -> its ``JudgedState`` up to the snapshot instant."""
    verdicts: dict[str, tuple[int, tuple[tuple[str, str | None], ...], str]]
    """vm26: current month name -> (its first bucket with a tally, the (state, exclusion kind)
    of every bucket from there to the last settled at ``now``, the exclusions digest of the
    buckets before the snapshot's): the verdicts a daemon that ran all month has stored."""
    seal: Mapping[str, object] | None
    """Its previous month's sealed document (``make_seal``), None if unmeasured."""
    sealed_at: float
    settled: dict[str, str]
    """sm32: month name -> its snapshot's ``settled`` counts (the whole previous month's, as
    the daemon's hourly save writes them; empty for a month not over)."""


def _template(
    directory: Path,
    size: int,
    now: int,
    through: int,
    write_template_config: Callable[[Path, int], Path],
    config_hash: str,
) -> Template:
    """The template SLA of ``size`` targets, judged by the daemon from the old route's
    tallies (``config_hash``: the full configuration's, which its seal names)."""
    from monitor.clock import FixedClock
    from monitor.config import load_config
    from monitor.instants import utc_from_epoch
    from monitor.reports.seal import make_seal
    from monitor.runtime.daemon import Daemon
    from monitor.runtime.snapshots import settled_of
    from monitor.runtime.verdict_resume import exclusions_digest
    from monitor.sla.calendar import month_bounds, month_containing
    from monitor.sla.policy import BucketState

    directory.mkdir(parents=True)
    config = write_template_config(directory, size)
    prefill_tallies(config, now)
    loaded = load_config(config)
    (policy,) = loaded.sla_policies()
    targets = sorted(set(loaded.service_defs()[policy.service].all_targets))
    daemon = Daemon(loaded, config, clock=FixedClock(float(now)))
    moment = utc_from_epoch(now)
    previous = month_containing(moment, policy.timezone).previous()
    sealed_at = month_bounds(previous, policy.timezone)[1].timestamp() + 3600

    async def judge() -> Template:
        await daemon.store.open()
        try:
            await daemon._load_history(float(now))
            states: dict[str, object] = {}
            settled: dict[str, str] = {}
            verdicts: dict[str, tuple[int, tuple[tuple[str, str | None], ...], str]] = {}
            current = month_containing(moment, policy.timezone)
            settle = daemon._settle_seconds()
            for running in daemon.accounting.held_months(policy, moment):
                grid = running.grid
                judged = min(running.elapsed, (through - grid.start_epoch) // grid.bucket_seconds)
                states[str(running.month)] = running.judged_state(judged)
                settled[str(running.month)] = settled_of(running, judged)
                first = running.first_tallied
                if running.month != current or first is None:
                    continue
                # vm26: as Daemon._verdict_steps wrote them, up to the last settled bucket;
                # its mark at the last hourly save was past the snapshot's buckets, so the
                # snapshot vouches for those before ``judged`` (verdict_resume's docs).
                size = grid.bucket_seconds
                upto = min(grid.count, int((now - settle - grid.start_epoch) // size))
                rows = []
                for index in range(first, upto):
                    state = running.state_at(index)
                    kind = running.excluded_kind(index) if state is BucketState.EXCLUDED else None
                    rows.append((state.value, None if kind is None else kind.value))
                digest = exclusions_digest(running.excluded_kinds(), judged)
                verdicts[str(running.month)] = (first, tuple(rows), digest)
            # As Daemon._seal_closed_months (seal_months, skip_unmeasured): the month's
            # result and the tallies the month-end store holds for it (none: see the docs).
            result = daemon.accounting.month_result(policy, moment, previous)
            seal = None
            if result.buckets_available + result.buckets_unavailable:
                seal = make_seal(result, config_hash, [], sealed_at).doc
            return Template(
                policy.name, policy.service, targets, states, verdicts, seal, sealed_at, settled
            )
        finally:
            await daemon.store.close()

    return asyncio.run(judge())


def _renamed(value: object, names: dict[str, str]) -> object:
    """``value`` (a JSON document) with every string or key equal to one of ``names``
    replaced by its new name."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, dict):
        return {names.get(k, k): _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    return value


async def _save_months(
    loaded: object, config: Path, now: int, templates: dict[int, Template]
) -> tuple[int, int, int]:
    """Every SLA's previous and current month from its template, renamed to its targets,
    saved as the daemon saves them (guards armed first, as at a start), and its previous
    month's seal, renamed likewise; before them, its stored verdicts (:func:`_write_verdicts`,
    vm26). Returns (snapshots, seals, verdict rows) written."""
    from datetime import timedelta

    from monitor.clock import FixedClock
    from monitor.config import Config
    from monitor.instants import utc_from_epoch
    from monitor.runtime.daemon import Daemon
    from monitor.runtime.sealing import DONE_KEY as SEALS_DONE_KEY
    from monitor.runtime.sealing import SEALED, record_done
    from monitor.sla.calendar import Month, month_containing, month_grid
    from monitor.sla.running import JudgedState
    from monitor.sla.running_codec import encode, inputs_digest
    from monitor.store.base import MonthSeal
    from monitor.store.seals import seal_digest
    from monitor.store.snapshots import MonthSnapshot

    assert isinstance(loaded, Config)
    daemon = Daemon(loaded, config, clock=FixedClock(float(now)))
    moment = utc_from_epoch(now)
    await daemon.store.open()
    try:
        inputs = daemon._inputs()
        await daemon.snapshots.restorable(inputs, inputs.policies, moment, "fresh")
        store = daemon.snapshots.store
        assert store is not None, "the bench's store is SQLite, which keeps snapshots"
        written = sealed = 0
        pending: list[MonthSnapshot] = []
        # vm26: the stored verdicts first (the snapshots saved after them vouch for them: a
        # verdict written after its snapshot pulls the vouch down), all of them if few enough.
        wanted = [
            p for p in inputs.policies if p.locations is None and p.service in inputs.services
        ]
        everything = sum(
            len(v[1])
            for p in wanted
            for v in templates[len(set(inputs.services[p.service].all_targets))].verdicts.values()
        )
        verdict_rows = await _write_verdicts(
            daemon, wanted, templates, everything <= VERDICTS_IN_FULL
        )
        for policy in inputs.policies:
            if policy.locations is None and policy.service in inputs.services:
                service = inputs.services[policy.service]
                mine = sorted(set(service.all_targets))
                template = templates[len(mine)]
                # Both lists sorted, names of one width: the evidence keeps its order.
                renamed = dict(zip(template.targets, mine, strict=True))
                for month_name, state in template.states.items():
                    assert isinstance(state, JudgedState)
                    if any(a != b for a, b in renamed.items()):
                        state = dataclasses.replace(
                            state,
                            evidence=tuple(
                                (i, tuple((renamed[name], tally) for name, tally in tallies))
                                for i, tallies in state.evidence
                            ),
                        )
                    month = Month.parse(month_name)
                    grid = month_grid(month, policy.timezone, policy.bucket_seconds)
                    digest = inputs_digest(
                        policy, service, month, inputs.canaries, inputs.gaps, state.judged
                    )
                    verdicts = template.verdicts.get(month_name)
                    pending.append(
                        MonthSnapshot(
                            policy.name,
                            month_name,
                            policy.bucket_seconds,
                            grid.start_epoch + state.judged * grid.bucket_seconds,
                            digest,
                            encode(state),
                            grid.start_epoch,
                            # vm26: the hourly save's verdict mark (past the snapshot's).
                            grid.start_epoch
                            + (0 if verdicts is None else state.judged) * grid.bucket_seconds,
                            "" if verdicts is None else verdicts[2],
                            template.settled.get(month_name, ""),
                        )
                    )
                if template.seal is not None:
                    names = {template.sla: policy.name, template.service: policy.service}
                    names.update(renamed)
                    doc = _renamed(template.seal, names)
                    assert isinstance(doc, dict)
                    seal = MonthSeal(
                        sla=policy.name,
                        month=str(doc["report"]["month"]),
                        sealed_at=template.sealed_at,
                        config_hash=str(doc["config_hash"]),
                        tallies_digest=str(doc["tallies_digest"]),
                        doc=doc,
                        digest=seal_digest(doc),
                    )
                    sealed += int(await daemon.store.save_month_seal(seal))
            if len(pending) >= 1000:
                written += await store.save_month_snapshots(pending)
                pending = []
        written += await store.save_month_snapshots(pending)
        # dq30 (issue 20): the record a running daemon's sealing pass leaves once every SLA's
        # previous month is sealed (``Daemon._seal_closed_months``: ``record_done``, each
        # SLA's month named sealed; rl34: per SLA). Without it a start over this store asked
        # the store again for all 10,000 seals (decoding every document) and re-checked every month
        # against its held result, competing with the first summary before ready: work a
        # daemon restarted on day 28 never does.
        # As the daemon names them: each SLA zone's month before the one holding an hour ago.
        sealed_months = {
            month_containing(moment - timedelta(hours=1), p.timezone).previous()
            for p in inputs.policies
        }
        record: object = await daemon.store.kv_get(SEALS_DONE_KEY)
        for month in sorted(sealed_months):
            zoned = [
                p.name
                for p in inputs.policies
                if month_containing(moment - timedelta(hours=1), p.timezone).previous() == month
            ]
            record = record_done(record, str(month), dict.fromkeys(zoned, SEALED))
        if sealed_months:
            await daemon.store.kv_set(SEALS_DONE_KEY, record)
        return written, sealed, verdict_rows
    finally:
        await daemon.store.close()


VERDICTS_IN_FULL = 5_000_000
"""vm26: the most service verdicts the prefill writes for the buckets the snapshots vouch for
(100 SLAs of 100 targets at day 28: 0.8 M; 10,000 one-target SLAs: 78 M, omitted)."""


async def _write_verdicts(
    daemon: object, policies: list[object], templates: dict[int, Template], in_full: bool
) -> int:
    """Every SLA's stored verdicts of its current month, as a daemon that ran all month
    wrote them (its template's, under its own name): from its first bucket with a tally to
    the last settled, or (``in_full`` False) only those after the snapshot's buckets (the
    ones the daemon reads back at its start; the earlier are vouched for and never read).
    Returns the rows written."""
    from monitor.runtime.daemon import Daemon
    from monitor.sla.calendar import Month, month_grid
    from monitor.sla.policy import BucketState, ExclusionKind, SlaPolicy
    from monitor.sla.running import JudgedState
    from monitor.store.base import ServiceBucketRow, WriteBatch

    assert isinstance(daemon, Daemon)
    inputs = daemon.accounting.inputs
    vantage = daemon.config.monitor.name
    location = daemon.config.monitor.location_name
    rows: list[ServiceBucketRow] = []
    written = 0
    for policy in policies:
        assert isinstance(policy, SlaPolicy)
        template = templates[len(set(inputs.services[policy.service].all_targets))]
        for month_name, (first, states, _) in template.verdicts.items():
            grid = month_grid(Month.parse(month_name), policy.timezone, policy.bucket_seconds)
            state = template.states[month_name]
            assert isinstance(state, JudgedState)
            judged = state.judged
            skip = 0 if in_full else max(0, judged - first)
            for offset, (state, kind) in enumerate(states[skip:], start=first + skip):
                rows.append(
                    ServiceBucketRow(
                        vantage,
                        policy.name,
                        policy.service,
                        grid.start_epoch + offset * grid.bucket_seconds,
                        BucketState(state),
                        None if kind is None else ExclusionKind(kind),
                        location,
                    )
                )
        if len(rows) >= 200_000:
            await daemon.store.write_batch(WriteBatch(service_buckets=rows))
            written += len(rows)
            rows = []
    if rows:
        await daemon.store.write_batch(WriteBatch(service_buckets=rows))
        written += len(rows)
    return written


def write_heartbeat(config: Path, at: float) -> None:
    """A heartbeat at ``at`` (the daemon's clock just before it starts): no downtime gap."""
    from monitor.config import load_config

    loaded = load_config(config)
    asyncio.run(write_tallies(loaded.monitor.database_path, loaded.monitor.name, [], 1, 0, at))
