"""Sealed months (issue 17): a closed month's figures, frozen with what produced them.

A claim sent to a vendor cites figures; editing the configuration later (a credit tier, a
maintenance window, a bucket rule) or losing data would silently change what slawatch shows
for that month. Sealing stores the month's report as the one month computation made it
(:func:`monitor.reports.stored.store_month_results`, i.e. :mod:`monitor.accounting`; never a
second computation), with the configuration's content hash and a digest of the tallies it
was computed from. A report of a sealed month shows the sealed figures and, when today's
recomputation differs, says so and lists the differences.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.accounting import AccountingInputs
from monitor.config import Config
from monitor.instants import parse_instant
from monitor.sla.calendar import Month, month_bounds
from monitor.sla.month import MonthResult
from monitor.sla.policy import BucketState, SlaPolicy
from monitor.sla.running import CodedStates
from monitor.store.base import MonthSeal, Store, TallyRow

if TYPE_CHECKING:
    from monitor.reports.stored import Unmeasured
from monitor.store.seals import canonical, seal_digest

COMPARED = (
    "buckets_total",
    "buckets_available",
    "buckets_unavailable",
    "buckets_excluded",
    "buckets_unknown",
    "buckets_pending",
    "uptime_percent",
    "uptime_ratio_exact",
    "breached",
    "credit_percent",
    "credit_amount",
    "currency",
    "coverage",
    "outages",
    "exclusions",
)
"""The figures a recomputation is compared on (``as_of`` and the like differ by design)."""


def tallies_digest(rows: Sequence[TallyRow]) -> str:
    """``sha256:<hex>`` over the month's tally rows in key order, canonically encoded."""
    digest = hashlib.sha256()
    for r in sorted(rows, key=lambda r: (r.vantage, r.target, r.bucket_seconds, r.bucket_start)):
        line = [
            r.vantage,
            r.target,
            r.bucket_seconds,
            r.bucket_start,
            r.ok,
            r.failed,
            dict(r.reasons),
            r.errors,
            dict(r.error_reasons),
            r.excused,
        ]
        digest.update(canonical(line).encode("utf-8") + b"\n")
    return "sha256:" + digest.hexdigest()


def seal_document(result: MonthResult, config_hash: str, digest_of_tallies: str) -> dict[str, Any]:
    """The sealed record of one SLA month: the report's JSON object plus its inputs' hashes."""
    return {
        "report": result.to_json(),
        "config_hash": config_hash,
        "tallies_digest": digest_of_tallies,
        # Every bucket's verdict, run-length encoded ([state, count] in bucket order): with
        # the failure evidence, what proves the month once its tallies are rolled up.
        "states": state_runs(result.states),
    }


_STATES = tuple(BucketState)
# One alternative per state code, no back-reference: 20 us over a month, not 470 us.
_RUN = re.compile(b"|".join(re.escape(bytes([code])) + b"+" for code in range(len(_STATES))))


def state_runs(states: Sequence[BucketState]) -> list[list[Any]]:
    """``run_lengths`` of the states' values. A running month's states are one byte per
    bucket (``CodedStates``): their runs are found by a regular expression over the bytes, a
    few runs per month instead of a Python step per bucket (issue 20, se24: ~1 ms an SLA,
    10 s at 10,000). ``tests/test_seal_held.py`` holds both ways equal."""
    if isinstance(states, CodedStates):
        codes = states._plain()  # the codes the states read, whole (never written)
        return [
            [_STATES[codes[match.start()]].value, match.end() - match.start()]
            for match in _RUN.finditer(codes)
        ]
    return run_lengths([state.value for state in states])


def run_lengths(values: Sequence[str]) -> list[list[Any]]:
    """``[[value, count], ...]`` of consecutive equal ``values``."""
    out: list[list[Any]] = []
    for value in values:
        if out and out[-1][0] == value:
            out[-1][1] += 1
        else:
            out.append([value, 1])
    return out


