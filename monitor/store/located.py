"""Reading one SLA's per-location tallies and gaps from a shared store (issue 14).

Every reader of a month judged by locations (``slawatch report`` from the store, the API's
older months, the daemon's feed in ``monitor.runtime.locations``) gathers it the same way: for
each location the SLA lists, that location's tallies summed over its members
(``Store.load_tallies(..., location=)``) for the service's targets and the canaries, and the
gaps of its members. The month itself is then computed by ``accounting.month_result``.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.sla.policy import LocationRule, Tally
from monitor.sla.quorum import LocatedTallies
from monitor.store.base import Store

ByLocation = dict[str, dict[str, dict[int, Tally]]]
"""location -> target -> bucket start -> tally."""


async def load_location_tallies(
    store: Store,
    rule: LocationRule,
    targets: Sequence[str],
    start: int,
    end: int,
    bucket_seconds: int,
) -> ByLocation:
    """Each listed location's tallies of ``targets`` with ``start <= bucket_start < end``."""
    return {
        name: await store.load_tallies(
            start, end, targets, location=name, bucket_seconds=bucket_seconds
        )
        for name in rule.of
    }


async def load_location_gaps(
    store: Store, rule: LocationRule, start: float, end: float
) -> dict[str, list[tuple[float, float]]]:
    """Each listed location's gaps (its members' times not running) overlapping the range."""
    out: dict[str, list[tuple[float, float]]] = {}
    for name in rule.of:
        out[name] = [(g.start, g.end) for g in await store.load_gaps(start, end, location=name)]
    return out


async def load_located(
    store: Store,
    rule: LocationRule,
    targets: Sequence[str],
    canaries: Sequence[str],
    start: int,
    end: int,
    bucket_seconds: int,
) -> LocatedTallies:
    """One SLA month's located tallies: the service's ``targets`` and the ``canaries`` of
    every location, with each location's gaps."""
    names = list(dict.fromkeys([*targets, *canaries]))
    return LocatedTallies(
        rule,
        await load_location_tallies(store, rule, names, start, end, bucket_seconds),
        canaries=canaries,
        gaps=await load_location_gaps(store, rule, start, end),
    )
