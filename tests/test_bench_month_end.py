"""The daemon bench's month-end store (``bench/month_end.py``, issue 20 mw24) is faithful: a
daemon started from it computes the same month figures as one started from the store the old
route fills tally by tally, and as the report over that store."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from daemon_bench import write_config  # noqa: E402
from month_end import month_end_now, prefill_month_end, prefill_tallies  # noqa: E402

from monitor.clock import FixedClock  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.instants import utc_from_epoch  # noqa: E402
from monitor.reports.seal import seal_document  # noqa: E402
from monitor.reports.stored import store_month_results  # noqa: E402
from monitor.runtime.daemon import Daemon  # noqa: E402
from monitor.sla.month import MonthResult  # noqa: E402

NOW = int(datetime(2026, 11, 4, 10, 17, 30, tzinfo=UTC).timestamp())
"""A few days into November: October complete (sealed), November's first days stored."""


def _doc(result: MonthResult) -> dict[str, Any]:
    """The sealed document's figures (the report's JSON object and the run-length states),
    less the instant they were computed at."""
    doc = seal_document(result, "config", "tallies")
    return _figures_of(doc)


def _figures_of(doc: Any) -> dict[str, Any]:
    report = {k: v for k, v in doc["report"].items() if k != "as_of"}
    return {"report": report, "states": doc["states"]}


def _figures(config: Path) -> tuple[dict[tuple[str, str], MonthResult], int, dict[str, Any]]:
    """A daemon's current and previous month per SLA over ``config``'s store at ``NOW``, the
    months it restored from snapshots, and the previous month's stored seal documents."""
    loaded = load_config(config)
    daemon = Daemon(loaded, config, clock=FixedClock(float(NOW)))
    moment = utc_from_epoch(NOW)

    async def go() -> tuple[dict[tuple[str, str], MonthResult], int, dict[str, Any]]:
        await daemon.store.open()
        try:
            await daemon._load_history(float(NOW))
            out: dict[tuple[str, str], MonthResult] = {}
            seals: dict[str, Any] = {}
            for policy in loaded.sla_policies():
                current = daemon.accounting.month_result(policy, moment)
                previous = daemon.accounting.month_result(policy, moment, current.month.previous())
                for result in (current, previous):
                    out[(policy.name, str(result.month))] = result
                seal = await daemon.store.load_month_seal(policy.name, str(previous.month))
                if seal is not None:
                    seals[policy.name] = seal.doc
            return out, daemon.snapshots.restored, seals
        finally:
            await daemon.store.close()

    return asyncio.run(go())


def _reported(config: Path) -> dict[tuple[str, str], MonthResult]:
    """The report's figures (``store_month_results``) over ``config``'s store at ``NOW``."""
    loaded = load_config(config)
    moment = utc_from_epoch(NOW)

    async def go() -> dict[tuple[str, str], MonthResult]:
        store = loaded.monitor.store.build(loaded.monitor.name, loaded.monitor.database_path)
        await store.open()
        try:
            policies = loaded.sla_policies()
            current = [
                r for r in await store_month_results(loaded, store, policies, _month(0), moment)
            ]
            previous = await store_month_results(loaded, store, policies, _month(-1), moment)
            return {(r.sla, str(r.month)): r for r in [*current, *previous]}
        finally:
            await store.close()

    return asyncio.run(go())


def _month(offset: int) -> Any:
    from monitor.sla.calendar import month_containing

    month = month_containing(utc_from_epoch(NOW), "UTC")
    return month.previous() if offset else month


class TestMonthEndStore:
    """The snapshot route against the tally-by-tally route, 20 targets, 4 days into a month."""

    @pytest.mark.timeout(240)
    @pytest.mark.parametrize("per_sla", [1, 4])
    def test_same_month_figures_as_every_tally(self, tmp_path: Path, per_sla: int) -> None:
        """Every SLA's current and previous month, bucket by bucket and figure by figure, is
        the same from the month-end store (started from its snapshots, the previous month
        sealed with those figures) as from the store holding every tally, and as the
        report over the latter."""
        old = write_config(tmp_path / "old", 20, 1, 2, per_sla=per_sla)
        new = write_config(tmp_path / "new", 20, 1, 2, per_sla=per_sla)
        assert prefill_tallies(old, NOW) > 20 * 288 * 34
        written = prefill_month_end(
            new, NOW, lambda d, k: write_config(d, k, 1, 2, per_sla=k), tail_hours=1.0
        )
        slas = 20 // per_sla
        assert written["snapshots"] == 2 * slas
        assert written["seals"] == slas

        want, restored_old, _ = _figures(old)
        got, restored_new, seals = _figures(new)
        reported = _reported(old)
        assert restored_old == 0
        assert restored_new == 2 * slas, "every month must start from its snapshot"
        assert set(got) == set(want) == set(reported)
        unavailable = 0
        for key, expected in want.items():
            actual = got[key]
            assert _doc(actual) == _doc(expected), key
            assert list(actual.states) == list(expected.states), key
            assert _doc(actual) == _doc(reported[key]), key
            unavailable += actual.buckets_unavailable
        assert unavailable > 0, "the figures compared must hold outages (their evidence)"
        for (sla, month), expected in want.items():
            if month == str(_month(-1)):
                assert _figures_of(seals[sla]) == _doc(expected), sla
        assert written["verdict_rows"] > 0
        _assert_verdicts_as_a_month_of_running(new, reported)
        _assert_sealing_done(new)


