"""ov33 (issue 20): a store call started ahead, so the store's worker thread reads the next
piece of the history while the loop's thread works on the one it has.

At a month's end at 10,000 SLAs the start-up's history read was a strict alternation: the loop
waited idle on each store call (snapshots loaded, guards armed, tallies read: ~1.4 s in the
worker), then the worker waited idle while the loop checked, decoded and built (~3.6 s).
SQLite and zlib let go of the GIL inside C, so the two overlap on a second core.

The callers keep their order of store calls where it matters (the worker runs calls in the
order they are queued) and hold at most one piece ahead; on any failure they wait for the call
still in flight before raising, so a failed start leaves the store as the calls queued so far
left it, and no task is left running (or an exception unread) behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def begun(call: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """``call`` as a task that has already run up to its first wait: a store method that
    hands its work to the worker thread without an earlier ``await`` (``SqliteStore._run``)
    has queued it when this returns, so the worker runs it while the caller computes.
    (Python 3.11 has no eager tasks: one turn of the loop lets the new task take its step.)"""
    task = asyncio.ensure_future(call)
    try:
        await asyncio.sleep(0)
    except BaseException:  # cancelled in that turn: the call is not left behind unread
        await settle(task)
        raise
    return task


async def settle(task: asyncio.Future[Any] | None) -> None:
    """Wait for ``task`` to end and drop its outcome: the caller is raising another error,
    and the call in flight finishes first (its result unused, its error not reported as
    never retrieved)."""
    if task is None:
        return
    if not task.done():
        await asyncio.wait([task])
    if not task.cancelled():
        task.exception()