def make_seal(
    result: MonthResult, config_hash: str, rows: Sequence[TallyRow] | str, at: float
) -> MonthSeal:
    """The seal of ``result`` (computed from ``rows``, or the rows whose :func:`tallies_digest`
    ``rows`` is, under the configuration ``config_hash``)."""
    doc = seal_document(
        result, config_hash, rows if isinstance(rows, str) else tallies_digest(rows)
    )
    return MonthSeal(
        sla=result.sla,
        month=str(result.month),
        sealed_at=at,
        config_hash=config_hash,
        tallies_digest=doc["tallies_digest"],
        doc=doc,
        digest=seal_digest(doc),
    )


def differences(sealed: Mapping[str, Any], recomputed: Mapping[str, Any]) -> list[str]:
    """What today's recomputation changes in a sealed report, one line per figure."""
    out = []
    for key in COMPARED:
        before, after = sealed.get(key), recomputed.get(key)
        if before != after:
            if key in ("outages", "exclusions"):
                out.append(f"{key}: {len(before or [])} sealed, {len(after or [])} recomputed")
            else:
                out.append(f"{key}: sealed {before}, recomputed {after}")
    return out


async def month_tally_rows(store: Store, policy: SlaPolicy, month: Month) -> list[TallyRow]:
    start, end = month_bounds(month, policy.timezone)
    rows = await store.load_tally_rows(int(start.timestamp()), int(end.timestamp()))
    return [r for r in rows if r.bucket_seconds == policy.bucket_seconds]


TalliesDigests = dict[tuple[int, int, int], str]
"""(month start, month end, bucket length) -> :func:`tallies_digest` of the store's rows there."""


async def month_tallies_digest(
    store: Store, policy: SlaPolicy, month: Month, digests: TalliesDigests
) -> str:
    """:func:`tallies_digest` of ``month``'s tally rows at ``policy``'s bucket length,
    taken once per month span and bucket length (issue 20, se24): the rows do not depend on
    the SLA, and reading and hashing every row of the month once per SLA made a seal of
    10,000 SLAs quadratic (500 SLAs over 12,000 stored tallies took 376 s)."""
    start, end = month_bounds(month, policy.timezone)
    key = (int(start.timestamp()), int(end.timestamp()), policy.bucket_seconds)
    digest = digests.get(key)
    if digest is None:
        rows = await month_tally_rows(store, policy, month)
        # Off the loop: hashing every row of the month is O(rows) (the GIL is still shared,
        # but released to the loop every switch interval, not held for the whole month).
        digest = digests[key] = await asyncio.to_thread(tallies_digest, rows)
    return digest


HeldResult = Callable[[SlaPolicy, AccountingInputs], "MonthResult | Unmeasured | None"]
"""(policy, the month's inputs as the store gives them) -> the month's result the caller
already holds, equal to the one :func:`monitor.accounting.month_result` computes from the
store, ``UNMEASURED`` if that month has no measured bucket, or None (see
:func:`monitor.reports.stored.month_results_held`)."""


