"""Approvals that went with a run the executor refused for good run nothing later (red team 60).

A ticket that closes without running its plan (rejected in a later round, or told its execution failed)
leaves no execution row, and anyone with namespace access can start a workflow of their own under its
id, read its signed judgement and approvals from its history, and send them to the real executor.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select, update
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.execution import USED_BY_A_RUN
from core import names
from core.demo import users
from core.ledger import executions, spent_approvals
from core.models import Decision, DecisionSource, ExecutePlanInput, ExecutionResult, OutcomeStatus, Stage, TicketStatus
from service.tickets import StartedTicket
from tests.pipeline import Pipeline, activity_named, running_pipeline, with_activities
from tests.security.test_rogue_pollers import Replay, ReplayApprovedPlan, started_request
from tests.support import build_settings, wait_for_status
from worker.build import ActivitySet

CAROL = "carol@acme-corp.example"


async def _carol(pipeline: Pipeline) -> tuple[str, str]:
    async with pipeline.databases.target_sessions() as session:
        name, role = (await session.execute(select(users.c.name, users.c.role).where(users.c.email == CAROL))).one()
    return str(name), str(role)


async def _rename_carol(pipeline: Pipeline, name: str) -> None:
    async with pipeline.databases.target_sessions() as session:
        await session.execute(update(users).where(users.c.email == CAROL).values(name=name))
        await session.commit()


def _refused(refusal: str) -> bool:
    """Refused as a workflow started under the closed ticket's id (another chain), else as spent approvals."""
    return "judged for another run of this ticket's id" in refusal or "went with a run refused before" in refusal


async def _spent(pipeline: Pipeline) -> list[str]:
    """The approval requests spent without a run."""
    async with pipeline.databases.target_sessions() as session:
        query = select(spent_approvals.c.request_id).where(spent_approvals.c.reason != USED_BY_A_RUN)
        return list((await session.scalars(query)).all())


async def _refusal_of_a_run_under_its_id(
    env: WorkflowEnvironment, pipeline: Pipeline, started: StartedTicket, asked: TicketStatus, approvals: list[Decision]
) -> str:
    """What the real executor says to a workflow of someone else's, started under the closed ticket's id, that
    sends it the plan, judgement and approvals read from the ticket's status and history."""
    history = await pipeline.service.handle(started.short_id).fetch_history()
    replay = Replay(
        queue=pipeline.settings.temporal_task_queue,
        ticket=started.workflow_id,
        plan=asked.plan,
        request=started_request(history),
        judgement=asked.report.judgement,
        approvals=approvals,
        send_as_the_ticket=True,
    )
    rogue_queue = f"rogue-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=rogue_queue, workflows=[ReplayApprovedPlan]):
        with pytest.raises(WorkflowFailureError) as refused:
            await env.client.execute_workflow(
                ReplayApprovedPlan.run, replay, id=started.workflow_id, task_queue=rogue_queue
            )
    return str(refused.value.cause.cause)


