"""The ``monitor.sharding`` section (issue 14): several daemons of one location share its
targets, coordinated through the PostgreSQL store's lease table (``monitor.runtime.shard``).

Off by default. ``lease`` is how long a member stays alive in the others' eyes without a
heartbeat (it heartbeats every ``lease / 3``): a dead member's targets are probed again by the
others within ``lease + lease / 3 + interval``. Only valid with ``monitor.store.backend:
postgresql``; the check lives on ``MonitorSettings`` where both keys are seen.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict

from monitor.config.fieldtypes import duration_field


class ShardingSettings(BaseModel):
    """``monitor.sharding: {lease: 15s}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # At least 3 s: the heartbeat then runs every second and bounds its own wait by that.
    lease: Annotated[float, duration_field(minimum=3.0, maximum=600.0)] = 15.0


SHARDING_NEEDS_POSTGRESQL = (
    "sharding needs monitor.store.backend: postgresql (the members of a location share their "
    "targets through its lease table); remove monitor.sharding or configure the postgresql store"
)
