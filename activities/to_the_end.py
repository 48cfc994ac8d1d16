"""Database work that a cancelled activity lets finish, so its connection goes back to the pool.

aiosqlite runs each statement in a thread of its own connection. An activity cancelled mid-statement
(a local activity past its 5 s, under a burst of tickets) left that connection outside SQLAlchemy's
pool with its transaction open: on SQLite its write lock stayed held for good, and every later dry run
waited on it and failed until the worker restarted (bench/notes.md, item 39: 1,000 tickets at once,
34 connection threads for a pool of 15, no plan validated after the first minute). Shielded, the work
ends as it would have, bounded by its own time limits, commits or rolls back, and hands its connection
back; the activity itself still ends at once, cancelled, and its retry runs beside it.

An execution must not write after its activity ended (its ticket could be told that nothing was
written), nor be cancelled mid-statement: SQLAlchemy then invalidates the connection and force-closes
it, and on SQLite the statement that got the lock afterwards kept it, with its transaction open, for
the life of the process (red team 57 saw the worker unable to exit, too). So a cancelled execution is
asked to stop, stops before its next operation or its commit, rolls back, and only then does its
activity end, bounded by the statement's own time limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The event loop keeps only weak references to tasks: a cancelled activity's work is kept here
# until it ends, so it cannot be collected halfway and leave its connection out of the pool.
_working_on: set[asyncio.Task[Any]] = set()


async def run_to_the_end(work: Coroutine[Any, Any, T]) -> T:
    """Await `work`; if the caller is cancelled, `work` goes on to its end in the background."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        _working_on.add(task)
        task.add_done_callback(_note_the_end)
        raise


async def stopped_where_it_may(start: Callable[[asyncio.Event], Coroutine[Any, Any, T]]) -> T:
    """Await `start(stop)`; if the caller is cancelled, set `stop` and end only when the work has.

    The work is never cancelled itself: it checks `stop` where it may end cleanly (before each
    operation of its transaction and before its commit) and rolls back there. Its result, if it had
    committed before it looked, is returned: what it committed is what happened.
    """
    stop = asyncio.Event()
    task = asyncio.ensure_future(start(stop))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        stop.set()
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):  # asked again: still not before the work ended
                await asyncio.wait({task})
        if task.cancelled() or task.exception() is not None:
            raise
        return task.result()


def _note_the_end(task: asyncio.Task[Any]) -> None:
    _working_on.discard(task)
    if task.cancelled():
        return
    error = task.exception()  # retrieved, so asyncio does not log it as never retrieved
    if error is not None:
        logger.info("work of a cancelled activity ended with %s: %s", type(error).__name__, error)
