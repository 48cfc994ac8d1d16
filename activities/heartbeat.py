"""Heartbeating while an activity awaits something slow, so a dead worker is noticed in seconds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

# A quarter of the steps' heartbeat time-out (workflows/options.py): a beat or two may be late
# on a busy worker without the step being taken for dead.
HEARTBEAT_INTERVAL_SECONDS = 0.5


@contextlib.asynccontextmanager
async def heartbeating(
    *details: object, interval: float = HEARTBEAT_INTERVAL_SECONDS, at_once: bool = True
) -> AsyncIterator[None]:
    """Heartbeat (with `details`) now and every `interval` seconds for as long as the block runs.

    `at_once=False` skips the first beat: a block that ends within `interval` then costs the server
    no heartbeat call at all (the SDK sends the first beat of an activity at once).
    """

    async def beat() -> None:
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat(*details)

    if at_once:
        activity.heartbeat(*details)
    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
