"""Issue 12, item 2: every activity of the workflow failing for good, in turn, never fails the workflow.

Each activity is made to fail on every attempt, first with a non-retryable error, then with a
retryable one that keeps failing until its retry policy's time bound is spent (the time-skipping
server jumps the 30 minutes, hours or a day). Either way the workflow completes at Temporal level:
the steps a ticket cannot do without end it `failed` with a reason that its requester is told;
a failed notification, audit write or decision check is audited or logged and the ticket ends well.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import pytest
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from core import names
from core.models import (
    ApprovalSettings,
    AuditEventKind,
    DecisionSource,
    NotifyEvent,
    OutcomeStatus,
    Risk,
    Stage,
    TicketOutcome,
    TicketRequest,
    TicketStatus,
)
from tests.chaos.faults import AlwaysFails, AttemptLog, wrapped
from tests.chaos.waiting import eventually
from tests.workflows.fake_activities import ScriptedActivities
from worker.build import build_workers

# The ticket cannot go on without these: it ends `failed`, with the step and the error in the reason.
NEEDED = [
    names.ACTIVITY_GATHER_CONTEXT,
    names.ACTIVITY_PLAN_TICKET,
    names.ACTIVITY_VALIDATE_PLAN,
    names.ACTIVITY_RESOLVE_APPROVERS,
    names.ACTIVITY_EXECUTE_PLAN,
]
APPROVERS = ["alice", "bob", "carol"]


@dataclass
class Run:
    handle: WorkflowHandle[object, TicketOutcome]
    fakes: ScriptedActivities
    attempts: AttemptLog

    async def status(self) -> TicketStatus:
        return await self.handle.query(names.QUERY_STATUS, result_type=TicketStatus)


@asynccontextmanager
async def ticket_with_fault(env: WorkflowEnvironment, worker_client: Client, fault: AlwaysFails) -> AsyncIterator[Run]:
    """A medium-risk ticket (one approval: every activity runs) on workers where `fault` is injected."""
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    attempts = AttemptLog()
    queue = f"perm-{uuid.uuid4().hex[:8]}"
    request = TicketRequest(
        text="upgrade acme-corp to the pro plan", requester="dave", approval=ApprovalSettings(approvers=APPROVERS)
    )
    async with AsyncExitStack() as stack:
        for worker in build_workers(worker_client, wrapped(fakes.activity_set(), fault, attempts), task_queue=queue):
            await stack.enter_async_context(worker)
        handle = await env.client.start_workflow(
            names.WORKFLOW_NAME,
            request,
            id=f"ticket-{uuid.uuid4().hex[:10]}",
            task_queue=queue,
            result_type=TicketOutcome,
        )
        yield Run(handle, fakes, attempts)


async def approve_when_asked(run: Run) -> None:
    """Approve as bob once the ticket waits for approval (it gets there with no retry to wait out).

    Time stands still until the test awaits the result: then the server skips to each next retry.
    """
    status = await eventually(run.status, lambda s: s.stage is Stage.AWAITING_APPROVAL)
    assert status.approval is not None
    await run.handle.signal(names.SIGNAL_APPROVE, status.approval.decision("bob", DecisionSource.CLI))


async def completed(run: Run) -> tuple[TicketOutcome, TicketStatus]:
    outcome = await run.handle.result()
    description = await run.handle.describe()
    assert description.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED
    return outcome, await run.status()


def told(run: Run, outcome: TicketOutcome) -> None:
    """The requester was told the outcome, with its reason, in the ticket's one outcome post."""
    posts = [n for n in run.fakes.notifications if n.event is NotifyEvent.OUTCOME]
    assert len(posts) == 1
    assert posts[0].status.outcome == outcome


@pytest.mark.parametrize("retryable", [False, True], ids=["non-retryable", "retryable-past-bound"])
@pytest.mark.parametrize("step", NEEDED)
async def test_a_needed_step_failing_for_good_ends_the_ticket_failed_with_its_reason(
    time_env: WorkflowEnvironment, worker_client: Client, no_task_trouble: None, step: str, retryable: bool
) -> None:
    async with ticket_with_fault(time_env, worker_client, AlwaysFails(step, retryable)) as run:
        if step == names.ACTIVITY_EXECUTE_PLAN:
            await approve_when_asked(run)
        outcome, status = await completed(run)
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.reason.startswith(f"{step} failed:") and "(injected)" in outcome.reason, outcome.reason
    told(run, outcome)
    assert run.fakes.executions == []
    failed = [event for event in run.fakes.events if event.kind is AuditEventKind.FAILED]
    assert len(failed) == 1 and outcome.reason in failed[0].summary
    assert not status.message_owed
    tries = run.attempts.of(step)
    assert (len(tries) > 5) if retryable else (len(tries) == 1)


@pytest.mark.parametrize("retryable", [False, True], ids=["non-retryable", "retryable-past-bound"])
async def test_notifications_failing_for_good_never_stop_the_ticket(
    time_env: WorkflowEnvironment, worker_client: Client, no_task_trouble: None, retryable: bool
) -> None:
    async with ticket_with_fault(time_env, worker_client, AlwaysFails(names.ACTIVITY_NOTIFY, retryable)) as run:
        await approve_when_asked(run)
        outcome, status = await completed(run)
    assert outcome.status is OutcomeStatus.DONE
    assert len(run.fakes.executions) == 1
    kinds = [event.kind for event in run.fakes.events]
    assert AuditEventKind.NOTIFY_FAILED in kinds and AuditEventKind.NOTIFIED not in kinds
    assert not status.message_owed  # given up, and audited as such


async def test_decision_checks_failing_for_good_ignore_the_decision_and_say_why(
    time_env: WorkflowEnvironment, worker_client: Client, no_task_trouble: None
) -> None:
    fault = AlwaysFails(names.ACTIVITY_VERIFY_DECISION, retryable=False)
    async with ticket_with_fault(time_env, worker_client, fault) as run:
        await approve_when_asked(run)
        outcome, status = await completed(run)  # nobody's decision can count: the approval expires
    assert outcome.status is OutcomeStatus.EXPIRED
    [record] = status.decisions
    assert not record.accepted and record.reason is not None and "could not verify" in record.reason
    ignored = [event for event in run.fakes.events if event.kind is AuditEventKind.DECISION_IGNORED]
    assert len(ignored) == 1 and "could not verify" in ignored[0].summary
    told(run, outcome)


async def test_audit_writes_refused_for_good_stop_the_plan_and_the_requester_is_told(
    time_env: WorkflowEnvironment, worker_client: Client, no_task_trouble: None
) -> None:
    fault = AlwaysFails(names.ACTIVITY_RECORD_EVENTS, retryable=False)
    async with ticket_with_fault(time_env, worker_client, fault) as run:
        await approve_when_asked(run)
        outcome, _ = await completed(run)
    assert outcome.status is OutcomeStatus.FAILED
    assert "audit log refused" in outcome.reason
    assert run.fakes.executions == []  # a plan never runs before the steps that led to it are on record
    told(run, outcome)
