"""The durable-state contract: the ``Store`` protocol and the frozen rows it moves.

Every number slawatch prints is reproduced from what a store holds, so the contract is about
exactness and provenance: every row names the ``vantage`` point (``monitor.name``) that saw it,
so several daemons can later share one database and an outage can require a quorum of them.

What a store keeps, and the methods that reach it (all async, all safe to call concurrently
from one event loop):

``open()`` / ``close()``
    ``open`` creates or migrates the schema and verifies the file; ``close`` waits for writes
    already submitted, then releases the database. A closed store refuses calls.
``write_batch(batch)``
    One :class:`WriteBatch` in ONE transaction: tally upserts with ABSOLUTE counts (the
    daemon's in-memory tally is authoritative, the upsert replaces), evidence inserts,
    service-bucket verdict upserts and the heartbeat. All or nothing: a batch the database
    refuses raises ``StoreError`` and nothing of it is written (the caller keeps it to retry).
``load_tallies(start, end, targets=None, vantage=None, *, bucket_seconds=None)``
    ``target -> bucket start epoch -> Tally`` for buckets starting in ``[start, end)``. Rows are
    keyed on (vantage, bucket_start, target, bucket_seconds) because SLAs may use different
    bucket lengths; with ``bucket_seconds=None`` every length is returned, and a key held at
    two lengths raises ``StoreError`` rather than silently picking one.
``load_tallies(start, end, targets, *, bucket_seconds=L, location=NAME)``
    The tallies of one monitoring **location** summed over its members (issue 14): the
    vantage points (daemons) of a location probe disjoint targets, or the same target across a
    hand-over, so for each (target, bucket) their counts add up and their reasons merge (count
    per reason summed). Rows at another bucket length are left out when ``bucket_seconds`` is
    given; without it a key held at two lengths raises ``StoreError`` as above. ``vantage``
    and ``location`` together raise ``ValueError``: a member's own counts are read by vantage.
``load_tally_rows`` / ``vantages()`` / ``locations()``
    The same rows with their vantage and location, across every vantage point; the vantage
    points and the locations known to the store (from tallies and heartbeats).
``load_evidence(start, end, target=None, limit=1000, vantage=None)``
    Failure evidence with ``start <= ts < end``, oldest first.
``load_service_buckets(sla, start, end, vantage=None)``
    Stored service verdicts of one SLA, by bucket start, ascending.
``record_gap(start, end, reason)`` / ``load_gaps(start, end, vantage=None)`` / ``last_heartbeat()``
    Periods the monitor was not running; they become ``unknown`` buckets, never available ones.
    ``load_gaps(..., location=NAME)`` returns the gaps of every member of that location.
    :func:`record_downtime` turns "last heartbeat .. now" into a gap at start-up.
``add_exclusion(window, *, source="api")`` / ``list_exclusions()`` / ``delete_exclusion(id)``
    Exclusion windows recorded after the fact (the ``/api/v1/exclusions`` endpoints). An empty
    id is replaced by a generated ``api-<hex>``; the stored window (returned) has ``source``
    set; a taken id raises ``ExclusionExistsError``. Listed by start time.
``insert_fault_if_absent`` / ``save_fault`` / ``append_fault_event`` / ``load_fault`` /
``load_faults`` / ``fault_id_for_alert``
    Support-SLA faults as JSON documents with an append-only event history. ``alert_key`` is
    UNIQUE: two webhook deliveries of the same alert racing each other yield one fault, because
    ``insert_fault_if_absent`` returns ``(fault_id, created)`` atomically (the existing fault's
    id when the alert is known). ``is_open`` is stored beside the document so
    ``load_faults(open_only=True)`` need not understand it; ``append_fault_event(..., is_open=)``
    changes it in the same transaction as the event, so a crash cannot split the two.
``prune_evidence(older_than)``
    Retention for raw evidence only; tallies, verdicts, gaps, exclusions and faults stay.
``kv_get`` / ``kv_set`` / ``kv_delete``
    Small JSON values (claims filed, last month closed, ...).

Reads and writes default to the store's own vantage where a vantage is optional; ``None``
means "this daemon's", never "all of them merged", because merging counts from different
vantage points would silently change what a bucket means. The one merge is explicit: the
members of ONE location (``load_tallies(..., location=)``), which share that location's
network and split its targets between them; different locations are never merged, they vote
(``monitor.sla.quorum``).

Every row carries ``location`` besides ``vantage`` (the member). A store is built for one
vantage and one location (``location`` defaults to the vantage's name); gaps and heartbeats it
records carry both, and a row built without a location gets its vantage's name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from monitor.instants import parse_instant
from monitor.sla.policy import BucketState, ExclusionKind, ExclusionWindow, Tally
from monitor.store.versions import SchemaStatus
from probes.result import DetailValue, Outcome, ProbeResult

_EMPTY_REASONS: Mapping[str, int] = MappingProxyType({})
_EMPTY_DETAILS: Mapping[str, DetailValue] = MappingProxyType({})


class StoreError(Exception):
    """Base of every error a store raises on purpose."""


class StoreOpenError(StoreError):
    """Raised by ``open()`` when the file is not a slawatch database, is corrupt, or was
    written by a newer schema than this build knows. The message names the file."""


class StoreClosedError(StoreError):
    """Raised by any call on a store that is not open."""


class ExclusionExistsError(StoreError):
    """Raised by ``add_exclusion`` when a window with that id is already stored."""


class FaultConflictError(StoreError):
    """Raised by ``insert_fault_if_absent`` when the fault id is taken by a different alert,
    and by ``append_fault_event`` when the fault does not exist."""


def _check_name(what: str, value: str) -> None:
    if not value or value != value.strip():
        raise ValueError(
            f"{what}: expected a non-empty name without surrounding spaces, got {value!r}"
        )


def _plain_name(value: object) -> bool:
    """A ``str`` that :func:`_check_name` accepts (cpu28, issue 20: a row's fast check)."""
    return type(value) is str and value != "" and value == value.strip()


def _default_location(row: Any, where: str) -> None:
    """An empty ``location`` is the vantage's own name: a daemon without ``monitor.location``
    is one location of one member, exactly as before locations existed (schema migrations
    give old rows ``location = vantage`` for the same reason)."""
    if row.location == "":
        object.__setattr__(row, "location", row.vantage)
    _check_name(f"{where}: location", row.location)


def _check_count(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what}: expected a non-negative integer, got {value!r}")


def _check_finite(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what}: expected a finite number, got {value!r}")


@dataclass(frozen=True, slots=True)
class TallyRow:
    """The absolute probe counts of one target in one bucket, as one vantage point saw them.

    ``reasons`` maps failure reason -> count; its counts add up to at most ``failed`` (a probe
    failing without a reason token is still a failure). ``errors``/``error_reasons`` are the
    monitor's own failures, ``excused`` the failures a canary covers (see ``Tally``).
    ``location`` is the monitoring location the vantage point (member) belongs to
    (``monitor.location``); empty means "the vantage's own name" (one location of one member).
    """

    vantage: str
    target: str
    bucket_start: int
    bucket_seconds: int
    ok: int
    failed: int
    reasons: Mapping[str, int] = field(default_factory=lambda: _EMPTY_REASONS)
    errors: int = 0
    error_reasons: Mapping[str, int] = field(default_factory=lambda: _EMPTY_REASONS)
    excused: int = 0
    location: str = ""

    def __post_init__(self) -> None:
        # cpu28 (issue 20): a flush makes one row per tally a probe changed (one per probe),
        # and nearly all are plain: plain names, int counts, no reasons. Those are checked
        # here without building the checks' messages (ten f-strings a row, a third of a row's
        # cost); anything else, valid or not, takes the full checks below, which word the
        # error. The fast test accepts only rows the full checks accept.
        if self.location == "":
            object.__setattr__(self, "location", self.vantage)
        if (
            type(self.bucket_start) is int
            and type(self.bucket_seconds) is int
            and type(self.ok) is int
            and type(self.failed) is int
            and type(self.errors) is int
            and type(self.excused) is int
            and self.bucket_start >= 0
            and self.bucket_seconds > 0
            and not self.bucket_start % self.bucket_seconds
            and self.ok >= 0
            and self.errors >= 0
            and 0 <= self.excused <= self.failed
            and type(self.reasons) is MappingProxyType
            and type(self.error_reasons) is MappingProxyType
            and not self.reasons
            and not self.error_reasons
            and _plain_name(self.vantage)
            and _plain_name(self.target)
            and _plain_name(self.location)
        ):
            return
        self._check_fully()

    def _check_fully(self) -> None:
        where = f"tally {self.target}@{self.bucket_start}"
        _check_name(f"{where}: vantage", self.vantage)
        _default_location(self, where)
        _check_name(f"{where}: target", self.target)
        _check_count(f"{where}: bucket_start", self.bucket_start)
        if isinstance(self.bucket_seconds, bool) or self.bucket_seconds <= 0:
            raise ValueError(f"{where}: bucket_seconds: expected > 0, got {self.bucket_seconds!r}")
        if self.bucket_start % self.bucket_seconds:
            raise ValueError(
                f"{where}: bucket_start: expected a multiple of {self.bucket_seconds}, "
                f"got {self.bucket_start}"
            )
        _check_count(f"{where}: ok", self.ok)
        _check_count(f"{where}: failed", self.failed)
        for reason, count in self.reasons.items():
            _check_name(f"{where}: reasons key", reason)
            _check_count(f"{where}: reasons[{reason!r}]", count)
        if sum(self.reasons.values()) > self.failed:
            raise ValueError(
                f"{where}: reasons: counts add up to {sum(self.reasons.values())}, "
                f"more than failed={self.failed}"
            )
        if not isinstance(self.reasons, MappingProxyType):
            object.__setattr__(self, "reasons", MappingProxyType(dict(self.reasons)))
        _check_count(f"{where}: errors", self.errors)
        _check_count(f"{where}: excused", self.excused)
        if self.excused > self.failed:
            raise ValueError(
                f"{where}: excused: expected at most failed={self.failed}, got {self.excused}"
            )
        for reason, count in self.error_reasons.items():
            _check_name(f"{where}: error_reasons key", reason)
            _check_count(f"{where}: error_reasons[{reason!r}]", count)
        if sum(self.error_reasons.values()) > self.errors:
            raise ValueError(
                f"{where}: error_reasons: counts add up to {sum(self.error_reasons.values())}, "
                f"more than errors={self.errors}"
            )
        if not isinstance(self.error_reasons, MappingProxyType):
            object.__setattr__(self, "error_reasons", MappingProxyType(dict(self.error_reasons)))

    @classmethod
    def of(
        cls,
        vantage: str,
        target: str,
        bucket_start: int,
        bucket_seconds: int,
        tally: Tally,
        location: str = "",
    ) -> TallyRow:
        """The row holding ``tally``."""
        return cls(
            vantage,
            target,
            bucket_start,
            bucket_seconds,
            tally.ok,
            tally.failed,
            tally.reasons,
            tally.errors,
            tally.error_reasons,
            tally.excused,
            location,
        )

    def tally(self) -> Tally:
        return Tally(
            ok=self.ok,
            failed=self.failed,
            reasons=self.reasons,
            errors=self.errors,
            error_reasons=self.error_reasons,
            excused=self.excused,
        )


@dataclass(frozen=True, slots=True)
class EvidenceRow:
    """One failed probe run kept as evidence. ``details`` must be JSON-encodable scalars.

    ``id`` is assigned by the store; leave it ``None`` when inserting.
    """

    vantage: str
    ts: float
    target: str
    outcome: Outcome
    reason: str
    duration: float
    details: Mapping[str, DetailValue] = field(default_factory=lambda: _EMPTY_DETAILS)
    id: int | None = None
    location: str = ""

    def __post_init__(self) -> None:
        where = f"evidence {self.target}@{self.ts!r}"
        _check_name(f"{where}: vantage", self.vantage)
        _default_location(self, where)
        _check_name(f"{where}: target", self.target)
        _check_finite(f"{where}: ts", self.ts)
        _check_finite(f"{where}: duration", self.duration)
        if not isinstance(self.outcome, Outcome):
            raise ValueError(f"{where}: outcome: expected an Outcome, got {self.outcome!r}")
        for key, value in self.details.items():
            if not isinstance(key, str):
                raise ValueError(f"{where}: details: keys must be strings, got {key!r}")
            if isinstance(value, float) and not math.isfinite(value):
                # PostgreSQL's jsonb and strict JSON readers reject NaN/inf: refuse it here,
                # where the caller can still see which probe produced it.
                raise ValueError(
                    f"{where}: details[{key!r}]: expected a finite number, got {value}"
                )
            if value is not None and not isinstance(value, str | int | float | bool):
                raise ValueError(
                    f"{where}: details[{key!r}]: expected str, int, float, bool or None, "
                    f"got {type(value).__name__}"
                )
        if not isinstance(self.details, MappingProxyType):
            object.__setattr__(self, "details", MappingProxyType(dict(self.details)))


@dataclass(frozen=True, slots=True)
class ServiceBucketRow:
    """A service's verdict for one bucket of one SLA; ``kind`` is set exactly when excluded."""

    vantage: str
    sla: str
    service: str
    bucket_start: int
    state: BucketState
    kind: ExclusionKind | None = None
    location: str = ""

    def __post_init__(self) -> None:
        where = f"service bucket {self.sla}@{self.bucket_start}"
        _check_name(f"{where}: vantage", self.vantage)
        _default_location(self, where)
        _check_name(f"{where}: sla", self.sla)
        _check_name(f"{where}: service", self.service)
        _check_count(f"{where}: bucket_start", self.bucket_start)
        if not isinstance(self.state, BucketState):
            raise ValueError(f"{where}: state: expected a BucketState, got {self.state!r}")
        if (self.state is BucketState.EXCLUDED) != (self.kind is not None):
            raise ValueError(
                f"{where}: kind: expected an exclusion kind exactly when state is excluded, "
                f"got state={self.state.value} kind={self.kind}"
            )


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Everything one flush writes, committed in one transaction.

    ``heartbeat`` (epoch seconds) records that this vantage point was alive then; the last
    one stored is where a crash's gap begins.
    """

    tallies: Sequence[TallyRow] = ()
    evidence: Sequence[EvidenceRow] = ()
    service_buckets: Sequence[ServiceBucketRow] = ()
    heartbeat: float | None = None

    def __post_init__(self) -> None:
        if self.heartbeat is not None:
            _check_finite("batch: heartbeat", self.heartbeat)
        object.__setattr__(self, "tallies", tuple(self.tallies))
        object.__setattr__(self, "evidence", tuple(self.evidence))
        object.__setattr__(self, "service_buckets", tuple(self.service_buckets))

    @property
    def empty(self) -> bool:
        return (
            not self.tallies
            and not self.evidence
            and not self.service_buckets
            and self.heartbeat is None
        )


@dataclass(frozen=True, slots=True)
class Gap:
    """``[start, end)`` in epoch seconds when a vantage point was not monitoring."""

    vantage: str
    start: float
    end: float
    reason: str
    location: str = ""

    def __post_init__(self) -> None:
        _check_name("gap: vantage", self.vantage)
        _default_location(self, "gap")
        _check_finite("gap: start", self.start)
        _check_finite("gap: end", self.end)
        if self.end <= self.start:
            raise ValueError(f"gap: end: expected after start={self.start}, got {self.end}")
        _check_name("gap: reason", self.reason)


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """A stored fault: the owner's document, its alert key, and its event history in order."""

    fault_id: str
    contract: str
    alert_key: str | None
    is_open: bool
    doc: Mapping[str, Any]
    events: tuple[Mapping[str, Any], ...]


def add_tally(into: dict[int, Tally], bucket: int, tally: Tally) -> None:
    """Add ``tally`` to ``into[bucket]``: the members of one location sum (see the module
    docstring, ``load_tallies(..., location=)``)."""
    held = into.get(bucket)
    if held is None:
        into[bucket] = tally
        return
    into[bucket] = Tally(
        ok=held.ok + tally.ok,
        failed=held.failed + tally.failed,
        reasons=_sum_counts(held.reasons, tally.reasons),
        errors=held.errors + tally.errors,
        error_reasons=_sum_counts(held.error_reasons, tally.error_reasons),
        excused=held.excused + tally.excused,
    )


def _sum_counts(a: Mapping[str, int], b: Mapping[str, int]) -> Mapping[str, int]:
    if not b:
        return a
    if not a:
        return b
    out = dict(a)
    for key, count in b.items():
        out[key] = out.get(key, 0) + count
    return MappingProxyType(out)


def check_tally_scope(vantage: str | None, location: str | None) -> None:
    """``load_tallies`` reads one member (``vantage``) or one location's sum, not both."""
    if vantage is not None and location is not None:
        raise ValueError(
            f"load_tallies: give vantage ({vantage!r}) or location ({location!r}), not both"
        )


def exclusion_from_stored(
    id_: str,
    kind: str,
    start_iso: str,
    end_iso: str,
    reason: str,
    services: str,
    announced_iso: str | None,
    source: str,
) -> ExclusionWindow:
    """An ``exclusions`` row as both backends store it (instants as RFC 3339 text read by the
    one instant parser, services as JSON); ``StoreError`` naming the row if it is unreadable."""
    try:
        return ExclusionWindow(
            id=id_,
            start=parse_instant(start_iso, "start_iso"),
            end=parse_instant(end_iso, "end_iso"),
            kind=ExclusionKind(kind),
            reason=reason,
            services=frozenset(json.loads(services)),
            announced_at=(
                None if announced_iso is None else parse_instant(announced_iso, "announced_iso")
            ),
            source=source,
        )
    except ValueError as exc:
        raise StoreError(f"exclusions row {id_!r}: unreadable: {exc}") from exc


def evidence_from_result(vantage: str, result: ProbeResult, location: str = "") -> EvidenceRow:
    """The evidence row for one probe result (the caller decides which results are evidence).

    A failure without a reason token gets its outcome as reason, and non-finite numbers are
    left out of the details: one NaN from a probe must not make a whole batch unwritable.
    """
    return EvidenceRow(
        vantage=vantage,
        ts=result.started_at,
        target=result.target,
        outcome=result.outcome,
        reason=result.reason or result.outcome.value,
        duration=result.duration_seconds,
        details={
            key: value
            for key, value in result.details.items()
            if not (isinstance(value, float) and not math.isfinite(value))
        },
        location=location,
    )


def encode_json(what: str, value: object) -> str:
    """Canonical JSON (sorted keys, no NaN) so equal values are stored byte-for-byte equal."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: expected a JSON-encodable value without NaN/inf: {exc}") from exc


@dataclass(frozen=True, slots=True)
class MonthSeal:
    """One SLA month's sealed record (issue 17): ``doc`` is what
    :func:`monitor.reports.seal.seal_document` made from the one month computation (figures,
    outages, exclusions applied, the configuration's content hash, the tallies' digest);
    ``digest`` is :func:`monitor.store.seals.seal_digest` of ``doc``, which the claim cites
    and ``slawatch store check`` verifies. A seal is written once and never replaced."""

    sla: str
    month: str
    sealed_at: float
    config_hash: str
    tallies_digest: str
    doc: Mapping[str, Any]
    digest: str


@runtime_checkable
class Store(Protocol):
    """Durable state. See the module docstring for the meaning of each method."""

    @property
    def vantage(self) -> str: ...

    @property
    def location(self) -> str: ...

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write_batch(self, batch: WriteBatch) -> None: ...

    async def load_tallies(
        self,
        start: int,
        end: int,
        targets: Sequence[str] | None = None,
        vantage: str | None = None,
        *,
        bucket_seconds: int | None = None,
        location: str | None = None,
    ) -> dict[str, dict[int, Tally]]: ...

    async def load_tally_rows(
        self, start: int, end: int, targets: Sequence[str] | None = None
    ) -> list[TallyRow]: ...

    async def vantages(self) -> list[str]: ...

    async def locations(self) -> list[str]: ...

    async def load_evidence(
        self,
        start: float,
        end: float,
        target: str | None = None,
        limit: int = 1000,
        vantage: str | None = None,
    ) -> list[EvidenceRow]: ...

    async def load_service_buckets(
        self, sla: str, start: int, end: int, vantage: str | None = None
    ) -> list[ServiceBucketRow]: ...

    async def record_gap(self, start: float, end: float, reason: str) -> Gap: ...

    async def load_gaps(
        self, start: float, end: float, vantage: str | None = None, *, location: str | None = None
    ) -> list[Gap]: ...

    async def last_heartbeat(self, vantage: str | None = None) -> float | None: ...

    async def add_exclusion(
        self, window: ExclusionWindow, *, source: str = "api"
    ) -> ExclusionWindow: ...

    async def list_exclusions(self) -> list[ExclusionWindow]: ...

    async def delete_exclusion(self, exclusion_id: str) -> bool: ...

    async def insert_fault_if_absent(
        self,
        contract: str,
        fault_id: str,
        doc: Mapping[str, Any],
        alert_key: str | None,
        *,
        is_open: bool = True,
    ) -> tuple[str, bool]: ...

    async def save_fault(
        self,
        contract: str,
        fault_id: str,
        doc: Mapping[str, Any],
        alert_key: str | None,
        *,
        is_open: bool = True,
    ) -> None: ...

    async def append_fault_event(
        self, fault_id: str, event: Mapping[str, Any], *, is_open: bool | None = None
    ) -> int: ...

    async def load_fault(self, fault_id: str) -> FaultRecord | None: ...

    async def load_faults(
        self, contract: str | None = None, open_only: bool = False
    ) -> list[FaultRecord]: ...

    async def fault_id_for_alert(self, alert_key: str) -> str | None: ...

    async def prune_evidence(self, older_than: float) -> int: ...

    async def kv_get(self, key: str) -> Any: ...

    async def kv_set(self, key: str, value: object) -> None: ...

    async def kv_delete(self, key: str) -> bool: ...

    # Sealed months (issue 17; schema 4's month_seals table). ``save_month_seal`` stores a
    # seal unless that SLA month is sealed already (returns False then: seals are never
    # replaced); ``load_month_seal`` returns it or None.
    async def save_month_seal(self, seal: MonthSeal) -> bool: ...

    async def load_month_seal(self, sla: str, month: str) -> MonthSeal | None: ...

    # st26 (issue 20): the seals of ``month`` held for any of ``slas``, by SLA (those not
    # sealed absent), in one call: a restart's seal pass asked 10,000 SLAs one by one.
    async def load_month_seals(self, slas: Sequence[str], month: str) -> dict[str, MonthSeal]: ...

    # Schema (issue 17; ``slawatch store status|migrate`` call these): the version the open
    # store is at, and bringing it to this build's version (returns the version reached;
    # a backend that migrates in ``open()`` returns the current version).
    async def schema_version(self) -> SchemaStatus:
        """The schema version the database holds (see :mod:`monitor.store.versions`)."""

    async def migrate(self) -> SchemaStatus:
        """Apply pending forward migrations; a newer schema raises ``StoreOpenError``."""

    # Retention (issue 17): drop this vantage's tallies with ``start <= bucket_start < end``
    # (a sealed month past its dispute period); returns the rows deleted.
    async def prune_tallies(self, start: int, end: int) -> int: ...


@runtime_checkable
@runtime_checkable
class IntegrityChecking(Protocol):
    """rd28 (issue 20): a store whose file's integrity can be checked while it is open
    (SQLite: ``PRAGMA quick_check``, ``SqliteStore.check_integrity``); the daemon does it
    after it is ready instead of before (docs/storage.md)."""

    corrupt: str | None

    async def check_integrity(self) -> str | None: ...


class SessionLock(Protocol):
    """A lock held by one process at a time across every daemon sharing the database, and
    released by the database itself when the holder's connection closes (process killed,
    host gone): the accountant election of issue 14."""

    async def try_hold(self) -> bool:
        """Hold the lock if free (or keep holding it); False if another process holds it or
        the database cannot be reached (a lost connection loses the lock)."""

    async def release(self) -> None:
        """Give the lock up and close its connection. Idempotent."""


@runtime_checkable
class SessionLocking(Protocol):
    """A store whose database can elect one holder among several processes (PostgreSQL)."""

    def session_lock(self, name: str) -> SessionLock: ...


async def record_downtime(
    store: Store, now: float, reason: str = "monitor_not_running"
) -> Gap | None:
    """At start-up: record ``[last heartbeat, now)`` as a gap, so the time the daemon was
    down (crash, SIGKILL, host reboot) becomes unknown buckets, never available ones.

    Returns ``None`` on the very first start (no heartbeat yet) or when the heartbeat is not
    in the past. The new heartbeat ``now`` is written in the same step so a second call does
    not record the gap twice.
    """
    last = await store.last_heartbeat()
    gap = None
    if last is not None and last < now:
        gap = await store.record_gap(last, now, reason)
    await store.write_batch(WriteBatch(heartbeat=now))
    return gap
