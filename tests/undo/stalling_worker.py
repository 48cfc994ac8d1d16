"""The real workers in a process of their own that stall inside a revert's transaction, to be SIGKILLed there.

Like `tests/durability/worker_process.py` (same settings from the environment, `WAIT_FOR_GO`,
the same log lines), but with `STALL_MARKER_DIR` set the real `execute_plan` runs as shipped
until a revert has written its first target row: the claim on the original and that write are
made, not committed. There it writes `<STALL_MARKER_DIR>/<workflow id>` and waits, heartbeating,
for the kill. Without it the process runs `worker.main.run_workers`, the product's own loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.util import await_only
from temporalio import activity

from core.bootstrap import Databases
from core.ledger import is_ledger_table
from core.models import ExecutePlanInput, ExecutionResult
from core.names import ACTIVITY_EXECUTE_PLAN
from core.settings import Settings
from service.temporal import connect
from tests.durability.worker_process import POLLING_LINE, exit_now, serve
from worker.activities import build_activity_set
from worker.build import ActivitySet, build_workers
from worker.main import run_workers

logger = logging.getLogger("undo.stalling_worker")

WRITE = re.compile(r'\s*(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)
# The revert whose execution runs in this task (execute_plan sets it; the statement hook reads it).
_executing_revert: ContextVar[str | None] = ContextVar("executing_revert", default=None)


def _write_marker(marker: Path) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))


async def _stall(marker: Path) -> None:
    await asyncio.to_thread(_write_marker, marker)
    logger.info("stalled mid-revert at %s", marker.name)
    await asyncio.Event().wait()  # until the kill; execute_plan's own heartbeats go on meanwhile


def stall_after_first_write(marker_dir: Path) -> Callable[..., None]:
    """A statement hook: after a revert's first write to a target table, stall in its open transaction."""

    def after_cursor_execute(*args: Any) -> None:
        statement = args[2]
        workflow_id = _executing_revert.get()
        written = WRITE.match(statement)
        if workflow_id is None or written is None or is_ledger_table(written.group(1)):
            return
        await_only(_stall(marker_dir / workflow_id))

    return after_cursor_execute


def stalling(activities: ActivitySet) -> ActivitySet:
    """The real activity set, its `execute_plan` marking the revert it runs for the statement hook."""
    real: Callable[[ExecutePlanInput], Awaitable[ExecutionResult]] = next(
        fn for fn in activities.workflow_queue if fn.__name__ == ACTIVITY_EXECUTE_PLAN
    )

    @activity.defn(name=ACTIVITY_EXECUTE_PLAN)
    async def execute_plan(input: ExecutePlanInput) -> ExecutionResult:
        token = _executing_revert.set(input.workflow_id if input.reverts else None)
        try:
            return await real(input)
        finally:
            _executing_revert.reset(token)

    others = [fn for fn in activities.workflow_queue if fn is not real]
    return ActivitySet([*others, execute_plan], activities.llm_queue, activities.cleanups)


async def run_stalling(settings: Settings, marker_dir: Path, stop: asyncio.Event) -> None:
    databases = Databases.open(settings)
    event.listen(databases.target_engine.sync_engine, "after_cursor_execute", stall_after_first_write(marker_dir))
    try:
        client = await connect(settings)
        activities = stalling(build_activity_set(settings, databases))
        async with AsyncExitStack() as stack:
            stack.push_async_callback(activities.close)
            for worker in build_workers(client, activities, task_queue=settings.temporal_task_queue):
                await stack.enter_async_context(worker)
            logger.info("%s %s (stalls mid-revert)", POLLING_LINE, settings.temporal_task_queue)
            await stop.wait()
    finally:
        await databases.close()


async def run(settings: Settings, stop: asyncio.Event) -> None:
    marker_dir = os.environ.get("STALL_MARKER_DIR", "")
    if marker_dir:
        await run_stalling(settings, Path(marker_dir), stop)
    else:
        await run_workers(settings, stop=stop)


if __name__ == "__main__":
    asyncio.run(serve(run))
    exit_now()
