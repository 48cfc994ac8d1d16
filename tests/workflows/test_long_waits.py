"""A wait for approval that signals make long goes on in a fresh run, as if nothing had happened.

Every decision adds to the history, forged ones too; a flood of them took a waiting ticket to
Temporal's history limit, where it ended terminated and never told (red team 28). The server here
suggests continuing as new after 150 events instead of 4,096, so a few dozen signals are a flood.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from cli.devserver import SERVER_DYNAMIC_CONFIG
from core.models import AuditEventKind, OutcomeStatus, Risk, Stage, TicketOutcome
from core.names import AUDIT_EVENT_KEY, SIGNAL_APPROVE, SIGNAL_REJECT, WORKFLOW_NAME
from service.temporal import temporal_cli_path
from tests.support import wait_for_status
from tests.workflows.fake_activities import ScriptedActivities
from tests.workflows.test_ticket_workflow import awaiting_approval, decision, request, running
from worker.build import build_workers

SUGGEST_AFTER_EVENTS = 150


@pytest.fixture(scope="module")
async def short_histories() -> AsyncIterator[WorkflowEnvironment]:
    """One server for the module: each test runs its ticket on a queue and id of its own."""
    async with await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(temporal_cli_path()),
        dev_server_extra_args=[
            *SERVER_DYNAMIC_CONFIG,
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER_EVENTS}",
        ],
    ) as env:
        yield env


async def _flood(env: WorkflowEnvironment, workflow_id: str, signals: int) -> None:
    """Decisions nobody should count: malformed ones, and well-formed ones from someone who is no approver."""
    handle = env.client.get_workflow_handle(workflow_id)
    status = await awaiting_approval(handle)
    for n in range(signals):
        if n % 2:
            await handle.signal(SIGNAL_APPROVE, {"decider": f"mallory-{n}"})
        else:
            await handle.signal(SIGNAL_REJECT, decision(status, "mallory", approve=False, comment=f"no {n}"))


async def _runs(env: WorkflowEnvironment, workflow_id: str) -> list[int]:
    """The history length of each run of the ticket so far, oldest first."""
    lengths = []
    async for execution in env.client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        handle: WorkflowHandle[object, object] = env.client.get_workflow_handle(workflow_id, run_id=execution.run_id)
        lengths.append(len([event async for event in handle.fetch_history_events()]))
    return lengths


async def _continued_as_new(env: WorkflowEnvironment, workflow_id: str, within: float = 30) -> None:
    """Once the ticket's first run has continued as new."""
    for _ in range(int(within / 0.2)):
        async for execution in env.client.list_workflows(f'WorkflowId = "{workflow_id}"'):
            if execution.status is WorkflowExecutionStatus.CONTINUED_AS_NEW:
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{workflow_id} did not continue as new within {within} s")


async def test_a_flood_of_decisions_while_waiting_continues_the_wait_and_keeps_the_approvals(
    short_histories: WorkflowEnvironment,
) -> None:
    env = short_histories
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=2)
    async with running(env, fakes, request()) as started:
        workflow_id = started.id
        first = await awaiting_approval(started)
        await started.signal(SIGNAL_APPROVE, decision(first, "bob"))
        await wait_for_status(started, workflow_id, lambda s: s.approved_by == ["bob"], "bob's approval counted")

        await _flood(env, workflow_id, signals=60)
        await _continued_as_new(env, workflow_id)
        current = env.client.get_workflow_handle(workflow_id, result_type=TicketOutcome)
        resumed = await wait_for_status(
            current, workflow_id, lambda s: s.approved_by == ["bob"] and s.stage is Stage.AWAITING_APPROVAL
        )
        assert resumed.approval is not None and first.approval is not None
        assert resumed.approval.request_id == first.approval.request_id
        assert resumed.approval.deadline == first.approval.deadline
        assert resumed.plan_hash == first.plan_hash

        await current.signal(SIGNAL_APPROVE, decision(resumed, "carol"))
        outcome = await current.result()

    assert outcome.status is OutcomeStatus.DONE
    assert len(fakes.executions) == 1
    assert sorted(fakes.executions[0].approved_by) == ["bob", "carol"]
    assert sorted(approval.decider for approval in fakes.executions[0].approvals) == ["bob", "carol"]
    lengths = await _runs(env, workflow_id)
    assert len(lengths) >= 2
    assert max(lengths) < 3 * SUGGEST_AFTER_EVENTS, lengths


async def test_a_ticket_that_continued_while_waiting_can_still_be_rejected(
    short_histories: WorkflowEnvironment,
) -> None:
    env = short_histories
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(env, fakes, request()) as started:
        workflow_id = started.id
        await awaiting_approval(started)
        await _flood(env, workflow_id, signals=60)
        await _continued_as_new(env, workflow_id)
        current = env.client.get_workflow_handle(workflow_id, result_type=TicketOutcome)
        resumed = await awaiting_approval(current)
        await current.signal(SIGNAL_REJECT, decision(resumed, "bob", approve=False, comment="not today"))
        outcome = await current.result()
    assert outcome.status is OutcomeStatus.REJECTED and "not today" in outcome.reason
    assert fakes.executions == []


