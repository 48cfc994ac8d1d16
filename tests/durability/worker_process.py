"""The real ticket workers in a process of their own, so a test can SIGKILL them mid-step.

Settings come from the environment exactly as `agent-ticket worker` reads them
(`TEMPORAL_ADDRESS`, `TEMPORAL_TASK_QUEUE`, `AGENT_TICKET_DATA_DIR`, ...). Without
`CRASH_POINT` this runs `worker.main.run_workers`, the product's own loop, until SIGTERM.
With it, one activity is swapped for a test-only stand-in under the real activity name,
and the process stops dead at that point so the test can kill it there:

- `CRASH_POINT=planning`: `plan_ticket` heartbeats and never returns (the LLM call in flight).
- `CRASH_POINT=after_commit`: the real `execute_plan` commits its transaction and ledger row,
  then the activity heartbeats and never returns (the result never reaches Temporal).
- `CRASH_POINT=after_recorded`: the real audit writer commits the batch holding the event kind
  `CRASH_AFTER_EVENT` (`decided` if unset), then the activity never returns. Written locally (the
  execution's settled outcome), the workflow task that wrote it is never recorded; written through
  the server (an event queued in the task before), the replacement retries it.
  The context step here reports itself truncated, as if the database had moved since: a
  replacement that ran it again would see another context.

Each stand-in writes `<CRASH_MARKER_DIR>/<workflow id>` when it reaches its point. Log lines
carry the epoch time (`%(created)`), so the test can time recovery from "worker polling".
With `WAIT_FOR_GO=1` the process imports everything, prints "waiting for go" and connects only
when a line arrives on stdin: a replacement worker can be warm when the old one is killed,
as a standby replica or a restarted pod with a warm image would be, so the measured recovery
is Temporal's (heartbeat time-out and retry), not Python's import time on a busy machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from temporalio import activity

from core.bootstrap import Databases
from core.models import (
    AuditEventKind,
    ExecutePlanInput,
    ExecutionResult,
    GatherContextInput,
    Plan,
    PlanTicketInput,
    RecordEventsInput,
    TicketContext,
)
from core.names import (
    ACTIVITY_EXECUTE_PLAN,
    ACTIVITY_GATHER_CONTEXT,
    ACTIVITY_PLAN_TICKET,
    ACTIVITY_RECORD_EVENTS,
    workflow_id_for,
)
from core.settings import Settings, load_settings
from service.temporal import connect
from worker.activities import build_activity_set
from worker.build import ActivitySet, build_workers
from worker.main import run_workers

CRASH_PLANNING = "planning"
CRASH_AFTER_COMMIT = "after_commit"
CRASH_AFTER_RECORDED = "after_recorded"
POLLING_LINE = "worker polling"
WAITING_LINE = "waiting for go"
LOG_FORMAT = "%(created).3f %(name)s %(levelname)s %(message)s"

logger = logging.getLogger("durability.worker")


def _write_marker(marker: Path) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(str(os.getpid()))


async def _stall(marker: Path) -> None:
    """Say where we are, then hang while heartbeating: alive to Temporal until the process dies."""
    await asyncio.to_thread(_write_marker, marker)
    logger.info("stalled at %s", marker.name)
    while True:
        activity.heartbeat("stalled by CRASH_POINT")
        await asyncio.sleep(0.5)


def _real(activities: ActivitySet, name: str) -> Callable[..., Awaitable[Any]]:
    """The product's activity named `name` (each is a method of that name)."""
    return next(fn for fn in activities.workflow_queue if fn.__name__ == name)


