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
    """Heartbeat (with `details`) every `interval` seconds for as long as the block runs.

    The first beat comes after one interval, well within the steps' heartbeat time-out: the SDK
    sends an activity's first beat to the server at once, so a block that ends sooner (a quick
    plan, execution or post, i.e. every one at full load) costs the server no heartbeat call at all.
    """

    async def beat() -> None:
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat(*details)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
