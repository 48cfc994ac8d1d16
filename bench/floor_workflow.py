"""Temporal's floor: the least a workflow with a ticket's server round trips can cost.

`FloorWorkflow` runs a list of steps, each doing nothing, with tiny payloads:
- a task queue name ("" = the workflow's own): a no-op activity on it, awaited before the next step;
- `BESIDE` followed by a task queue name: a no-op activity started there and awaited only at the end,
  as the ticket's Slack delivery runs beside its steps;
- `LOCAL`: a no-op local activity;
- `UPSERT` followed by keyword search attribute names (`upsert:TicketStatus,TicketRisk`): an upsert.

The floor proper is the ticket's activities alone (the same number, on the same task queues, in the
same order, the workflow's own queue eligible for eager dispatch). The shaped floor adds the ticket's
local activities and upserts where its history has them, so that everything left between it and the
ticket is the ticket's own work. Its throughput on the same server and the same kind of worker process
is the ceiling the ticket's own work is measured against (bench/throughput.py).
Imports only temporalio: the sandbox re-imports this module for every run.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey

FLOOR_WORKFLOW = "BenchFloorWorkflow"
FLOOR_ACTIVITY = "bench_floor_noop"
LOCAL = "local"
UPSERT = "upsert:"
BESIDE = "beside:"


@activity.defn(name=FLOOR_ACTIVITY)
async def noop(step: int) -> int:
    return step


@workflow.defn(name=FLOOR_WORKFLOW)
class FloorWorkflow:
    @workflow.run
    async def run(self, steps: list[str]) -> int:
        """Each step in order (see the module's docstring); returns how many there were."""
        timeout = timedelta(seconds=30)
        beside: list[asyncio.Future[Any]] = []
        for index, step in enumerate(steps):
            if step.startswith(BESIDE):
                queue = step.removeprefix(BESIDE) or None
                beside.append(
                    workflow.start_activity(FLOOR_ACTIVITY, index, task_queue=queue, start_to_close_timeout=timeout)
                )
            elif step == LOCAL:
                await workflow.execute_local_activity(FLOOR_ACTIVITY, index, start_to_close_timeout=timeout)
            elif step.startswith(UPSERT):
                keys = step.removeprefix(UPSERT).split(",")
                workflow.upsert_search_attributes(
                    [SearchAttributeKey.for_keyword(key).value_set(f"floor-{index}") for key in keys]
                )
            else:
                await workflow.execute_activity(
                    FLOOR_ACTIVITY, index, task_queue=step or None, start_to_close_timeout=timeout
                )
        await asyncio.gather(*beside)
        return len(steps)