class CrashingActivities:
    """The stand-ins, registered under the real activity names."""

    def __init__(self, marker_dir: Path, real: ActivitySet) -> None:
        self._marker_dir = marker_dir
        self._real_execute = _real(real, ACTIVITY_EXECUTE_PLAN)
        self._real_context = _real(real, ACTIVITY_GATHER_CONTEXT)
        self._real_record = _real(real, ACTIVITY_RECORD_EVENTS)

    @activity.defn(name=ACTIVITY_PLAN_TICKET)
    async def plan_ticket(self, input: PlanTicketInput) -> Plan:
        await _stall(self._marker_dir / workflow_id_for(input.ticket_id))
        raise AssertionError("unreachable: the stall never ends")

    @activity.defn(name=ACTIVITY_EXECUTE_PLAN)
    async def execute_plan(self, input: ExecutePlanInput) -> ExecutionResult:
        result = await self._real_execute(input)  # the real transaction, committed
        logger.info("plan %s committed (replayed=%s)", input.plan_hash, result.replayed)
        await _stall(self._marker_dir / input.workflow_id)
        raise AssertionError("unreachable: the stall never ends")

    @activity.defn(name=ACTIVITY_GATHER_CONTEXT)
    async def gather_context(self, input: GatherContextInput) -> TicketContext:
        context: TicketContext = await self._real_context(input)
        return context.model_copy(update={"truncated": True})

    @activity.defn(name=ACTIVITY_RECORD_EVENTS)
    async def record_events(self, batch: RecordEventsInput) -> None:
        await self._real_record(batch)
        crash_after = AuditEventKind(os.environ.get("CRASH_AFTER_EVENT", AuditEventKind.DECIDED.value))
        if any(event.kind is crash_after for event in batch.events):
            marker = self._marker_dir / workflow_id_for(batch.events[0].ticket_id)
            await asyncio.to_thread(_write_marker, marker)
            logger.info("stalled at %s, its %s event written", marker.name, crash_after.value)
            await asyncio.Event().wait()  # no heartbeat: run locally, the workflow task waits on it


def with_crash_point(activities: ActivitySet, crash_point: str, marker_dir: Path) -> ActivitySet:
    """The real activity set with the activities at `crash_point` swapped for their stand-ins."""
    crashing = CrashingActivities(marker_dir, activities)
    swapped: list[Callable[..., object]]
    if crash_point == CRASH_PLANNING:
        return ActivitySet(activities.workflow_queue, [crashing.plan_ticket], activities.cleanups)
    if crash_point == CRASH_AFTER_COMMIT:
        swapped = [crashing.execute_plan]
    elif crash_point == CRASH_AFTER_RECORDED:
        swapped = [crashing.gather_context, crashing.record_events]
    else:
        raise SystemExit(f"unknown CRASH_POINT {crash_point!r}")
    names = {fn.__name__ for fn in swapped}
    others = [fn for fn in activities.workflow_queue if fn.__name__ not in names]
    return ActivitySet([*others, *swapped], activities.llm_queue, activities.cleanups)


async def run_crashing(settings: Settings, crash_point: str, marker_dir: Path, stop: asyncio.Event) -> None:
    """Like `run_workers`, but with one activity that stalls at `crash_point`."""
    databases = Databases.open(settings)
    try:
        client = await connect(settings)
        activities = with_crash_point(build_activity_set(settings, databases), crash_point, marker_dir)
        workers = build_workers(client, activities, task_queue=settings.temporal_task_queue)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(activities.close)
            for worker in workers:
                await stack.enter_async_context(worker)
            logger.info("%s %s (crash point %s)", POLLING_LINE, settings.temporal_task_queue, crash_point)
            await stop.wait()
    finally:
        await databases.close()


def die_with_parent() -> None:
    """Linux: get SIGKILLed if the test process dies without its `finally` (no orphaned workers)."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent was already gone before the line above
        os._exit(1)


async def serve(run: Callable[[Settings, asyncio.Event], Awaitable[None]]) -> None:
    """A worker process's life: settings from the environment, stop on SIGTERM, `WAIT_FOR_GO`, then `run`."""
    die_with_parent()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stdout)
    settings = load_settings(_env_file=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if os.environ.get("WAIT_FOR_GO"):
        logger.info(WAITING_LINE)
        await asyncio.to_thread(sys.stdin.readline)
    await run(settings, stop)


def exit_now() -> None:
    sys.stdout.flush()
    os._exit(0)  # the SDK's Rust bridge can abort at interpreter exit (docs: pitfalls)


async def run(settings: Settings, stop: asyncio.Event) -> None:
    crash_point = os.environ.get("CRASH_POINT", "")
    if crash_point:
        await run_crashing(settings, crash_point, Path(os.environ["CRASH_MARKER_DIR"]), stop)
    else:
        await run_workers(settings, stop=stop)


if __name__ == "__main__":
    asyncio.run(serve(run))
    exit_now()
