"""Issue 20 (se24): the daemon seals the closed month from the month its accounting holds,
and the sealed record is byte for byte the one the reference computation gives (the month
computed from the store's tallies by ``compute_month``, through ``accounting.month_result``).

The sample configuration and results (``config/samples``: three SLAs in Europe/London, a
canary, fixed and recurring exclusions, outages on 1 November 2026) are written to the store;
the daemon runs on a fixed clock on 2 December 2026, when November's claim window is open.
"""

from __future__ import annotations

import asyncio
import copy
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.accounting import inputs_from_config
from monitor.clock import FixedClock
from monitor.config import Config, load_config
from monitor.instants import utc_from_epoch
from monitor.reports.seal import run_lengths, seal_document, state_runs, tallies_digest
from monitor.reports.stored import UNMEASURED, month_results_held, store_month_results
from monitor.runtime.daemon import SEAL_BATCH, Daemon
from monitor.runtime.sealing import (
    DONE_KEY,
    OLD_DONE_KEY,
    SEALED,
    done_slas,
    held_result,
    record_done,
    unmeasured_token,
)
from monitor.sla.calendar import Month, month_bounds
from monitor.sla.month import MonthResult
from monitor.sla.policy import BucketState, ExclusionKind, ExclusionWindow, Tally
from monitor.sla.running import CodedStates
from monitor.store.base import TallyRow, WriteBatch
from monitor.store.seals import canonical
from tests.test_daemon_eviction import sample_config
from tests.test_one_path import store_results

pytestmark = pytest.mark.timeout(300)

NOVEMBER = Month(2026, 11)
SEAL_AT = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
_STATES = tuple(BucketState)


async def _daemon(config: Path) -> Daemon:
    """A daemon on 2 Dec 2026 whose history (November held for every SLA) is read back."""
    daemon = Daemon(load_config(config), config, clock=FixedClock(SEAL_AT.timestamp()))
    await daemon.store.open()
    await daemon._load_history(SEAL_AT.timestamp())
    return daemon


async def _store_inputs(daemon: Daemon, month: Month) -> Any:
    """The month's inputs as the store gives them (its exclusions and the month's gaps)."""
    policy = daemon.config.sla_policies()[0]
    start, end = month_bounds(month, policy.timezone)
    gaps = tuple(
        (utc_from_epoch(g.start), utc_from_epoch(g.end))
        for g in await daemon.store.load_gaps(start.timestamp(), end.timestamp())
    )
    return inputs_from_config(
        daemon.config, api_windows=await daemon.store.list_exclusions(), gaps=gaps
    )


async def _reference_docs(daemon: Daemon) -> dict[str, str]:
    """Each SLA's sealed document as the reference computation from the store makes it."""
    policies = list(daemon.config.sla_policies())
    results = await store_month_results(
        daemon.config,
        daemon.store,
        policies,
        NOVEMBER,
        SEAL_AT,
        await daemon.store.list_exclusions(),
    )
    rows_of: dict[int, str] = {}
    out = {}
    for policy, result in zip(policies, results, strict=True):
        start, end = month_bounds(NOVEMBER, policy.timezone)
        if policy.bucket_seconds not in rows_of:
            rows = await daemon.store.load_tally_rows(int(start.timestamp()), int(end.timestamp()))
            rows_of[policy.bucket_seconds] = tallies_digest(
                [r for r in rows if r.bucket_seconds == policy.bucket_seconds]
            )
        doc = seal_document(result, daemon.config.content_hash, rows_of[policy.bucket_seconds])
        out[policy.name] = canonical(doc)
    return out


async def _seal_pass(daemon: Daemon) -> dict[str, str]:
    """One sealing pass at ``SEAL_AT``; every sealed document after it."""
    await daemon._seal_closed_months(SEAL_AT.timestamp())
    return await _sealed_docs(daemon)


async def _sealed_docs(daemon: Daemon) -> dict[str, str]:
    out = {}
    for policy in daemon.config.sla_policies():
        seal = await daemon.store.load_month_seal(policy.name, str(NOVEMBER))
        if seal is not None:
            out[policy.name] = canonical(dict(seal.doc))
    return out


