"""Temporal's floor: the least a workflow with a ticket's server round trips can cost.

`FloorWorkflow` runs the same sequence of activities as an auto-approved ticket (the same number,
on the same task queues, in the same order, the workflow's own queue eligible for eager dispatch),
each doing nothing, with tiny payloads. Its throughput on the same server and the same kind of
worker process is the ceiling the ticket's own work is measured against (bench/throughput.py).
Imports only temporalio: the sandbox re-imports this module for every run.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

FLOOR_WORKFLOW = "BenchFloorWorkflow"
FLOOR_ACTIVITY = "bench_floor_noop"


@activity.defn(name=FLOOR_ACTIVITY)
async def noop(step: int) -> int:
    return step


@workflow.defn(name=FLOOR_WORKFLOW)
class FloorWorkflow:
    @workflow.run
    async def run(self, queues: list[str]) -> int:
        """One no-op activity per entry, in order, each on the task queue named ("" = the workflow's own)."""
        for step, queue in enumerate(queues):
            await workflow.execute_activity(
                FLOOR_ACTIVITY, step, task_queue=queue or None, start_to_close_timeout=timedelta(seconds=30)
            )
        return len(queues)
