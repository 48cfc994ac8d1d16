"""A starting worker clears the sticky queue of its queue's open tickets, and only theirs.

What it buys (a killed worker's tickets go on at once instead of waiting out the sticky
time-out) is measured by bench/recovery.py; here: the call reaches every open ticket on the
worker's queue on a real server, leaves other queues alone, and the tickets go on afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.names import WORKFLOW_NAME
from worker.stickiness import open_tickets_query, release_sticky_tickets


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class WaitingTicket:
    """Stands in for a ticket that waits (for approval) on a worker that has it cached."""

    def __init__(self) -> None:
        self._go = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._go)
        return "done"

    @workflow.signal
    def go(self) -> None:
        self._go = True


async def listed(client: Client, task_queue: str, count: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (await client.count_workflows(open_tickets_query(task_queue))).count < count:
        assert time.monotonic() < deadline, f"visibility never listed {count} open workflows on {task_queue}"
        await asyncio.sleep(0.1)


async def test_open_tickets_on_the_queue_lose_their_stickiness_and_go_on(
    local_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = local_env.client
    other_queue = f"{task_queue}-other"
    async with (
        Worker(client, task_queue=task_queue, workflows=[WaitingTicket]),
        Worker(client, task_queue=other_queue, workflows=[WaitingTicket]),
    ):
        mine = [
            await client.start_workflow(WaitingTicket.run, id=f"sticky-{uuid.uuid4().hex[:8]}", task_queue=task_queue)
            for _ in range(3)
        ]
        theirs = await client.start_workflow(
            WaitingTicket.run, id=f"sticky-{uuid.uuid4().hex[:8]}", task_queue=other_queue
        )
        finished = await client.start_workflow(
            WaitingTicket.run, id=f"sticky-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        await finished.signal(WaitingTicket.go)
        assert await finished.result() == "done"
        await listed(client, task_queue, 3)
        await listed(client, other_queue, 1)

        assert await release_sticky_tickets(client, task_queue) == 3

        for handle in [*mine, theirs]:  # the workers take the next tasks from the normal queue
            await handle.signal(WaitingTicket.go)
            assert await asyncio.wait_for(handle.result(), timeout=10) == "done"