@pytest.fixture(scope="module")
def november_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the sample configuration and a store with November's tallies."""
    directory = tmp_path_factory.mktemp("november")
    config = sample_config(directory)
    asyncio.run(store_results(config))
    return directory


def _copy(source: Path, target: Path) -> Path:
    """The prepared directory copied to ``target``, its configuration pointing there."""
    shutil.copytree(source, target)
    return sample_config(target)


class TestSealedFromHeldMonths:
    def test_held_months_seal_the_reference_documents(
        self, november_store: Path, tmp_path: Path
    ) -> None:
        """Every SLA's November is taken from the accounting (held_result hands each one
        over) and its sealed document is byte for byte the reference's."""
        config = _copy(november_store, tmp_path / "run")

        async def run() -> None:
            daemon = await _daemon(config)
            try:
                inputs = await _store_inputs(daemon, NOVEMBER)
                for policy in daemon.config.sla_policies():
                    held = held_result(daemon.accounting, policy, NOVEMBER, inputs, SEAL_AT)
                    assert isinstance(held, MonthResult), policy.name
                await daemon._seal_closed_months(SEAL_AT.timestamp())
                sealed = await _sealed_docs(daemon)
                assert sealed == await _reference_docs(daemon)
                assert len(sealed) == len(daemon.config.sla_policies())
                assert any('"unavailable"' in doc for doc in sealed.values())
            finally:
                await daemon.store.close()

        asyncio.run(run())

    @pytest.mark.parametrize("exclusion_after_start", [False, True])
    @pytest.mark.parametrize("gap_after_start", [False, True])
    @settings(
        max_examples=4,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        late=st.lists(
            st.tuples(
                st.sampled_from(["sip-edge", "ivr-api", "agent-login"]),
                st.integers(min_value=0, max_value=8639),
                st.integers(min_value=0, max_value=3),
                st.integers(min_value=0, max_value=3),
            ),
            max_size=6,
        ),
    )
    def test_any_divergence_still_seals_the_reference(
        self,
        november_store: Path,
        tmp_path_factory: pytest.TempPathFactory,
        late: list[tuple[str, int, int, int]],
        exclusion_after_start: bool,
        gap_after_start: bool,
    ) -> None:
        """Tallies written before the start (judged by the held month), and an exclusion or a
        gap reaching the store after the months were built (the held month then differs and
        is not used): whatever the mix, the sealed documents are the reference's."""
        config = _copy(november_store, tmp_path_factory.mktemp("case") / "run")
        start = int(month_bounds(NOVEMBER, "Europe/London")[0].timestamp())

        async def run() -> None:
            daemon = Daemon(load_config(config), config, clock=FixedClock(SEAL_AT.timestamp()))
            await daemon.store.open()
            rows = [
                TallyRow.of(
                    daemon.store.vantage,
                    target,
                    start + index * 300,
                    300,
                    Tally(ok=ok, failed=failed, reasons={"http_503": failed} if failed else {}),
                )
                for target, index, ok, failed in late
                if ok + failed
            ]
            if rows:
                await daemon.store.write_batch(WriteBatch(tallies=rows))
            await daemon.store.close()
            daemon = await _daemon(config)
            try:
                if exclusion_after_start:
                    await daemon.store.add_exclusion(
                        ExclusionWindow(
                            id="after-start",
                            start=utc_from_epoch(start + 3600),
                            end=utc_from_epoch(start + 7200),
                            kind=ExclusionKind.FORCE_MAJEURE,
                            services=frozenset(),
                        )
                    )
                if gap_after_start:
                    await daemon.store.record_gap(start + 9 * 3600, start + 11 * 3600, "test")
                await daemon._seal_closed_months(SEAL_AT.timestamp())
                assert await _sealed_docs(daemon) == await _reference_docs(daemon)
            finally:
                await daemon.store.close()

        asyncio.run(run())

    def test_a_restart_seals_nothing_again(self, november_store: Path, tmp_path: Path) -> None:
        """After a restart the store's record of the months done is read once and no SLA's
        month is computed or sealed again; another configuration checks every SLA again
        (sealed before: kept as it was)."""
        config = _copy(november_store, tmp_path / "run")

        async def run() -> None:
            daemon = await _daemon(config)
            try:
                first = await _seal_pass(daemon)
                record = await daemon.store.kv_get(DONE_KEY)
                names = [p.name for p in daemon.config.sla_policies()]
                assert done_slas(record, str(NOVEMBER)) == dict.fromkeys(names, SEALED)
            finally:
                await daemon.store.close()
            daemon = await _daemon(config)
            try:
                asked: list[str] = []
                calls: list[int] = []
                original = daemon.store.load_month_seals

                async def load(slas: Sequence[str], month: str) -> Any:
                    asked.extend(slas)
                    calls.append(len(slas))
                    return await original(slas, month)

                daemon.store.load_month_seals = load  # type: ignore[method-assign]
                await daemon._seal_closed_months(SEAL_AT.timestamp())
                assert asked == []
                assert await _sealed_docs(daemon) == first
                # A record it cannot read (the month named under one hash, as before rl34):
                # every SLA is asked, none sealed again.
                await daemon.store.kv_set(DONE_KEY, {str(NOVEMBER): "another"})
                daemon._seals_known = (None, set())
                asked.clear()
                await daemon._seal_closed_months(SEAL_AT.timestamp())
                assert sorted(asked) == sorted(p.name for p in daemon.config.sla_policies()), asked
                # st26: one store call per batch of SLAs, not one per SLA.
                assert len(calls) == -(-len(asked) // SEAL_BATCH), calls
                assert await _sealed_docs(daemon) == first
            finally:
                await daemon.store.close()

        asyncio.run(run())

    def test_an_unmeasured_month_is_left_unsealed_without_computing_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A store holding nothing of November: no SLA is sealed, the store path's shortcut
        says unmeasured (None) exactly where the reference has no measured bucket, the
        configuration's content hash is not computed (rl34: only a seal needs it), and the
        next pass asks the store nothing."""
        config = sample_config(tmp_path)
        hashed: list[object] = []
        content_hash = Config._content_hash

        def counted(self: Config) -> str:
            hashed.append(self)
            return content_hash(self)

        monkeypatch.setattr(Config, "_content_hash", counted)

        async def run() -> None:
            daemon = await _daemon(config)
            try:
                policies = list(daemon.config.sla_policies())
                shortcut = await month_results_held(
                    daemon.config,
                    daemon.store,
                    policies,
                    NOVEMBER,
                    SEAL_AT,
                    unmeasured_as_none=True,
                )
                reference = await store_month_results(
                    daemon.config, daemon.store, policies, NOVEMBER, SEAL_AT
                )
                assert shortcut == [None] * len(policies)
                assert all(r.buckets_available + r.buckets_unavailable == 0 for r in reference)
                # The held months say so too, without building their figures.
                inputs = await _store_inputs(daemon, NOVEMBER)
                for policy in policies:
                    held = held_result(daemon.accounting, policy, NOVEMBER, inputs, SEAL_AT)
                    assert held is UNMEASURED, policy.name
                await daemon._seal_closed_months(SEAL_AT.timestamp())
                assert await _sealed_docs(daemon) == {}
                assert hashed == []
                assert {name for name, _ in daemon._seals_known[1]} == {p.name for p in policies}
            finally:
                await daemon.store.close()

        asyncio.run(run())


class TestStateRuns:
    @given(st.lists(st.integers(min_value=0, max_value=len(_STATES) - 1), max_size=400))
    def test_runs_over_codes_equal_runs_over_states(self, codes: list[int]) -> None:
        """The runs found over a month's one-byte codes equal the per-bucket runs."""
        states = CodedStates(bytes(codes))
        expected = run_lengths([_STATES[code].value for code in codes])
        assert state_runs(states) == expected
        assert state_runs(tuple(states)) == expected


class TestDoneRecord:
    def test_record_keeps_the_last_months_per_sla(self) -> None:
        """The record names each SLA's token per month, merges a pass's SLAs into the month's
        and keeps the last few months; anything else reads as nothing done."""
        record: object = None
        for month in ("2026-08", "2026-09", "2026-10", "2026-11", "2026-12"):
            record = record_done(record, month, {"a": SEALED})
        assert [m for m in ("2026-08", "2026-09", "2026-12") if done_slas(record, m)] == [
            "2026-09",
            "2026-12",
        ]
        record = record_done(record, "2026-12", {"b": "t1"})
        assert done_slas(record, "2026-12") == {"a": SEALED, "b": "t1"}
        assert done_slas(record, "2026-11") == {"a": SEALED}
        assert done_slas("not a record", "2026-12") == {}
        assert done_slas({"2026-12": "a content hash (before rl34)"}, "2026-12") == {}


def _edited(config: Path, edit: Any) -> Path:
    """``config`` rewritten with ``edit`` applied to its parsed document."""
    import yaml

    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    edit(data)
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    return config


def _add_sla(name: str, service: str) -> Any:
    def edit(data: dict[str, Any]) -> None:
        extra = copy.deepcopy(data["slas"][-1])
        extra.update(name=name, service=service)
        data["slas"].append(extra)

    return edit


def _add_ghost(data: dict[str, Any]) -> None:
    """An SLA over a target that never reported (nothing measured in November)."""
    data["targets"].append(
        {"name": "ghost", "kind": "tcp", "tcp": {"host": "127.0.0.1", "port": 9}}
    )
    data["services"].append({"name": "ghostly", "targets": ["ghost"]})
    _add_sla("ghost-sla", "ghostly")(data)


class _Asked:
    """The SLAs whose seals a daemon's store is asked for, and the seals it saves."""

    def __init__(self, daemon: Daemon) -> None:
        self.asked: list[str] = []
        self.saved: list[str] = []
        store = daemon.store
        load_many, save = store.load_month_seals, store.save_month_seal

        async def counted_many(slas: Sequence[str], month: str) -> Any:
            self.asked.extend(slas)
            return await load_many(slas, month)

        async def counted_save(seal: Any) -> Any:
            self.saved.append(seal.sla)
            return await save(seal)

        store.load_month_seals = counted_many  # type: ignore[method-assign]
        store.save_month_seal = counted_save  # type: ignore[method-assign]


async def _asked_in_a_pass(daemon: Daemon) -> _Asked:
    """What one sealing pass at ``SEAL_AT`` asks the daemon's store (counting goes on)."""
    asked = _Asked(daemon)
    await daemon._seal_closed_months(SEAL_AT.timestamp())
    return asked


async def _reload(daemon: Daemon) -> None:
    """A SIGHUP's reload of the daemon's file, waited for (months read back included)."""
    assert daemon.reload(daemon.read_config(daemon.config_path))  # type: ignore[arg-type]
    await asyncio.gather(*daemon._background)


class TestDoneAfterAnEdit:
    """rl34 (issue 20): the record is per SLA, so a pass after a configuration edit asks the
    store about the SLAs whose token no longer stands, not every SLA; a due seal is never
    skipped and a sealed month never sealed again."""

    def test_an_edit_asks_only_the_new_sla_and_seals_it(
        self, november_store: Path, tmp_path: Path
    ) -> None:
        """One SLA added (over a measured service) and another SLA's fee edited: the next
        pass asks the store about the new SLA only and seals it; the sealed months stay."""
        config = _copy(november_store, tmp_path / "run")

        async def run() -> None:
            daemon = await _daemon(config)
            try:
                first = await _seal_pass(daemon)
                assert len(first) == 3

                def edit(data: dict[str, Any]) -> None:
                    _add_sla("web-portal-2", "web")(data)
                    data["slas"][0]["monthly_fee"] = "12000.00"

                _edited(config, edit)
                await _reload(daemon)
                assert len(daemon.config.sla_policies()) == 4
                asked = _Asked(daemon)
                await daemon._seal_closed_months(SEAL_AT.timestamp())
                assert asked.asked == ["web-portal-2"]
                assert asked.saved == ["web-portal-2"]
                now_sealed = await _sealed_docs(daemon)
                assert {k: v for k, v in now_sealed.items() if k in first} == first
                assert "web-portal-2" in now_sealed
                # The next pass, and a restart: nothing asked.
                await daemon._seal_closed_months(SEAL_AT.timestamp())
                assert asked.asked == ["web-portal-2"]
            finally:
                await daemon.store.close()
            daemon = await _daemon(config)
            try:
                asked = await _asked_in_a_pass(daemon)
                assert asked.asked == []
                assert asked.saved == []
            finally:
                await daemon.store.close()

        asyncio.run(run())

    def test_an_unmeasured_month_is_asked_again_when_its_inputs_change(
        self, november_store: Path, tmp_path: Path
    ) -> None:
        """An SLA whose November had nothing measured is left unsealed under a token of its
        inputs: an unrelated edit does not ask it again, an edit of its service (now over a
        target that reported) does, and its month is then sealed."""
        config = _copy(november_store, tmp_path / "run")

        async def run() -> None:
            _edited(config, _add_ghost)
            daemon = await _daemon(config)
            try:
                await daemon._seal_closed_months(SEAL_AT.timestamp())
                assert "ghost-sla" not in await _sealed_docs(daemon)
                record = await daemon.store.kv_get(DONE_KEY)
                ghost = daemon.accounting.policy("ghost-sla")
                token = unmeasured_token(ghost, NOVEMBER, daemon.accounting.inputs)
                assert token is not None
                assert token != SEALED
                assert done_slas(record, str(NOVEMBER))["ghost-sla"] == token
                # Unrelated: another SLA's fee.
                _edited(config, lambda d: d["slas"][0].update(monthly_fee="11000.00"))
                await _reload(daemon)
                asked = _Asked(daemon)
                await daemon._seal_closed_months(SEAL_AT.timestamp())
                assert asked.asked == []
                # Its service now over a target that reported in November: sealed.
                _edited(config, lambda d: d["services"][-1].update(targets=["agent-login"]))
                await _reload(daemon)
                await daemon._seal_closed_months(SEAL_AT.timestamp())
                assert asked.asked == ["ghost-sla"]
                assert asked.saved == ["ghost-sla"]
                assert "ghost-sla" in await _sealed_docs(daemon)
            finally:
                await daemon.store.close()

        asyncio.run(run())

    def test_an_exclusion_removed_asks_an_unmeasured_month_again(self, tmp_path: Path) -> None:
        """The token of a month with nothing measured names the windows it honours: a
        month wholly excluded is measured once its window goes."""
        import yaml

        from monitor.config import load_config as load

        data = yaml.safe_load(
            (Path(__file__).parent.parent / "config/samples/report.yaml").read_text()
        )
        data["monitor"]["state_dir"] = str(tmp_path)
        policy_of = {}
        for windows in (data["exclusions"], []):
            data["exclusions"] = windows
            path = tmp_path / f"windows-{len(windows)}.yaml"
            path.write_text(yaml.safe_dump(data))
            inputs = inputs_from_config(load(path))
            policy = next(p for p in inputs.policies if p.name == "ujet-ivr")
            policy_of[len(windows)] = unmeasured_token(policy, NOVEMBER, inputs)
        assert policy_of[1] != policy_of[0]

    def test_an_older_record_re_checks_and_seals_nothing_again(
        self, november_store: Path, tmp_path: Path
    ) -> None:
        """A store whose record is the one before rl34 (months under a content hash, at
        ``OLD_DONE_KEY``): every SLA is asked once, no seal written again, the new record
        written."""
        config = _copy(november_store, tmp_path / "run")

        async def run() -> None:
            daemon = await _daemon(config)
            try:
                first = await _seal_pass(daemon)
                await daemon.store.kv_delete(DONE_KEY)
                await daemon.store.kv_set(OLD_DONE_KEY, {str(NOVEMBER): daemon.config.content_hash})
            finally:
                await daemon.store.close()
            daemon = await _daemon(config)
            try:
                asked = await _asked_in_a_pass(daemon)
                assert sorted(asked.asked) == sorted(first)
                assert asked.saved == []
                assert await _sealed_docs(daemon) == first
                record = await daemon.store.kv_get(DONE_KEY)
                assert done_slas(record, str(NOVEMBER)) == dict.fromkeys(first, SEALED)
            finally:
                await daemon.store.close()

        asyncio.run(run())