def _assert_sealing_done(config: Path) -> None:
    """dq30: the month-end store records the previous month as sealed for every SLA
    (``monitor.runtime.sealing.DONE_KEY``, per SLA since rl34), as a daemon that ran all month
    leaves it: a daemon started over it asks the store for no seal and seals nothing again
    (before, its first sealing pass read and checked every SLA's seal)."""
    from monitor.runtime.sealing import DONE_KEY, SEALED, done_slas

    loaded = load_config(config)
    daemon = Daemon(loaded, config, clock=FixedClock(float(NOW)))

    async def go() -> None:
        await daemon.store.open()
        try:
            await daemon._load_history(float(NOW))
            record = await daemon.store.kv_get(DONE_KEY)
            names = [p.name for p in loaded.sla_policies()]
            assert done_slas(record, str(_month(-1))) == dict.fromkeys(names, SEALED)
            asked: list[int] = []
            load_many, save = daemon.store.load_month_seals, daemon.store.save_month_seal

            async def counted_many(slas: Any, month: str) -> Any:
                asked.append(len(slas))
                return await load_many(slas, month)

            async def counted_save(seal: Any) -> Any:
                asked.append(-1)
                return await save(seal)

            daemon.store.load_month_seals = counted_many  # type: ignore[method-assign]
            daemon.store.save_month_seal = counted_save  # type: ignore[method-assign]
            await daemon._seal_closed_months(float(NOW))
            assert asked == [], "a daemon that ran all month does not seal its months again"
        finally:
            await daemon.store.close()

    asyncio.run(go())


def _assert_verdicts_as_a_month_of_running(
    config: Path, reported: dict[tuple[str, str], MonthResult]
) -> None:
    """vm26: the month-end store holds every SLA's current-month verdicts as the reference
    judges them (``reported``, over every tally), from its first bucket with a tally to the
    last settled at ``NOW``; a daemon started over it reads back only the buckets after its
    snapshots' (which vouch for the rest), and writes no verdict again."""
    loaded = load_config(config)
    daemon = Daemon(loaded, config, clock=FixedClock(float(NOW)))
    current = str(_month(0))

    async def go() -> None:
        await daemon.store.open()
        try:
            await daemon._load_history(float(NOW))
            vouched = {sla: v for (sla, month), v in daemon.snapshots.vouched.items()}
            assert {str(m) for _, m in daemon.snapshots.vouched} == {current}
            assert set(vouched) == {p.name for p in loaded.sla_policies()}
            settle = daemon._settle_seconds()
            for policy in loaded.sla_policies():
                reference = reported[(policy.name, current)]
                start = int(reference.start.timestamp())
                size = policy.bucket_seconds
                upto = int((NOW - settle - start) // size)
                rows = await daemon.store.load_service_buckets(
                    policy.name, start, start + upto * size
                )
                indices = [(r.bucket_start - start) // size for r in rows]
                assert indices == list(range(0, upto)), policy.name  # tallies from the start
                for index, row in zip(indices, rows, strict=True):
                    assert row.state is reference.states[index], (policy.name, index)
                assert vouched[policy.name][0] == start
                assert start < vouched[policy.name][1] <= start + upto * size
            reads: list[tuple[str, int]] = []
            written: list[int] = []
            load, write = daemon.store.load_service_buckets, daemon.store.write_batch

            async def counted_load(sla: str, lo: int, hi: int, vantage: Any = None) -> Any:
                reads.append((sla, lo))
                return await load(sla, lo, hi, vantage)

            async def counted_write(batch: Any) -> None:
                written.append(len(batch.service_buckets))
                await write(batch)

            daemon.store.load_service_buckets = counted_load  # type: ignore[method-assign]
            daemon.store.write_batch = counted_write  # type: ignore[method-assign]
            for _ in range(3):
                assert await daemon.flush()
            assert sum(written) == 0, "the month-end store holds every verdict as judged"
            assert sorted(reads) == sorted((sla, v[1]) for sla, v in vouched.items())
        finally:
            await daemon.store.close()

    asyncio.run(go())


class TestMonthEndNow:
    """The daemon's clock at a month's end: the wall clock moved back by whole days."""

    def test_a_store_already_there_is_refused(self, tmp_path: Path) -> None:
        """The prefill writes a new store: one a daemon already ran on (a --reuse-prefill
        written again into its kept directory) is refused with its path, untouched."""
        config = write_config(tmp_path, 20, 1, 2, per_sla=1)
        database = tmp_path / "state" / "slawatch.db"
        database.parent.mkdir(parents=True, exist_ok=True)
        database.write_bytes(b"a daemon's store")
        with pytest.raises(FileExistsError, match=str(database)):
            prefill_month_end(config, NOW, lambda d, k: write_config(d, k, 1, 2, per_sla=k))
        assert database.read_bytes() == b"a daemon's store"

    def test_latest_day_of_month_whole_days_back(self) -> None:
        """2 Dec 08:30 UTC, day 28 -> 28 Nov 08:30 UTC; the day itself -> unchanged;
        a day no recent month has -> the latest month that has it."""
        real = datetime(2026, 12, 2, 8, 30, 5, tzinfo=UTC).timestamp()
        assert utc_from_epoch(month_end_now(28, real)) == datetime(
            2026, 11, 28, 8, 30, 5, tzinfo=UTC
        )
        assert month_end_now(2, real) == int(real)
        assert utc_from_epoch(month_end_now(31, real)) == datetime(
            2026, 10, 31, 8, 30, 5, tzinfo=UTC
        )
        with pytest.raises(ValueError, match=r"1\.\.31"):
            month_end_now(0, real)