async def test_a_flood_while_the_app_db_is_down_still_continues_and_loses_no_event(
    short_histories: WorkflowEnvironment,
) -> None:
    """Red team 40: the wait continued only once the audit log answered, so with the app DB down the flood
    took the ticket to Temporal's history limit. Now the unwritten events go with the run."""
    env = short_histories
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(env, fakes, request()) as started:
        workflow_id = started.id
        await awaiting_approval(started)
        fakes.app_db_down = True
        await _flood(env, workflow_id, signals=120)
        await _continued_as_new(env, workflow_id)
        fakes.app_db_down = False
        current = env.client.get_workflow_handle(workflow_id, result_type=TicketOutcome)
        resumed = await awaiting_approval(current)
        await current.signal(SIGNAL_APPROVE, decision(resumed, "bob"))
        outcome = await current.result()
    assert outcome.status is OutcomeStatus.DONE and len(fakes.executions) == 1
    kinds = [event.kind for event in fakes.events]
    assert kinds.count(AuditEventKind.DECISION_IGNORED) >= 60  # the flood's decisions, written once the DB was back
    keys = [event.detail[AUDIT_EVENT_KEY] for event in fakes.events]
    assert len(keys) == len(set(keys))  # none twice


async def test_a_ticket_started_on_a_cron_schedule_is_refused(local_env: WorkflowEnvironment) -> None:
    """Red team 40: a cron run starts as if continued, so a client's forged waiting state passed as the ticket's."""
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    queue = f"cron-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        for worker in build_workers(local_env.client, fakes.activity_set(), task_queue=queue):
            await stack.enter_async_context(worker)
        handle = await local_env.client.start_workflow(
            WORKFLOW_NAME, request(), id=f"ticket-{uuid.uuid4().hex[:10]}", task_queue=queue, cron_schedule="@every 1s"
        )
        failure = await _run_failure(local_env, handle.id, handle.first_execution_run_id or "")
        await handle.terminate("test over")
    assert "cron schedule" in failure
    assert fakes.executions == [] and fakes.events == []


async def _run_failure(env: WorkflowEnvironment, workflow_id: str, run_id: str, within: float = 30) -> str:
    """The message the run ended with once it failed."""
    handle = env.client.get_workflow_handle(workflow_id, run_id=run_id)
    for _ in range(int(within / 0.2)):
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_execution_failed_event_attributes"):
                return event.workflow_execution_failed_event_attributes.failure.message
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} of {workflow_id} did not fail within {within} s")


async def test_a_batch_in_flight_when_the_wait_continues_is_carried_whole_and_told_once(
    short_histories: WorkflowEnvironment,
) -> None:
    """Red team 72: the batch being written (committed, its answer slow) was counted among the ignored decisions
    the run dropped when it continued, and was on record as well: 700 decisions were told as 701."""
    env = short_histories
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(env, fakes, request()) as started:
        workflow_id = started.id
        status = await awaiting_approval(started)
        fakes.audit_answers_after_write.clear()  # the next batch lands, and its write does not answer
        await started.signal(SIGNAL_APPROVE, {"decider": "mallory-first"})
        await wait_for_status(started, workflow_id, lambda s: len(s.decisions) == 1, "the first decision judged")
        for n in range(250):  # malformed: judged at once, each queued behind the batch in flight
            await started.signal(SIGNAL_APPROVE, {"decider": f"mallory-{n}"})
        await _continued_as_new(env, workflow_id)
        fakes.audit_answers_after_write.set()
        current = env.client.get_workflow_handle(workflow_id, result_type=TicketOutcome)
        resumed = await awaiting_approval(current)
        await current.signal(SIGNAL_APPROVE, decision(resumed, "bob"))
        outcome = await current.result()
    assert outcome.status is OutcomeStatus.DONE and status.approval is not None
    ignored = [event for event in fakes.events if event.kind is AuditEventKind.DECISION_IGNORED]
    counted = [int(event.summary.split()[0]) for event in ignored if "not listed one by one" in event.summary]
    listed = [event for event in ignored if "not listed one by one" not in event.summary]
    assert len(listed) + sum(counted) == 251, (len(listed), counted)
    assert len({event.detail[AUDIT_EVENT_KEY] for event in fakes.events}) == len(fakes.events)  # none twice


@pytest.mark.timeout(120)
async def test_an_approval_still_being_checked_when_the_wait_continues_is_judged_by_the_next_run(
    short_histories: WorkflowEnvironment,
) -> None:
    """Red team 72: the run waited 30 s for decisions still being checked, then continued without them: a valid
    approval behind a flood, its check held up, was dropped without a trace."""
    env = short_histories
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    async with running(env, fakes, request()) as started:
        workflow_id = started.id
        status = await awaiting_approval(started)
        fakes.checks_answer.clear()  # the decision check hangs
        await started.signal(SIGNAL_APPROVE, decision(status, "bob"))
        for n in range(70):  # malformed ones wait behind bob's turn: judged in the order they came
            await started.signal(SIGNAL_REJECT, {"decider": f"mallory-{n}"})
        await _continued_as_new(env, workflow_id, within=60)  # after the 30 s the run gives its handlers
        fakes.checks_answer.set()
        current = env.client.get_workflow_handle(workflow_id, result_type=TicketOutcome)
        outcome = await asyncio.wait_for(current.result(), timeout=60)
    assert outcome.status is OutcomeStatus.DONE, outcome.reason
    assert [execution.approved_by for execution in fakes.executions] == [["bob"]]
    accepted = [event.actor for event in fakes.events if event.kind is AuditEventKind.DECISION_ACCEPTED]
    assert accepted == ["bob"]
    ignored = [event for event in fakes.events if event.kind is AuditEventKind.DECISION_IGNORED]
    counted = [int(event.summary.split()[0]) for event in ignored if "not judged before the ticket" in event.summary]
    listed = [event for event in ignored if "not judged before the ticket" not in event.summary]
    assert len(listed) + sum(counted) == 70, (len(listed), counted)  # each told once, judged or counted
