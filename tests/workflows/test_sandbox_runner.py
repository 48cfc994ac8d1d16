"""The worker's sandbox runner: remembered serialization contexts equal fresh ones, and the sandbox still refuses."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.converter import ActivitySerializationContext, SerializationContext
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox._runner import _Instance

import worker.build
from core.models import ApprovalSettings, OutcomeStatus, Risk, Stage, TicketRequest
from core.names import SIGNAL_APPROVE
from tests.support import wait_for_stage
from tests.workflows.fake_activities import ScriptedActivities
from tests.workflows.forbidden_workflows import ActingQueueWorkflow, ClockReadingWorkflow
from tests.workflows.test_ticket_workflow import decision, running
from worker import payload_passes
from worker.sandbox_runner import CommandInfo, RememberingContextInstance, RememberingContextSandboxRunner

Answer = tuple[CommandInfo | None, object, object]


class ComparingInstance(RememberingContextInstance):
    """Answers as the worker's runner does (remembered), and records a fresh answer from the SDK beside each."""

    answers: list[Answer] = []

    def get_serialization_context(self, command_info: CommandInfo | None) -> SerializationContext | None:
        remembered = super().get_serialization_context(command_info)
        self.answers.append((command_info, remembered, _Instance.get_serialization_context(self, command_info)))
        return remembered

    def get_external_store_context(self, command_info: CommandInfo | None) -> StorageDriverStoreContext:
        remembered = super().get_external_store_context(command_info)
        self.answers.append((command_info, remembered, _Instance.get_external_store_context(self, command_info)))
        return remembered


class ComparingRunner(RememberingContextSandboxRunner):
    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return ComparingInstance(det, self.runner_class, self.restrictions)


async def test_every_remembered_context_is_the_one_the_sdk_gives_afresh(
    time_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[Answer] = []
    monkeypatch.setattr(ComparingInstance, "answers", answers)
    comparing = ComparingRunner(restrictions=worker.build.WORKFLOW_RUNNER.restrictions)
    monkeypatch.setattr(worker.build, "WORKFLOW_RUNNER", comparing)
    # The SDK's payload passes run, as with a codec configured: they are what asks for the contexts.
    monkeypatch.setattr(payload_passes, "passes_change_nothing", lambda _converter: False)
    fakes = ScriptedActivities(risk=Risk.MEDIUM, required_approvals=1)
    ticket = TicketRequest(
        text="upgrade acme-corp to the pro plan", requester="dave", approval=ApprovalSettings(approvers=["bob"])
    )
    async with running(time_env, fakes, ticket) as handle:
        status = await wait_for_stage(handle, handle.id, Stage.AWAITING_APPROVAL, within=10)
        await handle.signal(SIGNAL_APPROVE, decision(status, "bob"))
        outcome = await handle.result()
    assert outcome.status is OutcomeStatus.DONE
    assert [answer for answer in answers if answer[1] != answer[2]] == []
    activity_contexts = [given for _, given, _ in answers if isinstance(given, ActivitySerializationContext)]
    # Planning on the LLM queue, execution and deliveries on the workflow queue, reads and audit as local activities.
    assert {context.is_local for context in activity_contexts} == {True, False}
    assert any((context.activity_task_queue or "").endswith("-llm") for context in activity_contexts)


async def test_workflow_code_is_still_refused_what_the_sandbox_forbids(time_env: WorkflowEnvironment) -> None:
    queue = f"clock-{uuid.uuid4().hex[:8]}"
    runner = worker.build.WORKFLOW_RUNNER
    async with Worker(time_env.client, task_queue=queue, workflows=[ClockReadingWorkflow], workflow_runner=runner):
        handle = await time_env.client.start_workflow(
            ClockReadingWorkflow.run, id=f"clock-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
        failure = await first_task_failure(handle)
        await handle.terminate("seen")
    assert "datetime.datetime.now" in failure


async def first_task_failure(handle: WorkflowHandle[Any, Any], within: float = 10.0) -> str:
    """The message of the workflow's first failed workflow task, once there is one."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return event.workflow_task_failed_event_attributes.failure.message
        await asyncio.sleep(0.1)
    raise AssertionError(f"no workflow task of {handle.id} failed within {within} s")


async def test_workflow_code_run_by_the_context_lookup_is_refused_too(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Red team: a workflow's own `str` subclass as a task queue runs its code inside the lookup."""
    queue = f"acting-{uuid.uuid4().hex[:8]}"
    written = tmp_path / "written-by-workflow-code"
    runner = worker.build.WORKFLOW_RUNNER
    async with Worker(time_env.client, task_queue=queue, workflows=[ActingQueueWorkflow], workflow_runner=runner):
        attempts = await time_env.client.execute_workflow(
            ActingQueueWorkflow.run, str(written), id=f"acting-{uuid.uuid4().hex[:8]}", task_queue=queue
        )
    assert attempts == [
        "open refused, os.getpid refused, time.time refused, random.random refused, datetime.now refused"
    ]
    assert not written.exists()
