"""What the adapters (``monitor.http``, ``monitor.metrics``) may see of the running daemon.

:class:`monitor.runtime.daemon.Daemon` satisfies :class:`DaemonView` structurally. The adapters
import this module, never the daemon: they read through these properties and change the
daemon's state only through the commands at the end (each of which keeps the store, the month
inputs and the written verdicts in step).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from monitor.accounting import Accounting
    from monitor.clock import Clock
    from monitor.config import Config
    from monitor.runtime.claims import Claim
    from monitor.runtime.health import Health
    from monitor.runtime.scheduler import ScheduledTarget
    from monitor.runtime.state import LiveState
    from monitor.sla.policy import ExclusionWindow
    from monitor.store.base import Store
    from monitor.support.metrics import Sample
    from monitor.web.recent import RecentResults


class SchedulerView(Protocol):
    """The scheduler's figures ``/metrics`` and ``/api/v1/status`` show."""

    @property
    def in_flight(self) -> int: ...
    @property
    def runs_skipped(self) -> int:
        """Scheduled runs that never started."""

    @property
    def runs_late(self) -> int:
        """Runs started more than ``scheduler.LATE_AFTER`` after their grid time."""

    @property
    def targets(self) -> Mapping[str, ScheduledTarget]:
        """Target name -> its schedule (the interval says when a result is stale)."""


class DaemonView(Protocol):
    """The read side of the daemon, plus the few commands the HTTP routes need."""

    @property
    def config(self) -> Config: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def accounting(self) -> Accounting:
        """The one month assembly's inputs and the cached month results."""

    @property
    def state(self) -> LiveState: ...
    @property
    def health(self) -> Health: ...
    @property
    def scheduler(self) -> SchedulerView: ...
    @property
    def store(self) -> Store:
        """Read by the report of older months and by the fault routes (their own service)."""

    @property
    def claims(self) -> Mapping[str, Claim]: ...
    @property
    def api_exclusions(self) -> Sequence[ExclusionWindow]: ...
    @property
    def recent(self) -> RecentResults:
        """Each target's last day, folded into slots, for the web view's target page."""

    def support_samples(self) -> list[Sample]: ...

    # -- commands ------------------------------------------------------------------------------
    async def add_exclusion(self, window: ExclusionWindow) -> ExclusionWindow:
        """Store ``window`` and apply it (raises ``ExclusionExistsError``)."""

    async def delete_exclusion(self, ident: str) -> bool:
        """Forget the API window ``ident``; False when there is none."""

    async def record_claim(self, claim: Claim) -> None: ...
    def on_stop(self, hook: Callable[[], Awaitable[None]]) -> None: ...
