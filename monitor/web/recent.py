"""The last day of each target's probes, folded into half-hour slots for the target page.

Only failures are kept as evidence in the store; the page also wants latency and call quality
of the probes that passed. Keeping every result of a day would cost too much memory at
thousands of targets, so each slot keeps counts, the duration sum and maximum, and the worst
MOS, RTP loss and jitter seen: 48 small records per target.
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet

from monitor.web.view import RecentSlot
from probes.result import ProbeResult

SLOT_SECONDS = 1800
KEEP_SECONDS = 86400


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


class RecentResults:
    """Per target: slot start -> [probes, failed, duration sum, duration max, mos min,
    loss max, jitter max] (NaN where nothing was seen)."""

    def __init__(self, slot_seconds: int = SLOT_SECONDS, keep_seconds: int = KEEP_SECONDS):
        self.slot_seconds = slot_seconds
        self.keep_seconds = keep_seconds
        self._slots: dict[str, dict[int, list[float]]] = {}

    def record(self, result: ProbeResult) -> None:
        start = int(result.started_at) // self.slot_seconds * self.slot_seconds
        slots = self._slots.setdefault(result.target, {})
        slot = slots.get(start)
        if slot is None:
            slot = slots[start] = [0.0, 0.0, 0.0, 0.0, math.nan, math.nan, math.nan]
            horizon = start - self.keep_seconds
            for old in [s for s in slots if s <= horizon]:
                del slots[old]
        slot[0] += 1
        if not result.ok:
            slot[1] += 1
        duration = result.duration_seconds
        if math.isfinite(duration):
            slot[2] += duration
            slot[3] = max(slot[3], duration)
        details = result.details
        if not ("mos" in details or "rtp_loss_ratio" in details or "rtp_jitter_seconds" in details):
            # Only a SIP call's result holds these: every other probe's record stops here
            # (pp33, issue 20: three look-ups and three calls of ``_number`` per probe).
            return
        mos = _number(details.get("mos"))
        loss = _number(details.get("rtp_loss_ratio"))
        jitter = _number(details.get("rtp_jitter_seconds"))
        if mos is not None:
            slot[4] = mos if math.isnan(slot[4]) else min(slot[4], mos)
        if loss is not None:
            slot[5] = loss if math.isnan(slot[5]) else max(slot[5], loss)
        if jitter is not None:
            slot[6] = jitter if math.isnan(slot[6]) else max(slot[6], jitter)

    def slots(self, target: str, now: float) -> tuple[RecentSlot, ...]:
        """The target's slots of the last ``keep_seconds`` before ``now``, oldest first."""
        horizon = now - self.keep_seconds
        out = []
        for start, v in sorted(self._slots.get(target, {}).items()):
            if start + self.slot_seconds <= horizon or start > now:
                continue
            out.append(
                RecentSlot(
                    start=start,
                    probes=int(v[0]),
                    failed=int(v[1]),
                    duration_sum=v[2],
                    duration_max=v[3],
                    mos_min=None if math.isnan(v[4]) else v[4],
                    loss_max=None if math.isnan(v[5]) else v[5],
                    jitter_max=None if math.isnan(v[6]) else v[6],
                )
            )
        return tuple(out)

    def forget_targets(self, keep: AbstractSet[str]) -> None:
        for name in [n for n in self._slots if n not in keep]:
            del self._slots[name]
