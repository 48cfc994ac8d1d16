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
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from core import names
from core.demo import users
from core.ledger import executions
from core.models import (
    DecisionCheck,
    DecisionSource,
    OutcomeStatus,
    Risk,
    SafetyReport,
    Stage,
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
