"""A starting worker takes over the tickets a dead one had cached, instead of letting them wait for it.

Temporal sends a workflow's next task to the queue of the worker that has it cached (its sticky
queue). A worker killed outright never says it is gone, so each ticket it had cached waited out the
sticky schedule-to-start time-out at its next step (`STICKY_QUEUE_TIMEOUT`), and the notify
activity's status query waited as long again. A starting worker therefore asks Temporal to forget
the stickiness of every open ticket on its queue: their next task goes to the normal queue, where any
worker takes it and replays the ticket's short history. A ticket cached by another live worker pays
that replay once; nothing else changes (bench/notes.md).
"""

from __future__ import annotations

import asyncio
import logging

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetStickyTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.names import WORKFLOW_NAME

logger = logging.getLogger(__name__)

# Resets in flight at once: a start-up with thousands of open tickets must not flood the server.
CONCURRENT_RESETS = 8


def open_tickets_query(task_queue: str) -> str:
    return f"WorkflowType = '{WORKFLOW_NAME}' AND TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"


async def release_sticky_tickets(client: Client, task_queue: str) -> int:
    """Clear the sticky queue of every open ticket on `task_queue`; how many were cleared."""
    executions = [
        WorkflowExecution(workflow_id=found.id, run_id=found.run_id)
        async for found in client.list_workflows(open_tickets_query(task_queue))
    ]
    slots = asyncio.Semaphore(CONCURRENT_RESETS)

    async def reset(execution: WorkflowExecution) -> bool:
        async with slots:
            try:
                await client.workflow_service.reset_sticky_task_queue(
                    ResetStickyTaskQueueRequest(namespace=client.namespace, execution=execution)
                )
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:  # else it finished since it was listed
                    raise
                return False
            return True

    return sum(await asyncio.gather(*(reset(execution) for execution in executions)))


async def release_sticky_tickets_logged(client: Client, task_queue: str) -> None:
    """`release_sticky_tickets` beside the worker's start: a failure only costs the sticky wait, so it is logged."""
    try:
        cleared = await release_sticky_tickets(client, task_queue)
    except Exception:
        logger.warning("could not clear the open tickets' sticky queues on %s", task_queue, exc_info=True)
        return
    logger.info("cleared the sticky queue of %d open ticket(s) on %s", cleared, task_queue)
