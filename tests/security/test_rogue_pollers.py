"""A namespace client that polls the ticket's task queue answers whatever activity task it takes.

Red team 19 ran a worker of its own on the queue whose `verify_decision` said "signed, and an
approver" to everything: unsigned approvals in two people's names were counted, and a high-risk
change ran. A rogue poller can still delay a ticket or answer its questions wrongly, but whether a
plan runs is decided again by the executor, from proofs only a worker can make.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError, WorkflowHistory
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.execution import ERROR_NOT_AUTHORISED
from core import names
from core.demo import customers, users
from core.ledger import executions
from core.models import (
    Assignment,
    Decision,
    DecisionCheck,
    DecisionSource,
    ExecutePlanInput,
    Filter,
    Judgement,
    Model,
    OutcomeStatus,
    Plan,
    Risk,
    SafetyReport,
    Stage,
    TicketRequest,
    UpdateOperation,
    ValidatePlanInput,
    VerifyDecisionInput,
    plan_hash,
)
from tests.pipeline import Pipeline, running_pipeline, with_activities
from tests.support import build_settings
from worker.build import ActivitySet

CAROL = "carol@acme-corp.example"


@activity.defn(name=names.ACTIVITY_VERIFY_DECISION)
async def rogue_verify_decision(input: VerifyDecisionInput) -> DecisionCheck:
    return DecisionCheck()  # "sound, and named by APPROVERS", whoever decided and however


@activity.defn(name=names.ACTIVITY_VALIDATE_PLAN)
async def rogue_validate_plan(input: ValidatePlanInput) -> SafetyReport:
    return SafetyReport(risk=Risk.LOW, plan_hash=plan_hash(input.plan))  # "low risk, runs without approval"


def answered_by(rogue: Callable[..., Any]) -> Callable[[ActivitySet], ActivitySet]:
    """The workers' activities with `rogue` taking every task of its name, as a poller that wins them all."""
    return lambda activities: with_activities(activities, rogue)


@asynccontextmanager
async def pipeline_with(
    local_env: WorkflowEnvironment, data_dir: Path, rogue: Callable[..., Any]
) -> AsyncIterator[Pipeline]:
    settings = build_settings(data_dir, f"rogue-{uuid.uuid4().hex[:8]}")
    async with running_pipeline(local_env.client, settings, adjust=answered_by(rogue)) as pipeline:
        yield pipeline


async def nothing_ran(pipeline: Pipeline, workflow_id: str) -> None:
    async with pipeline.databases.target_sessions() as session:
        role = await session.scalar(select(users.c.role).where(users.c.email == CAROL))
        ledger = await session.scalar(
            select(func.count()).select_from(executions).where(executions.c.workflow_id == workflow_id)
        )
    assert role != "admin" and ledger == 0


