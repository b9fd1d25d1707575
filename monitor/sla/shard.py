"""Which member of a location probes which target: rendezvous (highest-random-weight) hashing.

Several daemons (members) of one location share its targets. Each target goes to the member
with the highest weight ``blake2b(member, target)``. Every member computes the same answer from
the same list of live members, with no message between them: PostgreSQL only tells them who is
alive (``monitor.runtime.shard``).

Why rendezvous hashing rather than ``hash(target) % n`` or a ring:

- removing a member moves only that member's targets (each to the member with its next highest
  weight); every other target keeps its member, so a death disturbs nobody else's buckets;
- adding a member moves only the targets it now wins, about ``1/n`` of them, all to it;
- the split is even without virtual nodes, and the code is a ``max``.

The hash is blake2b, never Python's ``hash()``, which is salted per process: two daemons would
disagree on every target. Member and target are length-prefixed, so ``("ab", "c")`` and
``("a", "bc")`` never hash the same bytes. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import blake2b


def _part(text: str) -> bytes:
    data = text.encode("utf-8")
    return len(data).to_bytes(4, "big") + data


def weight(member: str, target: str) -> int:
    """The stable 64-bit weight of ``target`` for ``member``: the same on every host and run."""
    digest = blake2b(_part(member) + _part(target), digest_size=8, person=b"slawatch-shard")
    return int.from_bytes(digest.digest(), "big")


def owner(target: str, members: Sequence[str]) -> str:
    """The member that probes ``target``: the highest weight, ties broken by the member's name
    (so the answer never depends on the order of ``members``). Raises ``ValueError`` when
    ``members`` is empty: with nobody alive there is no owner to name."""
    if not members:
        raise ValueError(f"no live member to own target {target!r}")
    return max(members, key=lambda member: (weight(member, target), member))


def assign(targets: Iterable[str], members: Sequence[str]) -> dict[str, frozenset[str]]:
    """Member -> the targets it owns; every member of ``members`` is a key (possibly empty)."""
    unique = sorted(set(members))
    owned: dict[str, set[str]] = {member: set() for member in unique}
    for target in targets:
        owned[owner(target, unique)].add(target)
    return {member: frozenset(names) for member, names in owned.items()}


def owned_by(member: str, targets: Iterable[str], members: Sequence[str]) -> frozenset[str]:
    """The targets ``member`` probes among ``targets`` when ``members`` are alive. ``member``
    always counts as alive: a daemon that cannot see itself in the lease table (its own lease
    not yet written, or the database unreachable) still owns its share, never nothing."""
    alive = sorted(set(members) | {member})
    return frozenset(target for target in targets if owner(target, alive) == member)
