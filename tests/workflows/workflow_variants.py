"""Changed copies of `TicketWorkflow` that the replay tests run old histories against.

Kept in a module of their own with workflow-safe imports only: the sandbox re-imports the
module a workflow class lives in, and a test module's imports do not survive that.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.models import TicketOutcome, TicketRequest
    from core.names import WORKFLOW_NAME
    from workflows.ticket import TicketWorkflow

NEW_STEP_ACTIVITY = "check_quota"
NEW_STEP_PATCH = "check-quota"


@workflow.defn(name=WORKFLOW_NAME)
class TicketWorkflowWithNewStep(TicketWorkflow):
    """A careless change: a new activity before anything else, with no `workflow.patched` guard."""

    @workflow.run
    async def run(self, request: TicketRequest) -> TicketOutcome:
        await workflow.execute_activity(NEW_STEP_ACTIVITY, request, start_to_close_timeout=timedelta(seconds=10))
        return await super().run(request)


@workflow.defn(name=WORKFLOW_NAME)
class TicketWorkflowWithPatchedStep(TicketWorkflow):
    """The same change done right: histories recorded before it keep their old path."""

    @workflow.run
    async def run(self, request: TicketRequest) -> TicketOutcome:
        if workflow.patched(NEW_STEP_PATCH):
            await workflow.execute_activity(NEW_STEP_ACTIVITY, request, start_to_close_timeout=timedelta(seconds=10))
        return await super().run(request)
