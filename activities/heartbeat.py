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
async def heartbeating(*details: object, interval: float = HEARTBEAT_INTERVAL_SECONDS) -> AsyncIterator[None]:
    """Heartbeat (with `details`) now and every `interval` seconds for as long as the block runs."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat(*details)

    activity.heartbeat(*details)
    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
