"""Database work that a cancelled activity lets finish, so its connection goes back to the pool.

aiosqlite runs each statement in a thread of its own connection. An activity cancelled mid-statement
(a local activity past its 5 s, under a burst of tickets) left that connection outside SQLAlchemy's
pool with its transaction open: on SQLite its write lock stayed held for good, and every later dry run
waited on it and failed until the worker restarted (bench/notes.md, item 39: 1,000 tickets at once,
34 connection threads for a pool of 15, no plan validated after the first minute). Shielded, the work
ends as it would have, bounded by its own time limits, commits or rolls back, and hands its connection
back; the activity itself still ends at once, cancelled, and its retry runs beside it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def run_to_the_end(work: Coroutine[Any, Any, T]) -> T:
    """Await `work`; if the caller is cancelled, `work` goes on to its end in the background."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_note_the_end)
        raise


def _note_the_end(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    error = task.exception()  # retrieved, so asyncio does not log it as never retrieved
    if error is not None:
        logger.info("work of a cancelled activity ended with %s: %s", type(error).__name__, error)
