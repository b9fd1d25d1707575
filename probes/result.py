"""The one result type every probe returns, and the context a probe runs in.

A probe never answers with a bare bool: the reason and the details are the evidence a credit
claim rests on, so they travel with the verdict from the probe to the store and the report.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

DetailValue = str | int | float | bool | None

_EMPTY_PHASES: Mapping[str, float] = MappingProxyType({})
_EMPTY_DETAILS: Mapping[str, DetailValue] = MappingProxyType({})


class Outcome(StrEnum):
    """What happened to one probe run."""

    UP = "up"
    """The endpoint answered as configured."""
    DOWN = "down"
    """The endpoint answered wrongly or the network refused: vendor-side evidence."""
    TIMEOUT = "timeout"
    """No complete answer within the target's timeout."""
    ERROR = "error"
    """The probe itself failed (a bug or a local resource problem); logged with a traceback."""

    @property
    def ok(self) -> bool:
        return self is Outcome.UP


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe run.

    ``started_at`` is wall-clock epoch seconds (the bucket it falls in is decided from it);
    ``duration_seconds`` is measured on the monotonic clock. ``reason`` is a short,
    machine-friendly token (``timeout``, ``connection_refused``, ``status_code_503``, ...)
    and is empty when the outcome is ``up``. ``phases`` holds named phase times in seconds
    (``resolve``, ``connect``, ``tls``, ``first_byte``, ``transfer`` for HTTP; ``post_dial_delay``,
    ``answer`` for SIP). ``details`` holds scalar facts worth keeping as evidence
    (``status_code``, ``certificate_expiry_timestamp``, ``sip_status``, ``rtp_loss_ratio``...).
    """

    target: str
    outcome: Outcome
    started_at: float
    duration_seconds: float
    reason: str = ""
    phases: Mapping[str, float] = field(default_factory=lambda: _EMPTY_PHASES)
    details: Mapping[str, DetailValue] = field(default_factory=lambda: _EMPTY_DETAILS)

    @property
    def ok(self) -> bool:
        return self.outcome.ok


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """What a probe function gets besides its options.

    ``timeout_seconds`` is the target's timeout: the runner cancels the probe when it is
    exceeded, so a probe that must clean up (a SIP call's BYE) should finish its own work a
    little earlier, using ``deadline`` (a ``time.monotonic()`` value).
    """

    target: str
    timeout_seconds: float
    started_at: float
    deadline: float

    @classmethod
    def starting_now(cls, target: str, timeout_seconds: float) -> ProbeContext:
        return cls(
            target=target,
            timeout_seconds=timeout_seconds,
            started_at=time.time(),
            deadline=time.monotonic() + timeout_seconds,
        )

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def result(
        self,
        outcome: Outcome,
        reason: str = "",
        *,
        phases: Mapping[str, float] | None = None,
        details: Mapping[str, DetailValue] | None = None,
        duration_seconds: float | None = None,
    ) -> ProbeResult:
        """Build this run's result; the duration defaults to the time since the start."""
        if duration_seconds is None:
            elapsed_total = self.timeout_seconds - (self.deadline - time.monotonic())
            duration_seconds = max(0.0, elapsed_total)
        return ProbeResult(
            target=self.target,
            outcome=outcome,
            started_at=self.started_at,
            duration_seconds=duration_seconds,
            reason=reason,
            phases=MappingProxyType(dict(phases)) if phases else _EMPTY_PHASES,
            details=MappingProxyType(dict(details)) if details else _EMPTY_DETAILS,
        )
