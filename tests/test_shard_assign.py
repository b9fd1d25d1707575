"""Rendezvous hashing of a location's targets over its live members (monitor/sla/shard.py)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from monitor.sla.shard import assign, owned_by, owner, weight
from tests.strategies import shard_member_names, shard_members, shard_targets


def _sigmas(count: int, share: float) -> float:
    """Six standard deviations of a binomial count of ``count`` draws at ``share``: a bound the
    hash breaks about once in 10**9 draws, not a tolerance for a wrong split."""
    return 6 * math.sqrt(count * share * (1 - share)) + 1


class TestOwner:
    @given(shard_targets(count=50), shard_members, st.randoms(use_true_random=False))
    def test_deterministic_whatever_the_order_of_members(self, targets, members, rnd) -> None:
        """The owner depends on the set of members, never on the order they are listed in."""
        shuffled = list(members)
        rnd.shuffle(shuffled)
        for target in targets:
            assert owner(target, members) == owner(target, shuffled)

    @given(shard_targets(count=200), shard_members)
    def test_every_target_has_exactly_one_owner(self, targets, members) -> None:
        """The members' shares partition the targets: disjoint, and together all of them."""
        shares = assign(targets, members)
        assert set(shares) == set(members)
        union: set[str] = set()
        for share in shares.values():
            assert not union & share
            union |= share
        assert union == set(targets)
        for member in members:
            assert owned_by(member, targets, members) == shares[member]

    @given(shard_targets(), shard_members.filter(lambda m: len(m) >= 2), st.data())
    def test_removing_a_member_moves_only_its_targets(self, targets, members, data) -> None:
        """When a member dies, only its targets change owner; the others keep theirs."""
        gone = data.draw(st.sampled_from(members))
        rest = [m for m in members if m != gone]
        before = {t: owner(t, members) for t in targets}
        after = {t: owner(t, rest) for t in targets}
        moved = {t for t in targets if before[t] != after[t]}
        assert moved == {t for t in targets if before[t] == gone}

    @given(shard_targets(count=600), shard_members, shard_member_names)
    def test_adding_a_member_moves_about_one_in_n_all_to_it(self, targets, members, new) -> None:
        """A new member takes about 1/n of the targets, every one of them from someone else to
        itself; nothing moves between the old members."""
        assume(new not in members)
        grown = [*members, new]
        before = {t: owner(t, members) for t in targets}
        after = {t: owner(t, grown) for t in targets}
        moved = [t for t in targets if before[t] != after[t]]
        assert all(after[t] == new for t in moved)
        assert set(moved) == {t for t in targets if after[t] == new}
        share = 1 / len(grown)
        assert abs(len(moved) - len(targets) * share) <= _sigmas(len(targets), share)

    @given(shard_targets(count=600), shard_members)
    def test_balance_within_bounds(self, targets, members) -> None:
        """Each member's share is within six binomial sigmas of an even split."""
        share = 1 / len(members)
        for names in assign(targets, members).values():
            assert abs(len(names) - len(targets) * share) <= _sigmas(len(targets), share)

    def test_no_member_no_owner(self) -> None:
        """With nobody alive there is no owner: a clear error, not an arbitrary answer."""
        with pytest.raises(ValueError, match="no live member to own target 'sip'"):
            owner("sip", [])

    @given(shard_targets(count=20), shard_members, shard_member_names)
    def test_a_member_always_counts_itself_alive(self, targets, members, me) -> None:
        """A daemon that cannot see its own lease still owns its share, never nothing."""
        assert owned_by(me, targets, members) == assign(targets, sorted({*members, me}))[me]


class TestStableHash:
    def test_same_weight_in_another_process(self) -> None:
        """The weight is blake2b, not Python's salted hash(): another interpreter (another
        PYTHONHASHSEED) computes the same value, so two hosts agree."""
        code = "from monitor.sla.shard import weight; print(weight('dublin-2', 'sip-trunk'))"
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
            env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
            cwd=str(Path(__file__).resolve().parent.parent),
        )
        assert int(out.stdout) == weight("dublin-2", "sip-trunk")

    def test_length_prefixed(self) -> None:
        """("ab", "c") and ("a", "bc") are different pairs and weigh differently."""
        assert weight("ab", "c") != weight("a", "bc")
