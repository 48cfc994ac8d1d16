"""The auto-approved ticket's activities chained in plain asyncio: the baseline Temporal is compared with.

It calls the real activity methods (built by the product's `build_activity_set`) in the order
`TicketWorkflow` runs them on the auto-approved path, with the same inputs, inside
`ActivityEnvironment` so `activity.info()` and heartbeats work. The Slack message is delivered
beside the ticket as the workflow's `MessageDelivery` does, by the real notify activity, which
reads the chain's status in memory instead of querying a workflow. No server, no history, no
durability: whatever the workflow takes beyond this is what Temporal costs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from temporalio.testing import ActivityEnvironment

from activities.notify import Notifier, NotifyActivities
from core import names
from core.masking import mask_status
from core.models import (
    AuditEventKind,
    ExecutePlanInput,
    ExecutionResult,
    GatherContextInput,
    NotifyEvent,
    NotifyInput,
    NotifyPost,
    OutcomeStatus,
    Plan,
    PlanTicketInput,
    RecordEventInput,
    RecordEventsInput,
    SafetyReport,
    Stage,
    TicketContext,
    TicketOutcome,
    TicketRequest,
    TicketStatus,
    ValidatePlanInput,
)
from core.names import (
    ACTIVITY_EXECUTE_PLAN,
    ACTIVITY_GATHER_CONTEXT,
    ACTIVITY_NOTIFY,
    ACTIVITY_PLAN_TICKET,
    ACTIVITY_RECORD_EVENTS,
    ACTIVITY_VALIDATE_PLAN,
    workflow_id_for,
)
from worker.build import ActivitySet

T = TypeVar("T")


class PlainChain:
    """One ticket's activities, called one after another; `times` holds (activity, seconds)."""

    def __init__(self, activities: ActivitySet, short_id: str, notifier: Notifier) -> None:
        functions = [*activities.workflow_queue, *activities.llm_queue]
        self._functions: dict[str, Callable[..., Any]] = {
            getattr(function, "__temporal_activity_definition").name: function for function in functions
        }
        # The real notify activity, reading this chain's status where the workflow's is queried.
        self._functions[ACTIVITY_NOTIFY] = NotifyActivities(notifier, self._current_status).notify_ticket
        self._status: TicketStatus | None = None
        self.short_id = short_id
        self.workflow_id = workflow_id_for(short_id)
        self.times: list[tuple[str, float]] = []
        self._calls = 0
        self._unrecorded: list[RecordEventInput] = []

    async def _call(self, name: str, argument: Any) -> Any:
        self._calls += 1
        environment = ActivityEnvironment()
        environment.info = dataclasses.replace(
            environment.info,
            activity_type=name,
            activity_id=str(self._calls),
            workflow_id=self.workflow_id,
            workflow_run_id="plain-chain",
        )
        started = time.perf_counter()
        result = environment.run(self._functions[name], argument)
        if isinstance(result, Awaitable):
            result = await result
        self.times.append((name, time.perf_counter() - started))
        return result

    async def _record(self, status: TicketStatus, kind: AuditEventKind, summary: str, **fields: Any) -> None:
        """Queued, then written as one batch before the next step off the worker, as the workflow does."""
        self._unrecorded.append(
            RecordEventInput(
                ticket_id=self.short_id,
                kind=kind,
                summary=summary,
                stage=status.stage,
                status=status.status_label,
                **fields,
            )
        )

    async def _flush(self) -> None:
        if self._unrecorded:
            batch, self._unrecorded = self._unrecorded, []
            await self._call(ACTIVITY_RECORD_EVENTS, RecordEventsInput(events=batch))

    async def _current_status(self, workflow_id: str) -> TicketStatus:
        assert self._status is not None and workflow_id == self.workflow_id
        return mask_status(self._status)

    async def _notify(self, status: TicketStatus, *posts: NotifyEvent) -> None:
        """One delivery of the message (and `posts`), as `MessageDelivery.run` schedules it."""
        status.message_version += 1
        keyed = [NotifyPost(kind=kind, key=f"{kind.value}-0-0") for kind in posts]
        await self._call(
            ACTIVITY_NOTIFY, NotifyInput(ticket_id=self.short_id, workflow_id=self.workflow_id, posts=keyed)
        )
        status.message_delivered = status.message_version

    async def run(self, request: TicketRequest) -> TicketOutcome:
        """The auto-approved path of `TicketWorkflow.run`, step for step; the first message beside it."""
        now = datetime.now(UTC)
        status = self._status = TicketStatus(
            ticket_id=self.short_id,
            workflow_id=self.workflow_id,
            request=request,
            stage=Stage.RECEIVED,
            created_at=now,
            updated_at=now,
        )
        await self._admit(request, now)
        await self._record(status, AuditEventKind.SUBMITTED, "submitted", request=request)
        await self._flush()
        delivering = asyncio.create_task(self._notify(status))
        try:
            outcome = await self._process(status, request)
        finally:
            await delivering
        await self._notify(status, NotifyEvent.OUTCOME)
        await self._record(status, AuditEventKind.NOTIFIED, "requester told the outcome")
        await self._flush()
        return outcome

    async def _admit(self, request: TicketRequest, started_at: datetime) -> None:
        """The request's check, where the tree's workflow makes one (trees before signed requests have none)."""
        verify = getattr(names, "ACTIVITY_VERIFY_REQUEST", None)
        if verify is None or verify not in self._functions:
            return
        from core.models import VerifyRequestInput

        argument = VerifyRequestInput(workflow_id=self.workflow_id, request=request, started_at=started_at)
        check = await self._call(verify, argument)
        if check.problem is not None:
            raise RuntimeError(f"the plain chain's request was refused: {check.problem}")

    async def _process(self, status: TicketStatus, request: TicketRequest) -> TicketOutcome:
        status.stage = Stage.GATHERING_CONTEXT
        context: TicketContext = await self._call(
            ACTIVITY_GATHER_CONTEXT, GatherContextInput(ticket_id=self.short_id, request=request)
        )
        status.context_summary = context.summary()
        await self._record(status, AuditEventKind.CONTEXT_GATHERED, status.context_summary)
        status.stage = Stage.PLANNING
        await self._flush()
        plan: Plan = await self._call(
            ACTIVITY_PLAN_TICKET, PlanTicketInput(ticket_id=self.short_id, request=request, context=context)
        )
        status.plan = plan
        await self._record(status, AuditEventKind.PLANNED, f"{len(plan.operations)} operation(s)")
        status.stage = Stage.VALIDATING
        judged = ValidatePlanInput(ticket_id=self.short_id, plan=plan, requester=request.requester)
        if "request" in ValidatePlanInput.model_fields:  # the judgement rests on the signed request
            judged = ValidatePlanInput(ticket_id=self.short_id, plan=plan, request=request)
        report: SafetyReport = await self._call(ACTIVITY_VALIDATE_PLAN, judged)
        status.report = report
        status.plan_hash = report.plan_hash
        await self._record(status, AuditEventKind.VALIDATED, f"risk {report.risk.value}", risk=report.risk)
        if report.required_approvals != 0:
            raise ValueError(f"{request.text!r} needs approval; the plain chain covers the auto-approved path only")
        await self._record(status, AuditEventKind.DECIDED, "runs without approval")
        status.stage = Stage.EXECUTING
        await self._flush()
        result: ExecutionResult = await self._call(
            ACTIVITY_EXECUTE_PLAN,
            ExecutePlanInput(
                ticket_id=self.short_id,
                workflow_id=self.workflow_id,
                plan=plan,
                plan_hash=report.plan_hash,
                approved_rows=[impact.rows_affected for impact in report.impacts],
                approved_row_keys=report.approved_row_keys,
                approved_versions=[impact.rows_version for impact in report.impacts],
                requester=request.requester,
                **({"judgement": report.judgement} if "judgement" in ExecutePlanInput.model_fields else {}),
            ),
        )
        await self._record(status, AuditEventKind.EXECUTED, f"{result.rows_changed} row(s) changed")
        outcome = TicketOutcome(
            status=OutcomeStatus.DONE, reason="executed", execution=result, finished_at=datetime.now(UTC)
        )
        status.outcome = outcome
        status.stage = Stage.FINISHED
        await self._record(status, AuditEventKind.FINISHED, "done")
        await self._flush()
        return outcome

    def activity_seconds(self) -> float:
        return sum(seconds for _, seconds in self.times)
