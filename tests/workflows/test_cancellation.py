"""A cancel request through Temporal (an operator's `temporal workflow cancel`, the UI): the ticket stops at its
next safe point and ends with an outcome, on record and told, whatever the request found it doing."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core.models import AuditEventKind, NotifyEvent, OutcomeStatus, Risk, Stage, TicketOutcome
from core.names import SIGNAL_APPROVE
from tests.support import wait_for_stage, wait_for_status
from tests.workflows.fake_activities import ScriptedActivities
from tests.workflows.test_ticket_workflow import awaiting_approval, decision, request, running

CANCEL_REQUESTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED
TASK_COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED


async def cancel_and_see_it_judged(handle: WorkflowHandle[object, TicketOutcome], within: float = 10) -> None:
    """Request cancellation, then wait until a workflow task after the request completed: the ticket has seen it."""
    await handle.cancel()

    async def judged() -> None:
        while True:
            kinds = [event.event_type for event in (await handle.fetch_history()).events]
            if CANCEL_REQUESTED in kinds and TASK_COMPLETED in kinds[kinds.index(CANCEL_REQUESTED) :]:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(judged(), timeout=within)


def ended_on_record_and_told(fakes: ScriptedActivities, status: OutcomeStatus, *, recorded_first: bool = True) -> None:
    """The outcome on record once and told once; `recorded_first`: on record before it was told (the app DB up)."""
    finished = [event for event in fakes.events if event.kind in (AuditEventKind.FINISHED, AuditEventKind.FAILED)]
    assert [event.status for event in finished] == [status.value]
    assert [n.event for n in fakes.notifications].count(NotifyEvent.OUTCOME) == 1
    recorded = fakes.trail.index(next(step for step in fakes.trail if "finished" in step))
    assert (fakes.trail.index("notify outcome") > recorded) is recorded_first


async def test_a_cancel_while_waiting_for_approval_closes_the_round_and_ends_the_ticket_cancelled(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(time_env, fakes, request()) as handle:
        await awaiting_approval(handle)
        await handle.cancel()
        outcome = await asyncio.wait_for(handle.result(), timeout=30)
        described = await handle.describe()
    assert outcome.status is OutcomeStatus.CANCELLED, outcome.reason
    assert outcome.reason == "cancelled through Temporal while it waited for approval: nothing was written"
    assert described.status is WorkflowExecutionStatus.COMPLETED  # ended by the ticket, with its outcome
    assert fakes.executions == []
    assert "find execution" in fakes.trail  # the round is spent: its approvals run nothing later
    ended_on_record_and_told(fakes, OutcomeStatus.CANCELLED)


async def test_a_cancel_while_the_llm_plans_stops_the_ticket_without_waiting_for_it(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = ScriptedActivities(risk=Risk.LOW)
    fakes.plan_answers.clear()  # the LLM hangs
    async with running(time_env, fakes, request()) as handle:
        await wait_for_stage(handle, handle.id, Stage.PLANNING, within=10)
        await handle.cancel()
        outcome = await asyncio.wait_for(handle.result(), timeout=30)
        fakes.plan_answers.set()
    assert outcome.status is OutcomeStatus.CANCELLED, outcome.reason
    assert outcome.reason.startswith("cancelled through Temporal during plan_ticket, before its plan ran")
    assert fakes.executions == []
    ended_on_record_and_told(fakes, OutcomeStatus.CANCELLED)


async def test_a_cancel_while_the_plan_runs_lets_it_finish_and_the_ticket_says_done(
    time_env: WorkflowEnvironment,
) -> None:
    """A transaction half done is not stopped from outside: the plan commits once, and that is what is told."""
    fakes = ScriptedActivities(risk=Risk.LOW)
    fakes.execute_answers.clear()
    async with running(time_env, fakes, request()) as handle:
        await asyncio.wait_for(fakes.executing.wait(), timeout=10)
        await cancel_and_see_it_judged(handle)
        fakes.execute_answers.set()
        outcome = await asyncio.wait_for(handle.result(), timeout=30)
        described = await handle.describe()
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    assert described.status is WorkflowExecutionStatus.COMPLETED
    assert len(fakes.executions) == 1
    ended_on_record_and_told(fakes, OutcomeStatus.DONE)


async def test_a_cancel_after_approval_before_the_plan_starts_runs_nothing_and_spends_the_approvals(
    time_env: WorkflowEnvironment,
) -> None:
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        fakes.app_db_answers.clear()  # the audit write before the plan runs hangs: the cancel comes meanwhile
        await handle.signal(SIGNAL_APPROVE, decision(status, "alice"))
        await wait_for_stage(handle, handle.id, Stage.EXECUTING, within=10)
        await cancel_and_see_it_judged(handle)
        fakes.app_db_answers.set()
        outcome = await asyncio.wait_for(handle.result(), timeout=30)
    assert outcome.status is OutcomeStatus.CANCELLED, outcome.reason
    assert outcome.reason == "cancelled through Temporal before its plan ran: nothing was written"
    assert fakes.executions == []
    assert "find execution" in fakes.trail  # alice's approval is spent: it runs nothing later
    ended_on_record_and_told(fakes, OutcomeStatus.CANCELLED)


async def test_a_cancel_while_the_record_before_the_run_waits_for_the_app_db_is_told_at_once(
    time_env: WorkflowEnvironment,
) -> None:
    """Red team 71: the ticket showed "executing" for the whole outage, though its plan would never run."""
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(time_env, fakes, request()) as handle:
        status = await awaiting_approval(handle)
        fakes.app_db_down = True
        await handle.signal(SIGNAL_APPROVE, decision(status, "alice"))
        await wait_for_stage(handle, handle.id, Stage.EXECUTING, within=10)
        await handle.cancel()
        told = await wait_for_status(handle, handle.id, lambda s: s.outcome is not None and not s.message_owed)
        assert told.outcome is not None and told.outcome.status is OutcomeStatus.CANCELLED
        assert AuditEventKind.DECISION_ACCEPTED not in [event.kind for event in fakes.events]  # still down
        fakes.app_db_down = False
        outcome = await asyncio.wait_for(handle.result(), timeout=60)
    assert outcome.status is OutcomeStatus.CANCELLED, outcome.reason
    assert fakes.executions == []
    ended_on_record_and_told(fakes, OutcomeStatus.CANCELLED, recorded_first=False)  # told while the app DB was down