async def seal_months(
    config: Config,
    store: Store,
    policies: Sequence[SlaPolicy],
    month: Month,
    now: datetime,
    *,
    skip_unmeasured: bool = False,
    held: HeldResult | None = None,
    digests: TalliesDigests | None = None,
) -> list[tuple[MonthSeal, bool]]:
    """Seal ``month`` of each policy (the month must have ended); returns each seal and
    whether it was new (False: sealed before, the stored seal is returned unchanged).
    ``skip_unmeasured`` leaves out months without one measured bucket (the daemon's own
    sealing, on a store that did not exist then). ``held``: months the caller holds (the
    daemon's accounting), used instead of a computation from the store's tallies where equal
    (issue 20, se24). ``digests``: the tallies digests taken so far, shared between calls
    sealing the same month in batches."""
    from monitor.reports.stored import month_results_held

    for policy in policies:
        if month_bounds(month, policy.timezone)[1] > now:
            raise ValueError(
                f"--month: {month} has not ended yet in {policy.timezone} ({policy.name}); "
                "a month is sealed once it is over"
            )
    # Issue 20 (se24): a month sealed before is returned as stored, before anything is
    # computed for it (a restart, or a batch retried one by one, computed it again).
    slots: list[tuple[MonthSeal, bool] | None] = []
    todo: list[tuple[int, SlaPolicy]] = []
    # st26 (issue 20): one store call for the batch (a restart's pass at 10,000 SLAs made
    # 10,000, each a round trip to the store's thread and a turn of the loop).
    held_seals = await store.load_month_seals([policy.name for policy in policies], str(month))
    for policy in policies:
        existing = held_seals.get(policy.name)
        if existing is None:
            todo.append((len(slots), policy))
        slots.append(None if existing is None else (existing, False))
    if todo:
        extra = await store.list_exclusions()
        results = await month_results_held(
            config,
            store,
            [policy for _, policy in todo],
            month,
            now,
            extra,
            held=held,
            unmeasured_as_none=skip_unmeasured,
        )
        digests = {} if digests is None else digests
        hashed = False
        for (index, policy), result in zip(todo, results, strict=True):
            if result is None or (
                skip_unmeasured and result.buckets_available + result.buckets_unavailable == 0
            ):
                continue  # the daemon's automatic seal: nothing was measured (a fresh store)
            if not hashed:
                # The configuration's content hash, sealed with the month: computed once per
                # configuration (0.3 s at 10,000 SLAs), off the loop, and only once a month
                # is to be sealed (rl34, issue 20: a pass finding nothing measured needs none).
                await asyncio.to_thread(lambda: config.content_hash)
                hashed = True
            seal = make_seal(
                result,
                config.content_hash,
                await month_tallies_digest(store, policy, month, digests),
                now.timestamp(),
            )
            if await store.save_month_seal(seal):
                slots[index] = (seal, True)
                continue
            stored = await store.load_month_seal(policy.name, str(month))
            assert stored is not None
            slots[index] = (stored, False)
    return [slot for slot in slots if slot is not None]


def sealed_lines(seal: MonthSeal, recomputed: MonthResult | None) -> list[str]:
    """The text report's block for a sealed month: the sealed figures, and what a
    recomputation with today's configuration and data changes (if anything)."""
    report = seal.doc["report"]
    lines = [
        f"{seal.sla} {seal.month}: SEALED figures (seal {seal.digest})",
        f"  uptime           {report['uptime_percent']}% ({report['uptime_ratio_exact']} buckets)",
        f"  unavailable      {report['buckets_unavailable']} buckets, "
        f"{len(report['outages'])} outage(s)",
        f"  excluded         {report['buckets_excluded']} buckets",
        f"  credit           {report['credit_percent']}% = {report['credit_amount']} "
        f"{report['currency']}",
        f"  configuration    sha256:{seal.config_hash}",
        f"  tallies          {seal.tallies_digest}",
    ]
    if recomputed is not None:
        changed = differences(report, recomputed.to_json())
        if changed:
            lines.append(
                "  RECOMPUTED WITH TODAY'S CONFIGURATION AND DATA, THE MONTH DIFFERS "
                "(slawatch report --recompute shows the new figures):"
            )
            lines.extend(f"    {line}" for line in changed)
        else:
            lines.append("  recomputed with today's configuration and data: identical")
    return lines


async def load_seals(store: Store, policies: Sequence[SlaPolicy], month: Month) -> list[MonthSeal]:
    """The seals ``store`` holds for ``month`` of ``policies`` (sealed ones only)."""
    held = await store.load_month_seals([policy.name for policy in policies], str(month))
    return [held[policy.name] for policy in policies if policy.name in held]