async def test_unsigned_approvals_a_rogue_verifier_vouched_for_run_nothing(
    local_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with pipeline_with(local_env, tmp_path / "data", rogue_verify_decision) as pipeline:
        started = await pipeline.service.start(pipeline.request(f"make {CAROL} an admin"))
        status = await pipeline.wait_for_stage(started.short_id, Stage.AWAITING_APPROVAL)
        assert status.approval is not None and status.approval.required_approvals == 2
        handle = pipeline.service.handle(started.short_id)
        for decider in ("alice", "bob"):  # raw signals, no key: nothing a front door signed
            await handle.signal(names.SIGNAL_APPROVE, status.approval.decision(decider, DecisionSource.DASHBOARD))
        outcome = await pipeline.service.result(started.short_id)

        assert outcome.status is OutcomeStatus.FAILED and "not authorised to run" in outcome.reason, outcome
        assert "not signed by a front door" in outcome.reason
        await nothing_ran(pipeline, started.workflow_id)


async def test_a_rogue_judge_saying_low_risk_runs_nothing(local_env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with pipeline_with(local_env, tmp_path / "data", rogue_validate_plan) as pipeline:
        started = await pipeline.service.start(pipeline.request(f"make {CAROL} an admin"))
        outcome = await pipeline.service.result(started.short_id)

        assert outcome.status is OutcomeStatus.FAILED and "no judgement" in outcome.reason, outcome
        await nothing_ran(pipeline, started.workflow_id)


class Replay(Model):
    """What a workflow of one's own sends the real activities: a done ticket's plan and approvals."""

    queue: str
    ticket: str  # the real ticket's workflow id
    plan: Plan
    request: TicketRequest
    judgement: Judgement | None
    approvals: list[Decision]
    send_as_the_ticket: bool  # name the ticket's workflow id in the execution (else its own)


@workflow.defn(name="ReplayApprovedPlan", sandboxed=False)
class ReplayApprovedPlan:
    """Red team 20's workflow: a reverted change ran again, approved by nobody anew."""

    @workflow.run
    async def run(self, replay: Replay) -> None:
        timeout = timedelta(seconds=20)
        once = RetryPolicy(maximum_attempts=1)
        judgement = replay.judgement
        if not replay.send_as_the_ticket:  # judged afresh by the real validation, for this workflow
            report = await workflow.execute_activity(
                names.ACTIVITY_VALIDATE_PLAN,
                ValidatePlanInput(ticket_id="rogue", plan=replay.plan, request=replay.request),
                task_queue=replay.queue,
                start_to_close_timeout=timeout,
                retry_policy=once,
                result_type=SafetyReport,
            )
            judgement = report.judgement
        workflow_id = replay.ticket if replay.send_as_the_ticket else workflow.info().workflow_id
        await workflow.execute_activity(
            names.ACTIVITY_EXECUTE_PLAN,
            ExecutePlanInput(
                ticket_id=names.short_id_from(workflow_id),
                workflow_id=workflow_id,
                plan=replay.plan,
                plan_hash=plan_hash(replay.plan),
                approved_rows=judgement.approved_rows if judgement else [],
                approved_row_keys=judgement.approved_row_keys if judgement else [],
                approved_versions=judgement.approved_versions if judgement else [],
                requester=replay.request.requester,
                approved_by=[decision.decider for decision in replay.approvals],
                judgement=judgement,
                approvals=replay.approvals,
            ),
            task_queue=replay.queue,
            start_to_close_timeout=timeout,
            retry_policy=once,
        )


SUSPEND_CUSTOMER_10 = UpdateOperation(
    table="customers",
    values=[Assignment(column="status", value="suspended")],
    filters=[Filter(column="id", op="eq", value=10)],
)


@pytest.mark.parametrize("mode", ["under a new id", "sent as the ticket", "under the ticket's id, a plan of its own"])
async def test_a_workflow_of_ones_own_cannot_run_a_done_tickets_approved_plan_again(
    local_env: WorkflowEnvironment, tmp_path: Path, mode: str
) -> None:
    """Red team 20 re-ran a reverted change under a new id; red team 21 started a workflow of its own under the
    done ticket's id (Temporal allows it once the ticket closed) and, with its signed request, had plans of its
    choosing judged low risk and run, past the requester's budget, with no ticket or record."""
    settings = build_settings(tmp_path / "data", f"rogue-{uuid.uuid4().hex[:8]}")
    async with running_pipeline(local_env.client, settings) as pipeline:
        started = await pipeline.service.start(pipeline.request(f"make {CAROL} an admin"))
        await pipeline.approve(started.short_id, "alice", "bob")
        assert (await pipeline.service.result(started.short_id)).status is OutcomeStatus.DONE
        status = await pipeline.service.status(started.short_id)
        history = await pipeline.service.handle(started.short_id).fetch_history()
        async with pipeline.databases.target_sessions() as session:  # undone, as a revert would
            await session.execute(update(users).where(users.c.email == CAROL).values(role="viewer"))
            await session.commit()

        assert status.plan is not None and status.report is not None
        own_plan = mode == "under the ticket's id, a plan of its own"
        replay = Replay(
            queue=settings.temporal_task_queue,
            ticket=started.workflow_id,
            plan=Plan(summary="suspend", operations=[SUSPEND_CUSTOMER_10]) if own_plan else status.plan,
            request=started_request(history),
            judgement=status.report.judgement,
            approvals=[] if own_plan else [record.decision for record in status.decisions if record.accepted],
            send_as_the_ticket=mode == "sent as the ticket",
        )
        rogue_queue = f"rogue-own-{uuid.uuid4().hex[:8]}"
        rogue_id = started.workflow_id if own_plan else f"ticket-{uuid.uuid4().hex[:10]}"
        async with Worker(local_env.client, task_queue=rogue_queue, workflows=[ReplayApprovedPlan]):
            with pytest.raises(WorkflowFailureError) as failed:
                await local_env.client.execute_workflow(
                    ReplayApprovedPlan.run, replay, id=rogue_id, task_queue=rogue_queue
                )

        cause = failed.value.cause.cause if failed.value.cause else None
        assert isinstance(cause, ApplicationError) and cause.type == ERROR_NOT_AUTHORISED, failed.value
        async with pipeline.databases.target_sessions() as session:
            assert await session.scalar(select(users.c.role).where(users.c.email == CAROL)) == "viewer"
            assert await session.scalar(select(customers.c.status).where(customers.c.id == 10)) != "suspended"


def started_request(history: WorkflowHistory) -> TicketRequest:
    """The signed request a ticket started with, as anyone who reads its history finds it."""
    payload = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    return TicketRequest.model_validate_json(payload.data)