async def test_a_superseded_rounds_approvals_run_nothing_once_the_ticket_is_rejected(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = build_settings(tmp_path / "data", f"spent-{uuid.uuid4().hex[:8]}")
    async with running_pipeline(local_env.client, settings) as pipeline:
        service = pipeline.service
        name, role = await _carol(pipeline)
        started = await service.start(pipeline.request(f"make {CAROL} an admin"))
        first = await pipeline.wait_for_stage(started.short_id, Stage.AWAITING_APPROVAL)
        assert first.approval is not None and first.approval.required_approvals == 2
        await service.decide(started.short_id, first.approval.decision("alice", DecisionSource.DASHBOARD))
        await _rename_carol(pipeline, name + " (on leave)")  # another writer: the approved rows change
        await service.decide(started.short_id, first.approval.decision("bob", DecisionSource.DASHBOARD))

        # The executor refuses round 1 (the rows changed) and the ticket asks again; alice says no.
        second = await wait_for_status(
            service,
            started.short_id,
            lambda status: status.approval is not None and status.approval.request_id != first.approval.request_id,
        )
        assert second.approval is not None and second.outcome is None
        no = second.approval.decision("alice", DecisionSource.DASHBOARD, approve=False, comment="not any more")
        await service.decide(started.short_id, no)
        assert (await service.result(started.short_id)).status is OutcomeStatus.REJECTED
        await _rename_carol(pipeline, name)  # carol's row is as round 1 judged it again

        # Someone with namespace access sends round 1 to the real executor, as the closed ticket.
        final = await service.status(started.short_id)
        approvals = [
            record.decision
            for record in final.decisions
            if record.accepted and record.decision.request_id == first.approval.request_id
        ]
        assert sorted(decision.decider for decision in approvals) == ["alice", "bob"]
        refusal = await _refusal_of_a_run_under_its_id(local_env, pipeline, started, first, approvals)
        assert _refused(refusal)
        assert await _carol(pipeline) == (name, role)
        async with pipeline.databases.target_sessions() as session:
            ran = (await session.scalars(select(executions.c.workflow_id))).all()
            spent = (await session.scalars(select(spent_approvals.c.request_id))).all()
        assert started.workflow_id not in ran
        assert sorted(spent) == sorted([first.approval.request_id, second.approval.request_id])  # refused; rejected


DANA = "dana@acme-corp.example"
MADE_UP_FAILURE = ApplicationError("the target DB refused: made up", type="OperationFailed", non_retryable=True)
MADE_UP_ROWS_CHANGED = ApplicationError(
    "the rows changed since approval: made up", type=names.ERROR_APPROVED_ROWS_CHANGED, non_retryable=True
)


def _rogue_takes_the_tickets_first_execution(
    answer: Callable[[], Awaitable[None]],
) -> Callable[[ActivitySet], ActivitySet]:
    """A poller on the ticket's queue takes the first execution the ticket asks for and does `answer` with it
    (raise a made-up failure, or hold it), running nothing; every other reaches the real executor."""

    def adjust(activities: ActivitySet) -> ActivitySet:
        real = activity_named(activities, names.ACTIVITY_EXECUTE_PLAN)
        taken: list[ExecutePlanInput] = []

        @activity.defn(name=names.ACTIVITY_EXECUTE_PLAN)
        async def execute_plan(input: ExecutePlanInput) -> ExecutionResult:
            if not taken and activity.info().workflow_type != ReplayApprovedPlan.__name__:
                taken.append(input)
                await answer()
            result: ExecutionResult = await real(input)
            return result

        return with_activities(activities, execute_plan)

    return adjust


def _answers(error: ApplicationError) -> Callable[[], Awaitable[None]]:
    async def answer() -> None:
        raise error

    return answer


async def _dana_made_admin_and_approved(pipeline: Pipeline) -> tuple[StartedTicket, TicketStatus]:
    """A ticket needing two approvals, approved by alice and bob; its status when it asked for them."""
    service = pipeline.service
    started = await service.start(pipeline.request(f"add user {DANA} to acme-corp as admin"))
    asked = await pipeline.wait_for_stage(started.short_id, Stage.AWAITING_APPROVAL)
    assert asked.approval is not None and asked.approval.required_approvals == 2
    for approver in ("alice", "bob"):
        await service.decide(started.short_id, asked.approval.decision(approver, DecisionSource.DASHBOARD))
    return started, asked


async def test_approvals_of_a_ticket_told_its_execution_failed_run_nothing_later(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = build_settings(tmp_path / "data", f"spent-{uuid.uuid4().hex[:8]}")
    rogue = _rogue_takes_the_tickets_first_execution(_answers(MADE_UP_FAILURE))
    async with running_pipeline(local_env.client, settings, adjust=rogue) as pipeline:
        service = pipeline.service
        started, asked = await _dana_made_admin_and_approved(pipeline)
        outcome = await service.result(started.short_id)
        assert outcome.status is OutcomeStatus.FAILED and "made up" in outcome.reason

        # Within the hour, someone with namespace access runs the plan on those approvals, as the ticket.
        approvals = [record.decision for record in (await service.status(started.short_id)).decisions]
        given = [decision for decision in approvals if decision.approve]
        refusal = await _refusal_of_a_run_under_its_id(local_env, pipeline, started, asked, given)
        assert _refused(refusal)
        assert await _spent(pipeline) == [asked.approval.request_id]
        async with pipeline.databases.target_sessions() as session:
            assert await session.scalar(select(users.c.role).where(users.c.email == DANA)) is None


async def test_approvals_a_rogue_poller_said_were_refused_run_nothing_once_the_ticket_is_rejected(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Red team 62: told "rows changed" by a poller, the ticket asked again and never spent round 1's approvals."""
    settings = build_settings(tmp_path / "data", f"spent-{uuid.uuid4().hex[:8]}")
    rogue = _rogue_takes_the_tickets_first_execution(_answers(MADE_UP_ROWS_CHANGED))
    async with running_pipeline(local_env.client, settings, adjust=rogue) as pipeline:
        service = pipeline.service
        started, first = await _dana_made_admin_and_approved(pipeline)
        second = await wait_for_status(
            service,
            started.short_id,
            lambda status: status.approval is not None and status.approval.request_id != first.approval.request_id,
        )
        assert second.approval is not None
        no = second.approval.decision("alice", DecisionSource.DASHBOARD, approve=False)
        await service.decide(started.short_id, no)
        assert (await service.result(started.short_id)).status is OutcomeStatus.REJECTED

        round1 = [record.decision for record in (await service.status(started.short_id)).decisions]
        given = [decision for decision in round1 if decision.request_id == first.approval.request_id]
        refusal = await _refusal_of_a_run_under_its_id(local_env, pipeline, started, first, given)
        assert _refused(refusal)
        assert sorted(await _spent(pipeline)) == sorted([first.approval.request_id, second.approval.request_id])
        async with pipeline.databases.target_sessions() as session:
            assert await session.scalar(select(users.c.role).where(users.c.email == DANA)) is None


async def test_approvals_of_a_ticket_terminated_before_its_run_run_nothing_under_its_id(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Red team 63: terminated with its approvals complete (its execution held by a poller), the ticket ran no
    code to spend them, and a workflow started under its id ran the plan on them."""
    settings = build_settings(tmp_path / "data", f"spent-{uuid.uuid4().hex[:8]}")
    taken = asyncio.Event()

    async def holds() -> None:
        taken.set()
        await asyncio.sleep(3600)

    rogue = _rogue_takes_the_tickets_first_execution(holds)
    async with running_pipeline(local_env.client, settings, adjust=rogue) as pipeline:
        service = pipeline.service
        started, asked = await _dana_made_admin_and_approved(pipeline)
        await asyncio.wait_for(taken.wait(), timeout=10)  # the poller holds the execution
        approvals = [record.decision for record in (await service.status(started.short_id)).decisions]
        await service.handle(started.short_id).terminate("someone with namespace access")

        refusal = await _refusal_of_a_run_under_its_id(local_env, pipeline, started, asked, approvals)
        assert "judged for another run of this ticket's id" in refusal
        async with pipeline.databases.target_sessions() as session:
            assert await session.scalar(select(users.c.role).where(users.c.email == DANA)) is None


def _rogue_runs_then_says_nothing_ran(activities: ActivitySet) -> ActivitySet:
    """A poller takes the ticket's first execution, runs it through the real executor, and answers "rows changed"."""
    real = activity_named(activities, names.ACTIVITY_EXECUTE_PLAN)
    taken: list[ExecutePlanInput] = []

    @activity.defn(name=names.ACTIVITY_EXECUTE_PLAN)
    async def execute_plan(input: ExecutePlanInput) -> ExecutionResult:
        result: ExecutionResult = await real(input)
        if not taken:
            taken.append(input)
            raise MADE_UP_ROWS_CHANGED
        return result

    return with_activities(activities, execute_plan)


async def test_a_ticket_told_nothing_ran_by_a_poller_asks_the_ledger_before_judging_again(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Red team 65: a plan needing no approval was judged again (its audit saying nothing was written) after it ran."""
    settings = build_settings(tmp_path / "data", f"spent-{uuid.uuid4().hex[:8]}")
    async with running_pipeline(local_env.client, settings, adjust=_rogue_runs_then_says_nothing_ran) as pipeline:
        started = await pipeline.service.start(pipeline.request("upgrade acme-corp to the pro plan"))
        outcome = await pipeline.service.result(started.short_id)
        status = await pipeline.service.status(started.short_id)
    assert outcome.status is OutcomeStatus.DONE and outcome.execution is not None
    assert not status.rejudged_because and status.review_rounds == 0
