"""Issue 20: the start-up warning when a configuration's SLAs and targets will not fit the
service's memory limit (cgroup v2 ``memory.max``)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from monitor.runtime.memory_fit import (
    BYTES_PER_SLA,
    BYTES_PER_TARGET,
    cgroup_memory_max,
    check,
    estimate_bytes,
    warn_if_short,
)

GIB = 2**30


def _cgroup(tmp: Path, limits: dict[str, str], own: str = "/system.slice/slawatch.service") -> Path:
    """A fake root: /proc/self/cgroup naming ``own``, memory.max files per cgroup path."""
    (tmp / "proc").mkdir()
    (tmp / "proc/cgroup").write_text(f"0::{own}\n")
    for path, value in limits.items():
        where = tmp / "sys/fs/cgroup" / path.strip("/")
        where.mkdir(parents=True, exist_ok=True)
        (where / "memory.max").write_text(value + "\n")
    return tmp


class TestCgroupLimit:
    def test_the_units_limit(self, tmp_path: Path) -> None:
        """MemoryMax=1G on the service's cgroup is read; parents without a limit say max."""
        root = _cgroup(
            tmp_path,
            {"/": "max", "/system.slice": "max", "/system.slice/slawatch.service": "1073741824"},
        )
        assert cgroup_memory_max(root, root / "proc/cgroup") == GIB

    def test_the_tightest_ancestor(self, tmp_path: Path) -> None:
        """A parent slice's lower limit is the one that kills the daemon."""
        root = _cgroup(
            tmp_path,
            {"/system.slice": str(512 * 2**20), "/system.slice/slawatch.service": str(GIB)},
        )
        assert cgroup_memory_max(root, root / "proc/cgroup") == 512 * 2**20

    def test_no_limit(self, tmp_path: Path) -> None:
        """max everywhere, a missing file or no cgroup v2 line: nothing to check."""
        root = _cgroup(tmp_path, {"/system.slice/slawatch.service": "max"})
        assert cgroup_memory_max(root, root / "proc/cgroup") is None
        (root / "proc/cgroup").write_text("12:memory:/user.slice\n")  # cgroup v1 only
        assert cgroup_memory_max(root, root / "proc/cgroup") is None
        assert cgroup_memory_max(root, root / "proc/absent") is None


class TestWarning:
    def test_ten_thousand_one_target_slas_under_one_gib(self) -> None:
        """The estimate at 10,000 one-target SLAs is what docs/benchmarks.md measured, and
        the warning names counts, estimate and limit in one line."""
        with capture_logs() as logs:
            short = warn_if_short(10_000, 10_000, limit=256 * 2**20)
        assert short is not None
        assert [entry["event"] for entry in logs] == ["memory_limit_too_small"]
        entry = logs[0]
        assert entry["log_level"] == "warning"
        assert entry["slas"] == 10_000
        assert entry["limit_mib"] == 256
        assert entry["estimate_mib"] == round(estimate_bytes(10_000, 10_000) / 2**20)
        assert "MemoryMax" in entry["detail"]
        assert "\n" not in entry["detail"]

    def test_silent_when_it_fits(self) -> None:
        """A small configuration under the unit's 1 GiB logs nothing."""
        with capture_logs() as logs:
            assert warn_if_short(10, 100, limit=GIB) is None
        assert logs == []

    @given(
        slas=st.integers(0, 100_000),
        targets=st.integers(0, 100_000),
        limit=st.integers(0, 64 * GIB),
    )
    def test_warns_exactly_when_the_estimate_exceeds_the_limit(
        self, slas: int, targets: int, limit: int
    ) -> None:
        """The warning is given iff the estimate is above the limit; the estimate grows by
        the stated bytes per SLA and per target."""
        assert (check(slas, targets, limit) is not None) == (estimate_bytes(slas, targets) > limit)
        assert estimate_bytes(slas + 1, targets) - estimate_bytes(slas, targets) == BYTES_PER_SLA
        assert estimate_bytes(slas, targets + 1) - estimate_bytes(slas, targets) == BYTES_PER_TARGET
        assert check(slas, targets, None) is None