def apply_seals(
    text: str, fmt: str, seals: Sequence[MonthSeal], reports: Sequence[MonthResult]
) -> tuple[str, list[str]]:
    """The report of a month with sealed SLAs: the sealed figures in place of the recomputed
    ones (``json``: each sealed SLA's report object is the sealed one, with a ``seal`` key
    naming its digest and today's ``differences``; ``text``: the sealed block first; ``claim``:
    the seal's digest cited, refused when the recomputation differs). Returns the text and
    notes for stderr."""
    import json

    by_sla = {r.sla: r for r in reports}
    notes: list[str] = []
    changed = {
        seal.sla: differences(seal.doc["report"], by_sla[seal.sla].to_json())
        for seal in seals
        if seal.sla in by_sla
    }
    if fmt == "json":
        document = json.loads(text)
        sealed = {seal.sla: seal for seal in seals}
        out = []
        for item in document["reports"]:
            seal = sealed.get(item["sla"])
            if seal is None:
                out.append(item)
                continue
            out.append(
                {
                    **seal.doc["report"],
                    "seal": {
                        "digest": seal.digest,
                        "sealed_at": seal.sealed_at,
                        "config_hash": seal.config_hash,
                        "tallies_digest": seal.tallies_digest,
                        "differences": changed.get(seal.sla, []),
                    },
                }
            )
        document["reports"] = out
        return json.dumps(document, indent=2) + "\n", notes
    if fmt == "claim":
        differing = {sla: lines for sla, lines in changed.items() if lines}
        if differing:
            detail = "; ".join(f"{sla}: {', '.join(lines)}" for sla, lines in differing.items())
            raise ValueError(
                f"month is sealed and today's recomputation differs ({detail}); the claim "
                "cites sealed figures: use --recompute to claim the new figures"
            )
        cites = [f"Sealed figures: {seal.sla} {seal.month} seal {seal.digest}" for seal in seals]
        return text.rstrip("\n") + "\n\n" + "\n".join(cites) + "\n", notes
    if fmt == "text":
        blocks = ["\n".join(sealed_lines(seal, by_sla.get(seal.sla))) for seal in seals]
        return "\n\n".join(
            blocks
        ) + "\n\nRecomputed today (not the sealed figures):\n\n" + text, notes
    for seal in seals:
        lines = changed.get(seal.sla, [])
        notes.append(
            f"{seal.sla} {seal.month} is sealed ({seal.digest}); this {fmt} is today's "
            f"recomputation" + (f", which differs: {'; '.join(lines)}" if lines else "")
        )
    return text, notes


async def roll_up_month(
    config: Config,
    store: Store,
    month: Month,
    now: datetime,
    dispute_days: int,
) -> int:
    """Drop ``month``'s per-target tallies once every SLA's month is sealed and its claim
    window plus ``dispute_days`` is over; returns the rows dropped.

    What stays proves the month: each seal (figures, outages, exclusions applied, every
    bucket's verdict, the digest of the dropped tallies), the per-bucket service verdicts the
    daemon wrote, and the failure evidence (kept per ``evidence_retention``)."""
    from datetime import timedelta

    if dispute_days < 0:
        raise ValueError(f"--dispute-days: expected 0 or more, got {dispute_days}")
    policies = list(config.sla_policies())
    starts, ends = [], []
    for policy in policies:
        seal = await store.load_month_seal(policy.name, str(month))
        if seal is None:
            raise ValueError(
                f"{policy.name} {month}: not sealed; `slawatch month seal` first (tallies are "
                "only rolled up under a seal)"
            )
        deadline = parse_instant(seal.doc["report"]["claim_deadline"], "claim_deadline")
        until = deadline + timedelta(days=dispute_days)
        if now < until:
            raise ValueError(
                f"{policy.name} {month}: claim window plus the {dispute_days}-day dispute "
                f"period runs until {until.isoformat()}; tallies are kept until then"
            )
        start, end = month_bounds(month, policy.timezone)
        starts.append(int(start.timestamp()))
        ends.append(int(end.timestamp()))
    if not policies:
        return 0
    return await store.prune_tallies(min(starts), max(ends))
