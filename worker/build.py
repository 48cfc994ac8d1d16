"""Building the Temporal workers: which activities run on which queue.

The workflow queue (`agent-ticket`) runs `TicketWorkflow` and the database and Slack
activities; the LLM queue (`agent-ticket-llm`) runs only planning, so LLM capacity can be
scaled on machines of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxRestrictions

from core.names import WORKFLOW_TASK_QUEUE
from worker import payload_passes
from worker.interceptors import ActivityMetricsInterceptor
from worker.sandbox_runner import RememberingContextSandboxRunner
from workflows.ticket import TicketWorkflow

# Workflows kept in memory between tasks (the SDK's default is 1,000). One in the cache holds its
# sandbox and state, about 0.3 MB here; one evicted costs nothing until its next task, which replays
# its short history first. Tickets that wait for approval are the evictable ones: 1,000 of them
# cached took the worker to 454 MB (bench/idle.py). 200 still covers every ticket in flight.
MAX_CACHED_WORKFLOWS = 200
# How long a workflow task waits for the worker that has the workflow cached before any worker may
# take it (the SDK's default is 10 s). After a worker dies, every ticket it had cached stalls this
# long at its next step; a saturated live worker picked its tasks up within 2 s (bench/throughput.py),
# and a task that waits longer times out and is replayed elsewhere, so leave it room.
STICKY_QUEUE_TIMEOUT = timedelta(seconds=5)
# The SDK holds heartbeats back for up to 80 % of the heartbeat time-out, which would leave a busy
# worker 0.4 s of slack on the 2 s time-out (workflows/options.py); pass each 0.5 s beat on instead.
HEARTBEAT_THROTTLE = timedelta(milliseconds=500)
# The sandbox imports the workflow's module afresh for every workflow run, and with it the package's
# other modules. These keep no state at module level (constants, functions and classes whose
# instances belong to one run, acting through `temporalio.workflow`), so they are imported once and
# shared instead; the replay tests hold them to determinism as they hold ticket.py. The
# runner asks the sandbox for each payload's serialization context once between two activations
# instead of up to six times (worker/sandbox_runner.py).
WORKFLOW_RUNNER = RememberingContextSandboxRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "workflows.options",
        "workflows.steps",
        "workflows.audit_log",
        "workflows.search_index",
        "workflows.delivery",
        "workflows.metrics",
    )
)


class QueueRole(StrEnum):
    WORKFLOWS = "workflows"
    LLM = "llm"
    ALL = "all"


def llm_queue_for(task_queue: str) -> str:
    """The workflow derives its LLM queue the same way: `<queue>-llm`."""
    return f"{task_queue}-llm"


@dataclass
class ActivitySet:
    """Bound activity methods, split by the queue they belong on."""

    workflow_queue: Sequence[Callable[..., Any]]
    llm_queue: Sequence[Callable[..., Any]]
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        """Release the clients the activities hold (HTTP connections to the LLM, Slack)."""
        for cleanup in self.cleanups:
            await cleanup()


def build_workers(
    client: Client,
    activities: ActivitySet,
    *,
    task_queue: str = WORKFLOW_TASK_QUEUE,
    role: QueueRole = QueueRole.ALL,
    max_concurrent_activities: int = 100,
    max_cached_workflows: int = MAX_CACHED_WORKFLOWS,
    graceful_shutdown: timedelta = timedelta(0),
    llm_activities_per_second: float | None = None,
) -> list[Worker]:
    """Workers for `role`; on shutdown, running activities get `graceful_shutdown` to finish.

    `llm_activities_per_second` caps plans started per second on the whole LLM queue: the server
    enforces it across every worker that polls the queue, so excess plans wait in it.
    """
    workers = []
    if role in (QueueRole.WORKFLOWS, QueueRole.ALL):
        payload_passes.install()
        workers.append(
            Worker(
                client,
                task_queue=task_queue,
                workflows=[TicketWorkflow],
                workflow_runner=WORKFLOW_RUNNER,
                activities=list(activities.workflow_queue),
                max_cached_workflows=max_cached_workflows,
                sticky_queue_schedule_to_start_timeout=STICKY_QUEUE_TIMEOUT,
                max_concurrent_activities=max_concurrent_activities,
                max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
                graceful_shutdown_timeout=graceful_shutdown,
                interceptors=[ActivityMetricsInterceptor()],
            )
        )
    if role in (QueueRole.LLM, QueueRole.ALL):
        workers.append(
            Worker(
                client,
                task_queue=llm_queue_for(task_queue),
                activities=list(activities.llm_queue),
                max_concurrent_activities=max_concurrent_activities,
                max_task_queue_activities_per_second=llm_activities_per_second,
                max_heartbeat_throttle_interval=HEARTBEAT_THROTTLE,
                graceful_shutdown_timeout=graceful_shutdown,
                interceptors=[ActivityMetricsInterceptor()],
            )
        )
    return workers
