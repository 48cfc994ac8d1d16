"""Leaving an activity to the next worker when this one is asked to stop, instead of holding its shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

T = TypeVar("T")


async def unless_the_worker_stops(work: Awaitable[T], leaving: str) -> T:
    """`work`'s result; if this worker starts to stop first, `work` is dropped and the attempt fails with `leaving`.

    The failure is retryable, so the next worker makes the next attempt. Only for work a later attempt
    may safely repeat and that holds nothing once dropped: the ticket's status query. Not for a
    database call: a dropped one stuck in its driver's thread kept the stopped process from exiting.
    """
    doing = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(activity.wait_for_worker_shutdown())
    try:
        await asyncio.wait((doing, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not doing.done():
        doing.cancel()
        raise ApplicationError(leaving)
    return doing.result()
