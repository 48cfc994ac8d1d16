"""Why a ticket's `status` query got no answer, in words that are true.

The query is answered by a worker. When none answers, the task queue's pollers (what the server
knows of the workers that ask it for work) tell the cases apart: nobody has polled lately, so no
worker is running for that queue; or a worker polls but did not answer in time, so it is busy or
slow; or the server itself does not answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

# A live worker starts a long poll at least this often (polls last up to about a minute), so a
# queue nobody has polled for longer has no worker; a worker that stopped within it still shows.
POLLED_LATELY = timedelta(seconds=75)


@dataclass(frozen=True)
class QueueWorkers:
    """The workflow pollers of a task queue that the server remembers (it forgets them after minutes)."""

    task_queue: str
    last_polls: list[datetime]

    def polled_lately(self, now: datetime) -> list[datetime]:
        return [moment for moment in self.last_polls if now - moment <= POLLED_LATELY]


async def queue_workers(client: Client, task_queue: str) -> QueueWorkers:
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    polls = [poller.last_access_time.ToDatetime(tzinfo=UTC) for poller in response.pollers]
    return QueueWorkers(task_queue, polls)


def explain(workers: QueueWorkers, label: str, now: datetime | None = None) -> str:
    """The sentence a person reads when `label`'s status query went unanswered."""
    now = now or datetime.now(UTC)
    queue = workers.task_queue
    lately = workers.polled_lately(now)
    if not lately:
        last = max(workers.last_polls, default=None)
        since = f" since {last:%H:%M:%S} UTC" if last else ""
        return (
            f"No worker is polling task queue '{queue}'{since}, so nothing can answer for {label}; "
            "start `agent-ticket worker` (or `agent-ticket dev`). The ticket waits and goes on when one is back."
        )
    ago = int((now - max(lately)).total_seconds())
    return (
        f"A worker is polling task queue '{queue}' ({len(lately)} poller(s), the latest {ago} s ago) but did "
        f"not answer for {label} in time: it is busy or slow (or stopped within the last minute). Try again shortly."
    )


async def why_unanswered(client: Client, workflow_id: str, label: str) -> str:
    """Ask the server about the ticket's queue and say why its status query got no answer."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
        workers = await queue_workers(client, description.task_queue)
    except RPCError as error:
        if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return f"The Temporal server does not answer ({error.message}), so {label} cannot be read; try again soon."
        return f"No answer for {label}, and the server could not say why: {error.message}"
    except RuntimeError as error:  # the client could not reach the server at all
        return f"The Temporal server does not answer ({error}), so {label} cannot be read; try again soon."
    return explain(workers, label)
