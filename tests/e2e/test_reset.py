"""A ticket reset by an operator (`temporal workflow reset`) to a point before its plan ran: the reset run is the
ticket itself, and whatever it is then told (a cancel request, a rejection), it says what its ledger shows ran."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyExcludeType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.bootstrap import Databases, init_databases
from core.models import DecisionSource, OutcomeStatus, Stage
from core.names import ACTIVITY_EXECUTE_PLAN, workflow_id_for
from core.settings import Settings
from tests.pipeline import Pipeline, running_pipeline
from tests.support import build_settings, wait_for_stage

MEDIUM_RISK = "mark invoice 14 as paid"  # one approval
LOW_RISK = "enable sso for acme-corp"  # runs without one
WRITTEN = {
    MEDIUM_RISK: ("select status from invoices where id = 14", "paid"),
    LOW_RISK: ("select enabled from feature_flags where customer_id = 1 and name = 'sso'", 1),
}


async def reset_to(client: Client, workflow_id: str, task_completed: HistoryEvent, *, keep_signals: bool) -> None:
    """What `temporal workflow reset -e <id>` does: a new run from history up to that workflow task."""
    excluded = [] if keep_signals else [ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL]
    await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            reason="tests: an operator's reset",
            workflow_task_finish_event_id=task_completed.event_id,
            request_id=str(uuid.uuid4()),
            reset_reapply_exclude_types=excluded,
        )
    )


def task_completed_before(events: list[HistoryEvent], index: int) -> HistoryEvent:
    return next(e for e in reversed(events[:index]) if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)


async def executed_once(pipeline: Pipeline, request_text: str) -> tuple[str, list[HistoryEvent]]:
    """A ticket run to done (approved by alice if it needs it): its id and history."""
    started = await pipeline.service.start(pipeline.request(request_text))
    if request_text == MEDIUM_RISK:
        await pipeline.approve(started.short_id, "alice")
    outcome = await asyncio.wait_for(pipeline.service.result(started.short_id), timeout=60)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    history = await pipeline.client.get_workflow_handle(started.workflow_id).fetch_history()
    return started.short_id, list(history.events)


@asynccontextmanager
async def an_executed_ticket(
    tmp_path: Path, local_env: WorkflowEnvironment, request_text: str
) -> AsyncIterator[tuple[Settings, Databases, str, list[HistoryEvent]]]:
    """A ticket run to done on workers stopped since, as an operator stops them before a reset."""
    settings = build_settings(tmp_path / "data", f"reset-{uuid.uuid4().hex[:8]}")
    databases = Databases.open(settings)
    try:
        await init_databases(databases, settings)
        async with running_pipeline(local_env.client, settings, databases) as pipeline:
            ticket, events = await executed_once(pipeline, request_text)
        yield settings, databases, ticket, events
    finally:
        await databases.close()


async def target_row(databases: Databases, request_text: str) -> object:
    query, _ = WRITTEN[request_text]
    async with databases.target_engine.connect() as connection:
        return (await connection.execute(text(query))).scalar()


@pytest.mark.parametrize("request_text", [MEDIUM_RISK, LOW_RISK])
async def test_a_ticket_reset_to_before_its_run_and_cancelled_says_its_plan_ran(
    tmp_path: Path, local_env: WorkflowEnvironment, request_text: str
) -> None:
    """Red team 71: the reset run, cancelled before a worker took its first task, said "cancelled … before its plan
    ran: nothing was written", on record and in the channel, beside the write (and could no longer be reverted)."""
    async with an_executed_ticket(tmp_path, local_env, request_text) as (settings, databases, ticket, events):
        # The operator resets the ticket to the task that scheduled its run, and cancels it.
        scheduled = next(
            index
            for index, event in enumerate(events)
            if event.activity_task_scheduled_event_attributes.activity_type.name == ACTIVITY_EXECUTE_PLAN
        )
        workflow_id = workflow_id_for(ticket)
        await reset_to(local_env.client, workflow_id, task_completed_before(events, scheduled + 1), keep_signals=True)
        await local_env.client.get_workflow_handle(workflow_id).cancel()
        async with running_pipeline(local_env.client, settings, databases) as pipeline:
            outcome = await asyncio.wait_for(pipeline.service.result(ticket), timeout=60)
            trail = [(row.kind, row.summary) for row in await pipeline.service.audit_trail(ticket)]
        assert await target_row(databases, request_text) == WRITTEN[request_text][1]
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    assert outcome.execution is not None and outcome.execution.replayed
    assert not [summary for _, summary in trail if "nothing was written" in summary], trail


async def test_a_ticket_reset_to_its_approval_wait_and_rejected_says_its_plan_ran(
    tmp_path: Path, local_env: WorkflowEnvironment
) -> None:
    """Red team 71: reset to before alice's approval (signals not reapplied), then bob rejects: the ticket ended
    "rejected by bob", on record and told, while its plan's write stood in the target DB."""
    async with an_executed_ticket(tmp_path, local_env, MEDIUM_RISK) as (settings, databases, ticket, events):
        signalled = next(
            index
            for index, event in enumerate(events)
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        )
        workflow_id = workflow_id_for(ticket)
        await reset_to(local_env.client, workflow_id, task_completed_before(events, signalled), keep_signals=False)
        async with running_pipeline(local_env.client, settings, databases) as pipeline:
            # The record's ticket row says finished from the first run, so only the status is waited for.
            status = await wait_for_stage(pipeline.service, ticket, Stage.AWAITING_APPROVAL)
            assert status.approval is not None
            await pipeline.service.decide(
                ticket, status.approval.decision("bob", DecisionSource.DASHBOARD, approve=False, comment="not needed")
            )
            outcome = await asyncio.wait_for(pipeline.service.result(ticket), timeout=60)
        assert await target_row(databases, MEDIUM_RISK) == "paid"
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    assert outcome.execution is not None and outcome.execution.replayed
