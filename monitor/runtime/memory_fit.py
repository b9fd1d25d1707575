"""Whether a configuration's SLAs and targets fit the memory the daemon may use (issue 20).

The shipped unit sets ``MemoryMax=1G``: a daemon whose configuration needs more is killed by
the kernel in the middle of a month, its figures with it. At start the daemon estimates what
the configuration will hold at a month's end (:func:`estimate_bytes`, from the bytes per SLA
and per target measured by ``bench/sla_memory_bench.py`` and ``bench/daemon_bench.py``,
docs/benchmarks.md) and logs one warning line when that exceeds the cgroup's ``memory.max``
(:func:`cgroup_memory_max`; no limit, or no cgroup v2: nothing to check).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

BASE_BYTES = 64 * 2**20
"""The interpreter, the libraries and the daemon's fixed parts."""
BYTES_PER_TARGET = 14 * 2**10
"""A probed target: its configuration, schedule, live tallies of the open hour, recent results
and its ``/metrics`` lines (10,000 targets with 50 in SLAs: 204 MB peak, docs/benchmarks.md)."""
BYTES_PER_SLA = 32 * 2**10
"""An SLA over one target, at its peak at a month's end: its configuration, the running month
(one byte per 5-minute bucket, 8.9 KB), the previous month packed, the cached results and
its ``/metrics`` text, with ~86 outages a month (one unavailable bucket in 100; ~20 bytes per
outage since oc26's compact outages). mem29 (issue 20), re-derived on 2 Dec 2026 (21:21 UTC,
load ~5) from the whole daemon at day 28, ``bench/daemon_bench.py --targets 10000 --per-sla 1
--month-end 28 --measure 30 --scrape-interval 5`` on mem29's tree (slotted months and policies):
peak = end 509.2 MiB (the steady state after the first summary; main d7e94ff beside it: 557.8),
so (509.2 MiB - BASE - 10,000 targets) / 10,000 SLAs = 31.6 KiB. It was 81 KiB before rb28's
decode per month (995 MB peak). A loaded machine can add a transient ~90 MB after ready
(docs/benchmarks.md, mem29 section)."""


@dataclass(frozen=True)
class MemoryFit:
    """The estimate for a configuration against the limit."""

    slas: int
    targets: int
    estimate: int
    limit: int

    @property
    def fits(self) -> bool:
        return self.estimate <= self.limit

    def message(self) -> str:
        return (
            f"{self.slas} SLAs and {self.targets} targets need about "
            f"{self.estimate / 2**20:.0f} MiB at a month's end, above this service's memory "
            f"limit of {self.limit / 2**20:.0f} MiB (cgroup memory.max): raise MemoryMax or "
            "shard the targets (docs/sharding.md)"
        )


def estimate_bytes(slas: int, targets: int) -> int:
    """What a daemon over ``slas`` SLAs and ``targets`` targets holds at a month's end."""
    return BASE_BYTES + targets * BYTES_PER_TARGET + slas * BYTES_PER_SLA


def fit(slas: int, targets: int, limit: int) -> MemoryFit:
    return MemoryFit(slas, targets, estimate_bytes(slas, targets), limit)


def cgroup_memory_max(root: Path = Path("/"), proc: Path = Path("/proc/self/cgroup")) -> int | None:
    """The tightest ``memory.max`` over this process's cgroup (v2) and its parents, in bytes;
    ``None`` without cgroup v2, without a limit (``max``) or when it cannot be read."""
    try:
        lines = proc.read_text().splitlines()
    except OSError:
        return None
    path = next((line[3:] for line in lines if line.startswith("0::")), None)
    if path is None:
        return None
    base = root / "sys/fs/cgroup"
    here = base / path.strip("/")
    limits = []
    while True:
        try:
            text = (here / "memory.max").read_text().strip()
        except OSError:
            text = "max"
        if text != "max":
            with contextlib.suppress(ValueError):  # an unreadable limit checks nothing
                limits.append(int(text))
        if here == base or base not in here.parents:
            break
        here = here.parent
    return min(limits) if limits else None


def check(slas: int, targets: int, limit: int | None) -> MemoryFit | None:
    """The estimate when it does not fit ``limit`` (``None``: no limit, or it fits)."""
    if limit is None:
        return None
    found = fit(slas, targets, limit)
    return None if found.fits else found


def warn_if_short(slas: int, targets: int, limit: int | None = None) -> MemoryFit | None:
    """Log one warning line when the configuration will not fit the cgroup's limit (read
    here when ``limit`` is not given); returns what was logged."""
    short = check(slas, targets, cgroup_memory_max() if limit is None else limit)
    if short is not None:
        log.warning(
            "memory_limit_too_small",
            slas=slas,
            targets=targets,
            estimate_mib=round(short.estimate / 2**20),
            limit_mib=round(short.limit / 2**20),
            detail=short.message(),
        )
    return short
