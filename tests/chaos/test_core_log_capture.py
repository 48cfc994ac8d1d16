"""The capture behind `no_task_trouble` works: a workflow task held for 5 s is reported (item 4's control).

Without this, an assertion that no "Workflow task duration exceeded" line appeared could pass
because nothing was captured at all.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core import names
from core.models import ApprovalSettings, OutcomeStatus, TicketOutcome, TicketRequest
from tests.chaos.core_logs import TASK_DURATION_EXCEEDED, CoreLogs
from tests.chaos.faults import AttemptLog, wrapped
from tests.workflows.fake_activities import ScriptedActivities
from worker.build import build_workers


async def slow_local_context(name: str, argument: Any) -> None:
    # A local activity runs inside the workflow task: its first try times out after 5 s, the next one
    # succeeds at once, and the task has been held for just over 5 s.
    if name == names.ACTIVITY_GATHER_CONTEXT and activity.info().attempt == 1:
        await asyncio.sleep(6)


async def test_a_workflow_task_held_for_seconds_is_caught(
    time_env: WorkflowEnvironment, worker_client: Client, core_logs: CoreLogs
) -> None:
    mark = core_logs.mark()
    queue = f"control-{uuid.uuid4().hex[:8]}"
    activities = wrapped(ScriptedActivities().activity_set(), slow_local_context, AttemptLog())
    request = TicketRequest(text="upgrade acme-corp to the pro plan", requester="dave", approval=ApprovalSettings())
    workers = build_workers(worker_client, activities, task_queue=queue)
    async with workers[0], workers[1]:
        outcome = await time_env.client.execute_workflow(
            names.WORKFLOW_NAME, request, id=f"ticket-{uuid.uuid4().hex[:10]}", task_queue=queue,
            result_type=TicketOutcome,
        )  # fmt: skip
    assert outcome.status is OutcomeStatus.DONE
    trouble = await core_logs.trouble_since(mark)
    assert any(TASK_DURATION_EXCEEDED in line for line in trouble), trouble
